package images

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/xtraefik/xtraefik/images/blobstore"
	"github.com/xtraefik/xtraefik/internal/buildid"
	"github.com/xtraefik/xtraefik/internal/fileset"
	"github.com/xtraefik/xtraefik/internal/plugin"
)

// ExtraFile is a file added to the plugin layer at an absolute path, such as a
// static configuration at /etc/traefik/traefik.yml. Its parent directories get
// no entries unless they are under plugins-local: those that exist belong to
// the base, and unpackers create missing ones.
type ExtraFile struct {
	Path string
	// Mode holds permission bits only; 0 means 0644.
	Mode    fs.FileMode
	Content []byte
	// Whiteout removes Path from the base instead (an OCI ".wh." entry), e.g. a
	// Traefik configuration file the recipe replaces.
	Whiteout bool
}

// layerEntry is one tar entry; name is slash-separated, without leading or
// trailing slash.
type layerEntry struct {
	name  string
	dir   bool
	file  fileset.File // plugin files
	extra *ExtraFile   // extra files
	owner string       // what put it there, for conflict errors
}

func (e layerEntry) isFile() bool { return !e.dir }

// pluginLayer renders the plugin layer for one WORKDIR from the filesets.
type pluginLayer struct {
	entries []layerEntry
	epoch   time.Time
}

// newPluginLayer builds the layer for plugins placed under workdir. Directory
// entries start at <workdir>/plugins-local: the WORKDIR and its parents belong
// to the base, and an entry for them would override its owner and mode.
//
// The layer is rendered exactly once, streamed into an unlinked temporary file
// while both digests are computed: every later read (digest, upload, layout,
// tarball, for every platform) is a plain file read, and memory stays flat
// whatever the plugins weigh.
//
// With a blob cache, a layer rendered before from the same inputs (the
// plugins' content hashes, the extra files, the epoch, the WORKDIR and
// this xtraefik build) is read from it instead: a rebuild of an unchanged
// lock renders nothing.
func newPluginLayer(workdir string, plugins []plugin.Plugin, extra []ExtraFile, epoch time.Time, cache *blobstore.Store) (v1.Layer, error) {
	return renderLayer(pluginsRoot(workdir), workdir, "plugin layer for WORKDIR "+workdir, plugins, extra, epoch, cache)
}

// renderLayer renders the plugin layer whose plugins-local directory is the
// tar path root ("" for the top of the layer itself: the plugins image).
// key tells layers of one content but different roots apart in the cache
// (the WORKDIR, or a name no WORKDIR can be); what names the layer in errors.
func renderLayer(root, key0, what string, plugins []plugin.Plugin, extra []ExtraFile, epoch time.Time, cache *blobstore.Store) (v1.Layer, error) {
	entries, err := layerEntries(root, plugins, extra)
	if err != nil {
		return nil, err
	}
	var (
		key   string
		keyed bool
	)
	if cache != nil {
		key, keyed = renderKey(key0, plugins, extra, epoch)
	}
	if keyed {
		if l, ok := renderedLayer(cache, key); ok {
			return l, nil
		}
	}
	l := &pluginLayer{entries: entries, epoch: epoch}
	spool, err := l.spool()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if keyed {
		keepRendered(cache, key, spool)
	}
	layer, err := partial.CompressedToLayer(spool)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return layer, nil
}

// renderKey names everything a plugin layer's bytes depend on: the
// plugins' files as hashed now (a git tree's are hashed as it was read,
// others are read once here, still cheaper than rendering), never a hash
// a caller claims. A plugin whose Hash is not its files' makes the layer
// uncacheable.
func renderKey(workdir string, plugins []plugin.Plugin, extra []ExtraFile, epoch time.Time) (string, bool) {
	h := sha256.New()
	fmt.Fprintf(h, "xtraefik plugin layer\n%s\n%q\n%d\n", buildid.Self(), workdir, epoch.Unix())
	for _, p := range plugins {
		sum, err := p.Files.Hash()
		if err != nil || p.Hash != sum {
			return "", false
		}
		fmt.Fprintf(h, "plugin %q %q\n", p.Module, sum)
	}
	for _, x := range extra {
		sum := sha256.Sum256(x.Content)
		fmt.Fprintf(h, "extra %q %o %v %x\n", x.Path, x.Mode, x.Whiteout, sum)
	}
	return hex.EncodeToString(h.Sum(nil)), true
}

