package build

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/xtraefik/xtraefik/internal/runcheck"
	"github.com/xtraefik/xtraefik/verify"
)

// TestReportHasOneSetOfUnits: the JSON report names every field in
// lowerCamelCase (the runtime check's plugins too), gives durations in
// milliseconds only (timingsMs, durationMs: numbers, no second unit), and
// digests as "sha256:<hex>" strings.
func TestReportHasOneSetOfUnits(t *testing.T) {
	const d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	rep := Report{Command: "build", OK: true,
		Base:   &BaseReport{Ref: "traefik:v3.6", Digest: d, Platforms: []PlatformReport{{Platform: "linux/amd64", Digest: d}}},
		Image:  &ImageReport{Digest: d, MediaType: "application/vnd.oci.image.index.v1+json", Platforms: []PlatformReport{{Platform: "linux/amd64", Digest: d}}, Layers: map[string]string{"/": d}, LayoutDigest: d, SBOM: d},
		Verify: []verify.Result{{Alias: "demo", Module: "example.com/demo", Status: verify.StatusOK, OK: true, HTTPStatus: 200, Duration: 1500 * time.Microsecond}},
		Runtime: &RuntimeReport{Summary: "1 of 1", OK: true, Plugins: []runcheck.PluginResult{{Alias: "demo", Module: "example.com/demo", Type: "middleware", OK: true, Status: 200,
			Warning: "w", BackendHeaders: http.Header{"X-Demo": {"1"}}}}},
		Timings: Timings{Resolve: 1.5, Total: 2.25},
	}
	data, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				p := path + "." + k
				switch {
				case strings.HasSuffix(path, ".backendHeaders"):
					p = path + ".<header>" // HTTP header names, not fields
				case strings.HasSuffix(path, ".layers"):
					// WORKDIRs, each to its plugin layer's digest.
					if s, ok := x.(string); !ok || !strings.HasPrefix(s, "sha256:") {
						t.Errorf("%s = %v: not a sha256: string", p, x)
					}
					continue
				case k == "" || !unicode.IsLower(rune(k[0])):
					t.Errorf("%s: not lowerCamelCase", p)
				}
				lk := strings.ToLower(k)
				switch {
				case strings.Contains(lk, "duration") || strings.Contains(lk, "timing"):
					if !strings.HasSuffix(k, "Ms") {
						t.Errorf("%s: a duration not in milliseconds", p)
					}
				case strings.Contains(lk, "digest") || k == "sbom":
					if s, ok := x.(string); !ok || !strings.HasPrefix(s, "sha256:") {
						t.Errorf("%s = %v: not a sha256: string", p, x)
					}
				}
				walk(p, x)
			}
		case []any:
			for _, x := range v {
				walk(path+"[]", x)
			}
		}
	}
	walk("", doc)
	if v := doc.(map[string]any)["verify"].([]any)[0].(map[string]any)["durationMs"]; v != 1.5 {
		t.Errorf("durationMs %v, want 1.5", v)
	}
	if p := doc.(map[string]any)["runtime"].(map[string]any)["plugins"].([]any)[0].(map[string]any); p["httpStatus"] != 200.0 || p["alias"] != "demo" {
		t.Errorf("runtime plugin %v", p)
	}
}
