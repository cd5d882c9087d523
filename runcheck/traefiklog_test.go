package runcheck

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
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
