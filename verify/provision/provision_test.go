package provision

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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
	if _, _, err := Build(context.Background(), t.TempDir(), "v0.15.1", false, testKey, noWarn(t)); !errors.Is(err, ErrNoToolchain) {
		t.Fatalf("err = %v, want ErrNoToolchain", err)
	}
	if _, _, err := Build(context.Background(), t.TempDir(), "v0.14.3", false, testKey, noWarn(t)); err == nil || Buildable("v0.14.3") {
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
	_, _, err := Build(context.Background(), t.TempDir(), "v0.15.1", true, testKey, noWarn(t))
	if err == nil || !strings.Contains(err.Error(), "GOPROXY=off") {
		t.Fatalf("offline build with an empty module cache: %v", err)
	}
}

var testKey = bytes.Repeat([]byte{1}, 32)

func noWarn(t *testing.T) func(string) {
	return func(w string) { t.Errorf("unexpected warning: %s", w) }
}

// A worker in the cache runs only with a record sealed by this host's key
// naming its hash: one planted there (no record, a record under another
// key, an edited record) is removed with a warning and rebuilt, never
// returned; one with its own record is returned with the hash to check.
func TestBuildTrustsOnlySealedRecords(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // no toolchain: a rebuild stops at ErrNoToolchain
	cache := t.TempDir()
	exe, err := Path(cache, "v0.15.1")
	if err != nil {
		t.Fatal(err)
	}
	plant := func() {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(exe), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(exe, []byte("#!/bin/sh\ntouch /tmp/planted\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	otherKey := bytes.Repeat([]byte{2}, 32)
	for _, tc := range []struct {
		name   string
		record func()
		want   string
	}{
		{"no record", func() {}, "it has no record sealed by this host"},
		{"another key", func() {
			if _, err := Seal(otherKey, exe, "v0.15.1"); err != nil {
				t.Fatal(err)
			}
		}, "not sealed by this host"},
		{"edited record", func() {
			if _, err := Seal(testKey, exe, "v0.15.1"); err != nil {
				t.Fatal(err)
			}
			data, _ := os.ReadFile(recordPath(exe))
			var r record
			_ = json.Unmarshal(data, &r)
			r.SHA256 = strings.Repeat("0", 64)
			data, _ = json.Marshal(r)
			if err := os.WriteFile(recordPath(exe), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}, "not sealed by this host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plant()
			tc.record()
			var warned []string
			_, _, err := Build(context.Background(), cache, "v0.15.1", false, testKey, func(w string) { warned = append(warned, w) })
			if !errors.Is(err, ErrNoToolchain) {
				t.Fatalf("err = %v, want a rebuild (ErrNoToolchain here)", err)
			}
			if len(warned) != 1 || !strings.Contains(warned[0], tc.want) || !strings.Contains(warned[0], "rebuilding it") {
				t.Fatalf("warnings %q, want one saying %q", warned, tc.want)
			}
			if _, err := os.Stat(exe); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("the planted worker is still in the cache: %v", err)
			}
		})
	}
	t.Run("sealed here", func(t *testing.T) {
		plant()
		sum, err := Seal(testKey, exe, "v0.15.1")
		if err != nil {
			t.Fatal(err)
		}
		got, gotSum, err := Build(context.Background(), cache, "v0.15.1", false, testKey, noWarn(t))
		want := sha256.Sum256([]byte("#!/bin/sh\ntouch /tmp/planted\n"))
		if err != nil || got != exe || gotSum != sum || gotSum != hex.EncodeToString(want[:]) {
			t.Fatalf("Build = %s, %s, %v; want %s with its hash", got, gotSum, err, exe)
		}
		if err := Discard(cache, "v0.15.1"); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{exe, recordPath(exe)} {
			if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("Discard left %s", p)
			}
		}
	})
	if _, _, err := Build(context.Background(), cache, "v0.15.1", false, nil, noWarn(t)); err == nil || !strings.Contains(err.Error(), "no host key") {
		t.Fatalf("Build without a key: %v", err)
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
