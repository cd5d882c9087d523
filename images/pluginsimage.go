package images

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/xtraefik/xtraefik/internal/plugin"
)

// AnnotationPluginsMount names, on a plugins image, the directory of the
// base it is meant to be mounted at (<WORKDIR>/plugins-local).
const AnnotationPluginsMount = "xtraefik.dev/mount-path"

// PluginsSpec is what PluginsImage puts in a plugins image.
type PluginsSpec struct {
	// Plugins land at src/<Module> from the image's root; only Module and
	// Files are read.
	Plugins []plugin.Plugin
	// Epoch is every mtime and the configs' Created (zero: the Unix epoch).
	Epoch time.Time
	// Labels go on each platform's config; Annotations on each manifest
	// and on the index, with the base's (org.opencontainers.image.base.*)
	// and AnnotationPluginsMount, which win.
	Labels      map[string]string
	Annotations map[string]string
}

// PluginsImage builds the plugins image of base: one layer holding only the
// plugin tree, rooted so that the image mounted read-only at the base's
// <WORKDIR>/plugins-local (a Kubernetes image volume, podman --mount
// type=image) is what Traefik reads; its root holds src/<module>/…. It is an
// OCI index with one manifest per platform of base, each config naming that
// platform, all sharing the one layer: whichever platform a runtime picks, it
// mounts the same files. Only the base's manifests and configs are read.
//
// The layer's content is the full image's plugin layer, but its paths start
// at src/ rather than <WORKDIR>/plugins-local/src/: the two layers are
// different blobs (a layer's paths are part of its bytes), and a repository
// holding both stores both.
//
// Every platform of base must have the same WORKDIR: the plugins are mounted
// at one path. The result has no history and fixed times: the same plugins,
// epoch, labels, annotations and base platforms give the same digest.
func PluginsImage(ctx context.Context, base *Base, spec PluginsSpec) (*Result, error) {
	if base == nil || len(base.images) == 0 || len(base.images) != len(base.Platforms) {
		return nil, errors.New("plugins image: base is not resolved (use Resolve)")
	}
	if len(spec.Plugins) == 0 {
		return nil, errors.New("plugins image: no plugin")
	}
	mount, err := PluginsMountPath(base)
	if err != nil {
		return nil, err
	}
	epoch, err := normaliseEpoch(spec.Epoch)
	if err != nil {
		return nil, err
	}
	layer, err := renderLayer("", "\x00plugins image", "plugins image layer", spec.Plugins, nil, epoch, base.cache())
	if err != nil {
		return nil, err
	}
	layerDigest, err := layer.Digest()
	if err != nil {
		return nil, fmt.Errorf("plugins image layer: %w", err)
	}
	res := &Result{MediaType: types.OCIImageIndex, Layers: map[string]v1.Hash{mount: layerDigest}}
	adds := make([]mutate.IndexAddendum, 0, len(base.Platforms))
	for _, bp := range base.Platforms {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		anns := baseAnnotations(base, bp.Digest, spec.Annotations)
		anns[AnnotationPluginsMount] = mount
		img, err := pluginsPlatformImage(layer, bp.Platform, epoch, spec.Labels, anns)
		if err != nil {
			return nil, fmt.Errorf("plugins image for %s: %w", bp.Platform, err)
		}
		digest, err := img.Digest()
		if err != nil {
			return nil, fmt.Errorf("plugins image for %s: %w", bp.Platform, err)
		}
		p := bp.Platform
		res.images = append(res.images, img)
		res.Platforms = append(res.Platforms, PlatformImage{Platform: p, Digest: digest, WorkingDir: "/"})
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...)
	anns := baseAnnotations(base, base.Digest, spec.Annotations)
	anns[AnnotationPluginsMount] = mount
	annotated, ok := mutate.Annotations(idx, anns).(v1.ImageIndex)
	if !ok {
		return nil, errors.New("plugins image: annotating the index did not yield an index")
	}
	res.index = annotated
	if res.Digest, err = annotated.Digest(); err != nil {
		return nil, fmt.Errorf("plugins image: index: %w", err)
	}
	return res, nil
}

// pluginsPlatformImage is one platform's manifest of a plugins image: an
// OCI config naming the platform, with the layer's diff ID and nothing else
// a runtime would act on (no entrypoint: it is mounted, not run).
func pluginsPlatformImage(layer v1.Layer, p v1.Platform, epoch time.Time, labels, anns map[string]string) (v1.Image, error) {
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := appendLayer(img, mutate.Addendum{Layer: layer, MediaType: types.OCILayer}, epoch, func(cf *v1.ConfigFile) {
		cf.OS, cf.Architecture, cf.Variant, cf.OSVersion = p.OS, p.Architecture, p.Variant, p.OSVersion
		cf.OSFeatures = append([]string(nil), p.OSFeatures...)
		// Append records an empty history entry: a plugins image has no
		// build steps to tell.
		cf.History = nil
		cf.Config = v1.Config{Labels: maps.Clone(labels)}
	})
	if err != nil {
		return nil, err
	}
	return &annotatedImage{Image: img, annotations: anns}, nil
}

// PluginsMountPath is where a plugins image of base is mounted:
// <WORKDIR>/plugins-local, the same for every platform or an error.
func PluginsMountPath(base *Base) (string, error) {
	if base == nil || len(base.Platforms) == 0 {
		return "", errors.New("plugins image: base is not resolved (use Resolve)")
	}
	wd := normaliseWorkdir(base.Platforms[0].WorkingDir)
	for _, p := range base.Platforms[1:] {
		if other := normaliseWorkdir(p.WorkingDir); other != wd {
			return "", fmt.Errorf("plugins image: base %s has WORKDIR %s for %s but %s for %s: one image volume is mounted at one path; narrow the platforms",
				base.describe(), wd, base.Platforms[0].Platform, other, p.Platform)
		}
	}
	return path.Join(wd, plugin.LocalDir), nil
}

// Image is the base's image for Platforms[i]; its layers are read when
// asked for. A caller that acts on a layer's content checks its digests
// itself (package plugininstall does).
func (b *Base) Image(i int) (v1.Image, error) {
	if i < 0 || i >= len(b.images) {
		return nil, fmt.Errorf("image %s has no platform #%d", b.describe(), i)
	}
	return b.images[i], nil
}
