package images

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// ListTags lists the tags of the repository a registry reference names (its
// tag or digest is ignored), pulled through the mirrors as a base is, with the
// same credentials, plain-HTTP rules and request timeout.
func ListTags(ctx context.Context, ref Reference, opts Options) ([]string, error) {
	if ref.Transport != TransportDocker && ref.Transport != "" {
		return nil, fmt.Errorf("list tags of %s: only registry images have tags to list", ref)
	}
	repo := Reference{Transport: TransportDocker, Name: ref.Name}
	pull, mirror, err := opts.pullName(repo)
	if err != nil {
		return nil, err
	}
	what := describe(repo, mirror)
	pref, err := opts.parseName(pull)
	if err != nil {
		return nil, fmt.Errorf("list tags of %s: %w", what, err)
	}
	tags, err := remote.List(pref.Context(), opts.remoteOptions(ctx)...)
	if err != nil {
		var terr *transport.Error
		if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
			return nil, fmt.Errorf("list tags of %s: repository not found: %w", what, err)
		}
		return nil, fmt.Errorf("list tags of %s: %w", what, opts.explain(err, pref))
	}
	return tags, nil
}
