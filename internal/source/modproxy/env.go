package modproxy

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/note"
)

// proxySpec is one GOPROXY entry: a URL, "direct" or "off".
type proxySpec struct {
	url string
	// fallBackOnError: the separator after this entry was '|', so any error
	// moves on to the next entry; after ',' only "not found" (404/410) does.
	fallBackOnError bool
}

// env is the go command's environment, parsed once by New.
type env struct {
	proxies    []proxySpec
	noProxy    string // GONOPROXY, defaulting to GOPRIVATE
	noSumDB    string // GONOSUMDB, defaulting to GOPRIVATE
	insecure   string // GOINSECURE
	cgo        bool   // CGO_ENABLED is not 0: embeds in cgo files count
	sumDB      *sumDBConfig
	netrc      []netrcLine
	goproxyRaw string
}

// sumDBConfig is a parsed GOSUMDB; nil means GOSUMDB=off.
type sumDBConfig struct {
	name, key string
	// base is the explicit URL from "GOSUMDB=name+key url"; nil means
	// "through a proxy that supports it, else https://<name>", as the go
	// command does.
	base *url.URL
}

// sumGolangOrgKey is the one key the go command knows by name
// (cmd/go/internal/modfetch/key.go).
const sumGolangOrgKey = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"

func parseEnv(get func(string) string) (*env, error) {
	e := &env{
		noProxy:  get("GONOPROXY"),
		noSumDB:  get("GONOSUMDB"),
		insecure: get("GOINSECURE"),
		cgo:      get("CGO_ENABLED") != "0",
	}
	private := get("GOPRIVATE")
	if e.noProxy == "" {
		e.noProxy = private
	}
	if e.noSumDB == "" {
		e.noSumDB = private
	}
	// GOFLAGS=-insecure is not read: the go command removed the flag in Go
	// 1.17 and ignores it in GOFLAGS for module downloads; GOINSECURE took
	// its place.

	goproxy := get("GOPROXY")
	if goproxy == "" {
		goproxy = "https://proxy.golang.org,direct"
	}
	e.goproxyRaw = goproxy
	var err error
	if e.proxies, err = parseProxyList(goproxy); err != nil {
		return nil, err
	}
	if e.sumDB, err = parseSumDB(get("GOSUMDB")); err != nil {
		return nil, err
	}
	// GOAUTH (Go 1.24) defaults to "netrc"; only its netrc and off methods
	// are understood here.
	if auth := get("GOAUTH"); auth == "" || strings.Contains(";"+strings.ReplaceAll(auth, " ", "")+";", ";netrc;") {
		if e.netrc, err = readNetrc(get); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// parseProxyList follows cmd/go/internal/modfetch.proxyList: entries are
// separated by ',' or '|', "direct" and "off" end the list, and a bare
// host gets https://.
func parseProxyList(goproxy string) ([]proxySpec, error) {
	var list []proxySpec
	for rest := goproxy; rest != ""; {
		var u string
		fallBack := false
		if i := strings.IndexAny(rest, ",|"); i >= 0 {
			u, fallBack, rest = rest[:i], rest[i] == '|', rest[i+1:]
		} else {
			u, rest = rest, ""
		}
		u = strings.TrimSpace(u)
		if u == "" {
			continue
		}
		if u == "off" || u == "direct" {
			list = append(list, proxySpec{url: u})
			break
		}
		if strings.ContainsAny(u, ".:/") && !strings.Contains(u, ":/") && !filepath.IsAbs(u) && !strings.HasPrefix(u, "/") {
			u = "https://" + u
		}
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https" && p.Scheme != "file") {
			return nil, fmt.Errorf("GOPROXY=%s: %q is not an http, https or file URL, \"direct\" or \"off\"", goproxy, u)
		}
		list = append(list, proxySpec{url: strings.TrimSuffix(u, "/"), fallBackOnError: fallBack})
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("GOPROXY=%q contains no entries", goproxy)
	}
	return list, nil
}

// parseSumDB follows cmd/go/internal/modfetch.dbDial: "off", a known name,
// "name+hash+key" (a note verifier key), optionally followed by the URL to
// reach it at.
func parseSumDB(v string) (*sumDBConfig, error) {
	switch v {
	case "":
		v = "sum.golang.org"
	case "off":
		return nil, nil
	case "sum.golang.google.cn":
		v = "sum.golang.org https://sum.golang.google.cn"
	}
	f := strings.Fields(v)
	if f[0] == "sum.golang.org" {
		f[0] = sumGolangOrgKey
	}
	if len(f) > 2 {
		return nil, fmt.Errorf("GOSUMDB=%q: too many fields (want \"name+key\" or \"name+key URL\")", v)
	}
	verifier, err := note.NewVerifier(f[0])
	if err != nil {
		return nil, fmt.Errorf("GOSUMDB=%q: %v (want a known name or \"name+hash+key\")", v, err)
	}
	c := &sumDBConfig{name: verifier.Name(), key: f[0]}
	if u, err := url.Parse("https://" + c.name); err != nil || u.Host == "" || strings.HasSuffix(c.name, "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("GOSUMDB=%q: the database name %q is not host[/path]", v, c.name)
	}
	if len(f) == 2 {
		u, err := url.Parse(f[1])
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, fmt.Errorf("GOSUMDB=%q: %q is not an http or https URL", v, f[1])
		}
		c.base = u
	}
	return c, nil
}

