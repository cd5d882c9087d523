package cacherepo

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/xtraefik/xtraefik/images"
	"github.com/xtraefik/xtraefik/internal/fileset"
	"github.com/xtraefik/xtraefik/internal/plugin"
)

// treeTag is where the tree of contentHash ("sha256:<hex>") is kept.
func (s *Store) treeTag(contentHash string) (name.Tag, error) {
	hex, ok := strings.CutPrefix(contentHash, "sha256:")
	if !ok || len(hex) != 64 || strings.Trim(hex, "0123456789abcdef") != "" {
		return name.Tag{}, fmt.Errorf("content hash %q: want sha256:<64 lowercase hex digits>", contentHash)
	}
	return s.repo.Tag("tree-" + hex), nil
}

// PutTree stores p's files under their content hash, signed, unless the
// repository already holds that very layer there with a signature this
// runner trusts (an entry that differs, such as a spoiled one or another
// writer's this runner does not trust, is replaced). The layer is p.Files
// exactly as hashed (see images.TreeLayer); module, content hash and
// revision go in annotations, and in the signed record with the tag and
// the layer's digest. A read-only Store writes nothing.
func (s *Store) PutTree(ctx context.Context, p plugin.Plugin) error {
	if s.ReadOnly() {
		return nil
	}
	hash, err := p.Files.Hash()
	if err != nil {
		return fmt.Errorf("cache plugin %s: %w", p.Module, err)
	}
	if p.Hash != "" && p.Hash != hash {
		return fmt.Errorf("cache plugin %s: its files hash to %s, not %s as resolved", p.Module, hash, p.Hash)
	}
	tag, err := s.treeTag(hash)
	if err != nil {
		return fmt.Errorf("cache plugin %s: %w", p.Module, err)
	}
	layer, err := images.TreeLayer(p.Files)
	if err != nil {
		return fmt.Errorf("cache plugin %s: %w", p.Module, err)
	}
	digest, err := layer.Digest()
	if err != nil {
		return fmt.Errorf("cache plugin %s: %w", p.Module, err)
	}
	m, err := s.fetchArtifact(ctx, tag, TreeArtifactType, types.OCILayer, s.maxTree)
	switch {
	case err == nil && m.Layers[0].Digest == digest:
		if _, err := s.treeRecord(tag, m, hash); err == nil {
			return nil // the same files, from this or another trusted writer
		}
	case err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrMismatch):
		return fmt.Errorf("cache plugin %s: %w", p.Module, err)
	}
	rev := p.Source.Revision()
	sig, err := s.keys.seal(record{Kind: kindTree, Tag: tag.TagStr(), ContentHash: hash, Layer: digest.String(), Module: p.Module, Revision: rev})
	if err != nil {
		return fmt.Errorf("cache plugin %s: %w", p.Module, err)
	}
	err = s.push(ctx, tag, TreeArtifactType, layer,
		map[string]string{annotationTitle: "tree.tar.gz"},
		map[string]string{AnnotationModule: p.Module, AnnotationHash: hash, AnnotationRevision: rev, AnnotationSignature: string(sig)})
	if err != nil {
		return fmt.Errorf("cache plugin %s: %w", p.Module, err)
	}
	return nil
}

// treeRecord checks the signed record of the tree manifest m found under
// tag for contentHash: signed by a trusted key, for this tag and content
// hash, and for the layer m names. Its errors wrap ErrUntrusted or
// ErrForged.
func (s *Store) treeRecord(tag name.Tag, m *v1.Manifest, contentHash string) (*record, error) {
	sig, ok := m.Annotations[AnnotationSignature]
	if !ok {
		return nil, fmt.Errorf("%s: %w: it carries no signature", tag, ErrUntrusted)
	}
	rec, err := s.keys.open([]byte(sig), kindTree, tag.TagStr())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", tag, err)
	}
	switch {
	case rec.ContentHash != contentHash:
		return nil, fmt.Errorf("%s: %w: signed by %s for content hash %s", tag, ErrForged, rec.Signer, rec.ContentHash)
	case rec.Layer != m.Layers[0].Digest.String():
		return nil, fmt.Errorf("%s: %w: signed by %s for layer %s, the manifest names %s", tag, ErrForged, rec.Signer, rec.Layer, m.Layers[0].Digest)
	}
	return rec, nil
}

