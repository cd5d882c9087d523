package build

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/xtraefik/xtraefik/images"
	"github.com/xtraefik/xtraefik/internal/runcheck"
	"github.com/xtraefik/xtraefik/internal/sandbox"
	"github.com/xtraefik/xtraefik/recipe"
)

// TestOpenMergesRecipeEnvironmentAndConfig: a Go caller gets the recipe's
// mirrors and platforms, then the environment's, then its own, exactly as
// the CLI does.
func TestOpenMergesRecipeEnvironmentAndConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "recipe.yaml")
	if err := os.WriteFile(file, []byte(`base: traefik:v3.6
platforms: [linux/amd64, linux/arm64]
plugins:
  demo: {module: example.com/demo, ref: v1}
mirrors:
  git: [{insteadOf: "https://example.com/", url: "https://recipe.mirror/"}]
  registries: [{prefix: docker.io, location: "recipe.registry"}]
  insecure: [recipe.insecure]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		EnvGitMirrors:         "https://example.com/=https://env.mirror/",
		EnvRegistryMirrors:    "docker.io=env.registry",
		EnvInsecureRegistries: "env.insecure",
		"SOURCE_DATE_EPOCH":   "1700000000",
		"XTRAEFIK_CACHE":      filepath.Join(dir, "cache"),
	}
	s, err := Open(Config{RecipeFile: file, Env: func(k string) string { return env[k] },
		GitMirrors: []string{"https://example.com/=https://flag.mirror/"}, InsecureRegistries: []string{"flag.insecure"}})
	if err != nil {
		t.Fatal(err)
	}
	o := s.copyOptions()
	var git []string
	for _, m := range o.GitMirrors {
		git = append(git, m.URL)
	}
	if want := []string{"https://recipe.mirror/", "https://env.mirror/", "https://flag.mirror/"}; !reflect.DeepEqual(git, want) {
		t.Errorf("git mirrors %q, want %q", git, want)
	}
	if want := []images.Mirror{{Prefix: "docker.io", Location: "recipe.registry"}, {Prefix: "docker.io", Location: "env.registry"}}; !reflect.DeepEqual(o.Images.Mirrors, want) {
		t.Errorf("registry mirrors %+v", o.Images.Mirrors)
	}
	if want := []string{"recipe.insecure", "env.insecure", "flag.insecure"}; !reflect.DeepEqual(o.Images.Insecure, want) {
		t.Errorf("insecure %q, want %q", o.Images.Insecure, want)
	}
	if len(o.Images.Platforms) != 2 || o.Images.Platforms[1].Architecture != "arm64" {
		t.Errorf("platforms %+v, want the recipe's", o.Images.Platforms)
	}
	if o.Epoch == nil || o.Epoch.Unix() != 1700000000 || o.CacheDir != env["XTRAEFIK_CACHE"] || o.Images.RequestTimeout != images.DefaultRequestTimeout {
		t.Errorf("epoch %v, cache %q, timeout %s", o.Epoch, o.CacheDir, o.Images.RequestTimeout)
	}
	if s.Locked != nil || s.LockFile != recipe.LockPath(file) {
		t.Errorf("lock %v at %q", s.Locked, s.LockFile)
	}

	// Config platforms replace the recipe's; a bad one is named.
	// An empty environment names no cache directory, and the process's is
	// not asked: Config.CacheDir must.
	if _, err := Open(Config{RecipeFile: file, Env: func(string) string { return "" }}); err == nil || !strings.Contains(err.Error(), "no cache directory") {
		t.Errorf("an empty Env gave a cache directory: %v", err)
	}
	s, err = Open(Config{RecipeFile: file, CacheDir: filepath.Join(dir, "cache"), Env: func(string) string { return "" }, Platforms: []string{"linux/s390x"}})
	if err != nil || len(s.copyOptions().Images.Platforms) != 1 {
		t.Fatalf("platform override: %v", err)
	}
	if _, err := Open(Config{RecipeFile: file, Platforms: []string{"linux"}}); err == nil || !strings.Contains(err.Error(), `platform "linux"`) {
		t.Errorf("a platform without architecture: %v", err)
	}
	if _, err := Open(Config{RecipeFile: file, Env: func(k string) string { return map[string]string{EnvGitMirrors: "nonsense"}[k] }}); err == nil {
		t.Error("a malformed mirror in the environment was accepted")
	}
}

func TestRuntimeIsolationUnderRequire(t *testing.T) {
	for _, tt := range []struct {
		in   string
		mode sandbox.Mode
		want string
		err  bool
	}{
		{runcheck.IsolationAuto, sandbox.ModeAuto, runcheck.IsolationAuto, false},
		{runcheck.IsolationChroot, sandbox.ModeAuto, runcheck.IsolationChroot, false},
		{runcheck.IsolationAuto, sandbox.ModeRequire, runcheck.IsolationRunc, false},
		{"", sandbox.ModeRequire, runcheck.IsolationRunc, false},
		{runcheck.IsolationRunc, sandbox.ModeRequire, runcheck.IsolationRunc, false},
		{runcheck.IsolationChroot, sandbox.ModeRequire, "", true},
		{runcheck.IsolationNone, sandbox.ModeRequire, "", true},
	} {
		got, err := runtimeIsolation(tt.in, tt.mode)
		if got != tt.want || (err != nil) != tt.err {
			t.Errorf("runtimeIsolation(%q, %q) = %q, %v", tt.in, tt.mode, got, err)
		}
	}
}
