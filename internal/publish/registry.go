package publish

import (
	"context"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/xtraefik/xtraefik/images"
)

// Registry pushes the image to one or more references (tags, or the image's
// digest). Blobs and manifests go once to each repository, by digest; the
// SBOM (when the artifact has one and AttachSBOM is set) is attached next;
// tags are written last, so a failure leaves no tag pointing anywhere new.
//
// A registry cannot be rolled back: put Registry last in a Multi. Blobs
// uploaded by a failed push are unreferenced, for the registry's garbage
// collection.
type Registry struct {
	Refs       []string
	Options    images.Options
	AttachSBOM bool

	// Pushed lists name@digest for each repository pushed to.
	Pushed []string
	// SBOMDigest is the referrer artifact attached to the image.
	SBOMDigest v1.Hash
}

func (r *Registry) Validate(context.Context) error {
	_, err := r.repositories(nil)
	return err
}

// repositories checks every reference and returns their repositories, each
// once, in order.
func (r *Registry) repositories(img *images.Result) ([]string, error) {
	var repos []string
	seen := map[string]bool{}
	for _, ref := range r.Refs {
		repo, err := images.CheckPushReference(ref, img, r.Options)
		if err != nil {
			return nil, fmt.Errorf("push %s: %w", ref, err)
		}
		if !seen[repo] {
			seen[repo] = true
			repos = append(repos, repo)
		}
	}
	return repos, nil
}

func (r *Registry) Publish(ctx context.Context, a *Artifact) error {
	repos, err := r.repositories(a.Image)
	if err != nil {
		return err
	}
	r.Pushed = nil
	p := images.NewPusher(r.Options)
	defer p.Close()
	for _, repo := range repos {
		if err := p.Upload(ctx, repo, a.Image); err != nil {
			return fmt.Errorf("push %s: %w", repo, err)
		}
		pushed := repo + "@" + a.Image.Digest.String()
		if r.AttachSBOM && a.SBOM != nil {
			if r.SBOMDigest, err = p.AttachSBOM(ctx, repo, a.Image, a.SBOM, images.SPDXMediaType); err != nil {
				return fmt.Errorf("push %s: %w", repo, err)
			}
		}
		r.Pushed = append(r.Pushed, pushed)
	}
	for _, ref := range r.Refs {
		if err := p.Tag(ctx, ref, a.Image); err != nil {
			return fmt.Errorf("push %s: tag: %w", ref, err)
		}
	}
	return nil
}

// Undo does nothing: see Registry.
func (r *Registry) Undo() error { return nil }

// Commit does nothing: tags are final when written.
func (r *Registry) Commit() error { return nil }
