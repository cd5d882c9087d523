package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xtraefik/xtraefik/internal/testenv"
)

// TestModuleProxyPluginForTraefikV2: a plugin from the module proxy that
// imports log/slog is refused for a Traefik v2.11.0 base, whose Yaegi
// (v0.15.1) lacks it, and accepted for a v3.6 base — the same zip, judged by
// the interpreter each base's Traefik embeds.
func TestModuleProxyPluginForTraefikV2(t *testing.T) {
	w := newWorld(t)
	var slog testenv.Fixture
	for _, f := range testenv.Fixtures() {
		if f.Name == "stdlib-slog" {
			slog = f
		}
	}
	proxy := testenv.GoProxy(t)
	proxy.AddTree(t, slog.Module, "v1.0.0", testenv.FixtureFiles(t, slog), time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC))
	w.env["GOPROXY"], w.env["GOSUMDB"] = proxy.URL, "off"
	v2 := w.registry + "/library/traefik:v2.11.0"
	testenv.PushBase(t, v2, testenv.BaseOptions{OCI: true, Version: "v2.11.0"})
	recipe := func(base string) string {
		return w.writeRecipe(filepath.Base(base)+".yaml", "base: docker://"+base+"\nplugins:\n  accesslog:\n    module: "+slog.Module+"\n    version: v1.0.0\n")
	}
	_, _, err := w.run("build", "-f", recipe(v2))
	if err == nil || !strings.Contains(err.Error(), "not available in Yaegi: log/slog") {
		t.Errorf("log/slog on Traefik v2.11.0: %v", err)
	}
	w.mustRun("build", "-f", recipe(w.registry+"/library/traefik:v3.6"))
}
