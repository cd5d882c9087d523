package modproxy

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/mod/module"
	modzip "golang.org/x/mod/zip"

	"github.com/xtraefik/xtraefik/internal/fileset"
	"github.com/xtraefik/xtraefik/internal/testenv"
)

// depFiles is a dependency that exercises every rule of `go mod vendor`:
// tests, "ignore" tags (//go:build and // +build), other tags and OS file
// names (kept: any tag counts), go.mod/go.sum in a package directory,
// metadata files in parent directories, and //go:embed patterns (hidden
// files, all:, directories, test-only embeds, embeds in ignored files).
// Files in a package's own directory are copied whatever embeds them, so
// embedded files sit in subdirectories.
var depFiles = map[string]string{
	"go.mod":              "module example.com/dep\n\ngo 1.20\n",
	"go.sum":              "",
	"LICENSE":             "root license\n",
	"AUTHORS":             "someone\n",
	"license.txt":         "lower case: not metadata\n",
	"README":              "readme in the root package\n",
	"dep.go":              "package dep\n\nimport _ \"embed\"\n\n//go:embed static\nvar static string\n\n//go:embed all:hidden\nvar hidden string\n\n//go:embed *.txt txts/*.txt\nvar txt string\n",
	"dep_test.go":         "package dep\n\nimport _ \"embed\"\n\n//go:embed tdir/t.dat\nvar testOnly string\n",
	"x_test.go":           "package dep_test\n\nimport _ \"embed\"\n\n//go:embed xdir\nvar xtest string\n",
	"ignored.go":          "//go:build ignore\n\npackage main\n\nimport _ \"embed\"\n\n//go:embed idir/i.dat\nvar s string\n",
	"ignored2.go":         "// +build ignore\n\npackage dep\n",
	"notignore.go":        "//go:build !ignore\n\npackage dep\n",
	"tagged.go":           "//go:build linux && !cgo\n\npackage dep\n",
	"gen.go":              "//go:build generate\n\npackage dep\n",
	"x_windows.go":        "package dep\n",
	"one.txt":             "1",
	"two.txt":             "2",
	"tdir/t.dat":          "t",
	"xdir/x.dat":          "x",
	"xdir/.x":             "hidden, not embedded",
	"idir/i.dat":          "i",
	"txts/a.txt":          "a",
	"txts/b.md":           "b",
	"static/a.css":        "a",
	"static/.hidden":      "h",
	"static/_under.txt":   "u",
	"static/sub/b.css":    "b",
	"hidden/.dot":         "d",
	"hidden/x":            "x",
	"sub/NOTICE.md":       "sub notice\n",
	"sub/PATENTS":         "sub patents\n",
	"sub/other.go":        "package sub\n",
	"sub/pkg/pkg.go":      "package pkg\n\nimport \"embed\"\n\n//go:embed data\nvar Data embed.FS\n",
	"sub/pkg/pkg_test.go": "package pkg\n",
	"sub/pkg/README.md":   "kept: not a test, not Go\n",
	"sub/pkg/go.sum":      "stray go.sum in a package directory\n",
	"sub/pkg/data/one":    "1",
	"sub/pkg/data/two/x":  "2",
	"sub/pkg/COPYING":     "package-level copying\n",
	"unused/unused.go":    "package unused\n",
	"unused/LICENSE":      "not copied: no vendored package below\n",
	"nested/go.mod":       "module example.com/dep/nested\n",
	"nested/nested.go":    "package nested\n",
}

// publish zips files as the go command would (modzip.Create drops what a
// module zip must not hold) and serves mod@version from p.
func publish(t *testing.T, p *testenv.GoProxyServer, mod, version string, files map[string]string) {
	t.Helper()
	var zf []modzip.File
	for name, content := range files {
		zf = append(zf, zipFile{memFile(name, []byte(content))})
	}
	var buf bytes.Buffer
	if err := modzip.Create(&buf, module.Version{Path: mod, Version: version}, zf); err != nil {
		t.Fatal(err)
	}
	p.WriteFile(t, mod, version, "zip", buf.Bytes())
	p.WriteFile(t, mod, version, "mod", []byte(files["go.mod"]))
	p.WriteFile(t, mod, version, "info", []byte(`{"Version":"`+version+`","Time":"2024-01-02T03:04:05Z"}`))
}

