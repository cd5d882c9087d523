// Package plugininstall copies a plugins image's tree (build
// --plugins-image) into a directory, for clusters that cannot mount the
// image itself: an init container runs `xtraefik install-plugins` into an
// emptyDir that Traefik's container then mounts at plugins-local.
//
// The image is untrusted until checked: its one layer is read once, its
// compressed and uncompressed digests are checked against the manifest and
// the config, and the tree is written to a temporary directory beside the
// target's src/ and moved into place only then. Entries are confined to
// src/ (through os.Root, and by name), only directories, regular files and
// symlinks whose targets stay in src/ without passing through another
// symlink are written, modes keep permission bits only, and sizes are
// bounded.
package plugininstall

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"runtime"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/xtraefik/xtraefik/images"
	"github.com/xtraefik/xtraefik/internal/fileset"
)

// Default bounds of what one install writes.
const (
	DefaultMaxBytes   = 512 << 20
	DefaultMaxEntries = 100_000
)

// Options tune Install.
type Options struct {
	// Images reaches the registry (credentials, insecure hosts, mirrors).
	Images images.Options
	// Platform picks the manifest to read; nil is the host's. Every
	// platform of a plugins image holds the same layer; a plugins image
	// without the platform is read through its first manifest.
	Platform *v1.Platform
	// MaxBytes bounds the uncompressed tree, MaxEntries its entries (0:
	// the defaults).
	MaxBytes   int64
	MaxEntries int
}

// Installed is what Install wrote.
type Installed struct {
	// Digest is the image (or index) the reference resolved to; Layer the
	// layer written.
	Digest v1.Hash
	Layer  v1.Hash
	// Platform is the manifest read.
	Platform v1.Platform
	// Files and Bytes count what was written.
	Files int
	Bytes int64
}

// Install reads the plugins image ref (a registry reference, by digest
// for a reproducible pod, or oci:DIR[:TAG]) and puts its tree at dir/src,
// replacing a src/ an earlier run left there. dir must exist.
func Install(ctx context.Context, ref, dir string, opts Options) (*Installed, error) {
	parsed, err := images.ParseReference(ref)
	if err != nil {
		return nil, fmt.Errorf("install plugins: image %s: %w", ref, err)
	}
	base, err := images.Resolve(ctx, parsed, opts.Images)
	if err != nil {
		return nil, fmt.Errorf("install plugins: %w", err)
	}
	pick := 0
	want := v1.Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH}
	if opts.Platform != nil {
		want = *opts.Platform
	}
	for i, p := range base.Platforms {
		if p.Platform.Satisfies(want) {
			pick = i
			break
		}
	}
	img, err := base.Image(pick)
	if err != nil {
		return nil, fmt.Errorf("install plugins: %w", err)
	}
	out := &Installed{Digest: base.Digest, Platform: base.Platforms[pick].Platform}
	layer, diffID, err := pluginsLayer(img)
	if err != nil {
		return nil, fmt.Errorf("install plugins: %s (%s) is not a plugins image: %w", ref, base.Digest, err)
	}
	if out.Layer, err = layer.Digest(); err != nil {
		return nil, fmt.Errorf("install plugins: %w", err)
	}
	if err := install(ctx, layer, out.Layer, diffID, dir, opts, out); err != nil {
		return nil, fmt.Errorf("install plugins from %s (%s) into %s: %w", ref, base.Digest, dir, err)
	}
	return out, nil
}