// direct reports whether module must bypass proxies (GONOPROXY/GOPRIVATE).
func (e *env) direct(mod string) bool { return module.MatchPrefixPatterns(e.noProxy, mod) }

// checkSum reports whether downloads of mod are checked against the
// checksum database.
func (e *env) checkSum(mod string) bool {
	return e.sumDB != nil && !module.MatchPrefixPatterns(e.noSumDB, mod)
}

// route is the list of places to try for mod, as the go command tries them:
// only "direct" for private modules, else GOPROXY.
func (e *env) route(mod string) []proxySpec {
	if e.direct(mod) {
		return []proxySpec{{url: "direct"}}
	}
	return e.proxies
}

type netrcLine struct{ machine, login, password string }

// readNetrc reads $NETRC or $HOME/.netrc (_netrc first on Windows), as the
// go command does; a missing file means no credentials.
func readNetrc(get func(string) string) ([]netrcLine, error) {
	p := get("NETRC")
	if p == "" {
		home := get("HOME")
		if runtime.GOOS == "windows" && home == "" {
			home = get("USERPROFILE")
		}
		if home == "" {
			return nil, nil
		}
		p = filepath.Join(home, ".netrc")
		if runtime.GOOS == "windows" {
			if _, err := os.Stat(filepath.Join(home, "_netrc")); err == nil {
				p = filepath.Join(home, "_netrc")
			}
		}
	}
	data, err := os.ReadFile(p)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read netrc credentials: %w", err)
	}
	return parseNetrc(string(data)), nil
}

// parseNetrc is cmd/go/internal/auth.parseNetrc: machine/login/password
// triples; "default" ends the file, macdef bodies are skipped.
func parseNetrc(data string) []netrcLine {
	var nrc []netrcLine
	var l netrcLine
	inMacro := false
	for _, line := range strings.Split(data, "\n") {
		if inMacro {
			if line == "" {
				inMacro = false
			}
			continue
		}
		f := strings.Fields(line)
		i := 0
		for ; i < len(f)-1; i += 2 {
			switch f[i] {
			case "machine":
				l = netrcLine{machine: f[i+1]}
			case "login":
				l.login = f[i+1]
			case "password":
				l.password = f[i+1]
			case "macdef":
				inMacro = true
			}
			if l.machine != "" && l.login != "" && l.password != "" {
				nrc = append(nrc, l)
				l = netrcLine{}
			}
		}
		if i < len(f) && f[i] == "default" {
			break
		}
	}
	return nrc
}

// credentials returns the netrc login for an https URL. Like the go command
// since 1.24 it matches the longest "host[:port][/path]" prefix of the URL
// first, then (as older go commands did) the bare host name. The first
// entry for a machine wins. Plain http never gets credentials.
func (e *env) credentials(u *url.URL) (user, pass string, ok bool) {
	if u.Scheme != "https" {
		return "", "", false
	}
	find := func(m string) (netrcLine, bool) {
		for _, l := range e.netrc {
			if l.machine == m {
				return l, true
			}
		}
		return netrcLine{}, false
	}
	for p := strings.TrimSuffix(u.Host+u.Path, "/"); ; {
		if l, ok := find(p); ok {
			return l.login, l.password, true
		}
		i := strings.LastIndexByte(p, '/')
		if i < 0 {
			break
		}
		p = p[:i]
	}
	if l, ok := find(u.Hostname()); ok {
		return l.login, l.password, true
	}
	return "", "", false
}
