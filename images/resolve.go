package images

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Annotation keys this package reads or writes.
const (
	AnnotationBaseName   = "org.opencontainers.image.base.name"
	AnnotationBaseDigest = "org.opencontainers.image.base.digest"
	annotationRefName    = "org.opencontainers.image.ref.name"
	// BuildKit marks attestation manifests with these; they are not runnable.
	annotationReferenceType   = "vnd.docker.reference.type"
	annotationReferenceDigest = "vnd.docker.reference.digest"
)

// PlatformImage is one runnable image of a base or a result.
type PlatformImage struct {
	Platform v1.Platform
	// Digest of the platform's image manifest.
	Digest v1.Hash
	// WorkingDir as the image config says; "" means "/".
	WorkingDir string
}

// Base is a resolved base image: a single image or an index.
type Base struct {
	// Ref is the reference as the user wrote it (never the mirror).
	Ref Reference
	// Digest of the manifest or index Ref resolved to.
	Digest v1.Hash
	// MediaType of that manifest or index.
	MediaType types.MediaType
	// Platforms are the images that receive plugins, in index order, after
	// Options.Platforms narrowed them.
	Platforms []PlatformImage
	// Mirror is where a registry base was actually pulled from, if a mirror.
	Mirror string

	blobs   *blobSource   // a registry base's manifests and blobs; nil for local bases
	index   v1.ImageIndex // nil for a single image
	images  []v1.Image    // parallel to Platforms
	entries []baseEntry   // index entries to write, in index order
}

// baseEntry is one descriptor of a base index: a runnable image that gets the
// plugin layer (platform >= 0) or anything else, kept as it is.
type baseEntry struct {
	desc     v1.Descriptor
	platform int // index into Base.Platforms; -1 for kept entries
	keep     mutate.Appendable
}

// describe names the base for errors: the reference as written and the mirror.
func (b *Base) describe() string { return describe(b.Ref, b.Mirror) }

func describe(ref Reference, mirror string) string {
	if mirror != "" {
		return fmt.Sprintf("%s (via mirror %s)", ref, mirror)
	}
	return ref.String()
}

// Resolve reads the base image ref names. Only manifests and configs are
// fetched; layers are read later, and only if an output needs them. Every
// platform in opts.Platforms must be in the base.
func Resolve(ctx context.Context, ref Reference, opts Options) (*Base, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkPlatforms(opts.Platforms); err != nil {
		return nil, err
	}
	switch ref.Transport {
	case TransportDocker, "":
		ref.Transport = TransportDocker
		pull, mirror, err := opts.pullName(ref)
		if err != nil {
			return nil, err
		}
		return resolveRemote(ctx, ref, pull, mirror, opts)
	case TransportOCI:
		return resolveLayout(ref, opts)
	case TransportDockerArchive:
		return resolveArchive(ref, opts)
	}
	return nil, fmt.Errorf("base image %s: unknown transport %q", ref, ref.Transport)
}

// ResolveDigest resolves ref and fails if its content is not digest (a locked
// base). A registry base is fetched by digest, so a tag that moved since the
// lock does not matter; the registry's answer is checked against the digest.
func ResolveDigest(ctx context.Context, ref Reference, digest v1.Hash, opts Options) (*Base, error) {
	if ref.Digest != "" && ref.Digest != digest.String() {
		return nil, fmt.Errorf("base image %s pins %s but %s is expected", ref, ref.Digest, digest)
	}
	if err := checkPlatforms(opts.Platforms); err != nil {
		return nil, err
	}
	var (
		b   *Base
		err error
	)
	if ref.Transport == TransportDocker || ref.Transport == "" {
		pinned := ref
		pinned.Transport, pinned.Digest = TransportDocker, digest.String()
		pull, mirror, perr := opts.pullName(pinned)
		if perr != nil {
			return nil, perr
		}
		b, err = resolveRemote(ctx, ref, pull, mirror, opts)
	} else {
		b, err = Resolve(ctx, ref, opts)
	}
	if err != nil {
		return nil, err
	}
	if b.Digest != digest {
		return nil, fmt.Errorf("base image %s is %s, expected %s: the base changed since it was locked", b.describe(), b.Digest, digest)
	}
	return b, nil
}

