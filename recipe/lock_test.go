package recipe

import (
	"reflect"
	"strings"
	"testing"

	"github.com/xtraefik/xtraefik/internal/plugin"
)

func TestDiffNamesRefChanges(t *testing.T) {
	pl := PluginLock{Alias: "demo", Module: "example.com/demo", Source: plugin.Source{Git: "https://example.com/demo.git", Ref: "v1.0.0", Commit: "c1"}, ContentHash: "h1"}
	old := &Lock{Version: LockVersion, Base: BaseLock{Ref: "traefik:v3.6", Digest: "sha256:aa"}, Plugins: []PluginLock{pl}}
	for _, tc := range []struct {
		name   string
		change func(l *Lock)
		want   []string
	}{
		{"nothing", func(*Lock) {}, nil},
		{"ref, same commit", func(l *Lock) { l.Plugins[0].Ref = "main" }, []string{"plugin demo: ref v1.0.0 -> main"}},
		{"git", func(l *Lock) { l.Plugins[0].Git = "https://mirror/demo.git" }, []string{"plugin demo: git https://example.com/demo.git -> https://mirror/demo.git"}},
		{"base ref, same digest", func(l *Lock) { l.Base.Ref = "traefik:v3.6.12" }, []string{"base: ref traefik:v3.6 -> traefik:v3.6.12"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cur := &Lock{Version: old.Version, Base: old.Base, Plugins: []PluginLock{pl}}
			tc.change(cur)
			if got := Diff(old, cur); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Diff = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLockKeepsNoCredentials(t *testing.T) {
	r, err := Parse("recipe.yaml", []byte("base: traefik:v3.6\nplugins:\n  demo:\n    module: example.com/demo\n    git: https://ci:s3cret@git.example.com/demo.git\n    ref: v1\n"))
	if err != nil {
		t.Fatal(err)
	}
	p := r.Plugins["demo"]
	if got := p.LockedGit(); got != "https://git.example.com/demo.git" {
		t.Errorf("LockedGit = %q", got)
	}
	l := &Lock{Version: LockVersion, Base: BaseLock{Ref: r.Base}, Plugins: []PluginLock{{Alias: "demo", Module: p.Module, Source: plugin.Source{Git: p.LockedGit(), Ref: p.Ref}}}}
	if stale := l.Stale(r); len(stale) != 0 {
		t.Errorf("a lock written from the recipe is stale: %q", stale)
	}
	data, err := l.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "s3cret") {
		t.Errorf("lock holds the password:\n%s", data)
	}
}
