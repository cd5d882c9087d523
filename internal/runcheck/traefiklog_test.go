package runcheck

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/xtraefik/xtraefik/internal/plugin"
)

func TestTraefikLog(t *testing.T) {
	var fwd bytes.Buffer
	l := newTraefikLog(&fwd)
	lines := []string{
		// v3.6 (zerolog), as Traefik writes them with --log.format=json.
		`{"level":"info","plugins":["demo"],"time":"2026-01-01T00:00:00Z","message":"Loading plugins..."}`,
		`{"level":"debug","staticConfiguration":{"experimental":{"localPlugins":{"demo":{"moduleName":"github.com/traefik/plugindemo","settings":{}}}}},"message":"Static configuration loaded [json]"}`,
		`{"level":"info","plugins":["demo"],"message":"Plugins loaded."}`,
		`{"level":"error","entryPointName":"web","routerName":"r1@file","error":"plugin: unknown plugin type: nope","time":"x","caller":"y"}`,
		`{"level":"warn","message":"careful"}`,
		`not json at all`,
		`{"level":"error","message":"Stack: goroutine 85 [running]:\ngithub.com/x.y()\n\tx.go:1"}`,
		`{"level":"error","message":"first line\nsecond line"}`,
	}
	// Written in odd chunks: lines are reassembled.
	all := strings.Join(lines, "\n") + "\n"
	for len(all) > 0 {
		n := min(7, len(all))
		if _, err := l.Write([]byte(all[:n])); err != nil {
			t.Fatal(err)
		}
		all = all[n:]
	}
	st := l.state()
	if !st.pluginsLoaded || st.pluginsDisabled != "" {
		t.Errorf("loaded %v, disabled %q", st.pluginsLoaded, st.pluginsDisabled)
	}
	if want := map[string]string{"demo": "github.com/traefik/plugindemo"}; !reflect.DeepEqual(st.static, want) {
		t.Errorf("static = %v", st.static)
	}
	wantErrs := []string{"plugin: unknown plugin type: nope (entryPointName=web routerName=r1@file)", "not json at all", "first line …"}
	if !reflect.DeepEqual(st.errors, wantErrs) {
		t.Errorf("errors = %q\nwant %q", st.errors, wantErrs)
	}
	if got := fwd.String(); !strings.Contains(got, `traefik| {"level":"warn"`) || !strings.Contains(got, "unknown plugin type") || strings.Contains(got, "Plugins loaded") {
		t.Errorf("forwarded:\n%s", got)
	}
	if l.String() != strings.Join(lines, "\n")+"\n" {
		t.Error("String does not return the whole output")
	}

	// v3 and v2.11 forms of a plugin builder failure, and v2's static dump.
	v3 := newTraefikLog(nil)
	_, _ = v3.Write([]byte(`{"level":"error","plugins":["demo"],"error":"demo: failed to import plugin code \"x\": boom","message":"Plugins are disabled because an error has occurred."}` + "\n"))
	if got := v3.state().pluginsDisabled; got != `demo: failed to import plugin code "x": boom` {
		t.Errorf("v3 disabled = %q", got)
	}
	v2 := newTraefikLog(nil)
	_, _ = v2.Write([]byte(`{"level":"error","msg":"Plugins are disabled because an error has occurred: demo: boom","time":"x"}` + "\n"))
	_, _ = v2.Write([]byte(`{"level":"debug","msg":"Static configuration loaded {\"experimental\":{\"localPlugins\":{\"d\":{\"moduleName\":\"m\"}}}}"}` + "\n"))
	if got := v2.state(); got.pluginsDisabled != "demo: boom" || got.static["d"] != "m" {
		t.Errorf("v2 disabled = %q, static = %v", got.pluginsDisabled, got.static)
	}
}

// A 5xx through an enabled router passes with a warning, unless Traefik's log
// says its recovery answered for a panic of that plugin's request: then FAIL,
// quoting the panic. Another plugin's panic changes nothing.
func TestJudgePanics(t *testing.T) {
	sink := newTraefikLog(nil)
	for _, l := range []string{
		`{"level":"error","middlewareName":"traefik-internal-recovery","middlewareType":"Recovery","message":"Recovered from panic in HTTP handler [127.0.0.1:41234 - /xtraefik-check/panics]: boom from the panics plugin"}`,
		`{"level":"error","message":"Stack: goroutine 85 [running]:\n..."}`,
		`{"level":"error","message":"Recovered from panic in HTTP handler [127.0.0.1:41236 - /xtraefik-check/quiet]: not judged, it answered 200"}`,
	} {
		if _, err := sink.Write([]byte(l + "\n")); err != nil {
			t.Fatal(err)
		}
	}
	c := &checker{sink: sink}
	for _, p := range []PluginResult{
		{Alias: "panics", OK: true, Status: 500, Reason: "enabled by Traefik; answered 500 itself", Warning: "the plugin answered 500 itself: a server error"},
		{Alias: "oidc", OK: true, Status: 503, Reason: "enabled by Traefik; answered 503 itself", Warning: "the plugin answered 503 itself: a server error"},
		{Alias: "quiet", OK: true, Status: 200, Reason: "enabled by Traefik; passed the request on (200)"},
	} {
		c.plugins = append(c.plugins, &pluginCheck{Plugin: plugin.Plugin{Alias: p.Alias}, res: &p, done: true})
	}
	c.judgePanics()
	c.explainRequestFailures()
	panics, oidc, quiet := c.plugins[0].res, c.plugins[1].res, c.plugins[2].res
	if panics.OK || panics.Warning != "" || !strings.Contains(panics.Reason, "the plugin panicked serving the request; Traefik's recovery answered 500") ||
		!strings.Contains(panics.Reason, "boom from the panics plugin") {
		t.Errorf("panics: OK %v, warning %q, reason %q; want a FAIL quoting the panic", panics.OK, panics.Warning, panics.Reason)
	}
	if !oidc.OK || !strings.Contains(oidc.Warning, "503") || strings.Contains(oidc.Reason, "panic") {
		t.Errorf("oidc: OK %v, warning %q, reason %q; want a PASS with its warning", oidc.OK, oidc.Warning, oidc.Reason)
	}
	if !quiet.OK || quiet.Warning != "" {
		t.Errorf("quiet: %+v", quiet)
	}
	rep := &Report{Plugins: []PluginResult{*oidc}}
	if s := rep.Summary(); !strings.Contains(s, "PASS oidc") || !strings.Contains(s, "\n  warning: the plugin answered 503 itself") {
		t.Errorf("summary %q does not show the warning", s)
	}
}
