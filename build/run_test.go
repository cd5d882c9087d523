package build

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/xtraefik/xtraefik/recipe"
)

// TestWatchRootsAndFingerprint: run --watch looks at the recipe, its lock,
// the directory plugins and the dynamic configuration; an edit, a new file
// or a removal changes the fingerprint, a .git change does not.
func TestWatchRootsAndFingerprint(t *testing.T) {
	dir := t.TempDir()
	r, err := recipe.FromWith("traefik:v3.6", []string{"example.com/a=" + filepath.Join(dir, "a"), "example.com/m@v1"})
	if err != nil {
		t.Fatal(err)
	}
	roots := watchRoots(Config{Recipe: r}, nil, filepath.Join(dir, "dynamic.yml"))
	if want := []string{filepath.Join(dir, "a"), filepath.Join(dir, "dynamic.yml")}; !reflect.DeepEqual(roots, want) {
		t.Errorf("roots %v, want %v", roots, want)
	}
	if got := watchRoots(Config{RecipeFile: "r.yaml"}, r, ""); !reflect.DeepEqual(got[:2], []string{"r.yaml", "r.lock"}) {
		t.Errorf("roots of a recipe file %v", got)
	}
	os.MkdirAll(filepath.Join(dir, "a", ".git"), 0o755)
	os.WriteFile(filepath.Join(dir, "a", "a.go"), []byte("package a"), 0o644)
	fp := fingerprint(roots)
	step := func(what string, change func(), wantChange bool) {
		t.Helper()
		change()
		now := fingerprint(roots)
		if (now != fp) != wantChange {
			t.Errorf("%s: changed %v, want %v", what, now != fp, wantChange)
		}
		fp = now
	}
	step("nothing", func() {}, false)
	step(".git", func() { os.WriteFile(filepath.Join(dir, "a", ".git", "index"), []byte("x"), 0o644) }, false)
	step("edit", func() {
		os.WriteFile(filepath.Join(dir, "a", "a.go"), []byte("package b"), 0o644)
		os.Chtimes(filepath.Join(dir, "a", "a.go"), time.Now(), time.Now().Add(time.Second))
	}, true)
	step("new file", func() { os.WriteFile(filepath.Join(dir, "a", "b.go"), nil, 0o644) }, true)
	step("dynamic appears", func() { os.WriteFile(filepath.Join(dir, "dynamic.yml"), nil, 0o644) }, true)
	step("removal", func() { os.Remove(filepath.Join(dir, "a", "b.go")) }, true)
}
