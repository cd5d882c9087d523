package sign

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Where cosign looks for what is attached to an image: an image tagged
// `<alg>-<hex>.<suffix>` in the image's repository, one layer per signature
// or attestation, the signature in a layer annotation.
const (
	signatureSuffix     = "sig"
	attestationSuffix   = "att"
	signatureAnnotation = "dev.cosignproject.cosign/signature"
)

// Bounds on what an existing attachment image may hold, as cosign bounds
// it: the registry is not trusted to keep it small. A manifest is counted
// before it is parsed, and layers are read only up to their declared size.
const (
	maxAttachedLayers   = 1000
	maxAttachedLayer    = 16 << 20
	maxAttachedManifest = 8 << 20
	maxSignature        = 64 << 10
)

// attachedTag is the tag holding ref's attachments of one kind.
func attachedTag(ref name.Digest, suffix string) (name.Tag, error) {
	h, err := v1.NewHash(ref.DigestStr())
	if err != nil {
		return name.Tag{}, err
	}
	return ref.Context().Tag(fmt.Sprintf("%s-%s.%s", h.Algorithm, h.Hex, suffix)), nil
}

// readAttached returns the layers of the attachment image at tag with their
// annotations, and the image's manifest media type; none when the tag does
// not exist. The image's config is never read (see attachedLayer).
func readAttached(tag name.Tag, opts []remote.Option) ([]mutate.Addendum, types.MediaType, error) {
	desc, err := remote.Get(tag, opts...)
	var te *transport.Error
	if errors.As(err, &te) && te.StatusCode == http.StatusNotFound {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	if len(desc.Manifest) > maxAttachedManifest {
		return nil, "", fmt.Errorf("%s: a manifest of %d bytes, more than %d", tag, len(desc.Manifest), maxAttachedManifest)
	}
	// Elements of size zero: counting allocates nothing per layer.
	var count struct {
		Layers []struct{} `json:"layers"`
	}
	if err := json.Unmarshal(desc.Manifest, &count); err != nil {
		return nil, "", fmt.Errorf("%s: %w", tag, err)
	}
	if len(count.Layers) > maxAttachedLayers {
		return nil, "", fmt.Errorf("%s holds %d layers, more than %d", tag, len(count.Layers), maxAttachedLayers)
	}
	img, err := desc.Image()
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", tag, err)
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, "", err
	}
	adds := make([]mutate.Addendum, 0, len(m.Layers))
	for _, d := range m.Layers {
		if d.Size < 0 || d.Size > maxAttachedLayer {
			return nil, "", fmt.Errorf("%s: layer %s is said to be %d bytes, not 0 to %d", tag, d.Digest, d.Size, maxAttachedLayer)
		}
		l, err := img.LayerByDigest(d.Digest)
		if err != nil {
			return nil, "", err
		}
		adds = append(adds, mutate.Addendum{Layer: attachedLayer{l}, Annotations: d.Annotations, MediaType: d.MediaType})
	}
	return adds, desc.MediaType, nil
}

// attachedLayer is a layer of an attachment image. Cosign stores
// signatures and attestations uncompressed: the blob is the content and its
// digest the diff ID, so the image's config (unbounded, the registry's to
// make up) need not be read to rewrite the image. Reads are checked
// against the digest and the declared size.
type attachedLayer struct{ v1.Layer }

func (l attachedLayer) DiffID() (v1.Hash, error)             { return l.Digest() }
func (l attachedLayer) Uncompressed() (io.ReadCloser, error) { return l.Compressed() }

// attachment is what one attachment tag holds, to be rewritten.
type attachment struct {
	tag    name.Tag
	layers []mutate.Addendum
	was    types.MediaType // the manifest media type found, "" for none
	opts   []remote.Option // writes through the Signer's connection
}

// write replaces the tag's image with one of layers.
func (a *attachment) write(layers []mutate.Addendum) error {
	return writeAttached(a.tag, layers, a.was, a.opts)
}

// writeAttached writes layers as the attachment image at tag: in the media
// types of the image it replaces when that was a Docker one (cosign writes
// those under COSIGN_DOCKER_MEDIA_TYPES, for registries without OCI
// manifests), else in the OCI ones cosign writes by default.
func writeAttached(tag name.Tag, layers []mutate.Addendum, was types.MediaType, opts []remote.Option) error {
	if len(layers) > maxAttachedLayers {
		// cosign would refuse to verify any of them.
		return fmt.Errorf("%s would hold %d layers, more than %d", tag, len(layers), maxAttachedLayers)
	}
	base := empty.Image // Docker media types
	if was != types.DockerManifestSchema2 {
		base = mutate.MediaType(base, types.OCIManifestSchema1)
		base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	}
	img, err := mutate.Append(base, layers...)
	if err != nil {
		return err
	}
	return remote.Write(tag, img, opts...)
}