func resolveRemote(ctx context.Context, ref Reference, pull, mirror string, opts Options) (*Base, error) {
	b := &Base{Ref: ref, Mirror: mirror}
	pref, err := opts.parseName(pull)
	if err != nil {
		return nil, fmt.Errorf("base image %s: %w", b.describe(), err)
	}
	src := &blobSource{store: opts.Cache, repo: pref.Context(), ropts: opts.remoteOptions(ctx),
		offline: opts.Offline, what: b.describe(), opts: opts}
	b.blobs = src
	var raw []byte
	if d, ok := pref.(name.Digest); ok {
		// A digest names its content: the cache answers, else the registry.
		h, err := v1.NewHash(d.DigestStr())
		if err != nil {
			return nil, fmt.Errorf("base image %s: %w", b.describe(), err)
		}
		if raw, b.MediaType, err = src.manifest(h); err != nil {
			return nil, err
		}
		b.Digest = h
	} else {
		if opts.Offline {
			return nil, fmt.Errorf("base image %s: a tag is resolved by its registry, and this build is offline: lock the recipe first: %w", b.describe(), ErrNotCached)
		}
		desc, err := remote.Get(pref, src.ropts...)
		if err != nil {
			var terr *transport.Error
			if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
				return nil, fmt.Errorf("base image %s not found: %w", b.describe(), opts.explain(err, pref))
			}
			return nil, fmt.Errorf("base image %s: %w", b.describe(), opts.explain(err, pref))
		}
		raw, b.Digest, b.MediaType = desc.Manifest, desc.Digest, desc.MediaType
		src.keep(desc.Digest, raw)
	}
	switch {
	case b.MediaType.IsIndex():
		idx, err := newCachedIndex(src, b.Digest, raw, b.MediaType)
		if err != nil {
			return nil, err
		}
		return b, b.fromIndex(idx, opts.Platforms)
	case b.MediaType.IsImage():
		img, err := newCachedImage(src, b.Digest, raw, b.MediaType)
		if err != nil {
			return nil, err
		}
		return b, b.fromImage(img, opts.Platforms)
	}
	return nil, fmt.Errorf("base image %s: unsupported manifest media type %s", b.describe(), b.MediaType)
}

func resolveLayout(ref Reference, opts Options) (*Base, error) {
	b := &Base{Ref: ref}
	if _, err := os.Stat(ref.Path); err != nil {
		return nil, fmt.Errorf("base image %s not found: %w", ref, err)
	}
	lp, err := layout.FromPath(ref.Path)
	if err != nil {
		return nil, fmt.Errorf("base image %s: not an OCI layout: %w", ref, err)
	}
	ii, err := lp.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("base image %s: %w", ref, err)
	}
	parent, desc, err := pickLayoutEntry(ref, ii)
	if err != nil {
		return nil, err
	}
	b.Digest, b.MediaType = desc.Digest, desc.MediaType
	switch {
	case desc.MediaType.IsIndex():
		idx, err := parent.ImageIndex(desc.Digest)
		if err != nil {
			return nil, fmt.Errorf("base image %s: %w", ref, err)
		}
		return b, b.fromIndex(idx, opts.Platforms)
	case desc.MediaType.IsImage():
		img, err := parent.Image(desc.Digest)
		if err != nil {
			return nil, fmt.Errorf("base image %s: %w", ref, err)
		}
		return b, b.fromImage(img, opts.Platforms)
	}
	return nil, fmt.Errorf("base image %s: unsupported manifest media type %s", ref, desc.MediaType)
}

