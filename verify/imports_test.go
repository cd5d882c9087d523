package verify

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestWalkImports(t *testing.T) {
	const mod = "example.com/p"
	for _, tc := range []struct {
		name                             string
		imp                              string
		files                            map[string]string
		missing, restricted, unavailable []string
		absent                           []string
		nested                           map[string]string
		packages                         int
		wantErr                          string
	}{
		{
			name:     "stdlib only",
			files:    map[string]string{"p.go": "package p\nimport (\n\"net/http\"\n\"encoding/json\"\n)\n"},
			packages: 1,
		},
		{
			name: "missing sorted, deduplicated, from every package followed",
			files: map[string]string{
				"p.go":     "package p\nimport (\n\"github.com/z/z\"\n\"example.com/p/sub\"\n)\n",
				"sub/s.go": "package sub\nimport (\n\"github.com/a/a\"\n\"github.com/z/z\"\n)\n",
			},
			missing: []string{"github.com/a/a", "github.com/z/z"}, packages: 2,
		},
		{
			name: "root vendor, then a vendored package importing another vendored one",
			files: map[string]string{
				"p.go":                            "package p\nimport \"github.com/a/a\"\n",
				"vendor/github.com/a/a/a.go":      "package a\nimport \"github.com/b/b\"\n",
				"vendor/github.com/b/b/b.go":      "package b\nimport \"strings\"\n",
				"vendor/github.com/c/unused/c.go": "package unused\nimport \"github.com/never/followed\"\n",
			},
			packages: 3,
		},
		{
			name: "nearest vendor directory above the importing package",
			imp:  mod + "/cmd/plugin",
			files: map[string]string{
				"cmd/plugin/p.go":                       "package plugin\nimport \"github.com/a/a\"\n",
				"cmd/plugin/vendor/github.com/a/a/a.go": "package a\n",
			},
			packages: 2,
		},
		{
			name: "tests, ignored files and other platforms do not count",
			files: map[string]string{
				"p.go":         "package p\n",
				"p_test.go":    "package p\nimport \"github.com/stretchr/testify/assert\"\n",
				"_x.go":        "package p\nimport \"github.com/ignored/x\"\n",
				".y.go":        "package p\nimport \"github.com/ignored/y\"\n",
				"p_windows.go": "package p\nimport \"github.com/windows/only\"\n",
				"p_darwin.go":  "package p\nimport \"github.com/darwin/only\"\n",
				"tagged.go":    "//go:build ignore\n\npackage p\nimport \"github.com/tagged/out\"\n",
				"p_linux.go":   "package p\nimport \"github.com/linux/needed\"\n",
			},
			missing: []string{"github.com/linux/needed"}, packages: 1,
		},
		{
			name:       "restricted and unavailable",
			files:      map[string]string{"p.go": "package p\nimport (\n\"unsafe\"\n\"syscall\"\n\"C\"\n\"plugin\"\n)\n"},
			restricted: []string{"syscall", "unsafe"}, unavailable: []string{"C (cgo)", "plugin"}, packages: 1,
		},
		{
			name:   "own package without Go files",
			files:  map[string]string{"p.go": "package p\nimport \"example.com/p/gone\"\n"},
			absent: []string{"example.com/p/gone"}, packages: 1,
		},
		{
			name: "nested module",
			imp:  mod + "/plugin",
			files: map[string]string{
				"plugin/go.mod": "module example.com/p/plugin\n",
				"plugin/p.go":   "package plugin\n",
			},
			nested: map[string]string{mod + "/plugin": "plugin"}, packages: 1,
		},
		{
			name: "import outside the module", imp: "example.com/other",
			files:   map[string]string{"p.go": "package p\n"},
			wantErr: `import "example.com/other" is not inside module "example.com/p"`,
		},
		{
			name:    "syntax error",
			files:   map[string]string{"p.go": "package p\nimport (\n"},
			wantErr: "p.go:2:10: expected ')'",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := writeTree(t, tc.files)
			imp := tc.imp
			if imp == "" {
				imp = mod
			}
			g, err := walkImports(root, mod, imp, linkedPackages())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			norm := func(s []string) []string {
				if len(s) == 0 {
					return nil
				}
				return s
			}
			for _, c := range []struct {
				what      string
				got, want []string
			}{
				{"missing", g.missing, tc.missing}, {"restricted", g.restricted, tc.restricted},
				{"unavailable", g.unavailable, tc.unavailable}, {"absent", g.absent, tc.absent},
			} {
				if !reflect.DeepEqual(norm(c.got), norm(c.want)) {
					t.Errorf("%s = %q, want %q", c.what, c.got, c.want)
				}
			}
			if len(g.nested) != len(tc.nested) || (len(tc.nested) > 0 && !reflect.DeepEqual(g.nested, tc.nested)) {
				t.Errorf("nested = %v, want %v", g.nested, tc.nested)
			}
			if g.packages != tc.packages {
				t.Errorf("packages = %d, want %d", g.packages, tc.packages)
			}
		})
	}
}
