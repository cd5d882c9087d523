package images

import (
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestParseReference(t *testing.T) {
	const dg = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, tc := range []struct {
		in   string
		want Reference
		str  string // String(); "" means in
	}{
		{"traefik", Reference{Transport: "docker", Name: "traefik"}, ""},
		{"docker.io/library/traefik:v3.6", Reference{Transport: "docker", Name: "docker.io/library/traefik", Tag: "v3.6"}, ""},
		{"docker://docker.io/library/traefik:v3.6", Reference{Transport: "docker", Name: "docker.io/library/traefik", Tag: "v3.6"}, "docker.io/library/traefik:v3.6"},
		{"localhost:5000/traefik", Reference{Transport: "docker", Name: "localhost:5000/traefik"}, ""},
		{"127.0.0.1:5000/a/b:v1@" + dg, Reference{Transport: "docker", Name: "127.0.0.1:5000/a/b", Tag: "v1", Digest: dg}, ""},
		{"traefik@" + dg, Reference{Transport: "docker", Name: "traefik", Digest: dg}, ""},
		{"oci:/tmp/layout", Reference{Transport: "oci", Path: "/tmp/layout"}, ""},
		{"oci:/tmp/layout:v3", Reference{Transport: "oci", Path: "/tmp/layout", Tag: "v3"}, ""},
		{"oci:rel/dir@" + dg, Reference{Transport: "oci", Path: "rel/dir", Digest: dg}, ""},
		{"docker-archive:/tmp/t.tar", Reference{Transport: "docker-archive", Path: "/tmp/t.tar"}, ""},
		{"docker-archive:/tmp/t.tar:traefik:v3", Reference{Transport: "docker-archive", Path: "/tmp/t.tar", Name: "traefik", Tag: "v3"}, ""},
		{"docker-archive:t.tar:localhost:5000/traefik", Reference{Transport: "docker-archive", Path: "t.tar", Name: "localhost:5000/traefik"}, ""},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseReference(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			str := tc.str
			if str == "" {
				str = tc.in
			}
			if got.String() != str {
				t.Errorf("String() = %q, want %q", got.String(), str)
			}
			again, err := ParseReference(got.String())
			if err != nil || again != got {
				t.Errorf("round trip: %+v, %v", again, err)
			}
		})
	}
}

func TestParseReferenceErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "empty"},
		{"docker://", "empty"},
		{"oci:", "empty layout path"},
		{"oci:/x:", "empty tag"},
		{"docker-archive:", "empty archive path"},
		{"docker-archive:/x.tar:a@sha256:00", "docker-archive:<file>"},
		{"dir:/tmp/x", "not supported"},
		{"containers-storage:traefik", "not supported"},
		{"traefik@sha256:short", "bad digest"},
		{"UPPER/case:v1", "UPPER/case:v1"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			_, err := ParseReference(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestParsePlatform(t *testing.T) {
	for _, tt := range []struct {
		in, want, err string
	}{
		{in: "linux/amd64", want: "linux/amd64"},
		{in: "linux/arm/v7", want: "linux/arm/v7"},
		{in: "linux", err: "want os/arch"},
		{in: "/amd64", err: "want os/arch"},
	} {
		p, err := ParsePlatform(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: error %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || p.String() != tt.want {
			t.Errorf("%q: %v %v", tt.in, p, err)
		}
	}
	// A Go caller's narrowing is checked too: "linux" would keep every platform.
	_, err := Resolve(ctx(t), Reference{Transport: TransportOCI, Path: t.TempDir()}, Options{Platforms: []v1.Platform{{OS: "linux"}}})
	if err == nil || !strings.Contains(err.Error(), "want os/arch") {
		t.Errorf("Resolve with platform linux: %v", err)
	}
}
