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

	"github.com/xtraefik/xtraefik/internal/testenv"
)

// The worker module replaces xtraefik with its embedded source and pins the
// Yaegi and mapstructure of the target Traefik; test files stay out.
func TestWriteModule(t *testing.T) {
	dir := t.TempDir()
	if err := writeModule(dir, "v0.15.0", "v1.5.0"); err != nil {
		t.Fatal(err)
	}
	replaced := moduleReplaces(t, dir)
	for old, want := range map[string]string{
		modulePath:                          "./xtraefik@",
		"github.com/traefik/yaegi":          "github.com/traefik/yaegi@v0.15.0",
		"github.com/mitchellh/mapstructure": "github.com/mitchellh/mapstructure@v1.5.0",
	} {
		if replaced[old] != want {
			t.Errorf("replace %s => %q, want %q", old, replaced[old], want)
		}
	}
	for _, f := range []string{"main.go", "go.sum", "xtraefik/go.mod", "xtraefik/verify/worker.go", "xtraefik/verify/process.go", "xtraefik/internal/manifest/manifest.go"} {
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

// moduleReplaces reads the worker module's go.mod in dir: each replaced
// module path and what replaces it, as path@version.
func moduleReplaces(t *testing.T, dir string) map[string]string {
	t.Helper()
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
	return replaced
}

// A Yaegi outside the table keeps xtraefik's mapstructure, and its go.sum
// lines are left for the go command to add after checking them.
func TestWriteModuleUnpinned(t *testing.T) {
	dir := t.TempDir()
	if err := writeModule(dir, "v0.16.0", ""); err != nil {
		t.Fatal(err)
	}
	replaced := moduleReplaces(t, dir)
	if len(replaced) != 2 || replaced["github.com/traefik/yaegi"] != "github.com/traefik/yaegi@v0.16.0" || replaced[modulePath] != "./xtraefik@" {
		t.Errorf("replacements %v", replaced)
	}
	sum, err := os.ReadFile(filepath.Join(dir, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(sum), "github.com/traefik/yaegi v0.16.0 ") {
		t.Error("go.sum holds lines for v0.16.0 that xtraefik does not pin")
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
	// A version no Traefik with plugins embeds is refused before the toolchain is looked for.
	if _, _, err := Build(context.Background(), t.TempDir(), "v0.8.14", false, testKey, noWarn(t)); err == nil || errors.Is(err, ErrNoToolchain) || !strings.Contains(err.Error(), "from v0.9.0 on") {
		t.Fatalf("a worker for yaegi v0.8.14 was attempted: %v", err)
	}
}

// Any canonical Go module version from Floor on is attempted: released,
// pre-release or pseudo-version; nothing else reaches the go command.
func TestBuildable(t *testing.T) {
	for v, want := range map[string]bool{
		"v0.15.1": true, "v0.16.0": true, "v0.14.3": true, "v0.9.0": true, "v0.17.0": true, "v1.0.0": true,
		"v0.17.0-rc.1":                          true,
		"v0.16.2-0.20250101120000-0123456789ab": true,
		"v0.8.14":                               false,
		"0.16.0":                                false,
		"v0.16":                                 false,
		"v0.16.0+incompatible":                  false,
		"":                                      false,
		"latest":                                false,
		"v0.16.0 -toolexec=/bin/sh":             false,
	} {
		if got := Buildable(v); got != want {
			t.Errorf("Buildable(%q) = %v, want %v", v, got, want)
		}
	}
}

// The compiler's first diagnostic is a BuildError's line, relative to the
// worker module; download and checksum failures have none.
func TestCompileError(t *testing.T) {
	src := "/tmp/cache/workers/v0.9.23-0123/src-42"
	out := "go: downloading github.com/traefik/yaegi v0.9.23\n# github.com/xtraefik/xtraefik/verify\n" +
		src + "/xtraefik/verify/yaegi.go:181:3: unknown field Env in struct literal of type interp.Options\n" +
		src + "/xtraefik/verify/yaegi.go:190:9: i.Use undefined\n"
	line, ok := compileError([]byte(out), src)
	if !ok || line != "xtraefik/verify/yaegi.go:181:3: unknown field Env in struct literal of type interp.Options" {
		t.Errorf("compileError = %q, %v", line, ok)
	}
	for _, out := range []string{
		"go: github.com/traefik/yaegi@v0.16.0: verifying module: checksum mismatch\n\tdownloaded: h1:x\n\tsum.golang.org: h1:y\n\nSECURITY ERROR\n",
		"go: github.com/traefik/yaegi@v0.99.0: reading https://proxy.golang.org/github.com/traefik/yaegi/@v/v0.99.0.mod: 404 Not Found\n",
		// Package loading reports a refused module at the import's position.
		src + "/xtraefik/verify/yaegi.go:19:2: github.com/traefik/yaegi@v0.16.0: verifying module: checksum mismatch\n",
	} {
		if line, ok := compileError([]byte(out), src); ok {
			t.Errorf("%q taken for a compile error: %q", out, line)
		}
	}
}

// An unpinned Yaegi is built only from modules the checksum database
// vouches for: with GOSUMDB=off nothing is attempted, and a proxy serving a
// zip the database does not vouch for is refused by the go command.
func TestBuildUnpinnedTrust(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no Go toolchain")
	}
	const yaegi = "v0.16.0"
	t.Run("GOSUMDB=off", func(t *testing.T) {
		cache := t.TempDir()
		t.Setenv("GOSUMDB", "off")
		_, _, err := Build(context.Background(), cache, yaegi, false, testKey, noWarn(t))
		if err == nil || !strings.Contains(err.Error(), "GOSUMDB=off") || !strings.Contains(err.Error(), "checksum database") {
			t.Fatalf("err = %v", err)
		}
		if exe, _ := Path(cache, yaegi); fileExists(exe) {
			t.Fatal("a worker was built")
		}
	})
	t.Run("zip the checksum database does not vouch for", func(t *testing.T) {
		proxy := testenv.GoProxy(t, "github.com/traefik/yaegi@"+yaegi)
		db := testenv.SumDB(t, proxy)
		// The database records another zip hash than the one served.
		db.Lie("github.com/traefik/yaegi", yaegi, "h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
		// A module cache of the test's own (the go command caches the test
		// database's tree there); every module but Yaegi comes from the
		// user's download cache, pinned by go.sum.
		downloads := filepath.Join(strings.TrimSpace(goEnv(t, "GOMODCACHE")), "cache", "download")
		gopath := t.TempDir()
		t.Setenv("GOPATH", gopath)
		t.Setenv("GOMODCACHE", filepath.Join(gopath, "pkg", "mod"))
		t.Setenv("GOPROXY", proxy.URL+",file://"+filepath.ToSlash(downloads))
		t.Setenv("GOSUMDB", db.GOSUMDB)
		t.Setenv("GONOSUMDB", "")
		t.Setenv("GOPRIVATE", "")
		t.Setenv("GOFLAGS", "-insecure") // the user's GOFLAGS never reach the build
		cache := t.TempDir()
		_, _, err := Build(context.Background(), cache, yaegi, false, testKey, noWarn(t))
		var be *BuildError
		if err == nil || errors.As(err, &be) || !errors.Is(err, ErrChecksum) ||
			!strings.Contains(err.Error(), "github.com/traefik/yaegi@v0.16.0: verifying module: checksum mismatch") || strings.Contains(err.Error(), "\n") {
			t.Fatalf("err = %v; want the go command's checksum refusal", err)
		}
		if testing.Verbose() {
			t.Log(err)
		}
		if exe, _ := Path(cache, yaegi); fileExists(exe) {
			t.Fatal("a worker was built")
		}
	})
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func goEnv(t *testing.T, name string) string {
	t.Helper()
	out, err := exec.Command("go", "env", name).Output()
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
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

// Every file the verify package builds from in this module is embedded,
// checked apart from the generator (gensource) that writes the archive: a
// package missing from it would break the worker build only where it
// happens, on first use.
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
			if name := path.Join(dir, file); !embedded[name] && name != sourceArchive && !strings.HasSuffix(name, "_test.go") {
				t.Errorf("%s (package %s) is not in the embedded worker source (source.zip)", name, f[0])
			}
		}
	}
}

// A module cache restored from elsewhere (a CI cache of ~/go/pkg/mod) may
// hold an extracted module whose files were changed after download: the go
// command trusts the directory and would compile it into a worker that is
// then sealed. Build refuses, naming the module, before compiling.
func TestBuildRefusesModifiedModuleCache(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no Go toolchain")
	}
	const ms = "github.com/mitchellh/mapstructure@v1.5.0"
	downloads := filepath.Join(strings.TrimSpace(goEnv(t, "GOMODCACHE")), "cache", "download")
	if !fileExists(filepath.Join(downloads, "github.com", "mitchellh", "mapstructure", "@v", "v1.5.0.zip")) {
		t.Skipf("the module cache has no %s to copy from", ms)
	}
	// A module cache of the test's own, filled from the user's download
	// cache; the go command makes its files read-only.
	gopath := t.TempDir()
	modcache := filepath.Join(gopath, "pkg", "mod")
	t.Setenv("GOPATH", gopath)
	t.Setenv("GOMODCACHE", modcache)
	t.Setenv("GOPROXY", "file://"+filepath.ToSlash(downloads))
	t.Setenv("GOFLAGS", "")
	t.Cleanup(func() { _ = exec.Command("go", "clean", "-modcache").Run() })
	get := exec.Command("go", "mod", "download", ms)
	get.Dir, get.Env = t.TempDir(), append(os.Environ(), "GOSUMDB=off", "GOWORK=off")
	if out, err := get.CombinedOutput(); err != nil {
		t.Fatalf("go mod download %s: %v\n%s", ms, err, out)
	}
	dir := filepath.Join(modcache, "github.com", "mitchellh", "mapstructure@v1.5.0")
	src := filepath.Join(dir, "mapstructure.go")
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	// Still compiles: only the hash can tell.
	if err := errors.Join(os.Chmod(dir, 0o755), os.Chmod(src, 0o644), os.WriteFile(src, append(data, "\n// changed after download\n"...), 0o444)); err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	_, _, err = Build(context.Background(), cache, "v0.15.1", false, testKey, noWarn(t))
	if !errors.Is(err, ErrModuleCache) || !strings.Contains(err.Error(), "github.com/mitchellh/mapstructure v1.5.0 (dir has been modified)") {
		t.Fatalf("err = %v; want the changed module refused by name", err)
	}
	t.Log(err)
	if exe, _ := Path(cache, "v0.15.1"); fileExists(exe) {
		t.Fatal("a worker was built")
	}
}
