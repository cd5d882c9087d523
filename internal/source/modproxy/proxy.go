package modproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/mod/module"
)

// maxSmall bounds the bodies read into memory: lists, .info, .mod, sumdb
// records and tiles. The go command allows go.mod files up to 16 MiB.
const maxSmall = 16 << 20

// statusError is a non-200 answer from a proxy or a checksum database.
type statusError struct {
	url    string // redacted
	status int
	body   string
}

func (e *statusError) Error() string {
	msg := fmt.Sprintf("%s: %d %s", e.url, e.status, http.StatusText(e.status))
	if e.body != "" {
		msg += ": " + e.body
	}
	return msg
}

// Is makes 404 and 410 answers ErrNotFound: the answers after which a
// ','-separated GOPROXY list moves on.
func (e *statusError) Is(target error) bool {
	return target == ErrNotFound && (e.status == http.StatusNotFound || e.status == http.StatusGone)
}

// open GETs rawURL (http, https or file) and returns the body of a 200
// answer; netrc credentials go with https requests only, as with the go
// command.
func (c *Client) open(ctx context.Context, rawURL string) (io.ReadCloser, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	if u.Scheme == "file" {
		// A GOPROXY file tree: missing files are "not found", as a 404 is.
		f, err := os.Open(filepath.FromSlash(u.Path))
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w", u.Redacted(), ErrNotFound)
		}
		return f, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	if u.User != nil {
		// Credentials in a GOPROXY URL are used as given.
		pass, _ := u.User.Password()
		req.SetBasicAuth(u.User.Username(), pass)
		req.URL.User = nil
	} else if user, pass, ok := c.env.credentials(u); ok {
		req.SetBasicAuth(user, pass)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// The transport's error quotes the URL; strip credentials from it.
		var ue *url.Error
		if errors.As(err, &ue) {
			ue.URL = u.Redacted()
		}
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		// Proxies explain 404/410 in a short text body (proxy.golang.org
		// does); keep its first line.
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		msg, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
		return nil, &statusError{url: u.Redacted(), status: resp.StatusCode, body: msg}
	}
	return resp.Body, nil
}

// get reads a small body.
func (c *Client) get(ctx context.Context, rawURL string) ([]byte, error) {
	rc, err := c.open(ctx, rawURL)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxSmall+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxSmall {
		return nil, fmt.Errorf("%s: answer larger than %d bytes", rawURL, maxSmall)
	}
	return b, nil
}

// modURL is <proxy>/<escaped module>/<suffix>, suffix being "@v/list",
// "@latest" or "@v/<escaped version>.<ext>".
func modURL(proxy, mod, suffix string) (string, error) {
	emod, err := module.EscapePath(mod)
	if err != nil {
		return "", err
	}
	return proxy + "/" + path.Clean(emod) + "/" + suffix, nil
}

// versionSuffix is "@v/<escaped version>.<ext>".
func versionSuffix(version, ext string) (string, error) {
	ev, err := module.EscapeVersion(version)
	if err != nil {
		return "", err
	}
	return "@v/" + ev + "." + ext, nil
}

// directHandler is what a route's "direct" entry does with a module.
type directHandler func(ctx context.Context) error

// tryRoute runs viaProxy for each GOPROXY entry that applies to mod, or
// viaDirect for "direct", until one succeeds, with the go command's rules
// (cmd/go/internal/modfetch.TryProxies): after a ',' only "not found"
// moves on, after a '|' any error does; the error returned is the most
// telling one (direct's, else a proxy's real failure, else "not found").
func (c *Client) tryRoute(ctx context.Context, mod string, viaProxy func(proxy string) error, viaDirect directHandler) error {
	const (
		rankNotFound = iota
		rankProxy
		rankDirect
	)
	var best error
	bestRank := rankNotFound
	for _, p := range c.env.route(mod) {
		var err error
		switch p.url {
		case "off":
			err = fmt.Errorf("module lookup disabled by GOPROXY=%s: %w", c.env.goproxyRaw, ErrNotFound)
		case "direct":
			if c.direct == nil {
				why := fmt.Sprintf("GOPROXY=%s says \"direct\"", c.env.goproxyRaw)
				if c.env.direct(mod) {
					why = "GOPRIVATE/GONOPROXY says it is fetched directly from its repository"
				}
				err = fmt.Errorf("%s, but no direct (version control) source is configured here; list a module proxy in GOPROXY", why)
			} else {
				err = viaDirect(ctx)
			}
		default:
			err = viaProxy(p.url)
		}
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		notFound := errors.Is(err, ErrNotFound)
		switch {
		case p.url == "direct":
			best, bestRank = err, rankDirect
		case bestRank <= rankProxy && !notFound:
			best, bestRank = err, rankProxy
		case bestRank == rankNotFound:
			best = err
		}
		if !p.fallBackOnError && !notFound {
			break
		}
	}
	return best
}
