package recipe

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/xtraefik/xtraefik/internal/plugin"
)

const good = `base: docker.io/library/traefik:v3.6
plugins:
  demo:
    module: github.com/traefik/plugindemo
    ref: v0.2.2
  block:
    module: github.com/traefik/plugin-blockpath
    git: git://127.0.0.1/blockpath
    ref: main
    config:
      regex: ["^/forbidden"]
`

func TestParseGood(t *testing.T) {
	r, err := Parse("recipe.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.Aliases(), []string{"block", "demo"}; !reflect.DeepEqual(got, want) {
		t.Errorf("aliases = %v, want %v", got, want)
	}
	if got := r.Plugins["demo"].GitURL(); got != "https://github.com/traefik/plugindemo.git" {
		t.Errorf("default git URL = %s", got)
	}
	if got := r.Plugins["block"].GitURL(); got != "git://127.0.0.1/blockpath" {
		t.Errorf("git URL = %s", got)
	}
	if r.Mode() != ModeFlags {
		t.Errorf("default mode = %s", r.Mode())
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", "recipe.yaml: empty recipe"},
		{"syntax", "base: [\n", "recipe.yaml:1: did not find expected node content"},
		{"unknown top field", "base: x\nplugin:\n  a: {module: m, ref: r}\n", `recipe.yaml:2: unknown field "plugin" (did you mean "plugins"?)`},
		{"misspelt plugin field", "base: x\nplugins:\n  a:\n    module: example.com/m\n    reff: v1\n", `recipe.yaml:5: unknown field "reff" (did you mean "ref"?)`},
		{"missing base", "plugins:\n  a: {module: example.com/m, ref: v1}\n", "recipe.yaml:1: base is required"},
		{"no plugins", "base: x\n", "no plugins"},
		{"missing module", "base: x\nplugins:\n  a:\n    ref: v1\n", `recipe.yaml:3: plugin "a": module is required`},
		{"missing ref", "base: x\nplugins:\n  a:\n    module: example.com/m\n", `recipe.yaml:3: plugin "a": ref is required`},
		{"leading slash", "base: x\nplugins:\n  a:\n    module: /example.com/m\n    ref: v1\n", `recipe.yaml:4: plugin "a": plugin name "/example.com/m" should not start or end with a /`},
		{"trailing slash", "base: x\nplugins:\n  a:\n    module: example.com/m/\n    ref: v1\n", `should not start or end with a /`},
		{"dotdot module", "base: x\nplugins:\n  a:\n    module: example.com/../m\n    ref: v1\n", `recipe.yaml:4: plugin "a"`},
		{"duplicate module", "base: x\nplugins:\n  a:\n    module: example.com/m\n    ref: v1\n  b:\n    module: example.com/m\n    ref: v2\n", `recipe.yaml:7: plugin "b": module example.com/m is already used by plugin "a" (recipe.yaml:4)`},
		{"bad alias", "base: x\nplugins:\n  a.b:\n    module: example.com/m\n    ref: v1\n", `recipe.yaml:3: plugin alias "a.b"`},
		{"bad mode", "base: x\nplugins:\n  a: {module: example.com/m, ref: v1}\nstaticConfig:\n  mode: files\n", `recipe.yaml:5: staticConfig.mode "files"`},
		{"config without file mode", "base: x\nplugins:\n  a: {module: example.com/m, ref: v1}\nstaticConfig:\n  config: {log: {level: DEBUG}}\n", `recipe.yaml:5: staticConfig.config is only baked in mode "file"`},
		{"bad platform", "base: x\nplatforms: [amd64]\nplugins:\n  a: {module: example.com/m, ref: v1}\n", `recipe.yaml:2: platform "amd64"`},
		{"bad status", "base: x\nplugins:\n  a: {module: example.com/m, ref: v1, expectStatus: 42}\n", `expectStatus 42 is not an HTTP status`},
		{"git mirror incomplete", "base: x\nplugins:\n  a: {module: example.com/m, ref: v1}\nmirrors:\n  git:\n    - url: git://127.0.0.1/\n", `recipe.yaml:5: git mirror 1: url and insteadOf are required`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("recipe.yaml", []byte(tt.in))
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %q\nwant it to contain %q", err, tt.want)
			}
			if strings.Count(err.Error(), "\n") > 0 && tt.name != "syntax" {
				t.Errorf("want a single-line error, got %q", err)
			}
		})
	}
}

