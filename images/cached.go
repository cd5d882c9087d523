package images

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/xtraefik/xtraefik/images/blobstore"
)

// ErrNotCached marks what an offline build needs from a registry and the
// blob cache does not hold.
var ErrNotCached = errors.New("not in the cache")

// blobSource reads a registry base's manifests and blobs: from the blob
// cache when it holds them (checked by digest), else from the repository,
// keeping a copy; offline, a miss is ErrNotCached.
type blobSource struct {
	store   *blobstore.Store // nil: no cache
	repo    name.Repository
	ropts   []remote.Option
	offline bool
	what    string // the base, for messages
	opts    Options
}

// manifest returns the manifest or index with digest h.
func (s *blobSource) manifest(h v1.Hash) ([]byte, types.MediaType, error) {
	if s.store != nil {
		if raw, err := s.store.Get(h); err == nil {
			return raw, sniffMediaType(raw), nil
		}
	}
	if s.offline {
		return nil, "", fmt.Errorf("base image %s: manifest %s: %w (offline)", s.what, h, ErrNotCached)
	}
	ref := s.repo.Digest(h.String())
	desc, err := remote.Get(ref, s.ropts...)
	if err != nil {
		var terr *transport.Error
		if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
			return nil, "", fmt.Errorf("base image %s not found: %w", s.what, s.opts.explain(err, ref))
		}
		return nil, "", fmt.Errorf("base image %s: manifest %s: %w", s.what, h, s.opts.explain(err, ref))
	}
	if desc.Digest != h {
		return nil, "", fmt.Errorf("base image %s: the registry answered %s for manifest %s", s.what, desc.Digest, h)
	}
	s.keep(h, desc.Manifest)
	return desc.Manifest, desc.MediaType, nil
}

// small returns a small blob (a config) with digest h.
func (s *blobSource) small(h v1.Hash) ([]byte, error) {
	if s.store != nil {
		if raw, err := s.store.Get(h); err == nil {
			return raw, nil
		}
	}
	if s.offline {
		return nil, fmt.Errorf("base image %s: blob %s: %w (offline)", s.what, h, ErrNotCached)
	}
	rc, err := s.remoteBlob(h)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	raw, err := io.ReadAll(io.LimitReader(rc, blobstore.MaxSmall+1))
	if err != nil {
		return nil, fmt.Errorf("base image %s: blob %s: %w", s.what, h, err)
	}
	if len(raw) > blobstore.MaxSmall {
		return nil, fmt.Errorf("base image %s: blob %s is larger than %d bytes", s.what, h, blobstore.MaxSmall)
	}
	s.keep(h, raw)
	return raw, nil
}

func (s *blobSource) remoteBlob(h v1.Hash) (io.ReadCloser, error) {
	ref := s.repo.Digest(h.String())
	l, err := remote.Layer(ref, s.ropts...)
	if err != nil {
		return nil, fmt.Errorf("base image %s: blob %s: %w", s.what, h, s.opts.explain(err, ref))
	}
	// go-containerregistry checks the digest as the stream ends.
	rc, err := l.Compressed()
	if err != nil {
		return nil, fmt.Errorf("base image %s: blob %s: %w", s.what, h, s.opts.explain(err, ref))
	}
	return rc, nil
}

// keep stores a blob already checked against h; a cache that cannot take
// it costs a fetch next time, nothing more.
func (s *blobSource) keep(h v1.Hash, raw []byte) {
	if s.store != nil {
		_ = s.store.Put(h, raw)
	}
}

// open streams a layer: from the cache, else from the registry while a copy
// goes into the cache.
func (s *blobSource) open(h v1.Hash) (io.ReadCloser, error) {
	if s.store != nil {
		rc, err := s.store.Open(h)
		if err == nil {
			return rc, nil
		}
		if !errors.Is(err, blobstore.ErrNotFound) {
			return nil, fmt.Errorf("base image %s: %w", s.what, err)
		}
	}
	if s.offline {
		return nil, fmt.Errorf("base image %s: layer %s: %w (offline)", s.what, h, ErrNotCached)
	}
	rc, err := s.remoteBlob(h)
	if err != nil || s.store == nil {
		return rc, err
	}
	w, err := s.store.Writer(h)
	if err != nil {
		return rc, nil // reading still works without keeping a copy
	}
	return &filling{rc: rc, w: w}, nil
}

// filling copies a layer into the cache as it is read, keeping it only if
// it was read to the end with the right digest.
type filling struct {
	rc io.ReadCloser
	w  *blobstore.Writer
}

