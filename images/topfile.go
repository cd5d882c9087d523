package images

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/zstd"
)

// ErrFileTooLarge is the error of ReadTopFile for a file larger than its
// bound: nothing of it was read.
var ErrFileTooLarge = errors.New("larger than allowed")

// TopFile is a file ReadTopFile found.
type TopFile struct {
	// Path is absolute ("/usr/local/bin/traefik"); Size in bytes.
	Path string
	Size int64
	// Layer is the digest of the layer that holds it.
	Layer v1.Hash
}

// LayerProgress hears how many compressed bytes of a layer were read.
type LayerProgress func(layer v1.Hash, done, total int64)

// ReadTopFile finds the first of paths (absolute, in order of preference)
// that the base's i-th platform image holds as a regular file, reading its
// layers from the top (newest) down: a file in an upper layer, and the
// whiteouts of upper layers, hide what lower layers hold. It stops with
// the first layer that holds one of paths, reads that layer to its end
// (so that its digest is checked before the caller trusts what read saw),
// and never reads the layers below it. read gets the file's content (Size bytes, as the layer
// streams); when a path earlier in paths comes later in the same layer,
// read is called again for it, and the file returned is the last read.
// A file larger than max is refused (ErrFileTooLarge) before any of it is
// read. The zero TopFile says no layer holds any of paths.
func (b *Base) ReadTopFile(ctx context.Context, i int, paths []string, max int64, progress LayerProgress, read func(TopFile, io.Reader) error) (TopFile, error) {
	if i < 0 || i >= len(b.images) {
		return TopFile{}, fmt.Errorf("base %s has no platform #%d", b.describe(), i)
	}
	rank := map[string]int{}
	for _, p := range paths {
		p = cleanPath(p)
		if _, ok := rank[p]; !ok {
			rank[p] = len(rank)
		}
	}
	layers, err := b.images[i].Layers()
	if err != nil {
		return TopFile{}, fmt.Errorf("layers of %s: %w", b.describe(), err)
	}
	var hidden whiteouts
	for n := len(layers) - 1; n >= 0; n-- {
		found, err := b.topLayer(ctx, layers[n], rank, &hidden, max, progress, read)
		if err != nil || found.Path != "" {
			return found, err
		}
	}
	return TopFile{}, nil
}

// whiteouts are what upper layers hide from lower ones: whole paths
// (whited out, or replaced by anything but a directory) and the former
// content of opaque directories.
type whiteouts struct {
	paths, opaque map[string]bool
}

func (w *whiteouts) hides(p string) bool {
	if w.paths[p] {
		return true
	}
	for q := path.Dir(p); ; q = path.Dir(q) {
		if w.paths[q] || w.opaque[q] {
			return true
		}
		if q == "." {
			return false
		}
	}
}

func (w *whiteouts) merge(o whiteouts) {
	if w.paths == nil {
		w.paths, w.opaque = map[string]bool{}, map[string]bool{}
	}
	for p := range o.paths {
		w.paths[p] = true
	}
	for p := range o.opaque {
		w.opaque[p] = true
	}
}

// cleanPath is p relative to the root, as layers name it ("usr/bin/x").
func cleanPath(p string) string { return strings.TrimPrefix(path.Clean("/"+p), "/") }

// topLayer reads one layer for ReadTopFile: the best of rank it holds, not
// hidden by upper layers, and what it hides from the layers below.
func (b *Base) topLayer(ctx context.Context, l v1.Layer, rank map[string]int, hidden *whiteouts, max int64, progress LayerProgress, read func(TopFile, io.Reader) error) (TopFile, error) {
	digest, err := l.Digest()
	if err != nil {
		return TopFile{}, fmt.Errorf("layer of %s: %w", b.describe(), err)
	}
	size, _ := l.Size()
	rc, err := l.Compressed()
	if err != nil {
		return TopFile{}, fmt.Errorf("layer %s of %s: %w", digest, b.describe(), err)
	}
	defer rc.Close()
	counted := &countingReader{r: rc, report: func(n int64) {
		if progress != nil {
			progress(digest, n, size)
		}
	}}
	tr, closeTar, err := tarStream(counted)
	if err != nil {
		return TopFile{}, fmt.Errorf("layer %s of %s: %w", digest, b.describe(), err)
	}
	defer closeTar()
	var (
		found TopFile
		best  = len(rank)
		here  = whiteouts{paths: map[string]bool{}, opaque: map[string]bool{}}
	)
	for {
		if err := ctx.Err(); err != nil {
			return TopFile{}, err
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return TopFile{}, fmt.Errorf("read layer %s of %s: %w", digest, b.describe(), err)
		}
		p := cleanPath(h.Name)
		dir, base := path.Split(p)
		dir = strings.TrimSuffix(dir, "/")
		if dir == "" {
			dir = "."
		}
		switch {
		case base == ".wh..wh..opq":
			here.opaque[dir] = true
			continue
		case strings.HasPrefix(base, ".wh."):
			here.paths[path.Join(dir, strings.TrimPrefix(base, ".wh."))] = true
			continue
		case h.Typeflag != tar.TypeDir:
			here.paths[p] = true
		}
		r, want := rank[p]
		if !want || r >= best || hidden.hides(p) {
			continue
		}
		if h.Typeflag != tar.TypeReg {
			// A directory, link or device there is no program to read;
			// it hides what lower layers hold all the same.
			continue
		}
		f := TopFile{Path: "/" + p, Size: h.Size, Layer: digest}
		if h.Size > max {
			return f, fmt.Errorf("%s in %s (layer %s) is %d bytes, %w (%d bytes)", f.Path, b.describe(), digest, h.Size, ErrFileTooLarge, max)
		}
		if err := read(f, tr); err != nil {
			return f, err
		}
		found, best = f, r
		if better(rank, best, hidden, here) {
			continue
		}
		// Nothing this layer could still hold would be preferred.
		break
	}
	// The rest of the layer is read too: its digest is checked at its
	// end (by the registry client, the blob cache or the layout), so a
	// file read from a layer that is not the one the manifest names is
	// an error, never a result; and a registry layer lands in the blob
	// cache.
	if _, err := io.Copy(io.Discard, counted); err != nil {
		return TopFile{}, fmt.Errorf("read layer %s of %s: %w", digest, b.describe(), err)
	}
	hidden.merge(here)
	return found, nil
}

// better reports whether a path ranked before best may still come: not
// hidden by upper layers, nor met in this one.
func better(rank map[string]int, best int, hidden *whiteouts, here whiteouts) bool {
	for p, r := range rank {
		if r < best && !hidden.hides(p) && !here.paths[p] {
			return true
		}
	}
	return false
}

// tarStream opens a layer's tar, decompressing gzip or zstd as its first
// bytes say.
func tarStream(r io.Reader) (*tar.Reader, func(), error) {
	br := bufio.NewReader(r)
	head, err := br.Peek(4)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, nil, err
	}
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, err
		}
		return tar.NewReader(zr), func() { zr.Close() }, nil
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
		if err != nil {
			return nil, nil, err
		}
		return tar.NewReader(zr), zr.Close, nil
	}
	return tar.NewReader(br), func() {}, nil
}

// countingReader tells report the bytes read so far.
type countingReader struct {
	r      io.Reader
	n      int64
	report func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if n > 0 {
		c.report(c.n)
	}
	return n, err
}
