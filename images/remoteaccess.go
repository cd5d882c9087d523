package images

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// RemoteAccess returns how Options reach a registry — credentials, the
// plain-HTTP rule, stall and retry handling — and digest parses a reference
// by digest ("name@sha256:…") under the same rules, for code that writes next
// to a pushed image with go-containerregistry-based libraries (signatures and
// attestations, package sign).
func (o Options) RemoteAccess(ctx context.Context) (opts []remote.Option, digest func(ref string) (name.Digest, error)) {
	return o.remoteOptions(ctx), func(ref string) (name.Digest, error) {
		parsed, err := o.parseName(ref)
		if err != nil {
			return name.Digest{}, fmt.Errorf("%s: %w", ref, err)
		}
		d, ok := parsed.(name.Digest)
		if !ok {
			return name.Digest{}, fmt.Errorf("%s: %w", ref, errors.New("not a reference by digest"))
		}
		return d, nil
	}
}
