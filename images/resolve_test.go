package images

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/xtraefik/xtraefik/internal/testenv"
)

func mustParse(t testing.TB, s string) Reference {
	t.Helper()
	r, err := ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func platformStrings(ps []PlatformImage) string {
	var s []string
	for _, p := range ps {
		s = append(s, p.Platform.String())
	}
	return strings.Join(s, ",")
}

func TestResolveEachTransport(t *testing.T) {
	host := memRegistry(t)
	opts := testenv.BaseOptions{OCI: true, WorkingDirs: map[string]string{"linux/arm64": "/app"}}
	indexDigest := testenv.PushBase(t, host+"/library/traefik:v3", opts)
	layoutDir := filepath.Join(t.TempDir(), "layout")
	testenv.WriteBaseLayout(t, layoutDir, "v3", opts)
	archive := filepath.Join(t.TempDir(), "base.tar")
	archiveDigest := testenv.WriteBaseArchive(t, archive, "traefik:v3", testenv.BaseOptions{})
	amd64 := testenv.BaseImage(t, v1.Platform{OS: "linux", Architecture: "amd64"}, opts)
	amd64Digest, _ := amd64.Digest()

	for _, tc := range []struct {
		ref        string
		digest     v1.Hash
		mediaType  types.MediaType
		platforms  string
		workingDir string // of the last platform
	}{
		{host + "/library/traefik:v3", indexDigest, types.OCIImageIndex, "linux/amd64,linux/arm64", "/app"},
		{"docker://" + host + "/library/traefik@" + indexDigest.String(), indexDigest, types.OCIImageIndex, "linux/amd64,linux/arm64", "/app"},
		{"oci:" + layoutDir + ":v3", indexDigest, types.OCIImageIndex, "linux/amd64,linux/arm64", "/app"},
		{"oci:" + layoutDir, indexDigest, types.OCIImageIndex, "linux/amd64,linux/arm64", "/app"},
		{"oci:" + layoutDir + "@" + indexDigest.String(), indexDigest, types.OCIImageIndex, "linux/amd64,linux/arm64", "/app"},
		// One platform of the index, picked by digest, is a single image.
		{"oci:" + layoutDir + "@" + amd64Digest.String(), amd64Digest, types.OCIManifestSchema1, "linux/amd64", ""},
		{"docker-archive:" + archive, archiveDigest, types.DockerManifestSchema2, "linux/amd64", ""},
		{"docker-archive:" + archive + ":traefik:v3", archiveDigest, types.DockerManifestSchema2, "linux/amd64", ""},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			b, err := Resolve(ctx(t), mustParse(t, tc.ref), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if b.Digest != tc.digest || b.MediaType != tc.mediaType {
				t.Errorf("resolved %s %s, want %s %s", b.MediaType, b.Digest, tc.mediaType, tc.digest)
			}
			if got := platformStrings(b.Platforms); got != tc.platforms {
				t.Errorf("platforms %s, want %s", got, tc.platforms)
			}
			if wd := b.Platforms[len(b.Platforms)-1].WorkingDir; wd != tc.workingDir {
				t.Errorf("WorkingDir %q, want %q", wd, tc.workingDir)
			}
		})
	}
}