func (f *filling) Read(p []byte) (int, error) {
	n, err := f.rc.Read(p)
	if n > 0 {
		if _, werr := f.w.Write(p[:n]); werr != nil {
			f.w.Abort()
		}
	}
	if errors.Is(err, io.EOF) {
		_ = f.w.Commit()
	} else if err != nil {
		f.w.Abort()
	}
	return n, err
}

func (f *filling) Close() error {
	f.w.Abort()
	return f.rc.Close()
}

// sniffMediaType reads a manifest's mediaType; OCI manifests may leave it
// out, and then their shape tells.
func sniffMediaType(raw []byte) types.MediaType {
	var m struct {
		MediaType types.MediaType `json:"mediaType"`
		Manifests json.RawMessage `json:"manifests"`
	}
	if json.Unmarshal(raw, &m) != nil {
		return ""
	}
	switch {
	case m.MediaType != "":
		return m.MediaType
	case m.Manifests != nil:
		return types.OCIImageIndex
	}
	return types.OCIManifestSchema1
}

// cachedIndex is an image index read through a blobSource.
type cachedIndex struct {
	src    *blobSource
	raw    []byte
	digest v1.Hash
	mt     types.MediaType
	im     *v1.IndexManifest
}

var _ v1.ImageIndex = (*cachedIndex)(nil)

func newCachedIndex(src *blobSource, h v1.Hash, raw []byte, mt types.MediaType) (*cachedIndex, error) {
	im, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("base image %s: index %s: %w", src.what, h, err)
	}
	return &cachedIndex{src: src, raw: raw, digest: h, mt: mt, im: im}, nil
}

func (i *cachedIndex) MediaType() (types.MediaType, error)         { return i.mt, nil }
func (i *cachedIndex) Digest() (v1.Hash, error)                    { return i.digest, nil }
func (i *cachedIndex) Size() (int64, error)                        { return int64(len(i.raw)), nil }
func (i *cachedIndex) IndexManifest() (*v1.IndexManifest, error)   { return i.im.DeepCopy(), nil }
func (i *cachedIndex) RawManifest() ([]byte, error)                { return i.raw, nil }
func (i *cachedIndex) ImageIndex(h v1.Hash) (v1.ImageIndex, error) { return nil, errNested(h) }

func errNested(h v1.Hash) error { return fmt.Errorf("nested index %s is not supported", h) }

func (i *cachedIndex) Image(h v1.Hash) (v1.Image, error) {
	for _, d := range i.im.Manifests {
		if d.Digest != h {
			continue
		}
		raw, mt, err := i.src.manifest(h)
		if err != nil {
			return nil, err
		}
		if d.MediaType != "" {
			mt = d.MediaType
		}
		return newCachedImage(i.src, h, raw, mt)
	}
	return nil, fmt.Errorf("base image %s: the index has no manifest %s", i.src.what, h)
}

// cachedImage is the core of one image read through a blobSource; its
// layers open lazily, so an output that does not read them fetches nothing.
type cachedImage struct {
	src    *blobSource
	raw    []byte
	mt     types.MediaType
	m      *v1.Manifest
	config []byte
	diffs  map[v1.Hash]v1.Hash // layer digest -> diff ID
}

func newCachedImage(src *blobSource, h v1.Hash, raw []byte, mt types.MediaType) (v1.Image, error) {
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("base image %s: manifest %s: %w", src.what, h, err)
	}
	config, err := src.small(m.Config.Digest)
	if err != nil {
		return nil, err
	}
	ci := &cachedImage{src: src, raw: raw, mt: mt, m: m, config: config, diffs: map[v1.Hash]v1.Hash{}}
	// Attestation manifests carry no image config: their layers have no diff IDs.
	if cf, err := v1.ParseConfigFile(bytes.NewReader(config)); err == nil && len(cf.RootFS.DiffIDs) == len(m.Layers) {
		for n, l := range m.Layers {
			ci.diffs[l.Digest] = cf.RootFS.DiffIDs[n]
		}
	}
	img, err := partial.CompressedToImage(ci)
	if err != nil {
		return nil, err
	}
	return &mountable{Image: img, repo: src.repo}, nil
}

// mountable marks the base's layers with their repository, so that a push
// to the same registry mounts them, never reading them.
type mountable struct {
	v1.Image
	repo name.Repository
}

func (m *mountable) mount(l v1.Layer, err error) (v1.Layer, error) {
	if err != nil {
		return nil, err
	}
	d, err := l.Digest()
	if err != nil {
		return nil, err
	}
	return &remote.MountableLayer{Layer: l, Reference: m.repo.Digest(d.String())}, nil
}

