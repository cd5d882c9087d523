package verify

import (
	"strings"
	"testing"

	"github.com/xtraefik/xtraefik/internal/plugin"
	"github.com/xtraefik/xtraefik/internal/testenv"
)

// TestExpectStatus holds the criterion (probe.Judge) in static verification:
// a plugin answering itself passes by default, expectStatus must match
// whichever way the plugin answered, and the report says which way it was.
func TestExpectStatus(t *testing.T) {
	var demo, geoblock testenv.CorpusPlugin
	for _, c := range testenv.Corpus() {
		switch {
		case c.Module == "github.com/traefik/plugindemo" && c.Version == "v0.2.2" && c.Config == nil:
			demo = c
		case c.Module == "github.com/PascalMinder/geoblock" && c.Version == "v0.3.8" && c.Config == nil:
			geoblock = c
		}
	}
	tests := []struct {
		name   string
		plugin testenv.CorpusPlugin
		expect int
		ok     bool
		want   string // in the reason of a FAIL, in a note of an OK
		status int
	}{
		{"passes on", demo, 0, true, "passed the request on (200)", 200},
		{"passes on as expected", demo, 200, true, "passed the request on (200), as expected", 200},
		{"passes on, block expected", demo, 403, false, "expected status 403, but the plugin passed the request on (200)", 200},
		{"answers itself", geoblock, 0, true, "answered 403 itself", 403},
		{"answers itself as expected", geoblock, 403, true, "answered 403 itself, as expected", 403},
		{"answers itself, 200 expected", geoblock, 200, false, "expected status 200, but the plugin answered 403 itself", 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := verifyOneFor(t, plugin.Plugin{Alias: tt.plugin.Alias, Module: tt.plugin.Module, Files: testenv.CorpusFiles(t, tt.plugin), ExpectStatus: tt.expect},
				Options{TraefikVersion: "v3.6.12"})
			if r.OK != tt.ok || r.HTTPStatus != tt.status {
				t.Fatalf("OK %v status %d, want %v %d; reason %q notes %q", r.OK, r.HTTPStatus, tt.ok, tt.status, r.Reason, r.Notes)
			}
			text := r.Reason
			if r.OK {
				text = ""
				for _, n := range r.Notes {
					text += n + "\n"
				}
			}
			if !strings.Contains(text, tt.want) {
				t.Errorf("report %q lacks %q", text, tt.want)
			}
		})
	}
}
