package images

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/xtraefik/xtraefik/internal/redact"
)

// DefaultRequestTimeout bounds how long one registry request may go without
// progress. Each request is tried registryAttempts times, so a registry that
// accepts connections and never answers fails a pull or a push within about
// 3 × 30 s plus 4 s of back-off.
const DefaultRequestTimeout = 30 * time.Second

// registryAttempts is how often a stalled or failed request is tried.
const registryAttempts = 3

// retryBackoff waits 1 s, then 3 s between the attempts.
var retryBackoff = remote.Backoff{Duration: time.Second, Factor: 3, Jitter: 0.1, Steps: registryAttempts}

func (o Options) requestTimeout() time.Duration {
	if o.RequestTimeout == 0 {
		return DefaultRequestTimeout
	}
	return o.RequestTimeout
}

// stallGuard abandons a request that makes no progress for idle: no response
// headers, no request body read by the connection, no response body bytes. A
// timer per request, reset on progress, bounds a stalled registry without
// bounding a large blob that keeps flowing.
type stallGuard struct {
	next http.RoundTripper
	idle time.Duration
}

// StalledError is a registry request abandoned for lack of progress.
type StalledError struct {
	Host string
	Idle time.Duration
}

func (e *StalledError) Error() string {
	return fmt.Sprintf("registry %s stalled: no answer for %s (tried %d times)", e.Host, e.Idle, registryAttempts)
}

// Temporary makes go-containerregistry's retry transport try the request again.
func (e *StalledError) Temporary() bool { return true }

func (g *stallGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	if g.idle <= 0 {
		return g.next.RoundTrip(req)
	}
	stalled := &StalledError{Host: req.URL.Host, Idle: g.idle}
	ctx, cancel := context.WithCancelCause(req.Context())
	timer := time.AfterFunc(g.idle, func() { cancel(stalled) })
	p := &progress{ctx: ctx, timer: timer, idle: g.idle, stalled: stalled}
	req = req.WithContext(ctx)
	if req.Body != nil {
		req.Body = &progressBody{ReadCloser: req.Body, p: p}
	}
	resp, err := g.next.RoundTrip(req)
	if err != nil {
		timer.Stop()
		cancel(nil)
		return nil, p.cause(err)
	}
	p.kick()
	resp.Body = &progressBody{ReadCloser: resp.Body, p: p, done: func() { timer.Stop(); cancel(nil) }}
	return resp, nil
}

type progress struct {
	ctx     context.Context
	timer   *time.Timer
	idle    time.Duration
	stalled error
}

func (p *progress) kick() {
	if p.ctx.Err() == nil {
		p.timer.Reset(p.idle)
	}
}

// cause names the stall rather than the cancellation it caused.
func (p *progress) cause(err error) error {
	if err != nil && errors.Is(context.Cause(p.ctx), p.stalled) {
		return p.stalled
	}
	return err
}

type progressBody struct {
	io.ReadCloser
	p    *progress
	done func()
}

func (b *progressBody) Read(buf []byte) (int, error) {
	n, err := b.ReadCloser.Read(buf)
	if n > 0 {
		b.p.kick()
	}
	return n, b.p.cause(err)
}

func (b *progressBody) Close() error {
	err := b.ReadCloser.Close()
	if b.done != nil {
		b.done()
	}
	return err
}

// explain redacts a registry error's URLs (upload sessions, signed
// redirects) and says what a registry's refusal means in a sentence (no
// such tag, not authorized, rate-limited...), keeping the registry's own
// code and message; a refusal (401, 403) also says where the credentials
// sent came from, since a missing and a wrong credential read the same
// otherwise. The error chain is kept (errors.As finds *transport.Error).
func (o Options) explain(err error, ref name.Reference) error {
	var terr *transport.Error
	if !errors.As(err, &terr) {
		return redact.Error(err)
	}
	msg := strings.Replace(err.Error(), terr.Error(), o.sentence(terr, ref), 1)
	return redact.Error(&registryError{msg: msg, err: err})
}

// registryError is a registry's answer said as a sentence.
type registryError struct {
	msg string
	err error
}

