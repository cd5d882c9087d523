package images

import (
	"encoding/json"
	"maps"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
)

// inherited are the OCI keys that describe how an image was built, not what it
// holds. A base's values (its source repository, its commit, its own base, its
// creation time, a layout tag) are false of the image built on it, so they are
// dropped from manifests, index descriptors and config labels before the new
// build's own values are added.
var inherited = []string{
	"org.opencontainers.image.created",
	"org.opencontainers.image.source",
	"org.opencontainers.image.revision",
	AnnotationBaseName,
	AnnotationBaseDigest,
	annotationRefName,
}

// withoutInherited returns m minus the inherited keys (nil when empty).
func withoutInherited(m map[string]string) map[string]string {
	out := maps.Clone(m)
	for _, k := range inherited {
		delete(out, k)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// annotatedImage replaces an image manifest's annotations, where
// mutate.Annotations can only add to them.
type annotatedImage struct {
	v1.Image
	annotations map[string]string
}

func (a *annotatedImage) Manifest() (*v1.Manifest, error) {
	m, err := a.Image.Manifest()
	if err != nil {
		return nil, err
	}
	m = m.DeepCopy()
	m.Annotations = a.annotations
	return m, nil
}

func (a *annotatedImage) RawManifest() ([]byte, error) {
	m, err := a.Manifest()
	if err != nil {
		return nil, err
	}
	return json.Marshal(m)
}

func (a *annotatedImage) Digest() (v1.Hash, error) { return partial.Digest(a) }
func (a *annotatedImage) Size() (int64, error)     { return partial.Size(a) }
