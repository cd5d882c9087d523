package outdated

import (
	"context"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/xtraefik/xtraefik/images"
	"github.com/xtraefik/xtraefik/internal/source"
)

// NewGitLister lists tags on the remote itself (source.ListTags) with the
// credentials auth gives; nil auth reads them from the environment.
func NewGitLister(auth source.AuthFunc) GitTagLister { return gitLister{auth: auth} }

type gitLister struct{ auth source.AuthFunc }

func (g gitLister) ListTags(ctx context.Context, url string) ([]source.Tag, error) {
	return source.ListTags(ctx, url, g.auth)
}

// NewImageLister reads registries as a build does (opts: keychain, mirrors,
// insecure registries, request timeout, platforms).
func NewImageLister(opts images.Options) ImageTagLister { return imageLister{opts: opts} }

type imageLister struct{ opts images.Options }

func (l imageLister) ListTags(ctx context.Context, ref images.Reference) ([]string, error) {
	return images.ListTags(ctx, ref, l.opts)
}

// Version reads the version label of the base's first platform (after
// Options.Platforms narrowed them): every platform of a Traefik release
// carries the same one.
func (l imageLister) Version(ctx context.Context, ref images.Reference, digest string) (string, error) {
	var (
		b   *images.Base
		err error
	)
	if digest == "" {
		b, err = images.Resolve(ctx, ref, l.opts)
	} else {
		h, herr := v1.NewHash(digest)
		if herr != nil {
			return "", fmt.Errorf("locked base digest %q: %w", digest, herr)
		}
		b, err = images.ResolveDigest(ctx, ref, h, l.opts)
	}
	if err != nil {
		return "", err
	}
	cf, err := b.ConfigFile(0)
	if err != nil {
		return "", err
	}
	return versionLabel(cf.Config.Labels), nil
}

// versionLabel reads the labels verify.TraefikVersionFromLabels reads, in
// the same order (the official images set the OCI one), without importing
// the interpreter that package links.
func versionLabel(labels map[string]string) string {
	for _, k := range []string{"org.opencontainers.image.version", "org.label-schema.version"} {
		v := strings.TrimSpace(labels[k])
		if !strings.HasPrefix(v, "v") {
			v = "v" + v
		}
		if r, ok := parseRelease(v); ok {
			return r.sem
		}
	}
	return ""
}
