package recipe

import (
	"fmt"
	"path"
	"regexp"
	"strings"
)

// FromWith makes a recipe without a file, xcaddy-style: base is the Traefik
// image and each spec one plugin:
//
//	MODULE[@VERSION]             the Go module proxy (no version: latest)
//	MODULE[@VERSION]=PATH        a directory (a working copy; VERSION is ignored)
//	MODULE=GIT-URL@REF           a git repository at a tag, branch or commit
//	MODULE@REF=GIT-URL           the same, the ref given on the left
//
// A GIT-URL has a scheme (https://, ssh://, git://, file://) or is
// scp-like (git@host:path); anything else on the right is a PATH, relative
// to the working directory. A spec may start with ALIAS: to name the
// plugin; otherwise the alias is the module's last path element (a /vN
// major-version suffix skipped), lowercased, with characters Traefik does
// not accept in an alias replaced by '-', and numbered (-2, -3…) when
// another plugin has it already.
func FromWith(base string, specs []string) (*Recipe, error) {
	r := &Recipe{Base: base, Plugins: map[string]*Plugin{}}
	if len(specs) == 0 {
		return nil, fmt.Errorf("no plugins: give at least one plugin to build with")
	}
	type entry struct {
		alias string
		p     *Plugin
	}
	var entries []entry
	explicit := map[string]bool{}
	for _, s := range specs {
		alias, p, err := parseWith(s)
		if err != nil {
			return nil, err
		}
		if alias != "" {
			if explicit[alias] {
				return nil, fmt.Errorf("plugin %q: alias %s is given twice", s, alias)
			}
			explicit[alias] = true
		}
		entries = append(entries, entry{alias, p})
	}
	// Explicit aliases first, so that a derived one never takes a name
	// the user chose.
	for _, e := range entries {
		if e.alias != "" {
			r.Plugins[e.alias] = e.p
		}
	}
	for _, e := range entries {
		if e.alias != "" {
			continue
		}
		a := DeriveAlias(e.p.Module)
		for n := 2; r.Plugins[a] != nil; n++ {
			a = fmt.Sprintf("%s-%d", DeriveAlias(e.p.Module), n)
		}
		r.Plugins[a] = e.p
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return r, nil
}

var (
	reWithAlias = regexp.MustCompile(`^([A-Za-z0-9][A-Za-z0-9_-]*):`)
	reScpURL    = regexp.MustCompile(`^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:`)
	reNotAlias  = regexp.MustCompile(`[^a-z0-9_-]+`)
	reMajor     = regexp.MustCompile(`^v[0-9]+$`)
)

// parseWith reads one FromWith spec.
func parseWith(s string) (string, *Plugin, error) {
	spec := strings.TrimSpace(s)
	var alias string
	// Module paths have no ':', so a leading "name:" is an alias.
	if m := reWithAlias.FindStringSubmatch(spec); m != nil {
		alias, spec = m[1], spec[len(m[0]):]
	}
	left, right, hasRight := strings.Cut(spec, "=")
	module, version, _ := strings.Cut(left, "@")
	if module == "" {
		return "", nil, fmt.Errorf("plugin %q: no module: want MODULE[@VERSION], MODULE[@VERSION]=PATH or MODULE=GIT-URL@REF", s)
	}
	p := &Plugin{Module: module}
	switch {
	case !hasRight:
		p.Version = version
		if p.Version == "" {
			p.Version = "latest"
		}
	case right == "":
		return "", nil, fmt.Errorf("plugin %q: nothing after '=': want a directory or GIT-URL@REF", s)
	case isGitURL(right):
		url, ref := splitGitRef(right)
		switch {
		case ref != "" && version != "" && ref != version:
			return "", nil, fmt.Errorf("plugin %q: two refs (%s and %s): give the ref once", s, version, ref)
		case ref == "":
			ref = version
		}
		if ref == "" {
			return "", nil, fmt.Errorf("plugin %q: the git URL needs a ref: GIT-URL@REF (a tag, a branch or a full commit)", s)
		}
		p.Git, p.Ref = url, ref
	default:
		p.Path = right
	}
	return alias, p, nil
}

// isGitURL tells a git URL from a directory path.
func isGitURL(s string) bool {
	return strings.Contains(s, "://") || reScpURL.MatchString(s)
}

// splitGitRef splits GIT-URL@REF at the last '@' after the host, so that
// user@ in the URL stays in the URL.
func splitGitRef(s string) (url, ref string) {
	start := 0
	if i := strings.Index(s, "://"); i >= 0 {
		j := strings.Index(s[i+3:], "/")
		if j < 0 {
			return s, ""
		}
		start = i + 3 + j
	} else if i := strings.Index(s, ":"); i >= 0 {
		start = i
	}
	k := strings.LastIndex(s[start:], "@")
	if k < 0 {
		return s, ""
	}
	return s[:start+k], s[start+k+1:]
}

// DeriveAlias is the alias FromWith gives module: its last path element
// (skipping a /vN major-version suffix), lowercased, with what Traefik does
// not accept in an alias replaced by '-'.
func DeriveAlias(module string) string {
	elem := path.Base(module)
	if reMajor.MatchString(elem) && path.Dir(module) != "." {
		elem = path.Base(path.Dir(module))
	}
	a := strings.Trim(reNotAlias.ReplaceAllString(strings.ToLower(elem), "-"), "-_")
	if a == "" {
		return "plugin"
	}
	return a
}
