package probe

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

func TestJudge(t *testing.T) {
	tests := []struct {
		name    string
		a       Answer
		e       Expect
		ok      bool
		reason  string
		warning string
	}{
		{"passed on", Answer{Status: 200, Reached: true}, Expect{}, true, "passed the request on (200)", ""},
		{"answered itself", Answer{Status: 403}, Expect{}, true, "answered 403 itself", ""},
		{"redirect itself", Answer{Status: 302}, Expect{}, true, "answered 302 itself", ""},
		{"not found itself", Answer{Status: 404}, Expect{}, true, "answered 404 itself", ""},
		// Traefik serves a plugin's own server error: it works, with a warning.
		{"server error itself", Answer{Status: 503}, Expect{}, true, "answered 503 itself", "the plugin answered 503 itself: a server error (HTTP 503)"},
		{"500 itself", Answer{Status: 500}, Expect{}, true, "answered 500 itself", "(HTTP 500)"},
		{"server error after next", Answer{Status: 502, Reached: true}, Expect{}, true, "passed the request on (502)", "the plugin passed the request on (502): a server error (HTTP 502)"},
		{"expected status itself", Answer{Status: 418}, Expect{Status: 418}, true, "answered 418 itself, as expected", ""},
		{"expected status passed on", Answer{Status: 200, Reached: true}, Expect{Status: 200}, true, "passed the request on (200), as expected", ""},
		{"expected 5xx", Answer{Status: 503}, Expect{Status: 503}, true, "answered 503 itself, as expected", ""},
		// expectStatus stays strict: a server error it did not ask for fails.
		{"expected 200, server error", Answer{Status: 503}, Expect{Status: 200}, false, "expected status 200, but the plugin answered 503 itself", ""},
		{"expected other", Answer{Status: 403}, Expect{Status: 200}, false, "expected status 200, but the plugin answered 403 itself", ""},
		{"expected block, passed on", Answer{Status: 200, Reached: true}, Expect{Status: 403}, false, "expected status 403, but the plugin passed the request on (200)", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, reason, warning := Judge(tt.a, tt.e)
			if ok != tt.ok || reason != tt.reason || (tt.warning == "") != (warning == "") || !strings.Contains(warning, tt.warning) {
				t.Errorf("Judge(%+v, %+v) = %v, %q, %q; want %v, %q, a warning with %q", tt.a, tt.e, ok, reason, warning, tt.ok, tt.reason, tt.warning)
			}
		})
	}
}

func TestRequest(t *testing.T) {
	r := Request(context.Background(), "geo_block-1", RemoteAddr(40000), ServerHostname)
	want := map[string]string{
		"User-Agent":         UserAgent,
		"X-Real-Ip":          "127.0.0.1",
		"X-Forwarded-Proto":  "http",
		"X-Forwarded-Port":   "80",
		"X-Forwarded-Host":   Host,
		"X-Forwarded-Server": ServerHostname,
	}
	for k, v := range want {
		if got := r.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if len(r.Header) != len(want) {
		t.Errorf("headers %v, want exactly %v", r.Header, want)
	}
	if r.Method != http.MethodGet || r.Host != Host || r.RemoteAddr != "127.0.0.1:40000" ||
		r.URL.String() != "/xtraefik-check/geo_block-1" || r.RequestURI != r.URL.Path || r.URL.Host != "" {
		t.Errorf("request %s %s host %q remote %q uri %q", r.Method, r.URL, r.Host, r.RemoteAddr, r.RequestURI)
	}
}

func TestForwardDropsClientForwardedHeaders(t *testing.T) {
	r := Request(context.Background(), "a", "127.0.0.1:1", "")
	r.Header.Set("X-Forwarded-For", "203.0.113.9")
	r.Header.Set("X-Real-Ip", "203.0.113.9")
	r.Host = "example.test:8443"
	Forward(r, "h")
	if got := r.Header.Get("X-Forwarded-For"); got != "" {
		t.Errorf("X-Forwarded-For %q survived from an untrusted client", got)
	}
	if got := r.Header.Get("X-Real-Ip"); got != "127.0.0.1" {
		t.Errorf("X-Real-Ip %q", got)
	}
	if got := r.Header.Get("X-Forwarded-Port"); got != "8443" {
		t.Errorf("X-Forwarded-Port %q, want the Host's port", got)
	}
	if !strings.HasPrefix(r.Header.Get("X-Forwarded-Host"), "example.test") {
		t.Errorf("X-Forwarded-Host %q", r.Header.Get("X-Forwarded-Host"))
	}
}
