package provision

import (
	"archive/zip"
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/xtraefik/xtraefik/internal/testenv"
)

// TestEmbeddedSourceCurrent: the embedded archive is exactly what go generate
// writes from the files in this checkout. A stale one would build workers from
// other code than xtraefik's own (an old sandbox entry, an old protocol), and
// only where a worker is built, on users' machines.
func TestEmbeddedSourceCurrent(t *testing.T) {
	// Under XTRAEFIK_E2E (CI) a missing go command fails the test.
	goCmd := testenv.Tool(t, "go")
	fresh := filepath.Join(t.TempDir(), "source.zip")
	cmd := exec.Command(goCmd, "run", "./internal/gensource", "-o", fresh)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go run ./internal/gensource: %v\n%s", err, out)
	}
	want, err := os.ReadFile(fresh)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(want, sourceZip) {
		return
	}
	// Name what differs, then the fix.
	wantFiles := zipFiles(t, want)
	haveFiles := zipFiles(t, sourceZip)
	for name, data := range wantFiles {
		if have, ok := haveFiles[name]; !ok {
			t.Errorf("source.zip lacks %s", name)
		} else if !bytes.Equal(have, data) {
			t.Errorf("source.zip holds an old %s", name)
		}
	}
	for name := range haveFiles {
		if _, ok := wantFiles[name]; !ok {
			t.Errorf("source.zip holds %s, which the worker no longer builds from", name)
		}
	}
	t.Errorf("source.zip is stale: run go generate ./verify/provision")
}

func zipFiles(t *testing.T, data []byte) map[string][]byte {
	t.Helper()
	r, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	err = fs.WalkDir(r, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files[name], err = fs.ReadFile(r, name)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}
