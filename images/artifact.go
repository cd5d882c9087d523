package images

import (
	"encoding/json"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// emptyJSON is the OCI empty descriptor's content: an artifact manifest's
// config (image-spec v1.1).
var emptyJSON = []byte("{}")

// ArtifactSpec describes an OCI artifact of one blob (image-spec v1.1):
// the empty config, artifactType set, optionally a subject.
type ArtifactSpec struct {
	ArtifactType     string
	Layer            partial.CompressedLayer
	LayerAnnotations map[string]string
	Annotations      map[string]string
	// Subject makes the artifact a referrer of that manifest.
	Subject *v1.Descriptor
}

// Artifact builds spec as a v1.Image, for remote.Write (which uploads its
// blobs and, seeing a subject, maintains the referrers tag):
// go-containerregistry's mutate can neither set artifactType nor write a
// config that is not an image configuration.
func Artifact(spec ArtifactSpec) (v1.Image, error) {
	config := static.NewLayer(emptyJSON, types.OCIEmptyJSON)
	cfgDesc, err := partial.Descriptor(config)
	if err != nil {
		return nil, err
	}
	layerDesc, err := partial.Descriptor(spec.Layer)
	if err != nil {
		return nil, err
	}
	layerDesc.Annotations = spec.LayerAnnotations
	raw, err := json.Marshal(v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  spec.ArtifactType,
		Config:        *cfgDesc,
		Layers:        []v1.Descriptor{*layerDesc},
		Annotations:   spec.Annotations,
		Subject:       spec.Subject,
	})
	if err != nil {
		return nil, err
	}
	return partial.CompressedToImage(&artifact{
		manifest: raw,
		blobs:    map[v1.Hash]partial.CompressedLayer{cfgDesc.Digest: config, layerDesc.Digest: spec.Layer},
	})
}

// artifact is the core of an Artifact.
type artifact struct {
	manifest []byte
	blobs    map[v1.Hash]partial.CompressedLayer
}

func (a *artifact) RawManifest() ([]byte, error)        { return a.manifest, nil }
func (a *artifact) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
func (a *artifact) RawConfigFile() ([]byte, error)      { return emptyJSON, nil }
func (a *artifact) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if l, ok := a.blobs[h]; ok {
		return l, nil
	}
	return nil, fmt.Errorf("blob %s is not part of the artifact", h)
}
