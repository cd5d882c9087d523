package build

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xtraefik/xtraefik/internal/source/modproxy"
	"github.com/xtraefik/xtraefik/internal/testenv"
	"github.com/xtraefik/xtraefik/recipe"
)

// A git or directory plugin whose go.mod declares another module than the
// recipe's is refused, naming both, as the go command and the module proxy
// source refuse it; the same plugin with a matching go.mod, or with no
// go.mod at all (GOPATH style), resolves.
func TestGitAndDirectoryModulePath(t *testing.T) {
	const module = "example.com/demo"
	manifest := ".traefik.yml"
	files := func(gomod string) map[string]string {
		m := map[string]string{
			manifest:  "displayName: Demo\ntype: middleware\nimport: " + module + "\nsummary: a demo\ntestData: {}\n",
			"demo.go": "package demo\n",
		}
		if gomod != "" {
			m["go.mod"] = gomod
		}
		return m
	}
	cases := []struct {
		name, gomod, err string
	}{
		{"other module", "module example.com/other\n\ngo 1.22\n",
			"parsing go.mod: module declares its path as: example.com/other but was required as: " + module + " (the recipe's module)"},
		{"no module line", "go 1.22\n", "parsing go.mod: it has no module line, but was required as: " + module},
		{"same module", "module " + module + "\n\ngo 1.22\n", ""},
		{"no go.mod", "", ""},
	}
	gitRoot := t.TempDir()
	gitURL := testenv.GitDaemon(t, gitRoot)
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// The same tree as a directory and as a git repository.
			dir := t.TempDir()
			repoName := "r" + string(rune('0'+i))
			repo := testenv.NewRepo(t, filepath.Join(gitRoot, repoName))
			for name, body := range files(tc.gomod) {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
				repo.WriteFile(name, body)
			}
			repo.Commit("plugin")
			repo.Tag("v1")
			recipes := map[string]string{
				"directory": "base: traefik:v3.6\nplugins:\n  demo:\n    module: " + module + "\n    path: " + dir + "\n",
				"git":       "base: traefik:v3.6\nplugins:\n  demo:\n    module: " + module + "\n    git: " + gitURL + repoName + "\n    ref: v1\n",
			}
			for kind, text := range recipes {
				r, err := recipe.Parse(filepath.Join(t.TempDir(), "recipe.yaml"), []byte(text))
				if err != nil {
					t.Fatal(err)
				}
				res, err := resolve(t.Context(), nil, &options{Recipe: r, CacheDir: t.TempDir(), Env: hermeticEnv, Bases: &fakeBases{now: layoutBase(t)}})
				if tc.err == "" {
					if err != nil {
						t.Errorf("%s: %v", kind, err)
					} else if len(res.Plugins) != 1 || res.Plugins[0].Module != module {
						t.Errorf("%s: plugins %+v", kind, res.Plugins)
					}
					continue
				}
				if !errors.Is(err, modproxy.ErrModulePath) || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "plugin demo ("+module+")") {
					t.Errorf("%s: error %v, want ErrModulePath saying %q", kind, err, tc.err)
				}
			}
		})
	}
}