// pluginsLayer is the one layer of a plugins image and its diff ID; an
// image without the plugins-image annotation, or with more than one layer,
// is refused (a Traefik image given by mistake would fill the directory
// with its whole filesystem).
func pluginsLayer(img v1.Image) (v1.Layer, v1.Hash, error) {
	m, err := img.Manifest()
	if err != nil {
		return nil, v1.Hash{}, err
	}
	if m.Annotations[images.AnnotationPluginsMount] == "" {
		return nil, v1.Hash{}, fmt.Errorf("its manifest has no %s annotation", images.AnnotationPluginsMount)
	}
	if len(m.Layers) != 1 {
		return nil, v1.Hash{}, fmt.Errorf("it has %d layers, a plugins image has one", len(m.Layers))
	}
	if mt := m.Layers[0].MediaType; mt != types.OCILayer && mt != types.DockerLayer {
		return nil, v1.Hash{}, fmt.Errorf("its layer is %s, not a gzip tar", mt)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, v1.Hash{}, err
	}
	if len(cf.RootFS.DiffIDs) != 1 {
		return nil, v1.Hash{}, fmt.Errorf("its config lists %d layers", len(cf.RootFS.DiffIDs))
	}
	l, err := img.LayerByDigest(m.Layers[0].Digest)
	if err != nil {
		return nil, v1.Hash{}, err
	}
	return l, cf.RootFS.DiffIDs[0], nil
}

// stagingPrefix starts the temporary directories Install writes in dir.
const stagingPrefix = ".xtraefik-install-"

func install(ctx context.Context, layer v1.Layer, digest, diffID v1.Hash, dir string, opts Options, out *Installed) error {
	if digest.Algorithm != "sha256" || diffID.Algorithm != "sha256" {
		return fmt.Errorf("layer %s (diff ID %s): only sha256 digests are checked", digest, diffID)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("%w (the directory must exist: the emptyDir's mount point)", err)
	}
	defer root.Close()
	// Leftovers of a run that was killed: nothing else writes this prefix.
	if entries, err := fs.ReadDir(root.FS(), "."); err == nil {
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), stagingPrefix) {
				_ = root.RemoveAll(e.Name())
			}
		}
	}
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return err
	}
	staging := stagingPrefix + hex.EncodeToString(rnd[:])
	if err := root.Mkdir(staging, 0o755); err != nil {
		return err
	}
	keep := false
	defer func() {
		if !keep {
			_ = root.RemoveAll(staging)
		}
	}()
	sr, err := root.OpenRoot(staging)
	if err != nil {
		return err
	}
	defer sr.Close()

	rc, err := layer.Compressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	compressed, raw := sha256.New(), sha256.New()
	zr, err := gzip.NewReader(io.TeeReader(rc, compressed))
	if err != nil {
		return fmt.Errorf("layer %s: %w", digest, err)
	}
	x := &extractor{root: sr, maxBytes: opts.MaxBytes, maxEntries: opts.MaxEntries, seen: map[string]byte{}, links: map[string]string{}}
	if x.maxBytes <= 0 {
		x.maxBytes = DefaultMaxBytes
	}
	if x.maxEntries <= 0 {
		x.maxEntries = DefaultMaxEntries
	}
	if err := x.extract(ctx, tar.NewReader(io.TeeReader(zr, raw))); err != nil {
		return err
	}
	// The rest of the stream (tar padding, gzip trailer) counts too.
	if _, err := io.Copy(raw, zr); err != nil {
		return fmt.Errorf("layer %s: %w", digest, err)
	}
	if _, err := io.Copy(compressed, rc); err != nil {
		return fmt.Errorf("layer %s: %w", digest, err)
	}
	if got := sum(compressed); got != digest {
		return fmt.Errorf("layer is %s, the manifest says %s: nothing was installed", got, digest)
	}
	if got := sum(raw); got != diffID {
		return fmt.Errorf("layer's content is %s, the config says %s: nothing was installed", got, diffID)
	}
	if err := x.checkLinks(); err != nil {
		return err
	}
	if _, err := sr.Lstat("src"); err != nil {
		return errors.New("the layer has no src/ directory: nothing was installed")
	}
	if err := root.RemoveAll("src"); err != nil {
		return fmt.Errorf("remove the src/ of an earlier install: %w", err)
	}
	if err := root.Rename(path.Join(staging, "src"), "src"); err != nil {
		return err
	}
	out.Files, out.Bytes = x.files, x.bytes
	return nil
}