// pickLayoutEntry finds the descriptor ref selects in a layout's index.json: by
// digest (also one level down, to pick one platform of an index), by tag
// (org.opencontainers.image.ref.name), or the only entry.
func pickLayoutEntry(ref Reference, ii v1.ImageIndex) (v1.ImageIndex, v1.Descriptor, error) {
	im, err := ii.IndexManifest()
	if err != nil {
		return nil, v1.Descriptor{}, fmt.Errorf("base image %s: %w", ref, err)
	}
	switch {
	case ref.Digest != "":
		for _, d := range im.Manifests {
			if d.Digest.String() == ref.Digest {
				return ii, d, nil
			}
		}
		for _, d := range im.Manifests {
			if !d.MediaType.IsIndex() {
				continue
			}
			child, err := ii.ImageIndex(d.Digest)
			if err != nil {
				return nil, v1.Descriptor{}, fmt.Errorf("base image %s: %w", ref, err)
			}
			cm, err := child.IndexManifest()
			if err != nil {
				return nil, v1.Descriptor{}, fmt.Errorf("base image %s: %w", ref, err)
			}
			for _, cd := range cm.Manifests {
				if cd.Digest.String() == ref.Digest {
					return child, cd, nil
				}
			}
		}
		return nil, v1.Descriptor{}, fmt.Errorf("base image %s not found: no manifest %s in the layout", ref, ref.Digest)
	case ref.Tag != "":
		for _, d := range im.Manifests {
			if d.Annotations[annotationRefName] == ref.Tag {
				return ii, d, nil
			}
		}
		return nil, v1.Descriptor{}, fmt.Errorf("base image %s not found: no tag %q in the layout (tags: %s)", ref, ref.Tag, layoutTags(im))
	}
	if len(im.Manifests) != 1 {
		return nil, v1.Descriptor{}, fmt.Errorf("base image %s: the layout holds %d manifests, name one with oci:<dir>:<tag> or @<digest> (tags: %s)", ref, len(im.Manifests), layoutTags(im))
	}
	return ii, im.Manifests[0], nil
}

func layoutTags(im *v1.IndexManifest) string {
	var tags []string
	for _, d := range im.Manifests {
		if t := d.Annotations[annotationRefName]; t != "" {
			tags = append(tags, t)
		}
	}
	if len(tags) == 0 {
		return "none"
	}
	return strings.Join(tags, ", ")
}

func resolveArchive(ref Reference, opts Options) (*Base, error) {
	b := &Base{Ref: ref}
	if _, err := os.Stat(ref.Path); err != nil {
		return nil, fmt.Errorf("base image %s not found: %w", ref, err)
	}
	tag, err := ref.archiveTag()
	if err != nil {
		return nil, fmt.Errorf("base image %s: %w", ref, err)
	}
	img, err := tarball.ImageFromPath(ref.Path, tag)
	if err != nil {
		return nil, fmt.Errorf("base image %s: %w", ref, err)
	}
	if b.Digest, err = img.Digest(); err != nil {
		return nil, fmt.Errorf("base image %s: %w", ref, err)
	}
	if b.MediaType, err = img.MediaType(); err != nil {
		return nil, fmt.Errorf("base image %s: %w", ref, err)
	}
	return b, b.fromImage(img, opts.Platforms)
}

func (b *Base) fromImage(img v1.Image, want []v1.Platform) error {
	cf, err := img.ConfigFile()
	if err != nil {
		return fmt.Errorf("base image %s: config: %w", b.describe(), err)
	}
	p := configPlatform(cf)
	if !wanted(p, want) {
		if p.OS == "" && p.Architecture == "" {
			return fmt.Errorf("base image %s cannot be narrowed to %s: its config names no platform (os and architecture are empty); set them on the base, e.g. crane mutate --set-platform linux/amd64", b.describe(), platformList(want))
		}
		return fmt.Errorf("base image %s is %s only, not %s", b.describe(), p, platformList(want))
	}
	b.images = []v1.Image{img}
	b.Platforms = []PlatformImage{{Platform: p, Digest: b.Digest, WorkingDir: cf.Config.WorkingDir}}
	return nil
}

