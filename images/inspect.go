package images

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// ConfigFile returns the config of the base's i-th platform image.
func (b *Base) ConfigFile(i int) (*v1.ConfigFile, error) {
	if i < 0 || i >= len(b.images) {
		return nil, fmt.Errorf("base %s has no platform #%d", b.describe(), i)
	}
	cf, err := b.images[i].ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("config of %s for %s: %w", b.describe(), b.Platforms[i].Platform, err)
	}
	return cf, nil
}

// Local reports whether the base's layers are on this machine (OCI layout or
// docker archive), so reading them costs no download.
func (b *Base) Local() bool { return b.Ref.Transport != TransportDocker && b.Ref.Transport != "" }

// FindFiles reports which of paths (absolute, cleaned) exist in the flattened
// filesystem of the base's i-th platform image. It reads every layer, so callers
// use it where that is cheap or necessary.
func (b *Base) FindFiles(ctx context.Context, i int, paths []string) ([]string, error) {
	var found []string
	err := b.walkFiles(ctx, i, paths, func(p string, _ *tar.Header, _ io.Reader) (bool, error) {
		found = append(found, p)
		return false, nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(found)
	return found, nil
}

// CopyFile copies the first regular file found among paths (absolute) in the
// flattened filesystem of the base's i-th platform image to w, and returns
// its path; "" when none of them is a regular file there. Like FindFiles it
// reads every layer.
func (b *Base) CopyFile(ctx context.Context, i int, paths []string, w io.Writer) (string, error) {
	var copied string
	err := b.walkFiles(ctx, i, paths, func(p string, h *tar.Header, r io.Reader) (bool, error) {
		if h.Typeflag != tar.TypeReg {
			return false, nil
		}
		if _, err := io.Copy(w, r); err != nil {
			return true, fmt.Errorf("copy %s out of %s: %w", p, b.describe(), err)
		}
		copied = p
		return true, nil
	})
	return copied, err
}

// walkFiles calls fn for each entry of the flattened filesystem of the base's
// i-th platform image whose path is among paths, until fn says stop.
func (b *Base) walkFiles(ctx context.Context, i int, paths []string, fn func(p string, h *tar.Header, r io.Reader) (stop bool, err error)) error {
	if i < 0 || i >= len(b.images) {
		return fmt.Errorf("base %s has no platform #%d", b.describe(), i)
	}
	want := map[string]bool{}
	for _, p := range paths {
		want[strings.TrimPrefix(path.Clean(p), "/")] = true
	}
	rc := mutate.Extract(b.images[i])
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read filesystem of %s: %w", b.describe(), err)
		}
		p := strings.TrimPrefix(path.Clean(h.Name), "/")
		if !want[p] {
			continue
		}
		if stop, err := fn("/"+p, h, tr); stop || err != nil {
			return err
		}
	}
}
