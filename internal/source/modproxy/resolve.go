package modproxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
)

// Resolve turns a query into an exact version, as `go get module@query`
// would: an exact version is checked to exist; "latest" is the highest
// release (a pre-release only when there is no release, a pseudo-version
// from @latest when there is no tag), skipping retracted versions; "v1" or
// "v1.6" is the highest such release; "<v2", ">=v1.2.3" and the like pick
// the highest (or, for ">" and ">=", the lowest) matching version; anything
// else (a branch, a commit) is asked of the proxy as the go command does.
func (c *Client) Resolve(ctx context.Context, mod, query string) (string, error) {
	if err := module.CheckPath(mod); err != nil {
		return "", fmt.Errorf("module %s: %w", mod, err)
	}
	if query == "" {
		query = "latest"
	}
	if c.offline {
		return "", &notCached{msg: fmt.Sprintf("%s@%s cannot be resolved offline: only the module proxy answers version queries", mod, query)}
	}
	v, err := c.resolve(ctx, mod, query)
	if err != nil {
		return "", fmt.Errorf("resolve %s@%s: %w", mod, query, err)
	}
	return v, nil
}

func (c *Client) resolve(ctx context.Context, mod, query string) (string, error) {
	var result string
	match, lowest := versionFilter(query)
	err := c.tryRoute(ctx, mod, func(proxy string) error {
		if match == nil {
			i, err := c.proxyInfo(ctx, proxy, mod, query)
			if err != nil {
				return err
			}
			// An exact version is answered with itself, or the proxy
			// substitutes another release (the go command refuses this too).
			if semver.IsValid(query) && semver.Canonical(query) == query && i.Version != query {
				return fmt.Errorf("proxy %s answered version %s for %s: %w", proxy, i.Version, query, ErrChecksum)
			}
			result = i.Version
			return nil
		}
		versions, err := c.proxyList(ctx, proxy, mod)
		if err != nil {
			return err
		}
		var ok []string
		for _, v := range versions {
			if match(v) {
				ok = append(ok, v)
			}
		}
		if len(ok) == 0 && query == "latest" {
			// No tags at all: the proxy's @latest names a pseudo-version.
			u, err := modURL(proxy, mod, "@latest")
			if err != nil {
				return err
			}
			b, err := c.get(ctx, u)
			if err != nil {
				return err
			}
			var i info
			if err := json.Unmarshal(b, &i); err != nil || checkVersion(mod, i.Version) != nil {
				return fmt.Errorf("%s: not a version: %s", u, b)
			}
			result = i.Version
			return nil
		}
		if len(ok) == 0 {
			return fmt.Errorf("no version matches (the proxy lists %d): %w", len(versions), ErrNotFound)
		}
		retracted := c.retractions(ctx, proxy, mod, versions)
		result = pick(ok, retracted, lowest)
		return nil
	}, func(ctx context.Context) error {
		dm, err := c.fetchDirect(ctx, mod, query)
		if err != nil {
			return err
		}
		result = dm.Version
		return nil
	})
	if err != nil {
		return "", err
	}
	if err := checkVersion(mod, result); err != nil {
		return "", err
	}
	return result, nil
}

// versionFilter returns which listed versions a query admits, and whether
// the lowest rather than the highest is wanted; nil for queries only the
// proxy (or repository) can answer: exact versions, branches, commits.
func versionFilter(q string) (match func(string) bool, lowest bool) {
	switch {
	case q == "latest" || q == "upgrade":
		return func(string) bool { return true }, false
	case semver.IsValid(q) && module.CanonicalVersion(q) == q:
		return nil, false // exact: ask .info, as the go command does
	case semver.IsValid(q) && strings.Count(q, ".") < 2 && semver.Prerelease(q) == "" && semver.Build(q) == "":
		// "v1" or "v1.6": a prefix of complete versions.
		return func(v string) bool { return strings.HasPrefix(v, q+".") }, false
	}
	for _, op := range []string{"<=", ">=", "<", ">"} {
		v, ok := strings.CutPrefix(q, op)
		if !ok || !semver.IsValid(v) {
			continue
		}
		return func(x string) bool {
			cmp := semver.Compare(x, v)
			switch op {
			case "<=":
				return cmp <= 0
			case ">=":
				return cmp >= 0
			case "<":
				return cmp < 0
			default:
				return cmp > 0
			}
		}, op[0] == '>'
	}
	return nil, false
}

