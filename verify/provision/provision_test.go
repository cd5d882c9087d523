package provision

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/modfile"
)

// The worker module replaces xtraefik with its embedded source and pins the
// Yaegi and mapstructure of the target Traefik; test files stay out.
func TestWriteModule(t *testing.T) {
	dir := t.TempDir()
	if err := writeModule(dir, "v0.15.0", "v1.5.0"); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	mod, err := modfile.Parse("go.mod", data, nil)
	if err != nil {
		t.Fatal(err)
	}
	replaced := map[string]string{}
	for _, r := range mod.Replace {
		replaced[r.Old.Path] = r.New.Path + "@" + r.New.Version
	}
	for old, want := range map[string]string{
		modulePath:                          "./xtraefik@",
		"github.com/traefik/yaegi":          "github.com/traefik/yaegi@v0.15.0",
		"github.com/mitchellh/mapstructure": "github.com/mitchellh/mapstructure@v1.5.0",
	} {
		if replaced[old] != want {
			t.Errorf("replace %s => %q, want %q", old, replaced[old], want)
		}
	}
	for _, f := range []string{"main.go", "go.sum", "xtraefik/go.mod", "xtraefik/verify/worker.go", "xtraefik/verify/process.go", "xtraefik/manifest/manifest.go"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("worker module lacks %s: %v", f, err)
		}
	}
	sum, err := os.ReadFile(filepath.Join(dir, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(sum), "github.com/traefik/yaegi v0.15.0 h1:") || !strings.Contains(string(sum), "github.com/traefik/yaegi v0.16.1 h1:") {
		t.Error("go.sum does not cover both Yaegi versions")
	}
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, "_test.go") {
			t.Errorf("test file written: %s", p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestPathKeyedByVersion(t *testing.T) {
	a, err := Path("/c", "v0.15.0")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Path("/c", "v0.15.1")
	again, _ := Path("/c", "v0.15.0")
	if a == b || a != again || filepath.Base(a) != "xtraefik-yaegi-v0.15.0" || !strings.HasPrefix(a, "/c/workers/v0.15.0-") {
		t.Errorf("paths %s, %s, %s", a, b, again)
	}
}

// Without a Go toolchain nothing is built, and the caller can tell why.
func TestBuildWithoutToolchain(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	if _, err := Build(context.Background(), t.TempDir(), "v0.15.1", false); !errors.Is(err, ErrNoToolchain) {
		t.Fatalf("err = %v, want ErrNoToolchain", err)
	}
	if _, err := Build(context.Background(), t.TempDir(), "v0.14.3", false); err == nil || Buildable("v0.14.3") {
		t.Fatal("a worker for a Yaegi without checksums was attempted")
	}
}

// Offline, a worker is built from the module cache alone: with an empty
// one the go command refuses to download (GOPROXY=off) and says so.
func TestBuildOffline(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no Go toolchain")
	}
	t.Setenv("GOMODCACHE", t.TempDir())
	t.Setenv("GOPROXY", "http://127.0.0.1:1") // never reached either way
	_, err := Build(context.Background(), t.TempDir(), "v0.15.1", true)
	if err == nil || !strings.Contains(err.Error(), "GOPROXY=off") {
		t.Fatalf("offline build with an empty module cache: %v", err)
	}
}

func TestDefaultCacheDir(t *testing.T) {
	t.Setenv(CacheEnv, "/x/cache")
	if d, err := DefaultCacheDir(); err != nil || d != "/x/cache" {
		t.Errorf("with %s: %q, %v", CacheEnv, d, err)
	}
	t.Setenv(CacheEnv, "")
	t.Setenv("XDG_CACHE_HOME", "/xdg")
	if d, err := DefaultCacheDir(); err != nil || d != "/xdg/xtraefik" {
		t.Errorf("with XDG_CACHE_HOME: %q, %v", d, err)
	}
}

// Every file the verify package builds from in this module is embedded: a
// package added to its imports without a //go:embed line in worker_source.go
// would break the worker build only where it happens, on first use.
func TestEmbeddedSourceComplete(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "list", "-deps", "-f", `{{if not .Standard}}{{.ImportPath}}{{range .GoFiles}} {{.}}{{end}}{{range .EmbedFiles}} {{.}}{{end}}{{end}}`, modulePath+"/verify")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	embedded := map[string]bool{}
	if err := sourceFiles(func(name string, _ []byte) error { embedded[name] = true; return nil }); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || (f[0] != modulePath && !strings.HasPrefix(f[0], modulePath+"/")) {
			continue
		}
		dir := strings.TrimPrefix(strings.TrimPrefix(f[0], modulePath), "/")
		for _, file := range f[1:] {
			if name := path.Join(dir, file); !embedded[name] && !strings.HasSuffix(name, "_test.go") {
				t.Errorf("%s (package %s) is not in xtraefik.WorkerSource: add it to worker_source.go's //go:embed lines", name, f[0])
			}
		}
	}
}
