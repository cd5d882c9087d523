// Package probe is the one request both checks send through a middleware
// plugin — static verification hands it to the interpreted handler, the
// runtime check sends it to the image's own Traefik — and the one criterion
// that judges the answer. Keeping both here is what stops the two checks
// from drifting apart.
package probe

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
)

// The request as the client sends it.
const (
	Method = http.MethodGet
	// Host is the Host header; the runtime check's routers match it.
	Host      = "xtraefik-check.invalid"
	UserAgent = "xtraefik-check"
	// ClientIP is the client's address: the runtime check's client is on
	// Traefik's loopback, so static verification uses the same.
	ClientIP = "127.0.0.1"
	// ServerHostname is the hostname Traefik runs under in the runtime
	// check's own UTS namespace; Traefik puts it in X-Forwarded-Server.
	ServerHostname = "xtraefik-runcheck"
)

// Path is the request path for the plugin named alias: unique per plugin, so
// that Traefik's log lines about a request (a recovered panic names its URL)
// can be told apart.
func Path(alias string) string { return "/xtraefik-check/" + url.PathEscape(alias) }

// ClientHeader is every header the client sends besides Host.
func ClientHeader() http.Header {
	return http.Header{"User-Agent": {UserAgent}}
}

// Request is the request as a router's middlewares receive it in Traefik:
// the client's request from remoteAddr, with the headers Traefik's entry
// point adds (see Forward). Static verification hands it to the plugin.
func Request(ctx context.Context, alias, remoteAddr, hostname string) *http.Request {
	p := Path(alias)
	r := (&http.Request{
		Method:     Method,
		URL:        &url.URL{Path: p},
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     ClientHeader(),
		Body:       http.NoBody,
		Host:       Host,
		RemoteAddr: remoteAddr,
		RequestURI: p,
	}).WithContext(ctx)
	Forward(r, hostname)
	return r
}

// Forward adds the headers Traefik's entry point sets before any router
// middleware runs (pkg/middlewares/forwardedheaders, XForwarded.rewrite,
// Traefik v3.6.12; runcheck's TestRequestModelIsTraefiks holds the result to
// what that Traefik hands a plugin). A client that is not a trusted proxy has
// its own X-Forwarded-* removed first (the default: no trusted IPs).
// X-Forwarded-For is not among them: Traefik's reverse proxy appends the
// client address when it forwards to the backend, after the middlewares, so
// a plugin serving a direct client sees none.
func Forward(r *http.Request, hostname string) {
	for _, h := range []string{"X-Forwarded-Proto", "X-Forwarded-Scheme", "X-Forwarded-For", "X-Forwarded-Host",
		"X-Forwarded-Port", "X-Forwarded-Server", "X-Forwarded-Uri", "X-Forwarded-Method", "X-Forwarded-Prefix",
		"X-Forwarded-Tls-Client-Cert", "X-Forwarded-Tls-Client-Cert-Info", "X-Scheme", "X-Real-Ip"} {
		r.Header.Del(h)
	}
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		r.Header.Set("X-Real-Ip", ip)
	}
	proto, port := "http", "80"
	if r.TLS != nil {
		proto, port = "https", "443"
	}
	r.Header.Set("X-Forwarded-Proto", proto)
	if _, p, err := net.SplitHostPort(r.Host); err == nil && p != "" {
		port = p
	}
	r.Header.Set("X-Forwarded-Port", port)
	if r.Host != "" {
		r.Header.Set("X-Forwarded-Host", r.Host)
	}
	if hostname != "" {
		r.Header.Set("X-Forwarded-Server", hostname)
	}
}

// RemoteAddr is a loopback client address with port.
func RemoteAddr(port int) string { return net.JoinHostPort(ClientIP, strconv.Itoa(port)) }

// Answer is what one request through a plugin did.
type Answer struct {
	// Status is the status the client got.
	Status int
	// Reached: the plugin passed the request on (the next handler, or the
	// runtime check's backend, was called).
	Reached bool
}

// Expect is what the recipe asks of the answer.
type Expect struct {
	// Status is the status the client must get; 0 means any answer of a
	// plugin that loaded and ran (a server error of its own is a warning).
	Status int
}

// Judge is the criterion, Traefik's: a plugin that loaded, was built and
// answered works — it passed the request on, or answered by itself — even
// when that answer is a server error. Traefik serves such an answer as the
// plugin's own (an authentication plugin whose testData names an identity
// provider it cannot reach answers 503 with its own error page), so a 5xx
// passes with a warning naming the status. What does not reach Judge fails
// elsewhere: a load or New error, a disabled router, a panic (even one
// Traefik's recovery turned into a 500). An expected status must match
// exactly (even a 5xx, when asked for). reason says what the plugin did, in
// words for the report; warning is "" unless the answer is a server error
// that passes.
func Judge(a Answer, e Expect) (ok bool, reason, warning string) {
	what := fmt.Sprintf("answered %d itself", a.Status)
	if a.Reached {
		what = fmt.Sprintf("passed the request on (%d)", a.Status)
	}
	switch {
	case e.Status != 0 && a.Status == e.Status:
		return true, what + ", as expected", ""
	case e.Status != 0:
		return false, fmt.Sprintf("expected status %d, but the plugin %s", e.Status, what), ""
	case a.Status >= 500:
		return true, what, fmt.Sprintf("the plugin %s: a server error (HTTP %d), which Traefik serves as the plugin's answer. "+
			"It loaded and ran; its configuration may need a service unreachable here. Set expectStatus to require a status", what, a.Status)
	default:
		return true, what, ""
	}
}
