package runcheck

import (
	"context"
	"os"
	"runtime"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/xtraefik/xtraefik/internal/manifest"
	"github.com/xtraefik/xtraefik/internal/plugin"
)

func imageFor(t *testing.T, goos, arch string) v1.Image {
	t.Helper()
	cf, err := empty.Image.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = goos, arch
	cf.Config.Entrypoint = []string{"traefik"}
	img, err := mutate.ConfigFile(empty.Image, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestRunSkipsAnotherPlatform(t *testing.T) {
	other := "arm64"
	if runtime.GOARCH == "arm64" {
		other = "amd64"
	}
	tmp := t.TempDir()
	rep, err := Run(context.Background(), imageFor(t, "linux", other), Options{Plugins: []plugin.Plugin{{Alias: "demo", Module: "github.com/traefik/plugindemo"}}, TempDir: tmp})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Platform != "linux/"+other || !strings.Contains(rep.Skipped, "not run for another platform") {
		t.Errorf("platform %q, skipped %q", rep.Platform, rep.Skipped)
	}
	if rep.OK() || !strings.HasPrefix(rep.Summary(), "SKIP") {
		t.Errorf("a skipped check must not pass: OK %v, summary %q", rep.OK(), rep.Summary())
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Errorf("a skipped check unpacked something: %v", ents)
	}
}

func TestRunRejectsOptions(t *testing.T) {
	img := imageFor(t, "linux", runtime.GOARCH)
	demo := []plugin.Plugin{{Alias: "demo", Module: "github.com/traefik/plugindemo"}}
	for name, opts := range map[string]Options{
		"no plugins":    {},
		"bad mode":      {Plugins: demo, Mode: "yaml"},
		"bad isolation": {Plugins: demo, Isolation: "docker"},
	} {
		if _, err := Run(context.Background(), img, opts); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestReport(t *testing.T) {
	r := &Report{Plugins: []PluginResult{{Alias: "a", Module: "m/a", OK: true, Reason: "fine"}, {Alias: "b", Module: "m/b", Reason: `Traefik: "boom"`}}}
	if r.OK() {
		t.Error("OK with a failed plugin")
	}
	if got, want := r.Summary(), "PASS a (m/a): fine\nFAIL b (m/b): Traefik: \"boom\"\n"; got != want {
		t.Errorf("Summary = %q, want %q", got, want)
	}
	r.Plugins = r.Plugins[:1]
	if !r.OK() {
		t.Error("not OK with every plugin passing")
	}
	if (&Report{}).OK() {
		t.Error("OK with no plugins")
	}
}

func TestRunIndexSkipsMissingPlatform(t *testing.T) {
	other := "arm64"
	if runtime.GOARCH == "arm64" {
		other = "amd64"
	}
	idx := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{
		Add:        imageFor(t, "linux", other),
		Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: other}},
	})
	rep, err := RunIndex(context.Background(), idx, Options{Plugins: []plugin.Plugin{{Alias: "demo", Module: "m/demo"}}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rep.Skipped, "(it has linux/"+other+")") || rep.OK() {
		t.Errorf("skipped %q", rep.Skipped)
	}
}

// When the time runs out during the requests, every plugin still waiting for
// its request gets a verdict with a reason, not an empty FAIL.
func TestRequestsOutOfTimeFailsEveryPlugin(t *testing.T) {
	rep := &Report{}
	c := &checker{rep: rep, logf: func(string, ...any) {}, client: newClient(network{}), web: "http://127.0.0.1:1"}
	if err := c.preparePlugins(t.TempDir(), "/", []plugin.Plugin{
		{Alias: "a", Module: "m/a", Manifest: &manifest.Manifest{Type: "middleware"}, Config: map[string]any{}},
		{Alias: "b", Module: "m/b", Manifest: &manifest.Manifest{Type: "middleware"}, Config: map[string]any{}},
	}); err != nil {
		t.Fatal(err)
	}
	defer c.closeBackends()
	if err := c.writeDynamic(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.requests(ctx); err == nil {
		t.Fatal("requests with a cancelled context: no error")
	}
	for _, pc := range c.plugins {
		if !pc.done || pc.res.OK || pc.res.Reason == "" {
			t.Errorf("%s: done %v, OK %v, reason %q; want a FAIL with a reason", pc.Alias, pc.done, pc.res.OK, pc.res.Reason)
		}
	}
}

// TestPortsAreDistinct: every address handed out in one run differs, even
// when the kernel offers a port again as soon as it is released.
func TestPortsAreDistinct(t *testing.T) {
	var p ports
	seen := map[string]bool{}
	for range 200 {
		addr, err := p.free()
		if err != nil {
			t.Fatal(err)
		}
		if seen[addr] {
			t.Fatalf("%s handed out twice", addr)
		}
		seen[addr] = true
	}
}
