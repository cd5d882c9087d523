package publish

import (
	"context"
	"errors"
)

// Substitute publishes another artifact than the one Multi hands out: a
// build that makes two images (the full image and the plugins image) writes
// the second through the same publishers, in the same all-or-nothing run.
// Artifact is read when Publish runs, so it may be filled after Substitute
// is made (the build sets it once the image exists).
type Substitute struct {
	Publisher Publisher
	Artifact  *Artifact
}

func (s *Substitute) Validate(ctx context.Context) error { return s.Publisher.Validate(ctx) }

func (s *Substitute) Publish(ctx context.Context, _ *Artifact) error {
	if s.Artifact == nil {
		return errors.New("publish: the second artifact was not made")
	}
	return s.Publisher.Publish(ctx, s.Artifact)
}

func (s *Substitute) Undo() error   { return s.Publisher.Undo() }
func (s *Substitute) Commit() error { return s.Publisher.Commit() }

// path lets Multi.Validate see a substituted local output's path.
func (s *Substitute) path() string {
	if l, ok := s.Publisher.(interface{ path() string }); ok {
		return l.path()
	}
	return ""
}
