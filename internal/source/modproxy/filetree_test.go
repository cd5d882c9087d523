package modproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/module"

	"github.com/xtraefik/xtraefik/internal/fileset"
	"github.com/xtraefik/xtraefik/internal/testenv"
)

// TestRevendorFromGoModDownloadTree re-vendors a plugin from an
// air-gapped GOPROXY=file://… tree filled by the go command itself
// (GOMODCACHE=<tmp> go mod download), whose dependencies have a .mod and
// a .zip but no .info: the go command needs no more for a known version,
// and `go mod vendor` works against the same tree, so re-vendoring must
// too.
func TestRevendorFromGoModDownloadTree(t *testing.T) {
	mod, version := "github.com/traefik/pluginproviderdemo", "v0.3.0"
	deps := testenv.VendoredModules(t, mod, version)
	skipUnavailable(t, deps...)
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go not installed")
	}
	// The host's module cache first: what the other tests downloaded.
	hostCache := strings.TrimSpace(goEnv(t, goBin, "GOMODCACHE"))
	upstream := "file://" + filepath.ToSlash(filepath.Join(hostCache, "cache", "download")) + "," + goEnv(t, goBin, "GOPROXY")
	modCache := t.TempDir()
	run := func(dir, proxy string, args ...string) []byte {
		t.Helper()
		cmd := exec.Command(goBin, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOWORK=off", "GO111MODULE=on", "GOFLAGS=-modcacherw", "GOMODCACHE="+modCache,
			"GOPROXY="+strings.TrimSpace(proxy), "GOSUMDB=off", "GONOSUMDB=", "GOPRIVATE=")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("go %s: %v: %s", strings.Join(args, " "), err, stderr.String())
		}
		return stdout.Bytes()
	}
	args := append([]string{"mod", "download", "-json", mod + "@" + version}, deps...)
	dec := json.NewDecoder(bytes.NewReader(run(t.TempDir(), upstream, args...)))
	sum := ""
	for dec.More() {
		var d downloadedJSON
		if err := dec.Decode(&d); err != nil {
			t.Fatal(err)
		}
		if d.Path == mod {
			sum = d.Sum
		}
	}
	tree := filepath.Join(modCache, "cache", "download")
	// The dependencies' .info files go: a tree the go command filled
	// while building or vendoring (from a source serving no .info) has
	// none, and nothing but the plugin's own time needs one.
	removed := 0
	for _, dep := range deps {
		p, v, _ := strings.Cut(dep, "@")
		info := filepath.Join(tree, filepath.FromSlash(escapePath(t, p)), "@v", v+".info")
		if err := os.Remove(info); err != nil {
			t.Fatalf("the go command wrote no .info for %s: %v", dep, err)
		}
		removed++
	}
	if removed == 0 {
		t.Fatal("the plugin has no dependencies to re-vendor")
	}
	proxy := "file://" + filepath.ToSlash(tree)

	// The go command vendors the module against this tree.
	work := t.TempDir()
	if err := os.CopyFS(work, os.DirFS(testenv.ModuleDir(t, mod, version))); err != nil {
		t.Fatal(err)
	}
	if err := filepath.WalkDir(work, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Chmod(p, 0o755)
	}); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(work, "vendor")); err != nil {
		t.Fatal(err)
	}
	run(work, proxy, "mod", "vendor")

	// So does xtraefik.
	cache := t.TempDir()
	c := newClient(t, Options{CacheDir: cache, Env: envOf(t, "GOPROXY", proxy, "GOSUMDB", "off")})
	m, err := c.Fetch(context.Background(), mod, version, sum)
	if err != nil {
		t.Fatalf("re-vendoring from a go mod download tree: %v", err)
	}
	if len(m.Vendored) != len(deps) {
		t.Fatalf("Vendored = %+v, want %v", m.Vendored, deps)
	}
	want, err := fileset.FromDir(work)
	if err != nil {
		t.Fatal(err)
	}
	sameFiles(t, m.Files, want)
}

type downloadedJSON struct{ Path, Version, Sum string }

func goEnv(t *testing.T, goBin, name string) string {
	t.Helper()
	out, err := exec.Command(goBin, "env", name).Output()
	if err != nil {
		t.Fatalf("go env %s: %v", name, err)
	}
	return strings.TrimSpace(string(out))
}

func escapePath(t *testing.T, p string) string {
	t.Helper()
	e, err := module.EscapePath(p)
	if err != nil {
		t.Fatal(err)
	}
	return e
}
