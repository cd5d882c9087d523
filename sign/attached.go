package sign

import (
	"errors"
	"fmt"
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
// it: the registry is not trusted to keep it small.
const (
	maxAttachedLayers = 1000
	maxAttachedLayer  = 16 << 20
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
// annotations, none when the tag does not exist.
func readAttached(tag name.Tag, opts []remote.Option) ([]mutate.Addendum, error) {
	img, err := remote.Image(tag, opts...)
	var te *transport.Error
	if errors.As(err, &te) && te.StatusCode == http.StatusNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	if len(m.Layers) > maxAttachedLayers {
		return nil, fmt.Errorf("%s holds %d layers, more than %d", tag, len(m.Layers), maxAttachedLayers)
	}
	adds := make([]mutate.Addendum, 0, len(m.Layers))
	for _, desc := range m.Layers {
		if desc.Size > maxAttachedLayer {
			return nil, fmt.Errorf("%s: layer %s is %d bytes, more than %d", tag, desc.Digest, desc.Size, maxAttachedLayer)
		}
		l, err := img.LayerByDigest(desc.Digest)
		if err != nil {
			return nil, err
		}
		adds = append(adds, mutate.Addendum{Layer: l, Annotations: desc.Annotations, MediaType: desc.MediaType})
	}
	return adds, nil
}

// writeAttached writes layers as the attachment image at tag, in the OCI
// media types cosign writes by default.
func writeAttached(tag name.Tag, layers []mutate.Addendum, opts []remote.Option) error {
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	img, err := mutate.Append(base, layers...)
	if err != nil {
		return err
	}
	return remote.Write(tag, img, opts...)
}
