package runcheck

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	securejoin "github.com/cyphar/filepath-securejoin"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// Unpack writes the flattened filesystem of img into dir, an existing empty
// directory. mutate.Extract applies the layers' whiteouts and streams each path
// once, upper layers first; Unpack keeps every path inside dir (symlinks,
// absolute ones included, are resolved as they would be with dir as the root),
// recreates symlinks and hardlinks, applies modes and, when running as root,
// ownership. Device nodes are skipped: the check never needs them and a
// runtime provides /dev.
func Unpack(ctx context.Context, img v1.Image, dir string) error {
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	u := unpacker{root: dir, chown: os.Geteuid() == 0}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			// mutate.Extract ends the archive before it reports an error:
			// the error is what follows the end marker.
			if _, err := io.Copy(io.Discard, rc); err != nil {
				return fmt.Errorf("reading the image's filesystem: %w", err)
			}
			break
		}
		if err != nil {
			return fmt.Errorf("reading the image's filesystem: %w", err)
		}
		if err := u.entry(hdr, tr); err != nil {
			return fmt.Errorf("unpacking %s: %w", hdr.Name, err)
		}
	}
	return u.finish()
}

type unpacker struct {
	root  string
	chown bool
	// dirModes are applied last, so a read-only directory can still be filled.
	dirModes []dirMode
}

type dirMode struct {
	path string
	mode fs.FileMode
}

// resolve returns the host path for an archive name: its parent resolved
// inside the root, its last element kept as is so that it can be replaced.
func (u *unpacker) resolve(name string) (string, bool, error) {
	clean := path.Clean("/" + name)
	if clean == "/" {
		return u.root, false, nil
	}
	parent, err := securejoin.SecureJoin(u.root, path.Dir(clean))
	if err != nil {
		return "", false, err
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", false, err
	}
	return filepath.Join(parent, path.Base(clean)), true, nil
}

func (u *unpacker) entry(hdr *tar.Header, r io.Reader) error {
	target, notRoot, err := u.resolve(hdr.Name)
	if err != nil {
		return err
	}
	// No set-id bits: while the check runs, the unpacked root is readable by
	// every local user, and Traefik never needs them.
	mode := hdr.FileInfo().Mode() & (fs.ModePerm | fs.ModeSticky)
	// Upper layers come first, so whatever exists already was put there by an
	// upper layer (a directory implied by its files) and hides this entry, as
	// an overlay would; only a directory's own metadata still applies.
	existing, err := os.Lstat(target)
	exists := err == nil
	if exists && notRoot && !(hdr.Typeflag == tar.TypeDir && existing.IsDir()) {
		return nil
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := os.MkdirAll(target, 0o755); err != nil {
			return err
		}
		if err := u.owner(target, hdr); err != nil {
			return err
		}
		if !u.chown {
			// Without root, a directory its owner cannot write could not be
			// emptied, and the work directory would outlive the check.
			// Traefik runs as this same user: nothing else sees the difference.
			mode |= 0o700
		}
		u.dirModes = append(u.dirModes, dirMode{target, mode})
		return nil
	case tar.TypeReg:
		if !notRoot {
			return errors.New("a file cannot replace the root")
		}
		f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, r); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		if err := u.owner(target, hdr); err != nil {
			return err
		}
		// After chown, which clears set-id bits.
		return os.Chmod(target, mode)
	case tar.TypeSymlink:
		if !notRoot {
			return errors.New("a symlink cannot replace the root")
		}
		if err := os.Symlink(hdr.Linkname, target); err != nil {
			return err
		}
		return u.owner(target, hdr)
	case tar.TypeLink:
		if !notRoot {
			return errors.New("a hardlink cannot replace the root")
		}
		src, err := securejoin.SecureJoin(u.root, path.Clean("/"+hdr.Linkname))
		if err != nil {
			return err
		}
		return os.Link(src, target)
	default:
		// Devices, FIFOs and anything newer: not needed to run Traefik.
		return nil
	}
}

func (u *unpacker) owner(target string, hdr *tar.Header) error {
	if !u.chown {
		return nil
	}
	return os.Lchown(target, hdr.Uid, hdr.Gid)
}

func (u *unpacker) finish() error {
	// Deepest first, so that closing a parent never blocks a child.
	for i := len(u.dirModes) - 1; i >= 0; i-- {
		d := u.dirModes[i]
		if err := os.Chmod(d.path, d.mode); err != nil {
			return fmt.Errorf("setting the mode of %s: %w", d.path, err)
		}
	}
	return nil
}
