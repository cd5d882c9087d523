package provision

import (
	"archive/zip"
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestEmbeddedSourceCurrent: the embedded archive is exactly what go generate
// writes from the files in this checkout. A stale one would build workers from
// other code than xtraefik's own (an old sandbox entry, an old protocol), and
// only where a worker is built, on users' machines.
func TestEmbeddedSourceCurrent(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no Go toolchain")
	}
	fresh := filepath.Join(t.TempDir(), "source.zip")
	cmd := exec.Command("go", "run", "./internal/gensource", "-o", fresh)
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