// rendered is the record of a rendered layer kept in the blob cache.
type rendered struct {
	Digest v1.Hash `json:"digest"`
	DiffID v1.Hash `json:"diffID"`
	Size   int64   `json:"size"`
}

// renderedLayer is the layer rendered before under key, if the cache still
// holds it intact.
func renderedLayer(cache *blobstore.Store, key string) (v1.Layer, bool) {
	data, ok := cache.Ref(key)
	if !ok {
		return nil, false
	}
	var r rendered
	if json.Unmarshal(data, &r) != nil || r.Size <= 0 {
		return nil, false
	}
	if _, err := cache.Verify(r.Digest); err != nil {
		return nil, false
	}
	l, err := partial.CompressedToLayer(&storedLayer{cache: cache, r: r})
	return l, err == nil
}

// keepRendered copies a layer just rendered into the cache; a cache that
// cannot take it costs a render next time, nothing more.
func keepRendered(cache *blobstore.Store, key string, s *spooledLayer) {
	w, err := cache.Writer(s.digest)
	if err != nil {
		return
	}
	if _, err := io.Copy(w, io.NewSectionReader(s.f, 0, s.size)); err != nil {
		w.Abort()
		return
	}
	if w.Commit() != nil {
		return
	}
	if data, err := json.Marshal(rendered{Digest: s.digest, DiffID: s.diffID, Size: s.size}); err == nil {
		_ = cache.SetRef(key, data)
	}
}

// storedLayer is a rendered layer read from the blob cache (checked by
// digest as it is read).
type storedLayer struct {
	cache *blobstore.Store
	r     rendered
}

func (s *storedLayer) Digest() (v1.Hash, error)            { return s.r.Digest, nil }
func (s *storedLayer) DiffID() (v1.Hash, error)            { return s.r.DiffID, nil }
func (s *storedLayer) Size() (int64, error)                { return s.r.Size, nil }
func (s *storedLayer) MediaType() (types.MediaType, error) { return types.OCILayer, nil }
func (s *storedLayer) Compressed() (io.ReadCloser, error)  { return s.cache.Open(s.r.Digest) }

// spooledLayer is a rendered layer held in an unlinked file; the file goes away
// with its last descriptor.
type spooledLayer struct {
	f              *os.File
	size           int64
	digest, diffID v1.Hash
}

func (s *spooledLayer) Digest() (v1.Hash, error) { return s.digest, nil }
func (s *spooledLayer) DiffID() (v1.Hash, error) { return s.diffID, nil }
func (s *spooledLayer) Size() (int64, error)     { return s.size, nil }

// MediaType is OCI; extend re-types it per manifest family.
func (s *spooledLayer) MediaType() (types.MediaType, error) { return types.OCILayer, nil }

// Compressed reads the file from the start; readers do not share an offset.
func (s *spooledLayer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(io.NewSectionReader(s.f, 0, s.size)), nil
}

func (l *pluginLayer) spool() (*spooledLayer, error) {
	f, err := os.CreateTemp("", "xtraefik-layer-*")
	if err != nil {
		return nil, err
	}
	// Unlinked at once: nothing is left behind, whatever happens next.
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, err
	}
	compressed, raw := sha256.New(), sha256.New()
	n := &countingWriter{w: io.MultiWriter(f, compressed)}
	if err := l.writeTo(n, raw); err != nil {
		f.Close()
		return nil, err
	}
	return &spooledLayer{f: f, size: n.n,
		digest: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(compressed.Sum(nil))},
		diffID: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(raw.Sum(nil))},
	}, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// pluginsRoot is the tar path of <workdir>/plugins-local.
