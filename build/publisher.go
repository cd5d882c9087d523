package build

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/xtraefik/xtraefik/images"
	"github.com/xtraefik/xtraefik/internal/publish"
)

// Artifact is a built image as go-containerregistry sees it: a
// v1.ImageIndex when the base is an index (multi-platform), else a
// v1.Image. It is ko's build.Result, so a value is what remote.Write and
// remote.WriteIndex, layout.Path's Append and Write functions and ko's
// publishers take (type-switch on v1.ImageIndex and v1.Image).
type Artifact interface {
	MediaType() (types.MediaType, error)
	Size() (int64, error)
	Digest() (v1.Hash, error)
	RawManifest() ([]byte, error)
}

// Image is an image Session.Build made, as go-containerregistry values:
// exactly one of Index and Image is set, and its digest is Digest, the
// report's (Report.Image.Digest), the one pushed. The OCI layout output
// holds the same image, with OCI media types when the base's are Docker's
// (Report.Image.LayoutDigest).
type Image struct {
	Digest v1.Hash
	// Index is the image index when the base is one; nil otherwise.
	Index v1.ImageIndex
	// Image is the image when the base is a single manifest; nil
	// otherwise.
	Image v1.Image

	res *images.Result
}

func newImage(r *images.Result) *Image {
	if r == nil {
		return nil
	}
	return &Image{Digest: r.Digest, Index: r.Index(), Image: r.Single(), res: r}
}

// Artifact is Index or Image, whichever is set.
func (i *Image) Artifact() Artifact {
	if i.Index != nil {
		return i.Index
	}
	return i.Image
}

// Platform is the image for platform p ("linux/arm64" parsed with
// v1.ParsePlatform), from the index or the single image; an error names
// the platforms there are when none or several match.
func (i *Image) Platform(p v1.Platform) (v1.Image, error) {
	return i.res.Image(p)
}

// Publisher is an output Build does not know, as ko's publish.Interface:
// Build calls Publish with the image once it is built, verified and
// checked, after the built-in Outputs are written, with the image's name
// (Outputs.Tag, else DefaultTag), and records the reference it returns
// (Report.Image.Published). A ko publisher fits in a PublisherFunc:
//
//	build.PublisherFunc(func(ctx context.Context, a build.Artifact, tag string) (name.Reference, error) {
//		return koPublisher.Publish(ctx, a, tag)
//	})
//
// All or nothing, as far as it goes: publishers run after every built-in
// output (files first, then registries and signatures), in order, and only
// when those succeeded; when a publisher fails, the later ones are not
// called, the earlier ones that have an Undo() error method are undone,
// and the local outputs (layout, tarball, files) are removed with what they
// replaced put back; pushes and signatures, as always, stay. A publisher
// with a Validate(context.Context) error method is asked before anything
// is fetched, as Outputs are. The publisher gets the image the outputs
// write: the full image, or the plugins image when only it is built.
type Publisher interface {
	Publish(ctx context.Context, img Artifact, tag string) (name.Reference, error)
}

// PublisherFunc is a function as a Publisher.
type PublisherFunc func(ctx context.Context, img Artifact, tag string) (name.Reference, error)

// Publish calls f.
func (f PublisherFunc) Publish(ctx context.Context, img Artifact, tag string) (name.Reference, error) {
	return f(ctx, img, tag)
}

// custom runs the caller's Publishers as one of the publish package's
// outputs, last in the Multi.
type custom struct {
	pubs []Publisher
	tag  string
	// refs are what each publisher returned, in order, as far as it got.
	refs []name.Reference
}

func (c *custom) Validate(ctx context.Context) error {
	var errs []error
	for _, p := range c.pubs {
		if v, ok := p.(interface{ Validate(context.Context) error }); ok {
			if err := v.Validate(ctx); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", publisherName(p), err))
			}
		}
	}
	return errors.Join(errs...)
}

func (c *custom) Publish(ctx context.Context, a *publish.Artifact) error {
	img := newImage(a.Image)
	c.refs = nil
	for _, p := range c.pubs {
		if err := ctx.Err(); err != nil {
			return errors.Join(err, c.Undo())
		}
		ref, err := p.Publish(ctx, img.Artifact(), c.tag)
		if err != nil {
			return errors.Join(fmt.Errorf("%s: %w", publisherName(p), err), c.Undo())
		}
		c.refs = append(c.refs, ref)
	}
	return nil
}

// Undo undoes, last first, the publishers that published and can.
func (c *custom) Undo() error {
	var errs []error
	for i := len(c.refs) - 1; i >= 0; i-- {
		if u, ok := c.pubs[i].(interface{ Undo() error }); ok {
			if err := u.Undo(); err != nil {
				errs = append(errs, fmt.Errorf("undo %s: %w", publisherName(c.pubs[i]), err))
			}
		}
	}
	c.refs = nil
	return errors.Join(errs...)
}

func (c *custom) Commit() error { return nil }

// published are the references as the report lists them.
func (c *custom) published() []string {
	var out []string
	for _, r := range c.refs {
		if r != nil {
			out = append(out, r.String())
		}
	}
	return out
}

// publisherName names p in errors and on a Status.
func publisherName(p Publisher) string {
	if s, ok := p.(fmt.Stringer); ok {
		return "publisher " + s.String()
	}
	return fmt.Sprintf("publisher %T", p)
}
