package images

import (
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/xtraefik/xtraefik/internal/testenv"
)

// TestBaseProvenanceIsNotInherited: the base's own source, revision, creation
// time and base image (as annotations and labels) must not survive onto the image
// built on it; other annotations (title, licences) do.
func TestBaseProvenanceIsNotInherited(t *testing.T) {
	baseClaims := map[string]string{
		"org.opencontainers.image.source":      "https://github.com/traefik/traefik-library-image",
		"org.opencontainers.image.revision":    "0123456789abcdef",
		"org.opencontainers.image.created":     "2020-01-01T00:00:00Z",
		"org.opencontainers.image.base.name":   "docker.io/library/alpine:3.21",
		"org.opencontainers.image.title":       "Traefik",
		"org.opencontainers.image.ref.name":    "v3.6",
		"org.opencontainers.image.base.digest": "sha256:00",
	}
	img := testenv.BaseImage(t, hostPlatform(), testenv.BaseOptions{OCI: true})
	img = mutate.Annotations(img, baseClaims).(v1.Image)
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	for k, v := range baseClaims {
		cf.Config.Labels[k] = v
	}
	img, _ = mutate.ConfigFile(img, cf)
	dir := filepath.Join(t.TempDir(), "base")
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	idx := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: hostPlatform().Architecture}, Annotations: baseClaims}})
	idx = mutate.Annotations(idx, baseClaims).(v1.ImageIndex)
	if err := lp.AppendIndex(idx, layout.WithAnnotations(map[string]string{annotationRefName: "v1"})); err != nil {
		t.Fatal(err)
	}
	ref, _ := ParseReference("oci:" + dir + ":v1")
	base, err := Resolve(ctx(t), ref, Options{})
	if err != nil {
		t.Fatal(err)
	}
	add := demoAddition(t)
	add.Annotations = map[string]string{"org.opencontainers.image.created": "2024-05-06T07:08:09Z"}
	res, err := Assemble(ctx(t), base, add)
	if err != nil {
		t.Fatal(err)
	}

	check := func(where string, m map[string]string) {
		t.Helper()
		for _, k := range []string{"org.opencontainers.image.source", "org.opencontainers.image.revision", "org.opencontainers.image.base.name", "org.opencontainers.image.ref.name"} {
			if v, ok := m[k]; ok {
				t.Errorf("%s keeps the base's %s=%q", where, k, v)
			}
		}
		if m["org.opencontainers.image.title"] != "Traefik" {
			t.Errorf("%s lost an annotation that describes the content: %v", where, m)
		}
	}
	im, err := res.index.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	check("index", im.Annotations)
	check("index descriptor", im.Manifests[0].Annotations)
	if im.Annotations["org.opencontainers.image.base.digest"] != base.Digest.String() || im.Annotations["org.opencontainers.image.created"] != "2024-05-06T07:08:09Z" {
		t.Errorf("index annotations %v lack the new build's values", im.Annotations)
	}
	m, err := res.images[0].Manifest()
	if err != nil {
		t.Fatal(err)
	}
	check("manifest", m.Annotations)
	if m.Annotations["org.opencontainers.image.base.digest"] != base.Platforms[0].Digest.String() {
		t.Errorf("manifest base.digest = %q, want the base platform manifest %s", m.Annotations["org.opencontainers.image.base.digest"], base.Platforms[0].Digest)
	}
	// The digest the index records is the manifest's real digest.
	d, _ := res.images[0].Digest()
	if im.Manifests[0].Digest != d {
		t.Errorf("index points at %s, manifest is %s", im.Manifests[0].Digest, d)
	}
	cfg, _ := res.images[0].ConfigFile()
	labels := cfg.Config.Labels
	check("config labels", labels)
}