func TestResolveNotFoundNamesTheReference(t *testing.T) {
	host := memRegistry(t)
	testenv.PushBase(t, host+"/library/traefik:v3", testenv.BaseOptions{})
	layoutDir := filepath.Join(t.TempDir(), "layout")
	testenv.WriteBaseLayout(t, layoutDir, "v3", testenv.BaseOptions{})
	two := filepath.Join(t.TempDir(), "two")
	testenv.WriteBaseLayout(t, two, "a", testenv.BaseOptions{})
	testenv.WriteBaseLayout(t, two, "b", testenv.BaseOptions{Version: "v3.6.13"})
	archive := filepath.Join(t.TempDir(), "base.tar")
	testenv.WriteBaseArchive(t, archive, "traefik:v3", testenv.BaseOptions{})

	for _, tc := range []struct {
		ref  string
		opts Options
		want []string
	}{
		{host + "/library/traefik:v9", Options{}, []string{"not found", host + "/library/traefik:v9"}},
		{host + "/nothing/here:v3", Options{}, []string{"not found", host + "/nothing/here:v3"}},
		{"docker.io/library/traefik:v9", Options{Mirrors: []Mirror{{Prefix: "docker.io", Location: host}}},
			[]string{"not found", "docker.io/library/traefik:v9", "via mirror " + host + "/library/traefik:v9"}},
		{"oci:" + filepath.Join(t.TempDir(), "missing") + ":v3", Options{}, []string{"not found", "missing:v3"}},
		{"oci:" + layoutDir + ":v9", Options{}, []string{"not found", `no tag "v9"`, "tags: v3"}},
		{"oci:" + two, Options{}, []string{"holds 2 manifests", "tags: a, b"}},
		{"docker-archive:" + filepath.Join(t.TempDir(), "missing.tar"), Options{}, []string{"not found", "missing.tar"}},
		{"docker-archive:" + archive + ":traefik:v9", Options{}, []string{"traefik:v9", "not found"}},
		{host + "/library/traefik:v3", Options{Platforms: []v1.Platform{{OS: "linux", Architecture: "s390x"}}},
			[]string{"no platform linux/s390x", "linux/amd64, linux/arm64"}},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			_, err := Resolve(ctx(t), mustParse(t, tc.ref), tc.opts)
			if err == nil {
				t.Fatal("resolved a base that does not exist")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestResolveThroughMirror(t *testing.T) {
	host := memRegistry(t)
	// The mirror holds docker.io's library under /hub; a decoy matches the
	// shorter prefix.
	want := testenv.PushBase(t, host+"/hub/library/traefik:v3", testenv.BaseOptions{OCI: true})
	testenv.PushBase(t, host+"/decoy/library/traefik:v3", testenv.BaseOptions{OCI: true, Version: "decoy"})
	opts := Options{Mirrors: []Mirror{
		{Prefix: "docker.io", Location: host + "/decoy"},
		{Prefix: "index.docker.io/library", Location: host + "/hub/library"},
		{Prefix: "quay.io", Location: host + "/quay"},
	}}
	for _, written := range []string{"docker.io/library/traefik:v3", "traefik:v3", "index.docker.io/library/traefik:v3"} {
		t.Run(written, func(t *testing.T) {
			b, err := Resolve(ctx(t), mustParse(t, written), opts)
			if err != nil {
				t.Fatal(err)
			}
			if b.Digest != want {
				t.Errorf("resolved %s, want %s from the longest matching mirror", b.Digest, want)
			}
			if b.Ref.String() != written || b.Mirror != host+"/hub/library/traefik:v3" {
				t.Errorf("Ref %s Mirror %s: the logical name must stay as written", b.Ref, b.Mirror)
			}
			res, err := Assemble(ctx(t), b, demoAddition(t))
			if err != nil {
				t.Fatal(err)
			}
			m, err := res.images[0].Manifest()
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Annotations[AnnotationBaseName]; got != written {
				t.Errorf("base.name %q, want %q (not the mirror)", got, written)
			}
		})
	}
	// Mirrors are for pulls only: a push goes where it is told.
	res, err := Assemble(ctx(t), mustResolve(t, host+"/hub/library/traefik:v3", Options{}), demoAddition(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Push(ctx(t), host+"/out/traefik:v3", res, opts); err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Head(mustName(t, host+"/out/traefik:v3")); err != nil {
		t.Errorf("push did not land at the target: %v", err)
	}
}

func mustResolve(t testing.TB, ref string, opts Options) *Base {
	t.Helper()
	b, err := Resolve(ctx(t), mustParse(t, ref), opts)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustName(t testing.TB, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestResolveDigest(t *testing.T) {
	host := memRegistry(t)
	ref := host + "/library/traefik:v3"
	old := testenv.PushBase(t, ref, testenv.BaseOptions{})
	moved := testenv.PushBase(t, ref, testenv.BaseOptions{Version: "v3.6.13"})
	if old == moved {
		t.Fatal("test setup: both bases have one digest")
	}
	// The tag moved; the locked digest is still fetched.
	b, err := ResolveDigest(ctx(t), mustParse(t, ref), old, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if b.Digest != old || b.Ref.String() != ref {
		t.Errorf("got %s as %s, want %s as %s", b.Digest, b.Ref, old, ref)
	}
	if now := mustResolve(t, ref, Options{}); now.Digest != moved {
		t.Errorf("Resolve gave %s, want the moved tag's %s", now.Digest, moved)
	}

	layoutDir := filepath.Join(t.TempDir(), "layout")
	inLayout := testenv.WriteBaseLayout(t, layoutDir, "v3", testenv.BaseOptions{})
	if _, err := ResolveDigest(ctx(t), mustParse(t, "oci:"+layoutDir+":v3"), inLayout, Options{}); err != nil {
		t.Errorf("matching digest refused: %v", err)
	}
	for _, tc := range []struct {
		ref            string
		actual, locked v1.Hash
	}{
		{"oci:" + layoutDir + ":v3", inLayout, moved},
		{ref + "@" + old.String(), old, moved},
	} {
		_, err := ResolveDigest(ctx(t), mustParse(t, tc.ref), tc.locked, Options{})
		if err == nil {
			t.Errorf("%s: a different digest was accepted", tc.ref)
			continue
		}
		for _, d := range []v1.Hash{tc.actual, tc.locked} {
			if !strings.Contains(err.Error(), d.String()) {
				t.Errorf("%s: error %q does not name %s", tc.ref, err, d)
			}
		}
	}
	// A registry that does not have the locked digest.
	missing := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("0", 64)}
	if _, err := ResolveDigest(ctx(t), mustParse(t, ref), missing, Options{}); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("missing digest: %v", err)
	}
}

// TestPlainHTTPOnlyToLoopbackOrInsecure reaches a real registry under an RFC
// 1918 name (the dialer redirects to loopback). go-containerregistry would fall
// back to plain HTTP there on its own; the guard must refuse unless the
// registry is listed as insecure.
func TestPlainHTTPOnlyToLoopbackOrInsecure(t *testing.T) {
	host := memRegistry(t)
	testenv.PushBase(t, host+"/traefik:v3", testenv.BaseOptions{})
	var d net.Dialer
	redirect := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return d.DialContext(ctx, network, host)
	}}
	const private = "10.11.12.13:5000"
	ref := mustParse(t, private+"/traefik:v3")

	// Control: without the guard, go-containerregistry does use plain HTTP.
	if _, err := remote.Get(mustName(t, private+"/traefik:v3"), remote.WithTransport(redirect), remote.WithAuthFromKeychain(authn.NewMultiKeychain())); err != nil {
		t.Fatalf("control: the unguarded client did not fall back to HTTP: %v", err)
	}
	_, err := Resolve(ctx(t), ref, Options{Transport: redirect})
	if err == nil || !strings.Contains(err.Error(), "refusing plain HTTP to "+private) {
		t.Fatalf("error %v, want a refusal of plain HTTP", err)
	}
	// A mirror on a private address is refused the same way.
	_, err = Resolve(ctx(t), mustParse(t, "docker.io/library/traefik:v3"), Options{Transport: redirect, Mirrors: []Mirror{{Prefix: "docker.io/library", Location: private}}})
	if err == nil || !strings.Contains(err.Error(), "refusing plain HTTP") {
		t.Fatalf("mirror: error %v, want a refusal of plain HTTP", err)
	}
	for _, insecure := range []string{private, "10.11.12.13"} {
		if _, err := Resolve(ctx(t), ref, Options{Transport: redirect, Insecure: []string{insecure}}); err != nil {
			t.Errorf("Insecure %q: %v", insecure, err)
		}
	}
}

func TestPlainHTTPGuardHosts(t *testing.T) {
	g := &plainHTTPGuard{insecure: []string{"registry.lan:5000", "10.0.0.7"}}
	for host, want := range map[string]bool{
		"127.0.0.1:5000":    true,
		"127.3.4.5":         true,
		"[::1]:5000":        true,
		"localhost:5000":    true,
		"LOCALHOST":         true,
		"registry.lan:5000": true,
		"registry.lan:5001": false,
		"10.0.0.7:443":      true,
		"10.0.0.8:5000":     false,
		"192.168.1.2:5000":  false,
		"registry.local":    false,
		"example.com":       false,
	} {
		if got := g.allowed(host); got != want {
			t.Errorf("allowed(%q) = %v, want %v", host, got, want)
		}
	}
}

// TestResolveNarrowUnnamedPlatform: a single-image base whose config names no
// os or architecture (crane append onto nothing makes one) cannot be narrowed
// with --platform; the error says why and how to name the platform, instead
// of "is  only".
func TestResolveNarrowUnnamedPlatform(t *testing.T) {
	host := memRegistry(t)
	img := testenv.BaseImage(t, v1.Platform{}, testenv.BaseOptions{})
	ref := host + "/library/traefik:unnamed"
	tag, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
	_, err = Resolve(ctx(t), mustParse(t, ref), Options{Platforms: []v1.Platform{{OS: "linux", Architecture: "amd64"}}})
	if err == nil {
		t.Fatal("narrowing a base that names no platform succeeded")
	}
	for _, want := range []string{"cannot be narrowed to linux/amd64", "its config names no platform", "crane mutate --set-platform"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "  only") {
		t.Errorf("error %q prints an empty platform", err)
	}
}
