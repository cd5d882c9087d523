package images

import (
	"context"
	"errors"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
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
	// The subject descriptor needs the manifest's media type and size; the
	// registry also proves here that the subject exists.
	desc, err := remote.Head(ref, opts.remoteOptions(ctx)...)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("attach SBOM to %s: subject: %w", subject, opts.explain(err, ref))
	}
	if desc.Digest.String() != parsed.Digest {
		return v1.Hash{}, fmt.Errorf("attach SBOM to %s: the registry answered with %s", subject, desc.Digest)
	}
	p := NewPusher(opts)
	defer p.Close()
	digest, err := p.attach(ctx, ref.Context().Name(), v1.Descriptor{MediaType: desc.MediaType, Size: desc.Size, Digest: desc.Digest}, sbom, mediaType)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("attach SBOM to %s: %w", subject, err)
	}
	return digest, nil
}

// AttachSBOM is the package function AttachSBOM for r, and returns the
// artifact's digest. Unlike it, nothing asks the registry whether r is
// there: call it after Upload(ctx, repo, r) with the same repo ("host/path").
// The subject's descriptor is r's, and the artifact goes through the
// repository's connection.
func (p *Pusher) AttachSBOM(ctx context.Context, repo string, r *Result, sbom []byte, mediaType string) (v1.Hash, error) {
	if len(sbom) == 0 {
		return v1.Hash{}, errors.New("attach SBOM: the document is empty")
	}
	if mediaType == "" {
		mediaType = SPDXMediaType
	}
	t := r.taggable()
	mt, err := t.MediaType()
	if err != nil {
		return v1.Hash{}, err
	}
	raw, err := t.RawManifest()
	if err != nil {
		return v1.Hash{}, err
	}
	digest, err := p.attach(ctx, repo, v1.Descriptor{MediaType: mt, Size: int64(len(raw)), Digest: r.Digest}, sbom, mediaType)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("attach SBOM to %s@%s: %w", repo, r.Digest, err)
	}
	return digest, nil
}

// attach pushes sbom to repo as an artifact referring to subject.
func (p *Pusher) attach(ctx context.Context, repo string, subject v1.Descriptor, sbom []byte, mediaType string) (v1.Hash, error) {
	art, err := newArtifact(sbom, types.MediaType(mediaType), subject)
	if err != nil {
		return v1.Hash{}, err
	}
	digest, err := art.Digest()
	if err != nil {
		return v1.Hash{}, err
	}
	target, err := p.opts.parseName(repo + "@" + digest.String())
	if err != nil {
		return v1.Hash{}, err
	}
	rp, err := p.repo(ctx, target.Context().Name())
	if err != nil {
		return v1.Hash{}, err
	}
	if err := rp.p.Push(ctx, target, art); err != nil {
		return v1.Hash{}, fmt.Errorf("push artifact %s: %w", digest, p.opts.explain(err, target))
	}
	return digest, nil
}

// newArtifact is the SBOM document as an artifact referring to subject.
func newArtifact(doc []byte, mediaType types.MediaType, subject v1.Descriptor) (v1.Image, error) {
	spec := ArtifactSpec{ArtifactType: string(mediaType), Layer: static.NewLayer(doc, mediaType), Subject: &subject}
	if mediaType == SPDXMediaType {
		spec.LayerAnnotations = map[string]string{annotationTitle: "sbom.spdx.json"}
	}
	return Artifact(spec)
}
