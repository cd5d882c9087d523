// Package publish writes a built image to its outputs (an OCI layout, a docker
// archive, registries, and files beside them) so that a run either writes all
// of them or leaves everything as it found it.
//
// Each output is a Publisher: Validate runs before any work (a build takes
// minutes; a bad output path should not wait for it), Publish writes, Undo
// takes back what this run wrote and restores what it replaced, Commit drops
// what Undo would have needed. Nothing that exists at an output path is
// modified unless overwrite is asked for, and then only until a later output
// fails. Multi runs them in order.
package publish

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/xtraefik/xtraefik/images"
	"github.com/xtraefik/xtraefik/internal/place"
)

// ErrExists wraps the error for an output path that exists when overwrite
// was not asked for.
var ErrExists = place.ErrExists

// Artifact is what the publishers write.
type Artifact struct {
	Image *images.Result
	// SBOM is the SPDX JSON document; nil when none was asked for.
	SBOM []byte
	// Values is the Helm values snippet that enables the plugins.
	Values []byte
	// Recipe and Lock are the recipe file and lock a build made without a
	// file saves (RecipeFile, LockFile).
	Recipe, Lock []byte
}

// Publisher is one output.
type Publisher interface {
	// Validate refuses an output that cannot be written, before the build.
	Validate(ctx context.Context) error
	// Publish writes the output; on error it leaves nothing of its own behind.
	Publish(ctx context.Context, a *Artifact) error
	// Undo removes what Publish wrote and restores what it replaced.
	Undo() error
	// Commit makes Publish final.
	Commit() error
}

// Multi publishes to several outputs in order, all or nothing: when one
// fails, those before it are undone, last first.
type Multi []Publisher

// Validate validates every output, and that no two local outputs overlap (one
// would replace or land inside the other), reporting every problem at once.
func (m Multi) Validate(ctx context.Context) error {
	var errs []error
	var paths []string
	for _, p := range m {
		errs = append(errs, p.Validate(ctx))
		if l, ok := p.(interface{ path() string }); ok && l.path() != "" {
			paths = append(paths, filepath.Clean(l.path()))
		}
	}
	for i, a := range paths {
		for _, b := range paths[i+1:] {
			if a == b || within(a, b) || within(b, a) {
				errs = append(errs, fmt.Errorf("outputs %s and %s overlap", a, b))
			}
		}
	}
	return errors.Join(errs...)
}

// within reports whether p lies inside dir.
func within(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && filepath.IsLocal(rel) && rel != "."
}

// Publish validates again (paths may have changed during the build), then
// publishes to each output in turn.
func (m Multi) Publish(ctx context.Context, a *Artifact) error {
	if err := m.Validate(ctx); err != nil {
		return err
	}
	for i, p := range m {
		if err := ctx.Err(); err != nil {
			return m[:i].undo(err)
		}
		if err := p.Publish(ctx, a); err != nil {
			return m[:i].undo(err)
		}
	}
	var errs []error
	for _, p := range m {
		errs = append(errs, p.Commit())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("every output was written, but removing what they replaced failed: %w", err)
	}
	return nil
}

// undo takes back every published output, last first, and returns cause with
// what could not be undone.
func (m Multi) undo(cause error) error {
	errs := []error{cause}
	for i := len(m) - 1; i >= 0; i-- {
		if err := m[i].Undo(); err != nil {
			errs = append(errs, fmt.Errorf("undo: %w", err))
		}
	}
	return errors.Join(errs...)
}
