package images

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/xtraefik/xtraefik/images/blobstore"
)

// Mirror redirects pulls of every repository under Prefix to Location, keeping
// the rest of the path: {docker.io, 127.0.0.1:5000} pulls docker.io/library/traefik
// from 127.0.0.1:5000/library/traefik. Mirrors never apply to pushes.
type Mirror struct {
	// Prefix is a registry, optionally with a repository path ("docker.io",
	// "docker.io/library"). "index.docker.io" and "docker.io" are the same.
	Prefix string
	// Location replaces Prefix ("127.0.0.1:5000", "mirror.example/dockerhub").
	Location string
}

// Options configure registry access.
type Options struct {
	// Keychain finds credentials; nil means EnvKeychain(os.Getenv) (docker
	// and podman config files and credential helpers, as crane does).
	Keychain authn.Keychain
	// Mirrors rewrite pulls; the longest matching prefix wins.
	Mirrors []Mirror
	// Insecure lists registries (host or host:port) that may be reached over
	// plain HTTP. Loopback registries always may; nothing else may.
	Insecure []string
	// Platforms narrows a multi-platform base; empty keeps every platform.
	Platforms []v1.Platform
	// Transport is the HTTP transport to use; nil means remote.DefaultTransport.
	Transport http.RoundTripper
	// Cache keeps the manifests, configs and layers of registry bases read
	// by digest, so that a locked rebuild reads its base from disk and an
	// OCI layout output links blobs instead of copying them; nil keeps
	// nothing.
	Cache *blobstore.Store
	// Offline never contacts a registry: what Cache lacks is ErrNotCached.
	Offline bool
	// RequestTimeout bounds how long one registry request may go without
	// progress before it is tried again (three times in all); 0 means
	// DefaultRequestTimeout, a negative value no bound.
	RequestTimeout time.Duration
	// Progress, when set, is told how far a Pusher has moved the image to
	// repo: bytes complete of total, blobs the registry already has counted
	// as done, adding up over every Upload, AttachSBOM and Tag to repo. It
	// is called one call at a time per repository (calls for different
	// repositories may overlap), never after Pusher.Close returns.
	Progress func(repo string, complete, total int64)
}

// keychain is o.Keychain, else the process environment's auth files.
func (o Options) keychain() authn.Keychain {
	if o.Keychain == nil {
		return EnvKeychain(nil)
	}
	return o.Keychain
}

func (o Options) remoteOptions(ctx context.Context) []remote.Option {
	return o.remoteOptionsWith(ctx, func(rt http.RoundTripper) http.RoundTripper { return rt })
}

// remoteOptionsWith is remoteOptions with the guarded transport wrapped
// by wrap.
func (o Options) remoteOptionsWith(ctx context.Context, wrap func(http.RoundTripper) http.RoundTripper) []remote.Option {
	kc := o.keychain()
	rt := o.Transport
	if rt == nil {
		rt = remote.DefaultTransport
	}
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(kc),
		remote.WithTransport(wrap(&plainHTTPGuard{next: &stallGuard{next: rt, idle: o.requestTimeout()}, insecure: o.Insecure})),
		remote.WithRetryBackoff(retryBackoff),
		remote.WithUserAgent("xtraefik"),
	}
}

// parseName parses a registry reference, marking the registry insecure (plain
// HTTP allowed as a fallback) only when Options.Insecure lists it.
func (o Options) parseName(s string) (name.Reference, error) {
	ref, err := name.ParseReference(s, name.WeakValidation)
	if err != nil {
		return nil, err
	}
	if o.isInsecure(ref.Context().RegistryStr()) {
		return name.ParseReference(s, name.WeakValidation, name.Insecure)
	}
	return ref, nil
}

func (o Options) isInsecure(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	for _, r := range o.Insecure {
		if r == hostport || r == host {
			return true
		}
	}
	return false
}

// pullName is where a registry reference is pulled from: the reference itself,
// or its rewrite by the longest matching mirror (returned as mirror, else "").
func (o Options) pullName(ref Reference) (pull string, mirror string, err error) {
	logical, err := name.ParseReference(ref.registryString(), name.WeakValidation)
	if err != nil {
		return "", "", fmt.Errorf("image reference %q: %w", ref, err)
	}
	canonical := canonicalRegistry(logical.Context().RegistryStr()) + "/" + logical.Context().RepositoryStr()
	best, bestPrefix := -1, ""
	for i, m := range o.Mirrors {
		p := strings.TrimSuffix(canonicalPrefix(m.Prefix), "/")
		if p == "" || m.Location == "" {
			continue
		}
		if canonical != p && !strings.HasPrefix(canonical, p+"/") {
			continue
		}
		if best < 0 || len(p) > len(bestPrefix) {
			best, bestPrefix = i, p
		}
	}
	suffix := ""
	switch {
	case ref.Digest != "":
		suffix = "@" + ref.Digest
	case ref.Tag != "":
		suffix = ":" + ref.Tag
	}
	if best < 0 {
		return logical.Context().Name() + suffix, "", nil
	}
	m := strings.TrimSuffix(o.Mirrors[best].Location, "/") + canonical[len(bestPrefix):] + suffix
	return m, m, nil
}

// canonicalRegistry folds Docker Hub's two names into the one users write.
func canonicalRegistry(r string) string {
	if r == name.DefaultRegistry || r == "docker.io" {
		return "docker.io"
	}
	return r
}

func canonicalPrefix(p string) string {
	reg, rest, _ := strings.Cut(p, "/")
	if rest == "" {
		return canonicalRegistry(reg)
	}
	return canonicalRegistry(reg) + "/" + rest
}

// plainHTTPGuard refuses plain-HTTP requests except to loopback hosts and the
// registries listed as insecure. go-containerregistry falls back to HTTP on its
// own for RFC 1918 addresses and *.local names, which would send credentials
// and trust unauthenticated content on a shared network.
type plainHTTPGuard struct {
	next     http.RoundTripper
	insecure []string
}

func (g *plainHTTPGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !g.allowed(req.URL.Host) {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, fmt.Errorf("refusing plain HTTP to %s: only loopback registries and those listed as insecure may be used without TLS", req.URL.Host)
	}
	return g.next.RoundTrip(req)
}

func (g *plainHTTPGuard) allowed(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	if isLoopback(host) {
		return true
	}
	return Options{Insecure: g.insecure}.isInsecure(hostport)
}

func isLoopback(host string) bool {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
