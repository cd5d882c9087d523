package recipe

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/xtraefik/xtraefik/internal/plugin"
)

func TestFromWith(t *testing.T) {
	tests := []struct {
		name  string
		specs []string
		want  map[string]Plugin
		err   string
	}{
		{"module proxy", []string{"github.com/traefik/plugindemo@v0.2.2"},
			map[string]Plugin{"plugindemo": {Module: "github.com/traefik/plugindemo", Version: "v0.2.2"}}, ""},
		{"query and no version", []string{"github.com/a/x@latest", "github.com/b/y"},
			map[string]Plugin{"x": {Module: "github.com/a/x", Version: "latest"}, "y": {Module: "github.com/b/y", Version: "latest"}}, ""},
		{"directory", []string{"example.com/demo=./plugins/demo", "example.com/other@v1.0.0=../other"},
			map[string]Plugin{"demo": {Module: "example.com/demo", Path: "./plugins/demo"}, "other": {Module: "example.com/other", Path: "../other"}}, ""},
		{"git URL with ref", []string{"example.com/demo=https://user:tok@git.example/demo.git@v1.2"},
			map[string]Plugin{"demo": {Module: "example.com/demo", Git: "https://user:tok@git.example/demo.git", Ref: "v1.2"}}, ""},
		{"scp-like git URL", []string{"example.com/demo=git@github.com:org/demo.git@main"},
			map[string]Plugin{"demo": {Module: "example.com/demo", Git: "git@github.com:org/demo.git", Ref: "main"}}, ""},
		{"ref on the left", []string{"example.com/demo@v1=git://127.0.0.1/demo"},
			map[string]Plugin{"demo": {Module: "example.com/demo", Git: "git://127.0.0.1/demo", Ref: "v1"}}, ""},
		{"explicit alias", []string{"mine:example.com/demo@v1", "example.com/x/demo@v2"},
			map[string]Plugin{"mine": {Module: "example.com/demo", Version: "v1"}, "demo": {Module: "example.com/x/demo", Version: "v2"}}, ""},
		{"derived aliases de-duplicated, explicit ones kept", []string{"example.com/a/demo@v1", "example.com/b/demo@v1", "demo:example.com/c/x@v1"},
			map[string]Plugin{"demo": {Module: "example.com/c/x", Version: "v1"}, "demo-2": {Module: "example.com/a/demo", Version: "v1"}, "demo-3": {Module: "example.com/b/demo", Version: "v1"}}, ""},
		{"major version suffix and odd characters", []string{"github.com/Org/My.Plugin/v2@v2.0.0", "example.com/_x_@v1"},
			map[string]Plugin{"my-plugin": {Module: "github.com/Org/My.Plugin/v2", Version: "v2.0.0"}, "x": {Module: "example.com/_x_", Version: "v1"}}, ""},
		{"git URL without ref", []string{"example.com/demo=https://git.example/demo.git"}, nil, "the git URL needs a ref"},
		{"two refs", []string{"example.com/demo@v1=https://git.example/demo.git@v2"}, nil, "two refs (v1 and v2)"},
		{"no module", []string{"@v1"}, nil, "no module"},
		{"empty right side", []string{"example.com/demo="}, nil, "nothing after '='"},
		{"alias twice", []string{"a:example.com/x@v1", "a:example.com/y@v1"}, nil, "alias a is given twice"},
		{"duplicate module", []string{"example.com/x@v1", "example.com/x@v2"}, nil, "module example.com/x is already used by plugin \"x\"; Traefik"},
		{"bad module", []string{"/example.com/x@v1"}, nil, "should not start or end with a /"},
		{"no plugins", nil, nil, "no plugins"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := FromWith("traefik:v3.6", tt.specs)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]Plugin{}
			for a, p := range r.Plugins {
				got[a] = *p
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("plugins\n got %+v\nwant %+v", got, tt.want)
			}
			if r.Base != "traefik:v3.6" || r.Path != "" {
				t.Errorf("base %q path %q", r.Base, r.Path)
			}
		})
	}
}

// TestSaveAs: the saved recipe parses back to the same plugins, its
// directory plugin's path now relative to the saved file, and the lock
// written with it matches it.
func TestSaveAs(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	r, err := FromWith("traefik:v3.6", []string{"example.com/demo=./src/demo", "example.com/m@v1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	l := &Lock{Version: LockVersion, Base: BaseLock{Ref: "traefik:v3.6", Digest: "sha256:00"}, Plugins: []PluginLock{
		{Alias: "demo", Module: "example.com/demo", Source: plugin.Source{Path: "./src/demo"}, ContentHash: "sha256:11"},
		{Alias: "m", Module: "example.com/m", Source: plugin.Source{Query: "v1.0.0", Version: "v1.0.0"}, ContentHash: "sha256:22"},
	}}
	file := filepath.Join(dir, "saved", "recipe.yaml")
	rd, ld, err := SaveAs(r, l, file)
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Dir(file), 0o755)
	os.WriteFile(file, rd, 0o644)
	os.WriteFile(LockPath(file), ld, 0o644)
	back, err := Load(file)
	if err != nil {
		t.Fatalf("%v\n%s", err, rd)
	}
	if got := back.Plugins["demo"].Path; got != "../src/demo" {
		t.Errorf("saved path %q, want ../src/demo\n%s", got, rd)
	}
	if back.Dir(back.Plugins["demo"]) != filepath.Join(dir, "saved", "../src/demo") || back.Plugins["m"].Version != "v1.0.0" {
		t.Errorf("saved recipe:\n%s", rd)
	}
	bl, err := ReadLock(LockPath(file))
	if err != nil {
		t.Fatal(err)
	}
	if stale := bl.Stale(back); len(stale) != 0 {
		t.Errorf("the saved lock does not match the saved recipe: %v\n%s", stale, ld)
	}
	if r.Plugins["demo"].Path != "./src/demo" || l.Plugins[0].Path != "./src/demo" {
		t.Error("SaveAs changed its inputs")
	}
}
