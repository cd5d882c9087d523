package main

import (
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xtraefik/xtraefik/internal/testenv"
	"github.com/xtraefik/xtraefik/recipe"
)

// copyDemo writes plugindemo's files as module into dir (a plugin
// author's working copy).
func copyDemo(t *testing.T, dir, module string) {
	t.Helper()
	src := testenv.ModuleDir(t, demoModule, demoVersion)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{".traefik.yml", "demo.go", "go.mod"} {
		text := strings.ReplaceAll(string(mustRead(t, filepath.Join(src, f))), demoModule, module)
		text = strings.ReplaceAll(text, "package plugindemo", "package "+path.Base(module))
		if err := os.WriteFile(filepath.Join(dir, f), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestQuickBuildWith builds without a recipe file: one plugin from a Go
// module proxy on loopback, one from a directory, one from the world's git
// daemon; saves the recipe, and `build -f saved --frozen` gives the same
// digest. The flag mistakes and a failed build write nothing.
func TestQuickBuildWith(t *testing.T) {
	w := newWorld(t)
	proxy := testenv.GoProxy(t, demoModule+"@"+demoVersion)
	db := testenv.SumDB(t, proxy)
	w.env["GOPROXY"], w.env["GOSUMDB"] = proxy.URL, db.GOSUMDB
	base := "docker://" + w.registry + "/library/traefik:v3.6"
	dir := filepath.Join(w.dir, "work", "dirdemo")
	copyDemo(t, dir, "example.com/dirdemo")
	w.customPlugin(t, "example.com/gitdemo", func(*testenv.Repo) {})

	saved := filepath.Join(w.dir, "saved.yaml")
	withs := []string{"--with", demoModule + "@" + demoVersion, "--with", "example.com/dirdemo=" + dir,
		"--with", "g:example.com/gitdemo=" + w.gitURL + "example.com/gitdemo@v1"}
	out := w.mustRun(append([]string{"build", "--base", base, "--oci-layout", filepath.Join(w.dir, "quick"), "--save-recipe", saved}, withs...)...)
	digest := digestLine(t, out)
	for _, flag := range []string{"localPlugins.plugindemo.moduleName=" + demoModule, "localPlugins.dirdemo.moduleName=example.com/dirdemo", "localPlugins.g.moduleName=example.com/gitdemo"} {
		if !strings.Contains(out, flag) {
			t.Errorf("build output lacks %s:\n%s", flag, out)
		}
	}
	r, err := recipe.Load(saved)
	if err != nil {
		t.Fatal(err)
	}
	if p := r.Plugins["dirdemo"]; p == nil || p.Path != "./work/dirdemo" || r.Plugins["plugindemo"].Version != demoVersion || r.Plugins["g"].Ref != "v1" {
		t.Errorf("saved recipe:\n%s", mustRead(t, saved))
	}
	lock, err := recipe.ReadLock(recipe.LockPath(saved))
	if err != nil || lock == nil || len(lock.Plugins) != 3 {
		t.Fatalf("saved lock %+v: %v", lock, err)
	}
	again := w.mustRun("build", "-f", saved, "--frozen", "--oci-layout", filepath.Join(w.dir, "again"))
	if d := digestLine(t, again); d != digest {
		t.Errorf("build -f saved.yaml --frozen gave %s, the --with build %s", d, digest)
	}

	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"recipe and --with", []string{"build", "-f", saved, "--base", base, "--with", demoModule}, "-f and --base/--with are two ways"},
		{"--with without --base", []string{"build", "--with", demoModule}, "--with needs --base"},
		{"--base without --with", []string{"build", "--base", base}, "--base needs at least one --with"},
		{"bad spec", []string{"build", "--base", base, "--with", "example.com/x=https://git.example/x.git"}, "--with: plugin \"example.com/x=https://git.example/x.git\": the git URL needs a ref"},
		{"existing saved recipe", append([]string{"build", "--base", base, "--save-recipe", saved}, withs...), "--overwrite"},
		{"frozen", append([]string{"build", "--base", base, "--frozen"}, withs...), "--frozen checks a recipe file"},
	} {
		if _, _, err := w.run(tt.args...); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want %q", tt.name, err, tt.want)
		}
	}
	// A failed build saves nothing.
	failed := filepath.Join(w.dir, "failed.yaml")
	if _, _, err := w.run("build", "--base", base, "--save-recipe", failed, "--with", "example.com/gitdemo="+w.gitURL+"example.com/gitdemo@no-such-ref"); err == nil {
		t.Error("a build from a missing ref succeeded")
	}
	for _, f := range []string{failed, recipe.LockPath(failed)} {
		if _, err := os.Stat(f); err == nil {
			t.Errorf("a failed build wrote %s", f)
		}
	}
}