func (b *Base) fromIndex(idx v1.ImageIndex, want []v1.Platform) error {
	im, err := idx.IndexManifest()
	if err != nil {
		return fmt.Errorf("base image %s: %w", b.describe(), err)
	}
	b.index = idx
	dropped := map[string]bool{}
	var available []v1.Platform
	for _, d := range im.Manifests {
		switch {
		case d.MediaType.IsIndex():
			return fmt.Errorf("base image %s: nested index %s is not supported", b.describe(), d.Digest)
		case d.MediaType.IsImage() && !isAttestation(d):
			img, err := idx.Image(d.Digest)
			if err != nil {
				return fmt.Errorf("base image %s: manifest %s: %w", b.describe(), d.Digest, err)
			}
			cf, err := img.ConfigFile()
			if err != nil {
				return fmt.Errorf("base image %s: config of %s: %w", b.describe(), d.Digest, err)
			}
			p := configPlatform(cf)
			if d.Platform != nil {
				p = *d.Platform
			}
			available = append(available, p)
			if !wanted(p, want) {
				dropped[d.Digest.String()] = true
				continue
			}
			b.entries = append(b.entries, baseEntry{desc: d, platform: len(b.Platforms)})
			b.Platforms = append(b.Platforms, PlatformImage{Platform: p, Digest: d.Digest, WorkingDir: cf.Config.WorkingDir})
			b.images = append(b.images, img)
		default:
			keep, err := keepable(idx, d)
			if err != nil {
				return fmt.Errorf("base image %s: %w", b.describe(), err)
			}
			b.entries = append(b.entries, baseEntry{desc: d, platform: -1, keep: keep})
		}
	}
	for _, spec := range want {
		if !anySatisfies(available, spec) {
			return fmt.Errorf("base image %s has no platform %s (it has %s)", b.describe(), spec, platformList(available))
		}
	}
	if len(b.Platforms) == 0 {
		return fmt.Errorf("base image %s: the index holds no runnable image", b.describe())
	}
	// Attestations of platforms narrowed away would describe images that are
	// no longer there.
	kept := b.entries[:0]
	for _, e := range b.entries {
		if e.platform < 0 && dropped[e.desc.Annotations[annotationReferenceDigest]] {
			continue
		}
		kept = append(kept, e)
	}
	b.entries = kept
	return nil
}

func keepable(idx v1.ImageIndex, d v1.Descriptor) (mutate.Appendable, error) {
	if d.MediaType.IsImage() {
		img, err := idx.Image(d.Digest)
		if err != nil {
			return nil, fmt.Errorf("manifest %s: %w", d.Digest, err)
		}
		return img, nil
	}
	return nil, fmt.Errorf("index entry %s has media type %s, which cannot be carried over", d.Digest, d.MediaType)
}

// isAttestation tells BuildKit attestation manifests (platform unknown/unknown)
// from runnable images.
func isAttestation(d v1.Descriptor) bool {
	if d.Annotations[annotationReferenceType] == "attestation-manifest" {
		return true
	}
	return d.Platform != nil && d.Platform.OS == "unknown" && d.Platform.Architecture == "unknown"
}

func configPlatform(cf *v1.ConfigFile) v1.Platform {
	if p := cf.Platform(); p != nil {
		return *p
	}
	return v1.Platform{}
}

func wanted(p v1.Platform, want []v1.Platform) bool {
	if len(want) == 0 {
		return true
	}
	for _, spec := range want {
		if p.Satisfies(spec) {
			return true
		}
	}
	return false
}

func anySatisfies(have []v1.Platform, spec v1.Platform) bool {
	for _, p := range have {
		if p.Satisfies(spec) {
			return true
		}
	}
	return false
}

func platformList(ps []v1.Platform) string {
	if len(ps) == 0 {
		return "no platform"
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}
