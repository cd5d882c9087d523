package publish

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/xtraefik/xtraefik/images"
	"github.com/xtraefik/xtraefik/internal/place"
)

// target is the placement state shared by the local outputs.
type target struct{ t *place.Target }

func (p *target) Undo() error {
	if p.t == nil {
		return nil
	}
	err := p.t.Undo()
	p.t = nil
	return err
}

func (p *target) Commit() error {
	if p.t == nil {
		return nil
	}
	err := p.t.Commit()
	p.t = nil
	return err
}

// fail undoes a half-written output and returns err.
func (p *target) fail(err error) error {
	if uerr := p.Undo(); uerr != nil {
		return errors.Join(err, fmt.Errorf("undo: %w", uerr))
	}
	return err
}

// Layout writes an OCI image layout directory, creating missing parents.
type Layout struct {
	Dir string
	// Tag is recorded as org.opencontainers.image.ref.name.
	Tag       string
	Overwrite bool
	// Digest is the image or index written: the image's, or its OCI
	// rewrite's when the image has Docker media types.
	Digest v1.Hash
	target
	// result is what was written, whose blob cache the layout replaced
	// may share files with.
	result *images.Result
}

func (l *Layout) path() string { return l.Dir }

// Commit keeps the layout and removes the one it replaced, unlinking the
// blobs that one shares with the blob cache first so that they stay
// verified (images.Result.ReleaseLayout).
func (l *Layout) Commit() error {
	if l.t != nil {
		l.result.ReleaseLayout(l.t.Aside())
	}
	return l.target.Commit()
}

func (l *Layout) Validate(context.Context) error {
	if err := place.Check(l.Dir, place.Dir, l.Overwrite); err != nil {
		return fmt.Errorf("OCI layout: %w", err)
	}
	return nil
}

func (l *Layout) Publish(ctx context.Context, a *Artifact) error {
	oci, err := a.Image.OCI()
	if err != nil {
		return fmt.Errorf("OCI layout %s: %w", l.Dir, err)
	}
	if l.t, err = place.New(l.Dir, place.Dir, l.Overwrite, true); err != nil {
		return fmt.Errorf("OCI layout: %w", err)
	}
	if err := images.WriteLayoutDir(ctx, l.t.Temp(), oci, l.Tag); err != nil {
		return l.fail(fmt.Errorf("OCI layout %s: %w", l.Dir, err))
	}
	if err := l.t.Place(); err != nil {
		return l.fail(fmt.Errorf("OCI layout %s: %w", l.Dir, err))
	}
	l.Digest, l.result = oci.Digest, oci
	return nil
}

// Tarball writes a `docker load` archive of one platform, creating missing
// parents.
type Tarball struct {
	Path string
	// Tag is the name `docker load` gives the image; empty loads it untagged.
	Tag string
	// Platform picks the image of a multi-platform result; nil means the host's.
	Platform  *v1.Platform
	Overwrite bool
	target
}

func (tb *Tarball) path() string { return tb.Path }

func (tb *Tarball) Validate(context.Context) error {
	if tb.Platform != nil {
		if _, err := images.ParsePlatform(tb.Platform.String()); err != nil {
			return fmt.Errorf("docker archive %s: %w", tb.Path, err)
		}
	}
	if tb.Tag != "" {
		if _, err := name.NewTag(tb.Tag, name.WeakValidation); err != nil {
			return fmt.Errorf("docker archive %s: image name: %w", tb.Path, err)
		}
	}
	if err := place.Check(tb.Path, place.File, tb.Overwrite); err != nil {
		return fmt.Errorf("docker archive: %w", err)
	}
	return nil
}

func (tb *Tarball) Publish(ctx context.Context, a *Artifact) error {
	var err error
	if tb.t, err = place.New(tb.Path, place.File, tb.Overwrite, true); err != nil {
		return fmt.Errorf("docker archive: %w", err)
	}
	opts := images.TarballOptions{Tag: tb.Tag, Platform: tb.Platform}
	if err := images.WriteArchive(ctx, tb.t.File(), a.Image, opts); err != nil {
		return tb.fail(fmt.Errorf("docker archive %s: %w", tb.Path, err))
	}
	if err := tb.t.Place(); err != nil {
		return tb.fail(fmt.Errorf("docker archive %s: %w", tb.Path, err))
	}
	return nil
}

// File writes a small file: the digest, the Helm values, the SBOM.
type File struct {
	Path string
	// What names the file in errors ("digest file").
	What string
	// Data renders the content from the artifact.
	Data func(*Artifact) []byte
	// Parents creates missing parent directories; without it a missing parent
	// is an error.
	Parents   bool
	Overwrite bool
	target
}

// DigestFile writes the image's digest and a newline.
func DigestFile(path string, overwrite bool) *File {
	return &File{Path: path, What: "digest file", Overwrite: overwrite,
		Data: func(a *Artifact) []byte { return []byte(a.Image.Digest.String() + "\n") }}
}

// ValuesFile writes the Helm values snippet.
func ValuesFile(path string, overwrite bool) *File {
	return &File{Path: path, What: "Helm values file", Overwrite: overwrite,
		Data: func(a *Artifact) []byte { return a.Values }}
}

// RecipeFile writes the recipe of the build.
func RecipeFile(path string, overwrite bool) *File {
	return &File{Path: path, What: "recipe", Overwrite: overwrite,
		Data: func(a *Artifact) []byte { return a.Recipe }}
}

// LockFile writes the lock of the build, beside its RecipeFile.
func LockFile(path string, overwrite bool) *File {
	return &File{Path: path, What: "lock", Overwrite: overwrite,
		Data: func(a *Artifact) []byte { return a.Lock }}
}

// SBOMFile is the SPDX document's name in an SBOM directory.
const SBOMFile = "sbom.spdx.json"

// SBOMDir writes the SPDX document as SBOMFile in dir, created if missing.
func SBOMDir(dir string, overwrite bool) *File {
	return &File{Path: filepath.Join(dir, SBOMFile), What: "SBOM", Parents: true, Overwrite: overwrite,
		Data: func(a *Artifact) []byte { return a.SBOM }}
}

func (f *File) path() string { return f.Path }

func (f *File) Validate(context.Context) error {
	if !f.Parents {
		parent := filepath.Dir(f.Path)
		if info, err := os.Stat(parent); err != nil {
			return fmt.Errorf("%s %s: %w", f.What, f.Path, err)
		} else if !info.IsDir() {
			return fmt.Errorf("%s %s: %s is not a directory", f.What, f.Path, parent)
		}
	}
	if err := place.Check(f.Path, place.File, f.Overwrite); err != nil {
		return fmt.Errorf("%s: %w", f.What, err)
	}
	return nil
}

func (f *File) Publish(_ context.Context, a *Artifact) error {
	data := f.Data(a)
	if data == nil {
		return fmt.Errorf("%s %s: nothing to write", f.What, f.Path)
	}
	var err error
	if f.t, err = place.New(f.Path, place.File, f.Overwrite, f.Parents); err != nil {
		return fmt.Errorf("%s: %w", f.What, err) // the error names the path
	}
	if _, err := f.t.File().Write(data); err != nil {
		return f.fail(fmt.Errorf("%s %s: %w", f.What, f.Path, err))
	}
	if err := f.t.Place(); err != nil {
		return f.fail(fmt.Errorf("%s %s: %w", f.What, f.Path, err))
	}
	return nil
}
