package images

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/xtraefik/xtraefik/internal/testenv"
)

// recordingRegistry is an in-process registry that records every blob
// path asked for, so a test can tell which blobs a build read.
func recordingRegistry(t *testing.T) (host string, blobs func() []string, reset func()) {
	t.Helper()
	var (
		mu   sync.Mutex
		seen []string
	)
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/blobs/sha256:") && r.Method == http.MethodGet {
			mu.Lock()
			seen = append(seen, r.URL.Path)
			mu.Unlock()
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), func() []string {
			mu.Lock()
			defer mu.Unlock()
			return append([]string(nil), seen...)
		}, func() {
			mu.Lock()
			defer mu.Unlock()
			seen = nil
		}
}

// TestPluginsImage: the plugins image of a three-platform base (with
// attestation entries) is an OCI index of one manifest per runnable
// platform, each naming its platform and holding the same one layer, whose
// entries are the full image's plugin tree rooted at src/; the annotations
// name the base; two builds give one digest; and no base layer is read.
func TestPluginsImage(t *testing.T) {
	host, blobs, reset := recordingRegistry(t)
	opts := testenv.BaseOptions{OCI: true, Attestations: true, Platforms: []v1.Platform{amd64(), arm64(), armv7()}}
	ref := host + "/library/traefik:v3"
	testenv.PushBase(t, ref, opts)
	reset()
	base := mustResolve(t, ref, Options{})
	spec := PluginsSpec{Plugins: demoPlugins(t), Epoch: testEpoch(),
		Labels:      map[string]string{"io.github.xtraefik.plugin.demo.module": "github.com/acme/demo"},
		Annotations: map[string]string{"xtraefik.dev/plugins": "demo=github.com/acme/demo@abc", AnnotationBaseDigest: "sha256:forged"}}
	res, err := PluginsImage(ctx(t), base, spec)
	if err != nil {
		t.Fatal(err)
	}
	if res.MediaType != types.OCIImageIndex || res.index == nil {
		t.Fatalf("media type %s, want an OCI index", res.MediaType)
	}
	im, err := res.index.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != len(base.Platforms) || len(base.Platforms) != 3 {
		t.Fatalf("%d manifests for %d base platforms (want 3: attestations are not platforms)", len(im.Manifests), len(base.Platforms))
	}
	wantIndexAnns := map[string]string{AnnotationBaseDigest: base.Digest.String(), AnnotationBaseName: ref,
		AnnotationPluginsMount: "/plugins-local", "xtraefik.dev/plugins": "demo=github.com/acme/demo@abc"}
	for k, v := range wantIndexAnns {
		if im.Annotations[k] != v {
			t.Errorf("index annotation %s = %q, want %q", k, im.Annotations[k], v)
		}
	}
	fullBase := mustResolve(t, ref, Options{}) // not base: what it reads is counted below
	full, err := Assemble(ctx(t), fullBase, Addition{Plugins: spec.Plugins, Epoch: spec.Epoch})
	if err != nil {
		t.Fatal(err)
	}
	var layer v1.Hash
	for i, d := range im.Manifests {
		bp := base.Platforms[i]
		if d.MediaType != types.OCIManifestSchema1 || d.Platform == nil || d.Platform.String() != bp.Platform.String() {
			t.Fatalf("entry %d: %s %v, want an OCI manifest for %s", i, d.MediaType, d.Platform, bp.Platform)
		}
		img, err := res.index.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		m, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		if m.Config.MediaType != types.OCIConfigJSON || len(m.Layers) != 1 || m.Layers[0].MediaType != types.OCILayer {
			t.Fatalf("%s: config %s, layers %v: want an OCI config and one OCI layer", bp.Platform, m.Config.MediaType, m.Layers)
		}
		if i == 0 {
			layer = m.Layers[0].Digest
		} else if m.Layers[0].Digest != layer {
			t.Errorf("%s has layer %s, %s has %s: one layer for all", bp.Platform, m.Layers[0].Digest, base.Platforms[0].Platform, layer)
		}
		if m.Annotations[AnnotationBaseDigest] != bp.Digest.String() || m.Annotations[AnnotationPluginsMount] != "/plugins-local" {
			t.Errorf("%s annotations %v: want the base platform's digest %s and the mount path", bp.Platform, m.Annotations, bp.Digest)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.OS != bp.Platform.OS || cf.Architecture != bp.Platform.Architecture || cf.Variant != bp.Platform.Variant {
			t.Errorf("config platform %s/%s/%s, want %s", cf.OS, cf.Architecture, cf.Variant, bp.Platform)
		}
		if len(cf.History) != 0 || !cf.Created.Time.Equal(testEpoch()) || len(cf.Config.Entrypoint) != 0 || cf.Config.Labels["io.github.xtraefik.plugin.demo.module"] != "github.com/acme/demo" {
			t.Errorf("config: history %v, created %s, entrypoint %v, labels %v", cf.History, cf.Created, cf.Config.Entrypoint, cf.Config.Labels)
		}
	}
	if res.Layers["/plugins-local"] != layer {
		t.Errorf("Layers %v, want /plugins-local = %s", res.Layers, layer)
	}

	// The same tree as the full image's plugin layer, rooted at src/.
	pl, err := res.images[0].LayerByDigest(layer)
	if err != nil {
		t.Fatal(err)
	}
	fl, err := full.images[0].LayerByDigest(full.Layers["/"])
	if err != nil {
		t.Fatal(err)
	}
	got, want := readLayer(t, pl), readLayer(t, fl)
	if len(got) != len(want)-1 {
		t.Fatalf("plugins image layer has %d entries, the full image's %d (want one less: plugins-local/)", len(got), len(want))
	}
	for i, e := range got {
		w := want[i+1]
		if "plugins-local/"+e.hdr.Name != w.hdr.Name || e.hdr.Mode != w.hdr.Mode || e.hdr.Typeflag != w.hdr.Typeflag ||
			e.hdr.Linkname != w.hdr.Linkname || !e.hdr.ModTime.Equal(w.hdr.ModTime) || e.content != w.content {
			t.Errorf("entry %s (mode %o) differs from the full image's %s (mode %o)", e.hdr.Name, e.hdr.Mode, w.hdr.Name, w.hdr.Mode)
		}
	}
	if got[0].hdr.Name != "src/" {
		t.Errorf("first entry %q, want src/", got[0].hdr.Name)
	}

	again, err := PluginsImage(ctx(t), base, spec)
	if err != nil {
		t.Fatal(err)
	}
	if again.Digest != res.Digest {
		t.Errorf("two builds: %s then %s", res.Digest, again.Digest)
	}
	later := spec
	later.Epoch = testEpoch().Add(time.Hour)
	if other, err := PluginsImage(ctx(t), base, later); err != nil || other.Digest == res.Digest {
		t.Errorf("another epoch gave %v (err %v): the digest does not follow the epoch", other, err)
	}

	// Pushed, it reads back as the same index; no base layer was read
	// (only configs: they name the WORKDIR and the platforms). The check
	// sees GETs: pushing the plugins image elsewhere reads no base blob.
	if len(blobs()) == 0 {
		t.Fatal("no blob GET was recorded: the recording registry sees nothing")
	}
	target := host + "/golden/traefik-plugins:v1"
	if _, err := Push(ctx(t), target, res, Options{}); err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(mustName(t, target))
	if err != nil || desc.Digest != res.Digest {
		t.Fatalf("pushed %v (err %v), want %s", desc, err, res.Digest)
	}
	baseIdx := testenv.BaseIndex(t, opts)
	bim, _ := baseIdx.IndexManifest()
	for _, d := range bim.Manifests {
		img, err := baseIdx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		ls, _ := img.Layers()
		for _, l := range ls {
			ld, _ := l.Digest()
			for _, p := range blobs() {
				if strings.HasSuffix(p, ld.String()) && strings.Contains(p, "/library/traefik/") {
					t.Errorf("base layer %s was read (%s)", ld, p)
				}
			}
		}
	}
}

// TestPluginsImageDockerBaseAndWorkdir: a Docker v2 base still gets an OCI
// plugins image; a WORKDIR moves the mount path; platforms that disagree on
// WORKDIR are refused, naming both.
func TestPluginsImageDockerBaseAndWorkdir(t *testing.T) {
	base := resolveSynthetic(t, testenv.BaseOptions{Platforms: []v1.Platform{amd64(), arm64()}, WorkingDir: "/srv/traefik"}, Options{})
	res, err := PluginsImage(ctx(t), base, PluginsSpec{Plugins: demoPlugins(t)})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := res.index.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	if res.MediaType != types.OCIImageIndex || strings.Contains(string(raw), "docker") {
		t.Errorf("a Docker base gave %s:\n%s", res.MediaType, raw)
	}
	if _, ok := res.Layers["/srv/traefik/plugins-local"]; !ok {
		t.Errorf("Layers %v: want the mount path /srv/traefik/plugins-local", res.Layers)
	}

	mixed := resolveSynthetic(t, testenv.BaseOptions{Platforms: []v1.Platform{amd64(), arm64()}, WorkingDirs: map[string]string{"linux/arm64": "/app"}}, Options{})
	_, err = PluginsImage(ctx(t), mixed, PluginsSpec{Plugins: demoPlugins(t)})
	if err == nil || !strings.Contains(err.Error(), "WORKDIR / for linux/amd64 but /app for linux/arm64") {
		t.Errorf("mixed WORKDIRs: %v", err)
	}
	if _, err := PluginsImage(ctx(t), base, PluginsSpec{}); err == nil || !strings.Contains(err.Error(), "no plugin") {
		t.Errorf("no plugins: %v", err)
	}
}
