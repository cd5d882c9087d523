package testenv

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func TestRegistryServesAndStops(t *testing.T) {
	var host string
	t.Run("serve", func(t *testing.T) {
		host = Registry(t, RegistryOptions{})
		resp, err := http.Get("http://" + host + "/v2/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /v2/: %s", resp.Status)
		}
		want := PushBase(t, host+"/traefik:v3", BaseOptions{OCI: true})
		desc, err := remote.Get(mustRef(t, host+"/traefik:v3"))
		if err != nil {
			t.Fatal(err)
		}
		if desc.Digest != want || desc.MediaType != types.OCIImageIndex {
			t.Fatalf("pulled %s %s, pushed %s", desc.MediaType, desc.Digest, want)
		}
	})
	if host == "" {
		t.Skip("registry did not start")
	}
	if resp, err := http.Get("http://" + host + "/v2/"); err == nil {
		resp.Body.Close()
		t.Fatalf("registry %s still answers after cleanup", host)
	}
}

func TestRegistryAuth(t *testing.T) {
	host := Registry(t, RegistryOptions{User: "alice", Password: "s3cret"})
	resp, err := http.Get("http://" + host + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("anonymous GET /v2/: %s, want 401", resp.Status)
	}
	ref := host + "/traefik:v3"
	good := &authn.Basic{Username: "alice", Password: "s3cret"}
	want := PushBase(t, ref, BaseOptions{Auth: good, Single: true})
	if _, err := remote.Get(mustRef(t, ref), remote.WithAuth(&authn.Basic{Username: "alice", Password: "wrong"})); err == nil {
		t.Fatal("pull with a wrong password succeeded")
	}
	desc, err := remote.Get(mustRef(t, ref), remote.WithAuth(good))
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest != want {
		t.Fatalf("pulled %s, pushed %s", desc.Digest, want)
	}
}

func TestRecordingProxy(t *testing.T) {
	host := Registry(t, RegistryOptions{})
	proxy, log := RecordingProxy(t, host)
	img := BaseImage(t, v1.Platform{OS: "linux", Architecture: "amd64"}, BaseOptions{})
	if err := remote.Write(mustRef(t, proxy+"/traefik:v3"), img); err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	uploads := map[string]bool{}
	var manifestPut bool
	for _, r := range log.Requests() {
		if r.Method == http.MethodPut && strings.Contains(r.Path, "/blobs/uploads/") {
			// The digest of a finished upload is in the query.
			for _, kv := range strings.Split(r.Query, "&") {
				if d, ok := strings.CutPrefix(kv, "digest="); ok {
					uploads[strings.Replace(d, "%3A", ":", 1)] = true
				}
			}
		}
		if r.Method == http.MethodPut && strings.Contains(r.Path, "/manifests/v3") {
			manifestPut = true
		}
	}
	for _, l := range layers {
		d, _ := l.Digest()
		if !uploads[d.String()] {
			t.Errorf("layer %s was not uploaded through the proxy; log: %+v", d, log.Requests())
		}
	}
	if !manifestPut {
		t.Errorf("no manifest PUT seen through the proxy: %+v", log.Requests())
	}
	log.Reset()
	if _, err := remote.Image(mustRef(t, proxy+"/traefik:v3")); err != nil {
		t.Fatal(err)
	}
	if n := len(log.Requests()); n == 0 {
		t.Error("Reset + pull recorded nothing")
	}
	for _, r := range log.Requests() {
		if r.Upload() {
			t.Errorf("a pull was classified as an upload: %+v", r)
		}
	}
}