func (m *mountable) Layers() ([]v1.Layer, error) {
	ls, err := m.Image.Layers()
	if err != nil {
		return nil, err
	}
	out := make([]v1.Layer, len(ls))
	for i, l := range ls {
		if out[i], err = m.mount(l, nil); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (m *mountable) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	return m.mount(m.Image.LayerByDigest(h))
}
func (m *mountable) LayerByDiffID(h v1.Hash) (v1.Layer, error) {
	return m.mount(m.Image.LayerByDiffID(h))
}

func (c *cachedImage) MediaType() (types.MediaType, error) { return c.mt, nil }
func (c *cachedImage) RawManifest() ([]byte, error)        { return c.raw, nil }
func (c *cachedImage) RawConfigFile() ([]byte, error)      { return c.config, nil }

func (c *cachedImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if h == c.m.Config.Digest {
		return partial.ConfigLayer(c)
	}
	for _, d := range c.m.Layers {
		if d.Digest != h {
			continue
		}
		var core partial.CompressedLayer = &cachedLayer{src: c.src, desc: d}
		if diff, ok := c.diffs[h]; ok {
			core = &diffedLayer{cachedLayer{src: c.src, desc: d}, diff}
		}
		return core, nil
	}
	return nil, fmt.Errorf("base image %s: no layer %s", c.src.what, h)
}

// cachedLayer opens its blob only when first read.
type cachedLayer struct {
	src  *blobSource
	desc v1.Descriptor
}

// diffedLayer knows its diff ID from the image config; partial would
// otherwise read the whole layer to compute it.
type diffedLayer struct {
	cachedLayer
	diffID v1.Hash
}

func (l *diffedLayer) DiffID() (v1.Hash, error) { return l.diffID, nil }

func (l *cachedLayer) Digest() (v1.Hash, error)            { return l.desc.Digest, nil }
func (l *cachedLayer) Size() (int64, error)                { return l.desc.Size, nil }
func (l *cachedLayer) MediaType() (types.MediaType, error) { return l.desc.MediaType, nil }

func (l *cachedLayer) Compressed() (io.ReadCloser, error) {
	return &lazyReader{open: func() (io.ReadCloser, error) { return l.src.open(l.desc.Digest) }}, nil
}

// lazyReader opens on first Read: go-containerregistry's layout writer asks
// for a reader even for a blob already linked into place.
type lazyReader struct {
	once sync.Once
	open func() (io.ReadCloser, error)
	rc   io.ReadCloser
	err  error
}

func (r *lazyReader) Read(p []byte) (int, error) {
	r.once.Do(func() { r.rc, r.err = r.open() })
	if r.err != nil {
		return 0, r.err
	}
	return r.rc.Read(p)
}

func (r *lazyReader) Close() error {
	if r.rc != nil {
		return r.rc.Close()
	}
	return nil
}

// MissingLayers lists the layers of a registry base that its blob cache
// lacks, one line each: what an offline build writing a layout or a docker
// archive would fail on. Local bases and bases read without a cache miss
// nothing.
func (b *Base) MissingLayers() []string {
	if b.blobs == nil || b.blobs.store == nil {
		return nil
	}
	var missing []string
	seen := map[v1.Hash]bool{}
	check := func(img v1.Image, what string) {
		m, err := img.Manifest()
		if err != nil {
			missing = append(missing, fmt.Sprintf("base image %s (%s): %v", b.describe(), what, err))
			return
		}
		for _, l := range m.Layers {
			if seen[l.Digest] {
				continue
			}
			seen[l.Digest] = true
			if _, err := b.blobs.store.Verify(l.Digest); err != nil {
				missing = append(missing, fmt.Sprintf("base image %s: layer %s (%s, %d bytes)", b.describe(), l.Digest, what, l.Size))
			}
		}
	}
	for i, img := range b.images {
		check(img, b.Platforms[i].Platform.String())
	}
	// Entries carried over as they are (attestations) are written too.
	for _, e := range b.entries {
		if img, ok := e.keep.(v1.Image); ok {
			check(img, "attached manifest "+e.desc.Digest.String())
		}
	}
	return missing
}

// ConfigLayer is mounted too: an attestation carried over keeps its config.
func (m *mountable) ConfigLayer() (v1.Layer, error) { return m.mount(partial.ConfigLayer(m.Image)) }

// cache is the blob cache a registry base was read through, nil for
// others.
func (b *Base) cache() *blobstore.Store {
	if b.blobs == nil {
		return nil
	}
	return b.blobs.store
}
