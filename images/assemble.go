package images

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/xtraefik/xtraefik/internal/plugin"
)

// Addition is what Assemble puts on top of every platform of a base.
type Addition struct {
	// Plugins land at plugin.Path(<WorkingDir or />, Module); only their
	// Module and Files are read.
	Plugins []plugin.Plugin
	// Files are added at absolute paths in the same layer.
	Files []ExtraFile
	// Epoch is every mtime in the layer, the config's Created and the history
	// entry's Created (SOURCE_DATE_EPOCH or the commit time). Zero means the
	// Unix epoch; sub-second parts are dropped (tar keeps seconds).
	Epoch time.Time
	// Labels are added to (and override those of) each platform's config.
	Labels map[string]string
	// Env entries (KEY=VALUE) replace the base's value of KEY or are appended.
	Env []string
	// Annotations go on each OCI manifest and OCI index; Docker v2 manifests
	// have no annotations field and get none.
	Annotations map[string]string
	// CreatedBy is the history entry's text.
	CreatedBy string
}

// Result is an assembled image or index, not yet written anywhere.
type Result struct {
	// Digest of the new manifest or index.
	Digest    v1.Hash
	MediaType types.MediaType
	// Layers maps each distinct WorkingDir ("/" for none) to the digest of the
	// plugin layer built for it; platforms sharing a WorkingDir share the layer.
	Layers map[string]v1.Hash
	// Platforms are the new images, in index order.
	Platforms []PlatformImage

	index  v1.ImageIndex // nil for a single image
	images []v1.Image    // parallel to Platforms
	blobs  *blobSource   // the base's blobs, when it came from a registry
}

// Assemble appends one plugin layer to every platform image of base (one layer
// per distinct WorkingDir, computed once), sets labels, env and timestamps, and
// writes a new index with the same entries when the base is an index.
func Assemble(ctx context.Context, base *Base, add Addition) (*Result, error) {
	if base == nil || len(base.images) == 0 || len(base.images) != len(base.Platforms) {
		return nil, errors.New("assemble: base is not resolved (use Resolve)")
	}
	if len(add.Plugins) == 0 && len(add.Files) == 0 {
		return nil, errors.New("assemble: nothing to add: no plugin and no file")
	}
	epoch, err := normaliseEpoch(add.Epoch)
	if err != nil {
		return nil, err
	}
	env, err := parseEnv(add.Env)
	if err != nil {
		return nil, err
	}
	res := &Result{Layers: map[string]v1.Hash{}, blobs: base.blobs}
	layers := map[string]v1.Layer{}
	for i, bp := range base.Platforms {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		wd := normaliseWorkdir(bp.WorkingDir)
		layer, ok := layers[wd]
		if !ok {
			layer, err = newPluginLayer(wd, add.Plugins, add.Files, epoch, base.cache())
			if err != nil {
				return nil, err
			}
			digest, err := layer.Digest()
			if err != nil {
				return nil, err
			}
			layers[wd], res.Layers[wd] = layer, digest
		}
		anns := baseAnnotations(base, bp.Digest, add.Annotations)
		img, err := extend(base.images[i], layer, add, epoch, env, anns)
		if err != nil {
			return nil, fmt.Errorf("assemble %s for %s: %w", base.describe(), bp.Platform, err)
		}
		digest, err := img.Digest()
		if err != nil {
			return nil, fmt.Errorf("assemble %s for %s: %w", base.describe(), bp.Platform, err)
		}
		res.images = append(res.images, img)
		res.Platforms = append(res.Platforms, PlatformImage{Platform: bp.Platform, Digest: digest, WorkingDir: bp.WorkingDir})
	}
	if base.index == nil {
		res.Digest = res.Platforms[0].Digest
		if res.MediaType, err = res.images[0].MediaType(); err != nil {
			return nil, fmt.Errorf("assemble %s: %w", base.describe(), err)
		}
		return res, nil
	}
	idx, err := extendIndex(base, res.images, add.Annotations)
	if err != nil {
		return nil, fmt.Errorf("assemble %s: index: %w", base.describe(), err)
	}
	res.index = idx
	if res.Digest, err = idx.Digest(); err != nil {
		return nil, fmt.Errorf("assemble %s: index: %w", base.describe(), err)
	}
	res.MediaType = base.MediaType
	return res, nil
}

// extend appends the layer to one platform image, in that manifest's media-type
// family: strict consumers (buildah) refuse manifests that mix OCI and Docker.
func extend(img v1.Image, layer v1.Layer, add Addition, epoch time.Time, env [][2]string, anns map[string]string) (v1.Image, error) {
	mt, err := img.MediaType()
	if err != nil {
		return nil, err
	}
	oci := mt == types.OCIManifestSchema1
	layerType := types.DockerLayer
	if oci {
		layerType = types.OCILayer
	}
	createdBy := add.CreatedBy
	if createdBy == "" {
		createdBy = "xtraefik: add plugins"
	}
	out, err := appendLayer(img, mutate.Addendum{
		Layer:     layer,
		MediaType: layerType,
		History:   v1.History{Created: v1.Time{Time: epoch}, CreatedBy: createdBy},
	}, epoch, func(cf *v1.ConfigFile) {
		cf.Config.Labels = withoutInherited(cf.Config.Labels)
		if len(add.Labels) > 0 {
			if cf.Config.Labels == nil {
				cf.Config.Labels = map[string]string{}
			}
			maps.Copy(cf.Config.Labels, add.Labels)
		}
		cf.Config.Env = mergeEnv(cf.Config.Env, env)
	})
	if err != nil {
		return nil, err
	}
	if oci {
		m, err := img.Manifest()
		if err != nil {
			return nil, err
		}
		all := withoutInherited(m.Annotations)
		if len(anns) > 0 {
			if all == nil {
				all = map[string]string{}
			}
			maps.Copy(all, anns)
		}
		out = &annotatedImage{Image: out, annotations: all}
	}
	return out, nil
}

