package images

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/xtraefik/xtraefik/internal/testenv"
)

// The digest of "{}", the OCI empty descriptor's content (image-spec v1.1).
const emptyJSONDigest = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"

// testSBOM is a small SPDX document; the sbom package tests real ones (it
// imports this package, so this test cannot import it).
func testSBOM(name string) []byte {
	return []byte(fmt.Sprintf(`{"spdxVersion":"SPDX-2.3","dataLicense":"CC0-1.0","SPDXID":"SPDXRef-DOCUMENT","name":%q,"documentNamespace":"https://spdx.org/spdxdocs/xtraefik/test-%s","creationInfo":{"creators":["Tool: xtraefik-test"],"created":"2024-05-06T07:08:09Z"}}`+"\n", name, name))
}

// pushAssembled pushes an assembled image (an index, or one image with
// single) to host and returns its digest reference.
func pushAssembled(t *testing.T, host, repo string, single bool) (string, *Result) {
	t.Helper()
	baseOpts := testenv.BaseOptions{OCI: true, Single: single, Attestations: !single}
	testenv.PushBase(t, host+"/library/traefik:v3", baseOpts)
	res, err := Assemble(ctx(t), mustResolve(t, host+"/library/traefik:v3", Options{}), demoAddition(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Push(ctx(t), host+"/"+repo+":v1", res, Options{}); err != nil {
		t.Fatal(err)
	}
	return host + "/" + repo + "@" + res.Digest.String(), res
}

// TestAttachSBOMRealRegistry attaches SBOMs on Distribution, which has no
// referrers API: discovery goes through the referrers tag schema.
func TestAttachSBOMRealRegistry(t *testing.T) {
	crane := needTool(t, "crane")
	host := testenv.Registry(t, testenv.RegistryOptions{})

	// Distribution 2.x answers 404 on the referrers API: the fallback is what
	// is under test here.
	resp, err := http.Get("http://" + host + "/v2/team/traefik/referrers/" + emptyJSONDigest)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("the registry answers %d on the referrers API; this test wants one without it", resp.StatusCode)
	}

	for _, tt := range []struct {
		name   string
		single bool
		want   types.MediaType
	}{
		{"index", false, types.OCIImageIndex},
		{"single image", true, types.OCIManifestSchema1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			repo := "team/" + strings.ReplaceAll(tt.name, " ", "-")
			subject, res := pushAssembled(t, host, repo, tt.single)
			doc := testSBOM(tt.name)
			got, err := AttachSBOM(ctx(t), subject, doc, "", Options{})
			if err != nil {
				t.Fatal(err)
			}

			// Discovery as crane/oras-style clients do it.
			subj, err := name.NewDigest(subject)
			if err != nil {
				t.Fatal(err)
			}
			refs := referrers(t, subj)
			if len(refs) != 1 || refs[0].Digest != got || refs[0].ArtifactType != SPDXMediaType || refs[0].MediaType != types.OCIManifestSchema1 {
				t.Fatalf("referrers of %s: %+v, want the artifact %s", subject, refs, got)
			}
			// Filtering by artifact type (done client-side on the tag
			// schema) keeps the SBOM and drops the rest.
			for filter, want := range map[string]int{SPDXMediaType: 1, "application/vnd.example+json": 0} {
				idx, err := remote.Referrers(subj, remote.WithFilter("artifactType", filter))
				if err != nil {
					t.Fatal(err)
				}
				if im, err := idx.IndexManifest(); err != nil || len(im.Manifests) != want {
					t.Errorf("referrers of type %s: %v (%v), want %d", filter, im, err, want)
				}
			}

			// The artifact itself: artifactType, empty config, the document
			// as its only layer, and the subject's full descriptor.
			art := subj.Context().Digest(got.String())
			rawManifest, err := remote.Get(art)
			if err != nil {
				t.Fatal(err)
			}
			var m v1.Manifest
			if err := json.Unmarshal(rawManifest.Manifest, &m); err != nil {
				t.Fatal(err)
			}
			if m.MediaType != types.OCIManifestSchema1 || m.ArtifactType != SPDXMediaType {
				t.Errorf("artifact manifest: media type %s, artifact type %q", m.MediaType, m.ArtifactType)
			}
			if m.Config.MediaType != types.OCIEmptyJSON || m.Config.Digest.String() != emptyJSONDigest || m.Config.Size != 2 {
				t.Errorf("config descriptor %+v, want the OCI empty descriptor", m.Config)
			}
			if m.Subject == nil || m.Subject.Digest != res.Digest || m.Subject.MediaType != tt.want || m.Subject.Size == 0 {
				t.Errorf("subject %+v, want %s of type %s", m.Subject, res.Digest, tt.want)
			}
			if len(m.Layers) != 1 || m.Layers[0].MediaType != SPDXMediaType || m.Layers[0].Annotations[annotationTitle] != "sbom.spdx.json" {
				t.Fatalf("layers %+v", m.Layers)
			}
			if blob := run(t, crane, "blob", subj.Context().String()+"@"+m.Layers[0].Digest.String()); blob != string(doc) {
				t.Errorf("crane blob gives %q, want the document", blob)
			}
			if cfg := run(t, crane, "blob", subj.Context().String()+"@"+emptyJSONDigest); cfg != "{}" {
				t.Errorf("config blob %q", cfg)
			}

			// The referrers tag schema index, seen with crane.
			fallback := "sha256-" + res.Digest.Hex
			if tags := run(t, crane, "ls", subj.Context().String()); !strings.Contains(tags, fallback) {
				t.Errorf("crane ls lacks the referrers tag %s:\n%s", fallback, tags)
			}
			var idx v1.IndexManifest
			if err := json.Unmarshal([]byte(run(t, crane, "manifest", subj.Context().String()+":"+fallback)), &idx); err != nil {
				t.Fatal(err)
			}
			if idx.MediaType != types.OCIImageIndex || len(idx.Manifests) != 1 || idx.Manifests[0].Digest != got {
				t.Errorf("referrers tag index %+v", idx)
			}

			// Reproducible: the same document attaches as the same digest,
			// and is not listed twice.
			again, err := AttachSBOM(ctx(t), "docker://"+subject, doc, SPDXMediaType, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if again != got {
				t.Errorf("the same SBOM attached as %s, then %s", got, again)
			}
			if refs := referrers(t, subj); len(refs) != 1 {
				t.Errorf("after a second attach, %d referrers", len(refs))
			}

			// Another document is another referrer; the first stays.
			other, err := AttachSBOM(ctx(t), subject, testSBOM(tt.name+" v2"), "", Options{})
			if err != nil {
				t.Fatal(err)
			}
			if other == got {
				t.Fatal("two documents attached as one digest")
			}
			refs = referrers(t, subj)
			if len(refs) != 2 || !hasDigest(refs, got) || !hasDigest(refs, other) {
				t.Errorf("referrers %+v, want %s and %s", refs, got, other)
			}

			// The image is untouched: its tag still names the same digest.
			if d, err := remote.Head(mustName(t, host+"/"+repo+":v1")); err != nil || d.Digest != res.Digest {
				t.Errorf("the image tag now names %v (%v)", d, err)
			}
		})
	}
}

// TestAttachSBOMIsReproducibleAcrossRegistries: the digest depends only on
// the document and the subject, not on the registry or when it is pushed.
func TestAttachSBOMIsReproducibleAcrossRegistries(t *testing.T) {
	a, b := memRegistry(t), memRegistry(t)
	// The image names its base's registry (base.name): push the same
	// result, assembled once, to both.
	subjA, res := pushAssembled(t, a, "team/traefik", false)
	if _, err := Push(ctx(t), b+"/team/traefik:v1", res, Options{}); err != nil {
		t.Fatal(err)
	}
	subjB := b + "/team/traefik@" + res.Digest.String()
	da, err := AttachSBOM(ctx(t), subjA, testSBOM("x"), "", Options{})
	if err != nil {
		t.Fatal(err)
	}
	db, err := AttachSBOM(ctx(t), subjB, testSBOM("x"), "", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if da != db {
		t.Errorf("the same SBOM on the same image: %s on one registry, %s on another", da, db)
	}
	// A custom media type is the artifact type and carries no file name.
	dc, err := AttachSBOM(ctx(t), subjA, testSBOM("x"), "application/vnd.cyclonedx+json", Options{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := name.NewDigest(subjA)
	if err != nil {
		t.Fatal(err)
	}
	refs := referrers(t, d)
	var found bool
	for _, r := range refs {
		if r.Digest == dc {
			found = r.ArtifactType == "application/vnd.cyclonedx+json"
		}
	}
	if !found || len(refs) != 2 {
		t.Errorf("referrers %+v, want the CycloneDX artifact %s among two", refs, dc)
	}
}

func TestAttachSBOMRefusesBadInput(t *testing.T) {
	host := memRegistry(t)
	subject, _ := pushAssembled(t, host, "team/traefik", true)
	missing := host + "/team/traefik@sha256:" + strings.Repeat("0", 64)
	tests := []struct {
		name, subject string
		doc           []byte
		want          string
	}{
		{"tag", host + "/team/traefik:v1", testSBOM("x"), "by digest"},
		{"layout", "oci:/tmp/layout@" + strings.TrimPrefix(subject, host+"/team/traefik@"), testSBOM("x"), "registry reference"},
		{"empty document", subject, nil, "empty"},
		{"unknown subject", missing, testSBOM("x"), "subject"},
		{"bad reference", "docker://", testSBOM("x"), "attach SBOM"},
	}
	for _, tt := range tests {
		_, err := AttachSBOM(ctx(t), tt.subject, tt.doc, "", Options{})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error containing %q", tt.name, err, tt.want)
		}
	}
}

func referrers(t *testing.T, d name.Digest) []v1.Descriptor {
	t.Helper()
	idx, err := remote.Referrers(d)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	return im.Manifests
}

func hasDigest(ds []v1.Descriptor, h v1.Hash) bool {
	for _, d := range ds {
		if d.Digest == h {
			return true
		}
	}
	return false
}
