package images

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// SPDXMediaType is the media type of an SPDX JSON document, and the default
// artifact type of an attached SBOM.
const SPDXMediaType = "application/spdx+json"

// annotationTitle names the layer's file for oras-style clients that pull
// artifacts to disk.
const annotationTitle = "org.opencontainers.image.title"

// emptyJSON is the OCI empty descriptor's content: an artifact manifest has
// no image configuration, and points at "{}" instead (image-spec v1.1).
var emptyJSON = []byte("{}")

// AttachSBOM pushes sbom as an OCI artifact that refers to subject (a
// registry reference by digest, "name@sha256:..."): an image manifest whose
// artifactType is mediaType (default SPDXMediaType), whose config is the
// empty descriptor and whose only layer is the document, with subject set to
// the image's or index's descriptor. Registries with the referrers API index
// it themselves; for the others (Distribution 2.x) go-containerregistry
// updates the referrers tag schema index "sha256-<hex>". The artifact holds
// no timestamp: the same document on the same subject is the same digest,
// which is returned.
func AttachSBOM(ctx context.Context, subject string, sbom []byte, mediaType string, opts Options) (v1.Hash, error) {
	if len(sbom) == 0 {
		return v1.Hash{}, errors.New("attach SBOM: the document is empty")
	}
	if mediaType == "" {
		mediaType = SPDXMediaType
	}
	parsed, err := ParseReference(subject)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("attach SBOM: %w", err)
	}
	if parsed.Transport != TransportDocker || parsed.Digest == "" {
		return v1.Hash{}, fmt.Errorf("attach SBOM to %s: want a registry reference by digest (name@sha256:...)", subject)
	}
	ref, err := opts.parseName(parsed.registryString())
	if err != nil {
		return v1.Hash{}, fmt.Errorf("attach SBOM to %s: %w", subject, err)
	}
	ropts := opts.remoteOptions(ctx)
	// The subject descriptor needs the manifest's media type and size; the
	// registry also proves here that the subject exists.
	desc, err := remote.Head(ref, ropts...)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("attach SBOM to %s: subject: %w", subject, opts.explain(err, ref))
	}
	if desc.Digest.String() != parsed.Digest {
		return v1.Hash{}, fmt.Errorf("attach SBOM to %s: the registry answered with %s", subject, desc.Digest)
	}
	art, err := newArtifact(sbom, types.MediaType(mediaType), v1.Descriptor{MediaType: desc.MediaType, Size: desc.Size, Digest: desc.Digest})
	if err != nil {
		return v1.Hash{}, fmt.Errorf("attach SBOM to %s: %w", subject, err)
	}
	digest, err := art.Digest()
	if err != nil {
		return v1.Hash{}, fmt.Errorf("attach SBOM to %s: %w", subject, err)
	}
	if err := remote.Write(ref.Context().Digest(digest.String()), art, ropts...); err != nil {
		return v1.Hash{}, fmt.Errorf("attach SBOM to %s: push artifact %s: %w", subject, digest, opts.explain(err, ref))
	}
	return digest, nil
}

// artifact is the SBOM artifact as a v1.Image, so that remote.Write uploads
// its two blobs and, seeing the subject, maintains the referrers tag.
// go-containerregistry's mutate cannot set artifactType nor write a config
// that is not an image configuration, hence this small core.
type artifact struct {
	manifest []byte
	blobs    map[v1.Hash]partial.CompressedLayer
}

func newArtifact(doc []byte, mediaType types.MediaType, subject v1.Descriptor) (v1.Image, error) {
	config := static.NewLayer(emptyJSON, types.OCIEmptyJSON)
	layer := static.NewLayer(doc, mediaType)
	cfgDesc, err := partial.Descriptor(config)
	if err != nil {
		return nil, err
	}
	layerDesc, err := partial.Descriptor(layer)
	if err != nil {
		return nil, err
	}
	if mediaType == SPDXMediaType {
		layerDesc.Annotations = map[string]string{annotationTitle: "sbom.spdx.json"}
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  string(mediaType),
		Config:        *cfgDesc,
		Layers:        []v1.Descriptor{*layerDesc},
		Subject:       &subject,
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return partial.CompressedToImage(&artifact{
		manifest: raw,
		blobs:    map[v1.Hash]partial.CompressedLayer{cfgDesc.Digest: config, layerDesc.Digest: layer},
	})
}

func (a *artifact) RawManifest() ([]byte, error)        { return a.manifest, nil }
func (a *artifact) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
func (a *artifact) RawConfigFile() ([]byte, error)      { return emptyJSON, nil }
func (a *artifact) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if l, ok := a.blobs[h]; ok {
		return l, nil
	}
	return nil, fmt.Errorf("blob %s is not part of the SBOM artifact", h)
}