func pluginsRoot(workdir string) string {
	return strings.TrimPrefix(path.Join("/", workdir, plugin.LocalDir), "/")
}

// layerEntries lists the entries of a layer whose plugins-local directory
// is the tar path root; "" puts src/ at the top of the layer.
func layerEntries(root string, plugins []plugin.Plugin, extra []ExtraFile) ([]layerEntry, error) {
	byName := map[string]layerEntry{}
	add := func(e layerEntry) error {
		if prev, ok := byName[e.name]; ok {
			if prev.dir && e.dir {
				return nil
			}
			return fmt.Errorf("/%s is given twice: by %s and by %s", e.name, prev.owner, e.owner)
		}
		byName[e.name] = e
		return nil
	}
	// addDirs adds p and its parents, stopping at root: nothing above
	// plugins-local gets an entry.
	under := func(p string) bool {
		if root == "" {
			return p != "." && p != "/" && p != ""
		}
		return p == root || strings.HasPrefix(p, root+"/")
	}
	addDirs := func(p, owner string) error {
		for ; under(p); p = path.Dir(p) {
			if err := add(layerEntry{name: p, dir: true, owner: owner}); err != nil {
				return err
			}
		}
		return nil
	}
	if len(plugins) > 0 {
		if err := addDirs(path.Join(root, "src"), "the plugin tree"); err != nil {
			return nil, err
		}
	}
	for _, p := range plugins {
		if err := fileset.CheckPath(p.Module); err != nil {
			return nil, fmt.Errorf("plugin module name %q: %w", p.Module, err)
		}
		owner := "plugin " + p.Module
		modRoot := path.Join(root, "src", p.Module)
		if _, ok := byName[modRoot]; ok {
			return nil, fmt.Errorf("plugin %s is given twice", p.Module)
		}
		if err := addDirs(modRoot, owner); err != nil {
			return nil, err
		}
		for _, f := range p.Files {
			if err := fileset.CheckPath(f.Path); err != nil {
				return nil, fmt.Errorf("plugin %s: %w", p.Module, err)
			}
			if f.Kind != fileset.Symlink && f.Open == nil {
				return nil, fmt.Errorf("plugin %s: %s has no content", p.Module, f.Path)
			}
			name := modRoot + "/" + f.Path
			if err := addDirs(path.Dir(name), owner); err != nil {
				return nil, err
			}
			if err := add(layerEntry{name: name, file: f, owner: owner}); err != nil {
				return nil, err
			}
		}
	}
	for i := range extra {
		x := &extra[i]
		if !path.IsAbs(x.Path) || path.Clean(x.Path) != x.Path || x.Path == "/" {
			return nil, fmt.Errorf("extra file %q: want a clean absolute file path", x.Path)
		}
		if x.Mode&^fs.ModePerm != 0 {
			return nil, fmt.Errorf("extra file %s: mode %v is not a permission set", x.Path, x.Mode)
		}
		name := strings.TrimPrefix(x.Path, "/")
		owner := "extra file " + x.Path
		if x.Whiteout {
			name = path.Join(path.Dir(name), ".wh."+path.Base(name))
			owner = "removal of " + x.Path
		}
		if err := addDirs(path.Dir(name), owner); err != nil {
			return nil, err
		}
		if err := add(layerEntry{name: name, extra: x, owner: owner}); err != nil {
			return nil, err
		}
	}
	entries := make([]layerEntry, 0, len(byName))
	for _, e := range byName {
		entries = append(entries, e)
	}
	// A parent sorts before its children because it is their prefix.
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
	// A file where another entry needs a directory would make a broken layer.
	for _, e := range entries {
		for p := path.Dir(e.name); p != "."; p = path.Dir(p) {
			if parent, ok := byName[p]; ok && parent.isFile() {
				return nil, fmt.Errorf("/%s (%s) is a file but %s needs it to be a directory", p, parent.owner, e.owner)
			}
		}
	}
	return entries, nil
}

