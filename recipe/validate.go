package recipe

import (
	"github.com/bmatcuk/doublestar/v4"

	"fmt"
	"regexp"
	"strings"

	"github.com/xtraefik/xtraefik/internal/fileset"

	"github.com/xtraefik/xtraefik/internal/manifest"
	"github.com/xtraefik/xtraefik/internal/plugin"
	"github.com/xtraefik/xtraefik/internal/traefikcfg"
)

// reAlias keeps aliases usable both as a flag path element
// (--experimental.localPlugins.<alias>) and in a TRAEFIK_* variable name.
var reAlias = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*$`)

var rePlatform = regexp.MustCompile(`^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$`)

// Validate checks a recipe made in code as Parse checks a file.
func (r *Recipe) Validate() error { return r.validate() }

func (r *Recipe) validate() error {
	if strings.TrimSpace(r.Base) == "" {
		return r.Errorf([]string{"base"}, "base is required (e.g. docker.io/library/traefik:v3.6)")
	}
	for _, p := range r.Platforms {
		if !rePlatform.MatchString(p) {
			return r.Errorf([]string{"platforms"}, "platform %q is not os/arch[/variant]", p)
		}
	}
	if len(r.Plugins) == 0 {
		return r.Errorf([]string{"plugins"}, "no plugins: a recipe bakes at least one plugin")
	}
	modules := map[string]string{}
	for _, alias := range r.Aliases() {
		p := r.Plugins[alias]
		at := []string{"plugins", alias}
		if !reAlias.MatchString(alias) {
			return r.Errorf(at, "plugin alias %q: use letters, digits, '-' and '_' (it becomes --experimental.localPlugins.<alias>)", alias)
		}
		if p == nil {
			return r.Errorf(at, "plugin %q: module and ref are required", alias)
		}
		if p.Module == "" {
			return r.Errorf(at, "plugin %q: module is required", alias)
		}
		if err := manifest.CheckModuleName(p.Module); err != nil {
			return r.Errorf(append(at, "module"), "plugin %q: %v", alias, err)
		}
		if other, dup := modules[p.Module]; dup {
			where := ""
			if loc := r.pos.at("plugins", other, "module"); loc != "" {
				where = " (" + loc + ")"
			}
			return r.Errorf(append(at, "module"), "plugin %q: module %s is already used by plugin %q%s; Traefik loads a module once", alias, p.Module, other, where)
		}
		modules[p.Module] = alias
		if err := r.validateSource(alias, p); err != nil {
			return err
		}
		if p.ExpectStatus != 0 && (p.ExpectStatus < 100 || p.ExpectStatus > 599) {
			return r.Errorf(append(at, "expectStatus"), "plugin %q: expectStatus %d is not an HTTP status", alias, p.ExpectStatus)
		}
	}
	switch r.StaticConfig.Mode {
	case "", ModeFlags, ModeEnv:
		if len(r.StaticConfig.Config) > 0 {
			return r.Errorf([]string{"staticConfig", "config"}, "staticConfig.config is only baked in mode %q; in mode %q Traefik would never read it", ModeFile, r.mode())
		}
	case ModeFile:
	default:
		return r.Errorf([]string{"staticConfig", "mode"}, "staticConfig.mode %q: use %q, %q or %q", r.StaticConfig.Mode, ModeFlags, ModeFile, ModeEnv)
	}
	var ps []plugin.Plugin
	for _, alias := range r.Aliases() {
		ps = append(ps, plugin.Plugin{Alias: alias, Module: r.Plugins[alias].Module})
	}
	if err := traefikcfg.Validate(traefikcfg.Static{Mode: traefikcfg.Mode(r.mode()), Config: r.StaticConfig.Config, Replace: r.StaticConfig.Replace}, ps); err != nil {
		return r.Errorf([]string{"staticConfig"}, "%s", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	for i, m := range r.Mirrors.Git {
		if m.URL == "" || m.InsteadOf == "" {
			return r.Errorf([]string{"mirrors", "git"}, "git mirror %d: url and insteadOf are required", i+1)
		}
	}
	for i, m := range r.Mirrors.Registries {
		if m.Prefix == "" || m.Location == "" {
			return r.Errorf([]string{"mirrors", "registries"}, "registry mirror %d: prefix and location are required", i+1)
		}
	}
	return nil
}

// validateSource checks that a plugin names exactly one source, completely.
func (r *Recipe) validateSource(alias string, p *Plugin) error {
	at := []string{"plugins", alias}
	var given []string
	if p.Ref != "" || p.Git != "" || p.Subdir != "" {
		given = append(given, "git/ref")
	}
	if p.Version != "" {
		given = append(given, "version")
	}
	if p.Path != "" {
		given = append(given, "path")
	}
	switch {
	case len(given) == 0:
		return r.Errorf(at, "plugin %q: ref is required (a git tag, branch or full commit), or version to take it from the Go module proxy, or path to take it from a directory", alias)
	case len(given) > 1:
		return r.Errorf(at, "plugin %q: %s are different sources; give one", alias, strings.Join(given, " and "))
	case p.Source() == SourceGit && strings.TrimSpace(p.Ref) == "":
		return r.Errorf(at, "plugin %q: ref is required (a tag, a branch or a full commit)", alias)
	}
	if p.Subdir != "" {
		if err := fileset.CheckPath(p.Subdir); err != nil {
			return r.Errorf(append(at, "subdir"), "plugin %q: subdir %q: %v", alias, p.Subdir, err)
		}
	}
	for i, pat := range p.Exclude {
		if !doublestar.ValidatePattern(pat) || strings.HasPrefix(pat, "/") {
			return r.Errorf(append(at, "exclude"), "plugin %q: exclude pattern %d %q is not a valid slash-separated pattern relative to the plugin root", alias, i+1, pat)
		}
	}
	return nil
}

// Mode is the static configuration mode, defaulted.
func (r *Recipe) mode() string {
	if r.StaticConfig.Mode == "" {
		return ModeFlags
	}
	return r.StaticConfig.Mode
}

// Mode returns the effective static configuration mode.
func (r *Recipe) Mode() string { return r.mode() }

// RewriteGit applies git mirrors to url the way git applies url.<base>.insteadOf:
// the longest matching prefix wins.
func RewriteGit(mirrors []GitMirror, url string) string {
	best := -1
	for i, m := range mirrors {
		if strings.HasPrefix(url, m.InsteadOf) && (best < 0 || len(m.InsteadOf) > len(mirrors[best].InsteadOf)) {
			best = i
		}
	}
	if best < 0 {
		return url
	}
	return mirrors[best].URL + strings.TrimPrefix(url, mirrors[best].InsteadOf)
}

// ParseGitMirror reads "INSTEADOF=URL", the flag and environment form.
func ParseGitMirror(s string) (GitMirror, error) {
	from, to, ok := strings.Cut(s, "=")
	if !ok || from == "" || to == "" {
		return GitMirror{}, fmt.Errorf("git mirror %q: want ORIGINAL_PREFIX=MIRROR_PREFIX", s)
	}
	return GitMirror{InsteadOf: from, URL: to}, nil
}

// ParseRegistryMirror reads "PREFIX=LOCATION", the flag and environment form.
func ParseRegistryMirror(s string) (RegistryMirror, error) {
	from, to, ok := strings.Cut(s, "=")
	if !ok || from == "" || to == "" {
		return RegistryMirror{}, fmt.Errorf("registry mirror %q: want PREFIX=LOCATION (e.g. docker.io=127.0.0.1:5000)", s)
	}
	return RegistryMirror{Prefix: from, Location: to}, nil
}
