package images

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// LayoutOptions configure WriteLayout.
type LayoutOptions struct {
	// Tag is written as org.opencontainers.image.ref.name, so that
	// "oci:<dir>:<tag>" finds the image; empty writes no tag.
	Tag string
	// Overwrite replaces an existing target; without it a non-empty directory
	// or a file at the target is an error.
	Overwrite bool
}

// WriteLayout writes r as a new OCI image layout at dir. The layout is built in
// a temporary directory beside dir and renamed into place only when complete;
// on error nothing is left behind. Docker-typed results are written with OCI
// media types (see Result.OCI), since layout readers accept only those.
func WriteLayout(ctx context.Context, dir string, r *Result, opts LayoutOptions) error {
	if r == nil {
		return errors.New("write OCI layout: no result")
	}
	if err := checkTarget(dir, opts.Overwrite, true); err != nil {
		return fmt.Errorf("write OCI layout %s: %w", dir, err)
	}
	r, err := r.OCI()
	if err != nil {
		return fmt.Errorf("write OCI layout %s: %w", dir, err)
	}
	// Like `crane pull --format oci` and skopeo, create missing parents
	// ("--oci-layout out/traefik-demo" in a fresh checkout).
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("write OCI layout %s: %w", dir, err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return fmt.Errorf("write OCI layout %s: %w", dir, err)
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()
	if err := writeLayoutTo(tmp, r, opts.Tag); err != nil {
		return fmt.Errorf("write OCI layout %s: %w", dir, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("write OCI layout %s: %w", dir, err)
	}
	// MkdirTemp creates 0700; a layout is meant to be shared like any directory.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("write OCI layout %s: %w", dir, err)
	}
	if err := replaceDir(tmp, dir, opts.Overwrite); err != nil {
		return fmt.Errorf("write OCI layout %s: %w", dir, err)
	}
	done = true
	return nil
}

func writeLayoutTo(dir string, r *Result, tag string) error {
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	var lopts []layout.Option
	if tag != "" {
		lopts = append(lopts, layout.WithAnnotations(map[string]string{annotationRefName: tag}))
	}
	if r.index != nil {
		return lp.AppendIndex(r.index, lopts...)
	}
	return lp.AppendImage(r.images[0], lopts...)
}

// checkTarget refuses an existing target unless overwrite is set; an empty
// directory is no content to lose when the target is a directory.
func checkTarget(p string, overwrite, isDir bool) error {
	info, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if overwrite {
		return nil
	}
	if isDir && info.IsDir() {
		if empty, err := isEmptyDir(p); err != nil {
			return err
		} else if empty {
			return nil
		}
		return errors.New("the directory exists and is not empty; pass --overwrite (Overwrite) to replace it")
	}
	return errors.New("the target exists; pass --overwrite (Overwrite) to replace it")
}

func isEmptyDir(p string) (bool, error) {
	f, err := os.Open(p)
	if err != nil {
		return false, err
	}
	defer f.Close()
	_, err = f.Readdirnames(1)
	if errors.Is(err, io.EOF) {
		return true, nil
	}
	return false, err
}

// replaceDir moves tmp to dir. An empty directory is removed first; a full one
// (only with overwrite) is moved aside and restored if the swap fails.
func replaceDir(tmp, dir string, overwrite bool) error {
	if err := checkTarget(dir, overwrite, true); err != nil {
		return err
	}
	info, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return os.Rename(tmp, dir)
	}
	if err != nil {
		return err
	}
	if info.IsDir() {
		if empty, err := isEmptyDir(dir); err != nil {
			return err
		} else if empty {
			// os.Rename refuses any existing directory target, empty or not.
			if err := os.Remove(dir); err != nil {
				return err
			}
			return os.Rename(tmp, dir)
		}
	}
	aside, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".old-")
	if err != nil {
		return err
	}
	// The placeholder only reserved a unique name; rename needs it gone (or
	// empty, which rename would replace only for a directory source).
	if err := os.Remove(aside); err != nil {
		return err
	}
	if err := os.Rename(dir, aside); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		if rerr := os.Rename(aside, dir); rerr != nil {
			return fmt.Errorf("%w (and restoring the previous content from %s failed: %v)", err, aside, rerr)
		}
		return err
	}
	return os.RemoveAll(aside)
}

// TarballOptions configure WriteTarball.
type TarballOptions struct {
	// Tag is the name `docker load` gives the image ("traefik-plugins:v1");
	// empty loads it untagged.
	Tag string
	// Platform picks the image of a multi-platform result; nil means the host's
	// linux/GOARCH.
	Platform *v1.Platform
	// Overwrite replaces an existing file.
	Overwrite bool
}