func sum(h hash.Hash) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
}

// extractor writes a plugins layer's entries under root.
type extractor struct {
	root       *os.Root
	maxBytes   int64
	maxEntries int
	bytes      int64
	files      int
	// seen maps each name written to its tar type; links each symlink to
	// its target.
	seen  map[string]byte
	links map[string]string
}

func (x *extractor) extract(ctx context.Context, tr *tar.Reader) error {
	for n := 0; ; n++ {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read the layer: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if n >= x.maxEntries {
			return fmt.Errorf("the layer has more than %d entries", x.maxEntries)
		}
		if err := x.entry(hdr, tr); err != nil {
			return fmt.Errorf("layer entry %q: %w", hdr.Name, err)
		}
	}
}

// entry writes one tar entry, refusing what a plugins image never holds.
func (x *extractor) entry(hdr *tar.Header, r io.Reader) error {
	name := strings.TrimSuffix(hdr.Name, "/")
	if err := fileset.CheckPath(name); err != nil {
		return err
	}
	if name != "src" && !strings.HasPrefix(name, "src/") {
		return errors.New("outside src/: a plugins image holds src/<module>/ only")
	}
	if strings.HasPrefix(path.Base(name), ".wh.") {
		return errors.New("a whiteout: a plugins image removes nothing")
	}
	if _, dup := x.seen[name]; dup {
		return errors.New("given twice")
	}
	parent := path.Dir(name)
	if name != "src" {
		if t, ok := x.seen[parent]; !ok || t != tar.TypeDir {
			return fmt.Errorf("its directory %s is not a directory given before it", parent)
		}
	}
	perm := fs.FileMode(hdr.Mode).Perm() &^ 0o022
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := x.root.Mkdir(name, perm|0o700); err != nil {
			return err
		}
	case tar.TypeReg:
		if hdr.Size < 0 || x.bytes+hdr.Size > x.maxBytes {
			return fmt.Errorf("the tree would exceed %d bytes", x.maxBytes)
		}
		f, err := x.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm|0o400)
		if err != nil {
			return err
		}
		n, err := io.Copy(f, io.LimitReader(r, hdr.Size))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		if n != hdr.Size {
			return fmt.Errorf("%d bytes of %d", n, hdr.Size)
		}
		x.bytes += n
		x.files++
	case tar.TypeSymlink:
		if err := linkTarget(name, hdr.Linkname); err != nil {
			return err
		}
		if err := x.root.Symlink(hdr.Linkname, name); err != nil {
			return err
		}
		x.links[name] = hdr.Linkname
	default:
		return fmt.Errorf("tar type %q: a plugins image holds directories, regular files and symlinks only", hdr.Typeflag)
	}
	x.seen[name] = hdr.Typeflag
	return nil
}

// linkTarget refuses a symlink target that leaves src/ by its text.
func linkTarget(name, target string) error {
	if target == "" || strings.HasPrefix(target, "/") {
		return fmt.Errorf("symlink to %q: only relative targets inside src/", target)
	}
	if strings.ContainsRune(target, 0) {
		return errors.New("symlink target holds a NUL")
	}
	if j := path.Join(path.Dir(name), target); j != "src" && !strings.HasPrefix(j, "src/") {
		return fmt.Errorf("symlink to %q leaves src/", target)
	}
	return nil
}

// checkLinks refuses, once every entry is known, a symlink whose target
// passes through another symlink: its text stays in src/, but what the
// kernel resolves need not.
func (x *extractor) checkLinks() error {
	for name, target := range x.links {
		p := path.Dir(name)
		els := strings.Split(target, "/")
		for i, el := range els[:len(els)-1] {
			p = path.Join(p, el)
			if _, ok := x.links[p]; ok {
				return fmt.Errorf("layer entry %q: symlink to %q passes through the symlink %s (element %d)", name, target, p, i+1)
			}
		}
	}
	return nil
}