// writeTo writes the gzip-compressed tar to w and the uncompressed tar to raw.
func (l *pluginLayer) writeTo(w, raw io.Writer) error {
	zw, err := gzip.NewWriterLevel(w, gzip.DefaultCompression)
	if err != nil {
		return err
	}
	// A fixed gzip header: no name, no mtime, OS "unknown" — nothing of the host.
	zw.Header = gzip.Header{OS: 255}
	tw := tar.NewWriter(io.MultiWriter(zw, raw))
	for _, e := range l.entries {
		if err := l.writeEntry(tw, e); err != nil {
			return fmt.Errorf("plugin layer: /%s: %w", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

func (l *pluginLayer) writeEntry(tw *tar.Writer, e layerEntry) error {
	hdr := &tar.Header{Name: e.name, ModTime: l.epoch}
	var content func() (io.ReadCloser, error)
	switch {
	case e.dir:
		hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, e.name+"/", 0o755
	case e.extra != nil:
		mode := e.extra.Mode
		if mode == 0 {
			mode = 0o644
		}
		data := e.extra.Content
		if e.extra.Whiteout {
			data = nil
		}
		hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeReg, int64(mode), int64(len(data))
		content = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
	case e.file.Kind == fileset.Symlink:
		hdr.Typeflag, hdr.Mode, hdr.Linkname = tar.TypeSymlink, int64(e.file.Mode().Perm()), e.file.Link
	default:
		hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeReg, int64(e.file.Mode().Perm()), e.file.Size
		content = e.file.Open
	}
	if err := writeHeader(tw, hdr); err != nil {
		return err
	}
	if content == nil {
		return nil
	}
	rc, err := content()
	if err != nil {
		return err
	}
	defer rc.Close()
	n, err := io.Copy(tw, rc)
	if err != nil {
		return fmt.Errorf("copy content (recorded size %d): %w", hdr.Size, err)
	}
	if n != hdr.Size {
		return fmt.Errorf("content is %d bytes, recorded size is %d", n, hdr.Size)
	}
	return nil
}

// writeHeader writes plain USTAR, or GNU for names USTAR cannot hold; never
// PAX, whose records could carry extra metadata. Uid/gid are 0 and user and
// group names empty (the zero values).
func writeHeader(tw *tar.Writer, hdr *tar.Header) error {
	hdr.Format = tar.FormatUSTAR
	if err := tw.WriteHeader(hdr); err == nil {
		return nil
	}
	// WriteHeader validates before writing anything, so a retry is safe.
	hdr.Format = tar.FormatGNU
	return tw.WriteHeader(hdr)
}

// TreeLayer is one plugin's files as a layer of their own: paths as the
// content hash names them (relative to the plugin's directory, directories
// implied by them get entries), the plugin layer's normalised modes, owners
// and gzip header, and mtime 1970-01-01. The same files give the same digest
// whoever renders them, wherever they came from: what a cache keyed by
// content needs (package cacherepo).
func TreeLayer(files fileset.Set) (v1.Layer, error) {
	dirs := map[string]bool{}
	var entries []layerEntry
	for _, f := range files {
		if err := fileset.CheckPath(f.Path); err != nil {
			return nil, fmt.Errorf("plugin tree: %w", err)
		}
		if f.Kind != fileset.Symlink && f.Open == nil {
			return nil, fmt.Errorf("plugin tree: %s has no content", f.Path)
		}
		for d := path.Dir(f.Path); d != "." && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
			entries = append(entries, layerEntry{name: d, dir: true})
		}
		entries = append(entries, layerEntry{name: f.Path, file: f})
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
	l := &pluginLayer{entries: entries, epoch: time.Unix(0, 0).UTC()}
	spool, err := l.spool()
	if err != nil {
		return nil, fmt.Errorf("plugin tree: %w", err)
	}
	layer, err := partial.CompressedToLayer(spool)
	if err != nil {
		return nil, fmt.Errorf("plugin tree: %w", err)
	}
	return layer, nil
}