// appendLayer appends add to img and writes its config anew, created at
// epoch and changed by edit (a copy: img's own config is left as it is).
func appendLayer(img v1.Image, add mutate.Addendum, epoch time.Time, edit func(*v1.ConfigFile)) (v1.Image, error) {
	out, err := mutate.Append(img, add)
	if err != nil {
		return nil, err
	}
	cf, err := out.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Created = v1.Time{Time: epoch}
	edit(cf)
	return mutate.ConfigFile(out, cf)
}

// extendIndex writes a new index with the base's entries in their order: the
// extended images with their descriptors' platform and annotations, everything
// else (attestations) as it was.
func extendIndex(base *Base, images []v1.Image, userAnns map[string]string) (v1.ImageIndex, error) {
	im, err := base.index.IndexManifest()
	if err != nil {
		return nil, err
	}
	adds := make([]mutate.IndexAddendum, 0, len(base.entries))
	for _, e := range base.entries {
		if e.platform < 0 {
			adds = append(adds, mutate.IndexAddendum{Add: e.keep, Descriptor: e.desc})
			continue
		}
		p := base.Platforms[e.platform].Platform
		desc := v1.Descriptor{Platform: &p, Annotations: withoutInherited(e.desc.Annotations)}
		if e.desc.Platform != nil {
			desc.Platform = e.desc.Platform.DeepCopy()
		}
		adds = append(adds, mutate.IndexAddendum{Add: images[e.platform], Descriptor: desc})
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, base.MediaType), adds...)
	anns := withoutInherited(im.Annotations)
	if base.MediaType == types.OCIImageIndex {
		if anns == nil {
			anns = map[string]string{}
		}
		maps.Copy(anns, baseAnnotations(base, base.Digest, userAnns))
	}
	if len(anns) > 0 {
		annotated, ok := mutate.Annotations(idx, anns).(v1.ImageIndex)
		if !ok {
			return nil, errors.New("annotating the index did not yield an index")
		}
		idx = annotated
	}
	return idx, nil
}

// baseAnnotations are the user's annotations plus the OCI base-image ones,
// which win: they state facts. base.name is the reference as written (never a
// mirror), and only for registry bases: a host path is no image name.
func baseAnnotations(base *Base, digest v1.Hash, user map[string]string) map[string]string {
	anns := maps.Clone(user)
	if anns == nil {
		anns = map[string]string{}
	}
	if base.Ref.Transport == TransportDocker {
		anns[AnnotationBaseName] = base.Ref.String()
	}
	anns[AnnotationBaseDigest] = digest.String()
	return anns
}

func normaliseEpoch(t time.Time) (time.Time, error) {
	if t.IsZero() {
		return time.Unix(0, 0).UTC(), nil
	}
	if t.Before(time.Unix(0, 0)) {
		return time.Time{}, fmt.Errorf("epoch %s is before 1970", t)
	}
	return t.UTC().Truncate(time.Second), nil
}

// normaliseWorkdir makes a config WorkingDir absolute and clean; "" is "/".
func normaliseWorkdir(wd string) string {
	return path.Join("/", wd)
}

func parseEnv(env []string) ([][2]string, error) {
	out := make([][2]string, 0, len(env))
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("environment entry %q: want KEY=VALUE", kv)
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

func mergeEnv(base []string, add [][2]string) []string {
	out := append([]string(nil), base...)
next:
	for _, kv := range add {
		entry := kv[0] + "=" + kv[1]
		for i, b := range out {
			if k, _, _ := strings.Cut(b, "="); k == kv[0] {
				out[i] = entry
				continue next
			}
		}
		out = append(out, entry)
	}
	return out
}

// Index is the result as go-containerregistry's index, the one pushed and
// whose digest is Digest; nil when the result is a single image (see
// Single).
func (r *Result) Index() v1.ImageIndex { return r.index }

// Single is the result's one image when it is not an index (its digest is
// Digest); nil for an index.
func (r *Result) Single() v1.Image {
	if r.index != nil || len(r.images) != 1 {
		return nil
	}
	return r.images[0]
}

// Image returns the result's image for platform p (or the only image when the
// result is a single image and p matches it).
func (r *Result) Image(p v1.Platform) (v1.Image, error) {
	i, err := r.pick(p)
	if err != nil {
		return nil, err
	}
	return r.images[i], nil
}

func (r *Result) pick(p v1.Platform) (int, error) {
	var match []int
	var have []v1.Platform
	for i, ri := range r.Platforms {
		have = append(have, ri.Platform)
		if ri.Platform.Satisfies(p) {
			match = append(match, i)
		}
	}
	switch len(match) {
	case 1:
		return match[0], nil
	case 0:
		return -1, fmt.Errorf("no image for platform %s (the result has %s)", p, platformList(have))
	}
	var ms []v1.Platform
	for _, i := range match {
		ms = append(ms, r.Platforms[i].Platform)
	}
	return -1, fmt.Errorf("platform %s is ambiguous: it matches %s; name one exactly", p, platformList(ms))
}
