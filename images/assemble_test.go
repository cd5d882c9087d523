package images

import (
	"maps"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/xtraefik/xtraefik/internal/testenv"
)

func amd64() v1.Platform { return v1.Platform{OS: "linux", Architecture: "amd64"} }
func arm64() v1.Platform { return v1.Platform{OS: "linux", Architecture: "arm64"} }
func armv7() v1.Platform { return v1.Platform{OS: "linux", Architecture: "arm", Variant: "v7"} }

// resolveSynthetic writes a synthetic base to an OCI layout and resolves it.
func resolveSynthetic(t testing.TB, opts testenv.BaseOptions, ropts Options) *Base {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "base")
	testenv.WriteBaseLayout(t, dir, "v3", opts)
	return mustResolve(t, "oci:"+dir+":v3", ropts)
}

func TestAssembleMultiPlatformOCI(t *testing.T) {
	host := memRegistry(t)
	opts := testenv.BaseOptions{
		OCI: true, Attestations: true,
		Platforms:   []v1.Platform{amd64(), arm64(), armv7()},
		WorkingDirs: map[string]string{"linux/arm64": "/app"},
	}
	ref := host + "/library/traefik:v3"
	testenv.PushBase(t, ref, opts)
	base := mustResolve(t, ref, Options{})
	baseIndex := testenv.BaseIndex(t, opts)
	baseManifest, _ := baseIndex.IndexManifest()

	add := demoAddition(t)
	res, err := Assemble(ctx(t), base, add)
	if err != nil {
		t.Fatal(err)
	}
	if res.MediaType != types.OCIImageIndex {
		t.Fatalf("result %s, want an OCI index", res.MediaType)
	}
	// One layer per distinct WORKDIR, shared by the platforms that have it.
	if len(res.Layers) != 2 || res.Layers["/"].String() != goldenLayer || res.Layers["/app"] == (v1.Hash{}) || res.Layers["/app"] == res.Layers["/"] {
		t.Fatalf("Layers %v: want / = %s and a different /app layer", res.Layers, goldenLayer)
	}
	wantLayer := map[string]v1.Hash{"linux/amd64": res.Layers["/"], "linux/arm/v7": res.Layers["/"], "linux/arm64": res.Layers["/app"]}

	idx := res.index
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != len(baseManifest.Manifests) {
		t.Fatalf("%d index entries, base has %d", len(im.Manifests), len(baseManifest.Manifests))
	}
	if im.Annotations[AnnotationBaseName] != ref || im.Annotations[AnnotationBaseDigest] != base.Digest.String() || im.Annotations["io.xtraefik.recipe"] != "test" {
		t.Errorf("index annotations %v", im.Annotations)
	}
	got, _ := idx.Digest()
	if got != res.Digest {
		t.Errorf("Result.Digest %s, index digest %s", res.Digest, got)
	}
	for i, d := range im.Manifests {
		bd := baseManifest.Manifests[i]
		if d.Platform.String() != bd.Platform.String() || !maps.Equal(d.Annotations, bd.Annotations) {
			t.Errorf("entry %d: platform %s annotations %v, base had %s %v", i, d.Platform, d.Annotations, bd.Platform, bd.Annotations)
		}
		if isAttestation(d) {
			if d.Digest != bd.Digest || d.MediaType != bd.MediaType {
				t.Errorf("attestation %d changed: %s -> %s", i, bd.Digest, d.Digest)
			}
			continue
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		baseImg, err := baseIndex.Image(bd.Digest)
		if err != nil {
			t.Fatal(err)
		}
		checkExtended(t, img, baseImg, wantLayer[d.Platform.String()], types.OCILayer, add)
		m, _ := img.Manifest()
		if m.Annotations[AnnotationBaseName] != ref || m.Annotations[AnnotationBaseDigest] != bd.Digest.String() || m.Annotations["io.xtraefik.recipe"] != "test" {
			t.Errorf("%s: manifest annotations %v", d.Platform, m.Annotations)
		}
		pi, err := res.Image(*d.Platform)
		if err != nil {
			t.Fatal(err)
		}
		if pd, _ := pi.Digest(); pd != d.Digest {
			t.Errorf("Result.Image(%s) = %s, index has %s", d.Platform, pd, d.Digest)
		}
	}
	if len(res.Platforms) != 3 {
		t.Errorf("Result.Platforms %v", res.Platforms)
	}

	again, err := Assemble(ctx(t), mustResolve(t, ref, Options{}), demoAddition(t))
	if err != nil {
		t.Fatal(err)
	}
	if again.Digest != res.Digest {
		t.Errorf("same inputs, index digests %s and %s", res.Digest, again.Digest)
	}
}

// checkExtended checks one extended platform image against its base image.
func checkExtended(t *testing.T, img, baseImg v1.Image, layer v1.Hash, layerType types.MediaType, add Addition) {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	bm, err := baseImg.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.MediaType != bm.MediaType || m.Config.MediaType != bm.Config.MediaType {
		t.Errorf("manifest %s config %s, base %s %s", m.MediaType, m.Config.MediaType, bm.MediaType, bm.Config.MediaType)
	}
	if len(m.Layers) != len(bm.Layers)+1 {
		t.Fatalf("%d layers on a base of %d", len(m.Layers), len(bm.Layers))
	}
	for i, l := range bm.Layers {
		if m.Layers[i].Digest != l.Digest || m.Layers[i].MediaType != l.MediaType {
			t.Errorf("base layer %d changed: %s %s -> %s %s", i, l.MediaType, l.Digest, m.Layers[i].MediaType, m.Layers[i].Digest)
		}
	}
	top := m.Layers[len(m.Layers)-1]
	if top.Digest != layer || top.MediaType != layerType {
		t.Errorf("plugin layer %s %s, want %s %s", top.MediaType, top.Digest, layerType, layer)
	}
	for _, l := range m.Layers {
		if (layerType == types.OCILayer) != (l.MediaType == types.OCILayer) {
			t.Errorf("manifest %s mixes media-type families: layer %s", m.MediaType, l.MediaType)
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	bcf, _ := baseImg.ConfigFile()
	if !cf.Created.Time.Equal(add.Epoch) {
		t.Errorf("config created %s, want %s", cf.Created.Time, add.Epoch)
	}
	h := cf.History[len(cf.History)-1]
	if !h.Created.Time.Equal(add.Epoch) || h.CreatedBy != add.CreatedBy || len(cf.History) != len(bcf.History)+1 {
		t.Errorf("history %+v", cf.History)
	}
	if len(cf.RootFS.DiffIDs) != len(m.Layers) {
		t.Errorf("%d diff IDs for %d layers", len(cf.RootFS.DiffIDs), len(m.Layers))
	}
	for k, v := range add.Labels {
		if cf.Config.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, cf.Config.Labels[k], v)
		}
	}
	if cf.Config.Labels["org.opencontainers.image.version"] != bcf.Config.Labels["org.opencontainers.image.version"] {
		t.Errorf("base label lost: %v", cf.Config.Labels)
	}
	env := strings.Join(cf.Config.Env, " ")
	if env != "PATH=/plugins/bin:/usr/bin XTRAEFIK=1" {
		t.Errorf("env %q: PATH must be replaced in place and XTRAEFIK appended", env)
	}
	if cf.Config.WorkingDir != bcf.Config.WorkingDir || strings.Join(cf.Config.Entrypoint, " ") != strings.Join(bcf.Config.Entrypoint, " ") || cf.Architecture != bcf.Architecture {
		t.Errorf("config changed beyond the addition: %+v", cf.Config)
	}
}

func TestAssembleDockerBaseKeepsDockerTypes(t *testing.T) {
	opts := testenv.BaseOptions{Platforms: []v1.Platform{amd64(), arm64()}}
	base := resolveSynthetic(t, opts, Options{})
	if base.MediaType != types.DockerManifestList {
		t.Fatalf("base %s", base.MediaType)
	}
	add := demoAddition(t)
	res, err := Assemble(ctx(t), base, add)
	if err != nil {
		t.Fatal(err)
	}
	im, err := res.index.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if res.MediaType != types.DockerManifestList || im.MediaType != types.DockerManifestList {
		t.Errorf("index %s / %s, want a Docker manifest list", res.MediaType, im.MediaType)
	}
	if len(im.Annotations) != 0 {
		t.Errorf("Docker manifest list got annotations %v", im.Annotations)
	}
	baseIndex := testenv.BaseIndex(t, opts)
	bim, _ := baseIndex.IndexManifest()
	for i, d := range im.Manifests {
		img, _ := res.index.Image(d.Digest)
		baseImg, _ := baseIndex.Image(bim.Manifests[i].Digest)
		// Same blob as on an OCI base, described as a Docker layer.
		checkExtended(t, img, baseImg, res.Layers["/"], types.DockerLayer, add)
		m, _ := img.Manifest()
		if len(m.Annotations) != 0 {
			t.Errorf("Docker manifest got annotations %v", m.Annotations)
		}
	}
	if res.Layers["/"].String() != goldenLayer {
		t.Errorf("layer %s, want the same blob as on OCI bases (%s)", res.Layers["/"], goldenLayer)
	}
}

func TestAssembleSingleImageStaysSingle(t *testing.T) {
	for _, oci := range []bool{true, false} {
		base := resolveSynthetic(t, testenv.BaseOptions{OCI: oci, Single: true, Platforms: []v1.Platform{arm64()}, WorkingDir: "/srv"}, Options{})
		res, err := Assemble(ctx(t), base, demoAddition(t))
		if err != nil {
			t.Fatal(err)
		}
		want := types.DockerManifestSchema2
		if oci {
			want = types.OCIManifestSchema1
		}
		if res.index != nil || res.MediaType != want || len(res.Platforms) != 1 {
			t.Fatalf("OCI=%v: result %s with %d platforms, want a single %s", oci, res.MediaType, len(res.Platforms), want)
		}
		img, err := res.Image(v1.Platform{})
		if err != nil {
			t.Fatal(err)
		}
		if d, _ := img.Digest(); d != res.Digest {
			t.Errorf("Image() %s, Digest %s", d, res.Digest)
		}
		if _, ok := res.Layers["/srv"]; !ok || len(res.Layers) != 1 {
			t.Errorf("Layers %v, want one for /srv", res.Layers)
		}
		if _, err := res.Image(amd64()); err == nil {
			t.Error("Image(linux/amd64) of an arm64 image succeeded")
		}
		m, _ := img.Manifest()
		if oci && m.Annotations[AnnotationBaseDigest] != base.Digest.String() {
			t.Errorf("annotations %v", m.Annotations)
		}
		if _, hasName := m.Annotations[AnnotationBaseName]; hasName {
			t.Errorf("base.name set for a layout base: %v", m.Annotations)
		}
	}
}

func TestAssembleNarrowedPlatforms(t *testing.T) {
	opts := testenv.BaseOptions{OCI: true, Attestations: true, Platforms: []v1.Platform{amd64(), arm64(), armv7()}}
	base := resolveSynthetic(t, opts, Options{Platforms: []v1.Platform{arm64(), {OS: "linux", Architecture: "arm"}}})
	if got := platformStrings(base.Platforms); got != "linux/arm64,linux/arm/v7" {
		t.Fatalf("narrowed to %s", got)
	}
	res, err := Assemble(ctx(t), base, demoAddition(t))
	if err != nil {
		t.Fatal(err)
	}
	im, _ := res.index.IndexManifest()
	var got []string
	for _, d := range im.Manifests {
		got = append(got, d.Platform.String())
		if isAttestation(d) {
			ref := d.Annotations[annotationReferenceDigest]
			var kept bool
			for _, p := range base.Platforms {
				kept = kept || p.Digest.String() == ref
			}
			if !kept {
				t.Errorf("attestation for a dropped platform kept: %s", ref)
			}
		}
	}
	if strings.Join(got, ",") != "linux/arm64,unknown/unknown,linux/arm/v7,unknown/unknown" {
		t.Errorf("entries %v", got)
	}
	if _, err := res.Image(amd64()); err == nil {
		t.Error("narrowed-away platform still in the result")
	}
	if _, err := res.Image(v1.Platform{OS: "linux"}); err == nil || !strings.Contains(err.Error(), "ambiguous") {
		t.Errorf("Image(linux): %v, want ambiguous", err)
	}
}

func TestAssembleRefusesBadAdditions(t *testing.T) {
	base := resolveSynthetic(t, testenv.BaseOptions{Single: true}, Options{})
	for _, tc := range []struct {
		name string
		mod  func(*Addition)
		want string
	}{
		{"nothing", func(a *Addition) { a.Plugins, a.Files = nil, nil }, "nothing to add"},
		{"env", func(a *Addition) { a.Env = []string{"NOEQUALS"} }, "KEY=VALUE"},
		{"empty env key", func(a *Addition) { a.Env = []string{"=x"} }, "KEY=VALUE"},
		{"epoch", func(a *Addition) { a.Epoch = time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC) }, "before 1970"},
		{"plugin", func(a *Addition) { a.Plugins[0].Module = "../x" }, "module name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			add := demoAddition(t)
			tc.mod(&add)
			_, err := Assemble(ctx(t), base, add)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	if _, err := Assemble(ctx(t), &Base{}, demoAddition(t)); err == nil {
		t.Error("an unresolved base was accepted")
	}
}

func TestAssembleZeroEpochIsUnixEpoch(t *testing.T) {
	base := resolveSynthetic(t, testenv.BaseOptions{Single: true}, Options{})
	add := demoAddition(t)
	add.Epoch = time.Time{}
	res, err := Assemble(ctx(t), base, add)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := res.images[0].ConfigFile()
	if cf.Created.Unix() != 0 {
		t.Errorf("created %s, want 1970-01-01", cf.Created)
	}
}
