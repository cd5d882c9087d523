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

// Repository parses a registry repository ("registry/path", also
// "docker://registry/path"; neither tag nor digest) under the rules every
// reference follows: plain HTTP only to loopback registries and those
// listed as Insecure.
func (o Options) Repository(s string) (name.Repository, error) {
	ref, err := ParseReference(s)
	if err != nil {
		return name.Repository{}, err
	}
	if ref.Transport != TransportDocker || ref.Tag != "" || ref.Digest != "" {
		return name.Repository{}, errors.New("want a registry repository (registry/path), without tag or digest")
	}
	var nopts []name.Option
	if r, err := name.NewRepository(ref.Name, name.WeakValidation); err == nil && o.isInsecure(r.RegistryStr()) {
		nopts = append(nopts, name.Insecure)
	}
	return name.NewRepository(ref.Name, append(nopts, name.WeakValidation)...)
}

// Explain is, for code outside this package that talks to a registry with
// RemoteAccess, what every error here gets: URLs redacted and, on a refusal,
// where the credentials sent came from.
func (o Options) Explain(err error, ref name.Reference) error { return o.explain(err, ref) }
