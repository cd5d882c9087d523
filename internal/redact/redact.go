// Package redact removes credentials from every URL xtraefik shows, stores
// or records: messages, the lock, the SBOM and image annotations. It is the
// one place that decides what a secret looks like, so that an error, a lock
// line and an SBOM field never disagree about it.
package redact

import (
	"net/url"
	"regexp"
	"strings"
)

// Mask replaces a secret that is shown as present.
const Mask = "REDACTED"

// protocolParams are the query parameters of the registry and git protocols,
// which carry no secret. Any other value (a redirect's signed URL, an upload
// session's _state, a token) is masked: leaking one is worse than hiding a
// harmless one.
var protocolParams = map[string]bool{
	"scope": true, "service": true, "mount": true, "from": true,
	"digest": true, "n": true, "last": true,
}

// URL returns raw without its secrets:
//   - http(s) and git URLs lose their user information entirely (a token is
//     often passed as the user name);
//   - ssh URLs, scp-like ones included ([user[:password]@]host:path), keep the
//     user name, which selects the account, and lose the password;
//   - query values other than the protocols' own are masked.
//
// Anything else (local paths, file:// URLs) is returned as is, except that a
// string that looks like a URL with credentials but does not parse is
// replaced whole: it cannot be shown safely.
func URL(raw string) string {
	if userHost, path, ok := scpLike(raw); ok {
		if at := strings.LastIndex(userHost, "@"); at >= 0 {
			user, _, _ := strings.Cut(userHost[:at], ":")
			userHost = user + userHost[at:]
		}
		return userHost + ":" + path
	}
	u, err := url.Parse(raw)
	if err != nil {
		if strings.Contains(raw, "@") || strings.Contains(raw, "?") {
			return "<unparsable URL>"
		}
		return raw
	}
	return redactParsed(u)
}

func redactParsed(u *url.URL) string {
	switch u.Scheme {
	case "ssh", "git+ssh", "ssh+git":
		if u.User != nil {
			u.User = url.User(u.User.Username())
		}
	case "", "file":
		return u.String()
	default:
		u.User = nil
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k, vs := range q {
			if !protocolParams[k] {
				for i := range vs {
					vs[i] = Mask
				}
			}
		}
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// scpLike splits git's scp-like syntax, [user@]host:path, which has no
// scheme and no slash before the colon (git's own rule for telling it from a
// local path).
func scpLike(raw string) (userHost, path string, ok bool) {
	if strings.Contains(raw, "://") {
		return "", "", false
	}
	// The host part ends at the last colon before the first slash; a
	// password ("user:pass@host:path") holds one colon more.
	slash := strings.Index(raw, "/")
	head := raw
	if slash >= 0 {
		head = raw[:slash]
	}
	colon := strings.LastIndex(head, ":")
	if colon <= 0 {
		return "", "", false
	}
	if strings.Contains(raw[:colon], ":") && !strings.Contains(raw[:colon], "@") {
		return "", "", false // host:port without a user is not scp syntax
	}
	return raw[:colon], raw[colon+1:], true
}

// Public returns the URL a document others read may name: URL(raw) for a
// network repository, ssh as ssh:// (scp-like syntax rewritten), and false
// for local paths and file:// URLs, which would record this machine's paths
// and locate nothing elsewhere.
func Public(raw string) (string, bool) {
	if raw == "" {
		return "", false
	}
	if userHost, path, ok := scpLike(raw); ok {
		raw = "ssh://" + userHost + "/" + strings.TrimPrefix(path, "/")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", false
	}
	switch u.Scheme {
	case "http", "https", "git", "ssh":
	default:
		return "", false
	}
	// A query or fragment locates nothing a reader can use.
	u.RawQuery, u.Fragment, u.ForceQuery = "", "", false
	return redactParsed(u), true
}

// urlInText finds URLs (scheme://...) in a message; they end at white space
// or a quote.
var urlInText = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://[^\s"'<>]+`)

// Text redacts every URL in s, such as the request URL a registry or git
// error quotes.
func Text(s string) string {
	s = urlInText.ReplaceAllStringFunc(s, func(m string) string {
		// A URL quoted at the end of a sentence keeps its full stop or colon.
		trail := ""
		for len(m) > 0 && strings.ContainsRune(".,;:)]", rune(m[len(m)-1])) {
			trail = m[len(m)-1:] + trail
			m = m[:len(m)-1]
		}
		return URL(m) + trail
	})
	// scp-like remotes with a password (user:pass@host:path) have no
	// scheme: each word holding "@" and ":" is redacted as a whole.
	words := strings.Fields(s)
	for _, w := range words {
		t := strings.Trim(w, `"'()[],;`)
		if !strings.Contains(t, "://") && strings.Contains(t, "@") && strings.Contains(t, ":") {
			if r := URL(t); r != t {
				s = strings.Replace(s, t, r, 1)
			}
		}
	}
	return s
}

// Error returns err with every URL in its message redacted; errors.Is and
// errors.As still see err. nil stays nil.
func Error(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if red := Text(msg); red != msg {
		return &redacted{msg: red, err: err}
	}
	return err
}

type redacted struct {
	msg string
	err error
}

func (r *redacted) Error() string { return r.msg }
func (r *redacted) Unwrap() error { return r.err }
