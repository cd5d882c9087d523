package images

import (
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// ociLayerTypes maps Docker layer media types to their OCI equivalents; the
// blobs are the same bytes.
var ociLayerTypes = map[types.MediaType]types.MediaType{
	types.DockerLayer:             types.OCILayer,
	types.DockerForeignLayer:      types.OCIRestrictedLayer,
	types.DockerUncompressedLayer: types.OCIUncompressedLayer,
}

// toOCIImage re-describes a Docker v2 image with OCI media types (manifest,
// config and layers); blobs are untouched. Readers of OCI layouts (skopeo, umoci)
// only accept OCI manifests there.
func toOCIImage(img v1.Image) (v1.Image, error) {
	mt, err := img.MediaType()
	if err != nil {
		return nil, err
	}
	if mt != types.DockerManifestSchema2 {
		return img, nil
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	out := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	adds := make([]mutate.Addendum, 0, len(layers))
	for _, l := range layers {
		lmt, err := l.MediaType()
		if err != nil {
			return nil, err
		}
		if oci, ok := ociLayerTypes[lmt]; ok {
			lmt = oci
		}
		adds = append(adds, mutate.Addendum{Layer: l, MediaType: lmt})
	}
	if out, err = mutate.Append(out, adds...); err != nil {
		return nil, err
	}
	// The original config (history, diff IDs, labels) replaces what Append made.
	return mutate.ConfigFile(out, cf)
}

// OCI returns the result with OCI media types, as WriteLayout writes it: a Docker
// manifest list becomes an OCI index of converted images (same blobs, so a new
// digest); an OCI result is returned as is.
func (r *Result) OCI() (*Result, error) {
	if r.MediaType != types.DockerManifestSchema2 && r.MediaType != types.DockerManifestList {
		return r, nil
	}
	out := &Result{MediaType: types.OCIManifestSchema1, Layers: r.Layers, Platforms: append([]PlatformImage(nil), r.Platforms...), blobs: r.blobs}
	for i, img := range r.images {
		conv, err := toOCIImage(img)
		if err != nil {
			return nil, fmt.Errorf("convert %s to OCI media types: %w", r.Platforms[i].Platform, err)
		}
		if out.Platforms[i].Digest, err = conv.Digest(); err != nil {
			return nil, err
		}
		out.images = append(out.images, conv)
	}
	if r.index == nil {
		out.Digest = out.Platforms[0].Digest
		return out, nil
	}
	im, err := r.index.IndexManifest()
	if err != nil {
		return nil, err
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	next := 0
	for _, d := range im.Manifests {
		if d.MediaType != types.DockerManifestSchema2 || next >= len(out.images) {
			return nil, fmt.Errorf("convert index to OCI media types: unexpected entry %s (%s)", d.Digest, d.MediaType)
		}
		img := out.images[next]
		next++
		desc := v1.Descriptor{Platform: d.Platform, Annotations: d.Annotations}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: desc})
	}
	out.index = idx
	out.MediaType = types.OCIImageIndex
	var err2 error
	if out.Digest, err2 = idx.Digest(); err2 != nil {
		return nil, err2
	}
	return out, nil
}