// pick chooses among matching versions: compatible before +incompatible,
// unretracted before retracted, releases before pre-releases, then the
// highest (or lowest).
func pick(vs []string, retracted func(string) bool, lowest bool) string {
	rank := func(v string) int {
		r := 0
		if semver.Prerelease(v) != "" {
			r++
		}
		if retracted(v) {
			r += 2
		}
		// The go command takes +incompatible versions only when it must;
		// ranking them last approximates its rule.
		if strings.HasSuffix(v, "+incompatible") {
			r += 4
		}
		return r
	}
	sort.Slice(vs, func(i, j int) bool {
		if ri, rj := rank(vs[i]), rank(vs[j]); ri != rj {
			return ri < rj
		}
		if lowest {
			return semver.Compare(vs[i], vs[j]) < 0
		}
		return semver.Compare(vs[i], vs[j]) > 0
	})
	return vs[0]
}

// retractions reads the retract directives of the highest listed version's
// go.mod (where the go command reads them). Errors mean no retractions:
// they only steer the choice, the chosen version is still verified.
func (c *Client) retractions(ctx context.Context, proxy, mod string, versions []string) func(string) bool {
	none := func(string) bool { return false }
	if len(versions) == 0 {
		return none
	}
	latest := pick(append([]string(nil), versions...), none, false)
	suffix, err := versionSuffix(latest, "mod")
	if err != nil {
		return none
	}
	u, err := modURL(proxy, mod, suffix)
	if err != nil {
		return none
	}
	b, err := c.get(ctx, u)
	if err != nil {
		return none
	}
	f, err := modfile.ParseLax(u, b, nil)
	if err != nil || len(f.Retract) == 0 {
		return none
	}
	return func(v string) bool {
		for _, r := range f.Retract {
			if semver.Compare(r.Low, v) <= 0 && semver.Compare(v, r.High) <= 0 {
				return true
			}
		}
		return false
	}
}

// proxyList returns the valid, canonical versions in @v/list.
func (c *Client) proxyList(ctx context.Context, proxy, mod string) ([]string, error) {
	u, err := modURL(proxy, mod, "@v/list")
	if err != nil {
		return nil, err
	}
	b, err := c.get(ctx, u)
	if err != nil {
		return nil, err
	}
	var vs []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 0 && checkVersion(mod, f[0]) == nil && !module.IsPseudoVersion(f[0]) {
			vs = append(vs, f[0])
		}
	}
	return vs, nil
}

func (c *Client) proxyInfo(ctx context.Context, proxy, mod, query string) (*info, error) {
	suffix, err := versionSuffix(query, "info")
	if err != nil {
		return nil, err
	}
	u, err := modURL(proxy, mod, suffix)
	if err != nil {
		return nil, err
	}
	b, err := c.get(ctx, u)
	if err != nil {
		return nil, err
	}
	var i info
	if err := json.Unmarshal(b, &i); err != nil {
		return nil, fmt.Errorf("%s: %w", u, err)
	}
	if i.Version == "" {
		return nil, errors.New(u + ": no version in the answer")
	}
	return &i, nil
}

// Versions lists the module's released versions (no pseudo-versions), as
// the first GOPROXY entry that knows the module lists them; for `xtraefik
// outdated`. A module fetched directly (GOPRIVATE, "direct") is not listed.
func (c *Client) Versions(ctx context.Context, mod string) ([]string, error) {
	if c.offline {
		return nil, &notCached{msg: fmt.Sprintf("the versions of %s cannot be listed offline: only the module proxy lists them", mod)}
	}
	var out []string
	err := c.tryRoute(ctx, mod, func(proxy string) error {
		vs, err := c.proxyList(ctx, proxy, mod)
		out = vs
		return err
	}, func(context.Context) error {
		return fmt.Errorf("%s is fetched from its repository: its versions are its tags", mod)
	})
	if err != nil {
		return nil, fmt.Errorf("list versions of %s: %w", mod, err)
	}
	return out, nil
}