// GetTree reads back the tree stored under contentHash, checks its
// signature before reading its layer, and checks that its files hash to
// contentHash. An absent tree is ErrNotFound; one no trusted key signed is
// ErrUntrusted (naming the key that did), one whose signature does not
// hold for it ErrForged; one that does not hash to contentHash, or is no
// tree at all, is ErrMismatch (naming both hashes when it has one); any
// other error is the registry's.
func (s *Store) GetTree(ctx context.Context, contentHash string) (fileset.Set, error) {
	tag, err := s.treeTag(contentHash)
	if err != nil {
		return nil, fmt.Errorf("read cached tree: %w", err)
	}
	m, err := s.fetchArtifact(ctx, tag, TreeArtifactType, types.OCILayer, s.maxTree)
	if err != nil {
		return nil, err
	}
	if _, err := s.treeRecord(tag, m, contentHash); err != nil {
		return nil, err
	}
	blob := tag.Context().Digest(m.Layers[0].Digest.String())
	layer, err := remote.Layer(blob, s.remote(ctx)...)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", tag, s.opts.Explain(err, blob))
	}
	rc, err := layer.Compressed()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", tag, s.opts.Explain(err, blob))
	}
	defer rc.Close()
	// One byte over the size lets the digest check see the end of the blob.
	src := &sourceReader{r: io.LimitReader(rc, m.Layers[0].Size+1)}
	files, err := readTree(src, s.maxTree)
	if err == nil {
		_, err = io.Copy(io.Discard, src)
	}
	if src.err != nil {
		// The registry failed (or sent other bytes than the digest): no
		// verdict on the entry.
		return nil, fmt.Errorf("read %s: %w", tag, s.opts.Explain(src.err, blob))
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w: not a plugin tree: %v", tag, ErrMismatch, err)
	}
	set, err := fileset.New(files)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: not a plugin tree: %v", tag, ErrMismatch, err)
	}
	got, err := set.Hash()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", tag, err)
	}
	if got != contentHash {
		return nil, fmt.Errorf("%s: %w: its files hash to %s, the lock wants %s", tag, ErrMismatch, got, contentHash)
	}
	return set, nil
}

// sourceReader keeps the error of the reader under the decompressor, so a
// failing registry is told apart from a malformed tree.
type sourceReader struct {
	r   io.Reader
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

// Bounds of a tree layer beyond its content, which only a crafted layer
// reaches: images.TreeLayer writes short names, little framing and no
// trailing data.
const (
	// maxTreePath bounds an entry's name and link target (PATH_MAX).
	maxTreePath = 4096
	// treeSlack is what the unpacked stream may hold beyond max bytes of
	// content and names: tar headers, padding and end blocks (about 1 KiB
	// an entry), the gzip trailer.
	treeSlack = 1 << 20
	// maxTreeTrailer bounds what follows the tar's end in the stream.
	maxTreeTrailer = 1 << 20
)

// readTree unpacks a tree layer into memory: regular files and symlinks
// (directories are implied by paths), at most max bytes of content and names
// and maxTreeEntries entries, from a stream that unpacks to at most
// max+max/4+treeSlack bytes (a gzip of zeros unpacks a thousandfold). Paths
// and links are checked by fileset.New.
func readTree(r io.Reader, max int64) ([]fileset.File, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, err
	}
	bound := max + max/4 + treeSlack
	unpacked := &boundedReader{r: zr, left: bound, bound: bound}
	tr := tar.NewReader(unpacked)
	var files []fileset.File
	var total int64
	for n := 0; ; n++ {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if n >= maxTreeEntries {
			return nil, fmt.Errorf("more than %d entries", maxTreeEntries)
		}
		if len(hdr.Name) > maxTreePath || len(hdr.Linkname) > maxTreePath {
			return nil, fmt.Errorf("an entry's name or link target is longer than %d bytes", maxTreePath)
		}
		// Names count too: a tree of empty files with long names is as large.
		if total += int64(len(hdr.Name) + len(hdr.Linkname)); total > max {
			return nil, fmt.Errorf("more than %d bytes of files", max)
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := fileset.CheckPath(strings.TrimSuffix(hdr.Name, "/")); err != nil {
				return nil, err
			}
		case tar.TypeSymlink:
			files = append(files, fileset.File{Path: hdr.Name, Kind: fileset.Symlink, Link: hdr.Linkname, Size: int64(len(hdr.Linkname))})
		case tar.TypeReg:
			if total += hdr.Size; hdr.Size < 0 || total > max {
				return nil, fmt.Errorf("more than %d bytes of files", max)
			}
			data := make([]byte, hdr.Size)
			if _, err := io.ReadFull(tr, data); err != nil {
				return nil, fmt.Errorf("%q: %w", hdr.Name, err)
			}
			kind := fileset.Regular
			if hdr.Mode&0o111 != 0 {
				kind = fileset.Executable
			}
			files = append(files, fileset.File{Path: hdr.Name, Kind: kind, Size: hdr.Size,
				Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }})
		default:
			return nil, fmt.Errorf("%q: entry type %q is neither file, directory nor symlink", hdr.Name, hdr.Typeflag)
		}
	}
	// The rest of the stream must be well-formed too (gzip's checksum), and
	// short: a tar writer pads to a record at most.
	n, err := io.Copy(io.Discard, io.LimitReader(unpacked, maxTreeTrailer+1))
	if err != nil {
		return nil, err
	}
	if n > maxTreeTrailer {
		return nil, fmt.Errorf("more than %d bytes after the end of the tar", maxTreeTrailer)
	}
	return files, nil
}

// boundedReader fails once more than left bytes are read from r.
type boundedReader struct {
	r     io.Reader
	left  int64
	bound int64
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// Exactly at the bound is fine if the stream ends there.
		var one [1]byte
		if n, err := b.r.Read(one[:]); n == 0 && err != nil {
			return 0, err
		}
		return 0, fmt.Errorf("the layer unpacks to more than %d bytes", b.bound)
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	return n, err
}