func (e *registryError) Error() string { return e.msg }
func (e *registryError) Unwrap() error { return e.err }

// sentence says what the registry's answer terr to a request about ref
// means, then its code and message: "the registry docker.io has no tag
// v3.9 (MANIFEST_UNKNOWN: manifest unknown)". Details (map[Tag:v3.9]) and
// the request URL are left out: the caller names what was asked for.
func (o Options) sentence(terr *transport.Error, ref name.Reference) string {
	code, said := transport.ErrorCode(""), fmt.Sprintf("HTTP %d %s", terr.StatusCode, http.StatusText(terr.StatusCode))
	if len(terr.Errors) > 0 {
		d := terr.Errors[0]
		code, said = d.Code, string(d.Code)
		if d.Message != "" {
			said += ": " + d.Message
		}
	}
	reg := canonicalRegistry(ref.Context().RegistryStr())
	switch {
	case code == transport.ManifestUnknownErrorCode:
		if t, ok := ref.(name.Tag); ok {
			return fmt.Sprintf("the registry %s has no tag %s in %s (%s)", reg, t.TagStr(), ref.Context().RepositoryStr(), said)
		}
		return fmt.Sprintf("the registry %s has no manifest %s in %s (%s)", reg, ref.Identifier(), ref.Context().RepositoryStr(), said)
	case code == transport.NameUnknownErrorCode:
		return fmt.Sprintf("the registry %s has no repository %s (%s)", reg, ref.Context().RepositoryStr(), said)
	case code == transport.BlobUnknownErrorCode:
		return fmt.Sprintf("the registry %s lacks that blob in %s (%s)", reg, ref.Context().RepositoryStr(), said)
	case code == transport.NameInvalidErrorCode:
		return fmt.Sprintf("the registry %s refuses the repository name %s (%s)", reg, ref.Context().RepositoryStr(), said)
	case code == transport.UnauthorizedErrorCode, code == "" && terr.StatusCode == http.StatusUnauthorized:
		return fmt.Sprintf("not authorized by %s: log in with `docker login %s` (or podman login, crane auth login), or give credentials in a Docker or Podman auth file (credentials: %s; the registry said %s)",
			reg, reg, o.credentialSource(ref.Context().Registry), said)
	case code == transport.DeniedErrorCode, code == "" && terr.StatusCode == http.StatusForbidden:
		return fmt.Sprintf("access to %s denied by %s: the credentials sent may not use it; log in as a user who may (credentials: %s; the registry said %s)",
			ref.Context().RepositoryStr(), reg, o.credentialSource(ref.Context().Registry), said)
	case code == transport.TooManyRequestsErrorCode, code == "" && terr.StatusCode == http.StatusTooManyRequests:
		return fmt.Sprintf("the registry %s refuses more requests for now (rate limit): try again later, log in (Docker Hub allows logged-in users more pulls), or pull through a mirror (%s)", reg, said)
	case code == transport.UnsupportedErrorCode:
		return fmt.Sprintf("the registry %s does not support this request (%s)", reg, said)
	case code == "" && terr.StatusCode == http.StatusNotFound:
		return fmt.Sprintf("the registry %s has no %s in %s (%s)", reg, ref.Identifier(), ref.Context().RepositoryStr(), said)
	case terr.StatusCode >= 500:
		return fmt.Sprintf("the registry %s failed (%s)", reg, said)
	}
	return fmt.Sprintf("the registry %s refused the request (%s)", reg, said)
}

// credentialSource says which credentials were sent to reg and from where.
func (o Options) credentialSource(reg name.Registry) string {
	k, ok := o.keychain().(*envKeychain)
	if !ok {
		return "from the configured keychain"
	}
	file := authFile(k.env)
	a, err := k.Resolve(reg)
	switch {
	case err != nil:
		return fmt.Sprintf("unreadable: %v", err)
	case file == "":
		return "none: no Docker or Podman auth file found"
	case a == authn.Anonymous:
		return fmt.Sprintf("none for %s in %s", reg.RegistryStr(), file)
	}
	return fmt.Sprintf("for %s from %s", reg.RegistryStr(), file)
}
