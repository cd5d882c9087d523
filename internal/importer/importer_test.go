package importer

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xtraefik/xtraefik/recipe"
)

const traefikYML = `entryPoints:
  web:
    address: ":80"
experimental:
  plugins:
    demo:
      moduleName: github.com/traefik/plugindemo
      version: v0.2.2
    unsafe:
      moduleName: github.com/example/unsafe
      version: v1.0.0
      settings:
        useUnsafe: true
`

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRun: the recipe takes each plugin from the module proxy at its
// version (allowUnsafe when a plugin used useUnsafe) and loads as a recipe;
// the rewritten configuration lands beside it, named after the input.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "traefik.yml")
	writeFile(t, in, traefikYML)
	out := filepath.Join(dir, "out", "recipe.yaml")
	rep, err := Run(context.Background(), Options{Input: in, Base: "docker.io/library/traefik:v3.6", Recipe: out})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || rep.Recipe != out || rep.Config != filepath.Join(dir, "out", "traefik.local.yml") || rep.Kind != "static" {
		t.Errorf("report %+v", rep)
	}
	r, err := recipe.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if !r.AllowUnsafe || r.Base != "docker.io/library/traefik:v3.6" || len(r.Plugins) != 2 ||
		r.Plugins["demo"].Module != "github.com/traefik/plugindemo" || r.Plugins["demo"].Version != "v0.2.2" ||
		r.Plugins["demo"].Source() != recipe.SourceModule {
		t.Errorf("recipe %+v, demo %+v", r, r.Plugins["demo"])
	}
	cfg, err := os.ReadFile(rep.Config)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(cfg), "localPlugins:") || !strings.Contains(string(cfg), "useUnsafe: true") || strings.Contains(string(cfg), "version:") {
		t.Errorf("rewritten configuration:\n%s", cfg)
	}
}

// TestRunRefuses: an existing output is kept (and nothing else written)
// without --overwrite; the input is never an output; a static configuration
// needs --base.
func TestRunRefuses(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "traefik.yml")
	writeFile(t, in, traefikYML)
	out := filepath.Join(dir, "recipe.yaml")
	local := filepath.Join(dir, "traefik.local.yml")
	base := "docker.io/library/traefik:v3.6"

	writeFile(t, local, "mine\n")
	_, err := Run(context.Background(), Options{Input: in, Base: base, Recipe: out})
	if err == nil || err.Error() != local+" exists: pass --overwrite to replace it" {
		t.Errorf("existing configuration: %v", err)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("the recipe was written although the configuration could not be")
	}
	if data, _ := os.ReadFile(local); string(data) != "mine\n" {
		t.Errorf("the existing file was changed: %q", data)
	}
	if _, err := Run(context.Background(), Options{Input: in, Base: base, Recipe: out, Overwrite: true}); err != nil {
		t.Fatalf("--overwrite: %v", err)
	}
	if data, _ := os.ReadFile(local); !strings.Contains(string(data), "localPlugins") {
		t.Errorf("--overwrite did not replace the file: %q", data)
	}

	_, err = Run(context.Background(), Options{Input: in, Base: base, Recipe: out, Config: in, Overwrite: true})
	if err == nil || !strings.Contains(err.Error(), "would replace the input") {
		t.Errorf("output over the input: %v", err)
	}
	if data, _ := os.ReadFile(in); string(data) != traefikYML {
		t.Error("the input was changed")
	}
	_, err = Run(context.Background(), Options{Input: in, Recipe: filepath.Join(dir, "r2.yaml")})
	if err == nil || !strings.Contains(err.Error(), "--base is required") {
		t.Errorf("no base: %v", err)
	}
	_, err = Run(context.Background(), Options{Input: filepath.Join(dir, "missing.yml"), Base: base})
	if err == nil || !strings.Contains(err.Error(), "missing.yml") {
		t.Errorf("missing input: %v", err)
	}
}