// goCmd runs the go command against p only, in dir.
func goCmd(t *testing.T, p *testenv.GoProxyServer, dir string, args ...string) {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go not installed")
	}
	cmd := exec.Command(goBin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOPROXY="+p.URL, "GOSUMDB=off", "GOWORK=off", "GO111MODULE=on",
		"GOTOOLCHAIN=local", "GOFLAGS=-mod=mod -modcacherw", "GOMODCACHE="+filepath.Join(t.TempDir(), "modcache"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestVendorRules compares re-vendoring with `go mod vendor` on a plugin
// whose dependency exercises each rule, for go directives on both sides of
// the rules' version switches (1.17: go.mod/go.sum dropped; 1.22: test
// embeds no longer copied).
func TestVendorRules(t *testing.T) {
	for _, tc := range []struct {
		goVersion string
		replace   bool // the plugin replaces example.com/dep by example.com/fork
	}{{"1.16", false}, {"1.21", false}, {"1.22", false}, {"1.22", true}} {
		goVersion := tc.goVersion
		name := "go" + goVersion
		if tc.replace {
			name += " replaced"
		}
		t.Run(name, func(t *testing.T) {
			p := testenv.GoProxy(t)
			publish(t, p, "example.com/dep", "v1.0.0", depFiles)
			goMod := "module example.com/plugin\n\ngo " + goVersion + "\n\nrequire example.com/dep v1.0.0\n"
			if tc.replace {
				fork := map[string]string{}
				for k, v := range depFiles {
					fork[k] = v
				}
				fork["go.mod"] = "module example.com/fork\n\ngo 1.20\n"
				fork["sub/pkg/fork.go"] = "package pkg\n\n// Only the fork has this file.\n"
				publish(t, p, "example.com/fork", "v1.1.0", fork)
				goMod += "\nreplace example.com/dep => example.com/fork v1.1.0\n"
			}
			dir := t.TempDir()
			plugin := map[string]string{
				"go.mod":       goMod,
				"plugin.go":    "package plugin\n\nimport (\n\t_ \"example.com/dep\"\n\t_ \"example.com/dep/sub/pkg\"\n)\n",
				".traefik.yml": "displayName: test\n",
			}
			for name, content := range plugin {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			goCmd(t, p, dir, "mod", "tidy")
			goCmd(t, p, dir, "mod", "vendor")
			want, err := fileset.FromDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := modzip.CreateFromDir(&buf, module.Version{Path: "example.com/plugin", Version: "v1.0.0"}, dir); err != nil {
				t.Fatal(err)
			}
			p.WriteFile(t, "example.com/plugin", "v1.0.0", "zip", buf.Bytes())
			p.WriteFile(t, "example.com/plugin", "v1.0.0", "info", []byte(`{"Version":"v1.0.0"}`))

			c := newClient(t, Options{Env: envOf(t, "GOPROXY", p.URL, "GOSUMDB", "off")})
			m, err := c.Fetch(context.Background(), "example.com/plugin", "v1.0.0", "")
			if err != nil {
				t.Fatal(err)
			}
			sameFiles(t, m.Files, want)
			if t.Failed() || testing.Verbose() {
				t.Logf("go mod vendor wrote:\n%s", strings.Join(vendorPaths(want), "\n"))
			}
			wantReplace := ""
			if tc.replace {
				wantReplace = "example.com/fork@v1.1.0"
			}
			if len(m.Vendored) != 1 || m.Vendored[0].Path != "example.com/dep" || m.Vendored[0].Sum == "" || m.Vendored[0].Replace != wantReplace {
				t.Errorf("Vendored = %+v", m.Vendored)
			}
		})
	}
}

func vendorPaths(s fileset.Set) []string {
	var out []string
	for _, f := range s {
		if strings.HasPrefix(f.Path, "vendor/") {
			out = append(out, f.Path)
		}
	}
	sort.Strings(out)
	return out
}

// TestVendorErrors hands Fetch modules.txt files that cannot be restored.
func TestVendorErrors(t *testing.T) {
	p := testenv.GoProxy(t)
	publish(t, p, "example.com/dep", "v1.0.0", depFiles)
	depSum, depModSum, err := p.Sums("example.com/dep", "v1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	const otherSum = "h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	goSum := "example.com/dep v1.0.0 " + depSum + "\nexample.com/dep v1.0.0/go.mod " + depModSum + "\n"
	for i, tc := range []struct {
		name, modulesTxt, goSum string
		want                    error
		errHas                  []string
	}{
		{"ok", "# example.com/dep v1.0.0\n## explicit; go 1.20\nexample.com/dep/sub/pkg\n", goSum, nil, nil},
		{"nested module", "# example.com/dep v1.0.0\n## explicit\nexample.com/dep/nested\n", goSum, ErrVendor,
			[]string{"example.com/dep/nested", "nested module"}},
		{"absent package", "# example.com/dep v1.0.0\nexample.com/dep/nothere\n", goSum, ErrVendor, []string{"example.com/dep/nothere"}},
		{"package outside its module", "# example.com/dep v1.0.0\nexample.com/other\n", goSum, ErrVendor, []string{"example.com/other"}},
		{"directory replacement", "# example.com/dep v1.0.0 => ../dep\nexample.com/dep\n", goSum, ErrVendor, []string{"../dep"}},
		{"no go.sum line", "# example.com/dep v1.0.0\nexample.com/dep\n", "", ErrVendor, []string{"go.sum", "example.com/dep@v1.0.0"}},
		{"go.sum disagrees", "# example.com/dep v1.0.0\nexample.com/dep\n", "example.com/dep v1.0.0 " + otherSum + "\n", ErrChecksum,
			[]string{"example.com/dep@v1.0.0", otherSum, depSum}},
		{"go.sum go.mod line disagrees", "# example.com/dep v1.0.0\nexample.com/dep\n", "example.com/dep v1.0.0 " + depSum + "\nexample.com/dep v1.0.0/go.mod " + otherSum + "\n", ErrChecksum,
			[]string{"go.mod", otherSum, depModSum}},
		{"unknown version", "# example.com/dep v1.0.1\nexample.com/dep\n", "example.com/dep v1.0.1 " + depSum + "\n", ErrNotFound, []string{"example.com/dep@v1.0.1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			version := "v1.0." + string(rune('0'+i))
			publish(t, p, "example.com/plugin", version, map[string]string{
				"go.mod":             "module example.com/plugin\n\ngo 1.22\n\nrequire example.com/dep v1.0.0\n",
				"go.sum":             tc.goSum,
				"plugin.go":          "package plugin\n",
				"vendor/modules.txt": tc.modulesTxt,
				// Zips keep files directly in vendor/; `go mod vendor` removes them.
				"vendor/stray.txt": "stray",
			})
			c := newClient(t, Options{Env: envOf(t, "GOPROXY", p.URL, "GOSUMDB", "off")})
			m, err := c.Fetch(context.Background(), "example.com/plugin", version, "")
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if _, ok := m.Files.Lookup("vendor/example.com/dep/sub/pkg/pkg.go"); !ok {
					t.Errorf("vendored package missing: %v", vendorPaths(m.Files))
				}
				if _, ok := m.Files.Lookup("vendor/stray.txt"); ok {
					t.Error("vendor/stray.txt kept")
				}
				if _, ok := m.Files.Lookup("vendor/modules.txt"); !ok {
					t.Error("vendor/modules.txt dropped")
				}
				return
			}
			t.Log(err)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			for _, s := range append(tc.errHas, "example.com/plugin@"+version) {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error does not name %q: %v", s, err)
				}
			}
		})
	}
}

// TestGo124ZipHasNoModulesTxt documents what module zips of go 1.24+
// modules hold: no vendor/modules.txt at all, so nothing says what was
// vendored.
func TestGo124ZipHasNoModulesTxt(t *testing.T) {
	p := testenv.GoProxy(t)
	publish(t, p, "example.com/dep", "v1.0.0", depFiles)
	depSum, _, _ := p.Sums("example.com/dep", "v1.0.0")
	publish(t, p, "example.com/plugin", "v1.0.0", map[string]string{
		"go.mod":             "module example.com/plugin\n\ngo 1.24\n\nrequire example.com/dep v1.0.0\n",
		"go.sum":             "example.com/dep v1.0.0 " + depSum + "\n",
		"plugin.go":          "package plugin\n\nimport _ \"example.com/dep\"\n",
		"vendor/modules.txt": "# example.com/dep v1.0.0\n## explicit; go 1.20\nexample.com/dep\n",
	})
	c := newClient(t, Options{Env: envOf(t, "GOPROXY", p.URL, "GOSUMDB", "off")})
	m, err := c.Fetch(context.Background(), "example.com/plugin", "v1.0.0", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Vendored) != 0 || len(vendorPaths(m.Files)) != 0 {
		t.Errorf("Vendored = %v, files %v", m.Vendored, vendorPaths(m.Files))
	}
	if !m.VendorMissing {
		t.Error("VendorMissing not set for a module with requirements and no vendor/modules.txt")
	}
}
