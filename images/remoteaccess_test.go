package images

import "testing"

// TestRepository: a registry repository is parsed with the plain-HTTP rule
// of every reference; a tag, a digest or another transport is refused.
func TestRepository(t *testing.T) {
	opts := Options{Insecure: []string{"registry.lan"}}
	for s, scheme := range map[string]string{
		"ghcr.io/acme/cache":          "https",
		"docker://ghcr.io/acme/cache": "https",
		"registry.lan:5000/cache":     "http",
		"127.0.0.1:5000/cache":        "http",
		"ghcr.io/acme/cache:v1":       "",
		"ghcr.io/acme/cache@sha256:0123456789012345678901234567890123456789012345678901234567890123": "",
		"oci:/tmp/layout": "",
	} {
		r, err := opts.Repository(s)
		switch {
		case scheme == "" && err == nil:
			t.Errorf("Repository(%q) = %s, want an error", s, r)
		case scheme != "" && err != nil:
			t.Errorf("Repository(%q): %v", s, err)
		case scheme != "" && r.Scheme() != scheme:
			t.Errorf("Repository(%q) scheme %s, want %s", s, r.Scheme(), scheme)
		}
	}
}