func TestRewriteGit(t *testing.T) {
	ms := []GitMirror{
		{InsteadOf: "https://github.com/", URL: "git://127.0.0.1:9418/gh/"},
		{InsteadOf: "https://github.com/traefik/", URL: "file:///srv/traefik/"},
	}
	tests := map[string]string{
		"https://github.com/traefik/plugindemo.git": "file:///srv/traefik/plugindemo.git",
		"https://github.com/other/x.git":            "git://127.0.0.1:9418/gh/other/x.git",
		"https://gitlab.com/a/b.git":                "https://gitlab.com/a/b.git",
	}
	for in, want := range tests {
		if got := RewriteGit(ms, in); got != want {
			t.Errorf("RewriteGit(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestLockRoundTripAndStale(t *testing.T) {
	dir := t.TempDir()
	rp := filepath.Join(dir, "recipe.yaml")
	if err := os.WriteFile(rp, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Load(rp)
	if err != nil {
		t.Fatal(err)
	}
	lp := LockPath(rp)
	if lp != filepath.Join(dir, "recipe.lock") {
		t.Fatalf("LockPath = %s", lp)
	}
	if l, err := ReadLock(lp); err != nil || l != nil {
		t.Fatalf("ReadLock(missing) = %v, %v", l, err)
	}
	l := &Lock{Version: LockVersion,
		Base: BaseLock{Ref: r.Base, Digest: "sha256:aa", Platforms: []PlatformLock{{"linux/amd64", "sha256:bb"}}},
		Plugins: []PluginLock{
			{Alias: "block", Module: "github.com/traefik/plugin-blockpath", Source: plugin.Source{Git: "git://127.0.0.1/blockpath", Ref: "main", Commit: "c1", Time: time.Unix(1700000000, 0).UTC()}, ContentHash: "sha256:01"},
			{Alias: "demo", Module: "github.com/traefik/plugindemo", Source: plugin.Source{Git: "https://github.com/traefik/plugindemo.git", Ref: "v0.2.2", Commit: "c2", Time: time.Unix(1700000000, 0).UTC()}, ContentHash: "sha256:02"},
		}}
	if err := WriteLock(lp, l); err != nil {
		t.Fatal(err)
	}
	back, err := ReadLock(lp)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, l) {
		t.Fatalf("round trip:\n%+v\n%+v", back, l)
	}
	if s := back.Stale(r); len(s) != 0 {
		t.Errorf("fresh lock reported stale: %v", s)
	}
	r.Plugins["demo"].Ref = "v0.2.3"
	if s := back.Stale(r); len(s) != 1 || !strings.Contains(s[0], "ref v0.2.3, lock has v0.2.2") {
		t.Errorf("Stale = %v", s)
	}

	moved := *back
	moved.Plugins = append([]PluginLock(nil), back.Plugins...)
	moved.Plugins[1].Commit = "c3"
	moved.Base.Digest = "sha256:cc"
	d := Diff(back, &moved)
	want := []string{
		"base docker.io/library/traefik:v3.6: sha256:aa -> sha256:cc",
		"plugin demo (github.com/traefik/plugindemo v0.2.2): commit c2 -> c3",
	}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("Diff = %q\nwant %q", d, want)
	}
}

// TestDiffIsOrdered: gone platforms are listed in a stable, sorted order (the
// diff is printed by lock --update and quoted in errors).
func TestDiffIsOrdered(t *testing.T) {
	old := &Lock{Version: LockVersion, Base: BaseLock{Ref: "b", Digest: "sha256:aa"}}
	for _, p := range []string{"linux/s390x", "linux/amd64", "linux/ppc64le", "linux/arm/v7", "linux/arm64", "linux/riscv64"} {
		old.Base.Platforms = append(old.Base.Platforms, PlatformLock{Platform: p, Digest: "sha256:" + p})
	}
	cur := &Lock{Version: LockVersion, Base: BaseLock{Ref: "b", Digest: "sha256:aa"}}
	want := []string{
		"base b linux/amd64: platform gone",
		"base b linux/arm/v7: platform gone",
		"base b linux/arm64: platform gone",
		"base b linux/ppc64le: platform gone",
		"base b linux/riscv64: platform gone",
		"base b linux/s390x: platform gone",
	}
	for range 20 {
		if d := Diff(old, cur); !reflect.DeepEqual(d, want) {
			t.Fatalf("Diff = %q\nwant %q", d, want)
		}
	}
}

func TestReadLockErrors(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "r.lock")
	os.WriteFile(p, []byte("version: 1\nbase: {ref: x, digest: y}\nplugins: []\nextra: 1\n"), 0o644)
	if _, err := ReadLock(p); err == nil || !strings.Contains(err.Error(), `r.lock:4: unknown field "extra"`) {
		t.Errorf("err = %v", err)
	}
	os.WriteFile(p, nil, 0o644)
	if _, err := ReadLock(p); err == nil || !strings.Contains(err.Error(), "r.lock: empty lock file") {
		t.Errorf("empty lock: err = %v", err)
	}
	os.WriteFile(p, []byte("version: 9\nbase: {ref: x, digest: y}\n"), 0o644)
	if _, err := ReadLock(p); err == nil || !strings.Contains(err.Error(), "lock version 9 is not supported") {
		t.Errorf("err = %v", err)
	}
}

func TestParseEnvModeAlias(t *testing.T) {
	in := "base: x\nplugins:\n  my_demo: {module: example.com/m, ref: v1}\nstaticConfig:\n  mode: env\n"
	_, err := Parse("recipe.yaml", []byte(in))
	if err == nil || !strings.Contains(err.Error(), `recipe.yaml:4: plugin alias "my_demo" cannot be set in "env" mode`) {
		t.Fatalf("err = %v", err)
	}
}