func TestRecordedRequestClassification(t *testing.T) {
	for _, tc := range []struct {
		r      RecordedRequest
		blob   string
		upload bool
	}{
		{RecordedRequest{Method: "GET", Path: "/v2/a/b/blobs/sha256:abc"}, "sha256:abc", false},
		{RecordedRequest{Method: "HEAD", Path: "/v2/a/blobs/sha256:abc"}, "sha256:abc", false},
		{RecordedRequest{Method: "POST", Path: "/v2/a/blobs/uploads/"}, "", true},
		{RecordedRequest{Method: "POST", Path: "/v2/a/blobs/uploads/", Query: "mount=sha256%3Aabc&from=b"}, "", false},
		{RecordedRequest{Method: "PATCH", Path: "/v2/a/blobs/uploads/123"}, "", true},
		{RecordedRequest{Method: "PUT", Path: "/v2/a/blobs/uploads/123", Query: "digest=sha256%3Aabc"}, "", true},
		{RecordedRequest{Method: "PUT", Path: "/v2/a/manifests/v1"}, "", false},
	} {
		if got := tc.r.Blob(); got != tc.blob {
			t.Errorf("%+v: Blob() = %q, want %q", tc.r, got, tc.blob)
		}
		if got := tc.r.Upload(); got != tc.upload {
			t.Errorf("%+v: Upload() = %v, want %v", tc.r, got, tc.upload)
		}
	}
}

func TestBaseIsDeterministicAndTraefikLike(t *testing.T) {
	opts := BaseOptions{OCI: true, Attestations: true, WorkingDirs: map[string]string{"linux/arm64": "/app"}}
	a, b := BaseIndex(t, opts), BaseIndex(t, opts)
	da, _ := a.Digest()
	db, _ := b.Digest()
	if da != db {
		t.Fatalf("same options, different digests: %s %s", da, db)
	}
	im, err := a.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if im.MediaType != types.OCIImageIndex || len(im.Manifests) != 4 {
		t.Fatalf("index %s with %d entries, want OCI with 2 images + 2 attestations", im.MediaType, len(im.Manifests))
	}
	var images int
	for _, d := range im.Manifests {
		if d.Platform.OS == "unknown" {
			if d.Annotations["vnd.docker.reference.type"] != "attestation-manifest" {
				t.Errorf("attestation %s lacks its annotation", d.Digest)
			}
			continue
		}
		images++
		img, err := a.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		wantWD := ""
		if d.Platform.Architecture == "arm64" {
			wantWD = "/app"
		}
		if cf.Config.WorkingDir != wantWD || cf.Architecture != d.Platform.Architecture {
			t.Errorf("%s: WorkingDir %q arch %q", d.Platform, cf.Config.WorkingDir, cf.Architecture)
		}
		if cf.Config.Labels["org.opencontainers.image.version"] != "v3.6.12" || cf.Config.Entrypoint[0] != "/entrypoint.sh" {
			t.Errorf("%s: config %+v", d.Platform, cf.Config)
		}
		m, _ := img.Manifest()
		for _, l := range m.Layers {
			if l.MediaType != types.OCILayer {
				t.Errorf("%s: layer media type %s", d.Platform, l.MediaType)
			}
		}
	}
	if images != 2 {
		t.Errorf("%d runnable images, want 2", images)
	}

	docker := BaseImage(t, v1.Platform{OS: "linux", Architecture: "amd64"}, BaseOptions{})
	if mt, _ := docker.MediaType(); mt != types.DockerManifestSchema2 {
		t.Errorf("default media type %s, want Docker v2", mt)
	}
}

func TestWriteBaseLayoutAndArchive(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "layout")
	want := WriteBaseLayout(t, dir, "v3", BaseOptions{OCI: true})
	lp, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	ii, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, _ := ii.IndexManifest()
	if len(im.Manifests) != 1 || im.Manifests[0].Digest != want || im.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "v3" {
		t.Fatalf("layout index.json: %+v, want one entry %s tagged v3", im.Manifests, want)
	}

	file := filepath.Join(t.TempDir(), "base.tar")
	digest := WriteBaseArchive(t, file, "traefik:v3", BaseOptions{})
	tag := name.MustParseReference("traefik:v3").(name.Tag)
	img, err := tarball.ImageFromPath(file, &tag)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := img.Digest(); got != digest {
		t.Fatalf("archive image %s, helper said %s", got, digest)
	}
}

func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