// WriteTarball writes one image of r as a `docker save` tarball that
// `docker load` reads (which takes single images only). The file is written
// beside path and renamed into place when complete.
func WriteTarball(ctx context.Context, path string, r *Result, opts TarballOptions) error {
	if r == nil {
		return errors.New("write docker archive: no result")
	}
	if err := checkTarget(path, opts.Overwrite, false); err != nil {
		return fmt.Errorf("write docker archive %s: %w", path, err)
	}
	img, err := r.tarballImage(opts.Platform)
	if err != nil {
		return fmt.Errorf("write docker archive %s: %w", path, err)
	}
	var ref name.Reference
	if opts.Tag != "" {
		if ref, err = name.NewTag(opts.Tag, name.WeakValidation); err != nil {
			return fmt.Errorf("write docker archive %s: tag: %w", path, err)
		}
	} else {
		digest, err := img.Digest()
		if err != nil {
			return fmt.Errorf("write docker archive %s: %w", path, err)
		}
		// A digest reference writes no RepoTags: the image loads untagged.
		if ref, err = name.NewDigest("xtraefik@" + digest.String()); err != nil {
			return fmt.Errorf("write docker archive %s: %w", path, err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write docker archive %s: %w", path, err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return fmt.Errorf("write docker archive %s: %w", path, err)
	}
	tmp := f.Name()
	done := false
	defer func() {
		if !done {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := tarball.Write(ref, img, f); err != nil {
		return fmt.Errorf("write docker archive %s: %w", path, err)
	}
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("write docker archive %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write docker archive %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write docker archive %s: %w", path, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("write docker archive %s: %w", path, err)
	}
	if err := placeFile(tmp, path, opts.Overwrite); err != nil {
		return fmt.Errorf("write docker archive %s: %w", path, err)
	}
	done = true
	return nil
}

// placeFile renames tmp to path; without overwrite it links instead, which
// fails rather than replace a file that appeared meanwhile.
func placeFile(tmp, path string, overwrite bool) error {
	if overwrite {
		return os.Rename(tmp, path)
	}
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return errors.New("the target exists; pass --overwrite (Overwrite) to replace it")
		}
		// No hard links here (some file systems): check, then rename.
		if err := checkTarget(path, false, false); err != nil {
			return err
		}
		return os.Rename(tmp, path)
	}
	return os.Remove(tmp)
}

// tarballImage picks the image for a docker archive: the only one, or the one
// for platform (default: the host's linux/GOARCH).
func (r *Result) tarballImage(p *v1.Platform) (v1.Image, error) {
	if r.index == nil {
		if p != nil && !r.Platforms[0].Platform.Satisfies(*p) {
			return nil, fmt.Errorf("the image is %s, not %s", r.Platforms[0].Platform, p)
		}
		return r.images[0], nil
	}
	spec := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	if p != nil {
		spec = *p
	}
	i, err := r.pick(spec)
	if err != nil {
		if p == nil {
			return nil, fmt.Errorf("docker load takes one platform and the host's default is unusable: %w; choose a platform", err)
		}
		return nil, err
	}
	return r.images[i], nil
}

// Push writes r to the registry reference ref (a tag, or a digest that must be
// r's). Only blobs the registry lacks are uploaded; blobs of a base in the same
// registry are mounted across repositories, never pulled.
func Push(ctx context.Context, ref string, r *Result, opts Options) (v1.Hash, error) {
	if r == nil {
		return v1.Hash{}, errors.New("push: no result")
	}
	parsed, err := ParseReference(ref)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("push: %w", err)
	}
	if parsed.Transport != TransportDocker {
		return v1.Hash{}, fmt.Errorf("push %s: not a registry reference", ref)
	}
	if parsed.Digest != "" && parsed.Digest != r.Digest.String() {
		return v1.Hash{}, fmt.Errorf("push %s: the result is %s, not %s", ref, r.Digest, parsed.Digest)
	}
	target, err := opts.parseName(parsed.registryString())
	if err != nil {
		return v1.Hash{}, fmt.Errorf("push %s: %w", ref, err)
	}
	ropts := opts.remoteOptions(ctx)
	if r.index != nil {
		err = remote.WriteIndex(target, r.index, ropts...)
	} else {
		err = remote.Write(target, r.images[0], ropts...)
	}
	if err != nil {
		return v1.Hash{}, fmt.Errorf("push %s: %w", ref, err)
	}
	return r.Digest, nil
}
