package recipe

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/xtraefik/xtraefik/internal/place"
	"github.com/xtraefik/xtraefik/internal/plugin"
	"github.com/xtraefik/xtraefik/internal/yamlcheck"
)

// LockVersion is the lock file format version this build writes and reads.
const LockVersion = 1

// Lock pins everything a recipe resolves to. It is plain data: a diff of two locks
// is a readable account of what moved.
type Lock struct {
	Version int          `yaml:"version"`
	Base    BaseLock     `yaml:"base"`
	Plugins []PluginLock `yaml:"plugins"`
}

// BaseLock pins the base image.
type BaseLock struct {
	// Ref is the base reference as written in the recipe.
	Ref string `yaml:"ref"`
	// Digest is the digest of what Ref resolved to: the index for a
	// multi-platform base, else the manifest.
	Digest    string         `yaml:"digest"`
	MediaType string         `yaml:"mediaType,omitempty"`
	Platforms []PlatformLock `yaml:"platforms,omitempty"`
}

// PlatformLock pins one platform's manifest of the base.
type PlatformLock struct {
	Platform string `yaml:"platform"`
	Digest   string `yaml:"digest"`
}

// PluginLock pins one plugin: a git plugin by Git, Ref, Subdir and Commit;
// a module-proxy plugin by Query, Version, Sum and Vendored; a directory by
// Path. ContentHash pins all three.
type PluginLock struct {
	Alias         string `yaml:"alias"`
	Module        string `yaml:"module"`
	plugin.Source `yaml:",inline"`
	// ContentHash covers exactly the files placed in the image (fileset.Set.Hash).
	ContentHash string `yaml:"contentHash"`
}

// LockPath is where the lock of the recipe at path lives: beside it, with the
// extension replaced by .lock (recipe.yaml -> recipe.lock).
func LockPath(recipePath string) string {
	ext := filepath.Ext(recipePath)
	return strings.TrimSuffix(recipePath, ext) + ".lock"
}

// ReadLock reads a lock file; it returns (nil, nil) when there is none.
func ReadLock(path string) (*Lock, error) {
	data, err := yamlcheck.ReadFile(path, lockLimits())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read lock: %w", err)
	}
	root, err := parseTree(path, data, reflect.TypeFor[Lock](), lockLimits())
	if err != nil {
		return nil, err
	}
	if root == nil {
		return nil, fmt.Errorf("%s: empty lock file; run xtraefik lock again", path)
	}
	var l Lock
	if err := root.Decode(&l); err != nil {
		return nil, yamlcheck.Error(path, err)
	}
	if l.Version != LockVersion {
		return nil, fmt.Errorf("%s: lock version %d is not supported (want %d); run xtraefik lock again", path, l.Version, LockVersion)
	}
	return &l, nil
}

// Marshal renders the lock as written to disk.
func (l *Lock) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString("# Written by `xtraefik lock`. Commit it beside the recipe; do not edit.\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(l); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// WriteLock writes the lock atomically: a reader never sees half a lock.
func WriteLock(path string, l *Lock) error {
	data, err := l.Marshal()
	if err != nil {
		return fmt.Errorf("encode lock: %w", err)
	}
	if err := place.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("write lock: %w", err)
	}
	return nil
}

// Plugin returns the lock entry for alias, if any.
func (l *Lock) Plugin(alias string) (PluginLock, bool) {
	if l == nil {
		return PluginLock{}, false
	}
	for _, p := range l.Plugins {
		if p.Alias == alias {
			return p, true
		}
	}
	return PluginLock{}, false
}

// Stale lists how the recipe differs from the lock (a plugin added, removed, or
// with another module, git URL or ref; another base reference). Empty means the lock
// applies to the recipe as written.
func (l *Lock) Stale(r *Recipe) []string {
	var out []string
	if l.Base.Ref != r.Base {
		out = append(out, fmt.Sprintf("base: recipe says %s, lock has %s", r.Base, l.Base.Ref))
	}
	for _, alias := range r.Aliases() {
		p := r.Plugins[alias]
		pl, ok := l.Plugin(alias)
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("plugin %s: not in the lock", alias))
		case pl.Module != p.Module:
			out = append(out, fmt.Sprintf("plugin %s: module %s, lock has %s", alias, p.Module, pl.Module))
		default:
			for _, f := range p.lockFields(pl) {
				if f.recipe != f.lock {
					out = append(out, fmt.Sprintf("plugin %s: %s %s, lock has %s", alias, f.name, orNone(f.recipe), orNone(f.lock)))
					break
				}
			}
		}
	}
	for _, pl := range l.Plugins {
		if _, ok := r.Plugins[pl.Alias]; !ok {
			out = append(out, fmt.Sprintf("plugin %s: in the lock but not in the recipe", pl.Alias))
		}
	}
	return out
}

type lockField struct{ name, recipe, lock string }

// lockFields pairs what the recipe says of p's source with what the lock
// pinned, in the order they are worth reporting.
func (p *Plugin) lockFields(pl PluginLock) []lockField {
	fs := []lockField{{"source", p.Source(), pl.source()}}
	switch p.Source() {
	case SourceGit:
		fs = append(fs, lockField{"git", p.LockedGit(), pl.Git}, lockField{"ref", p.Ref, pl.Ref}, lockField{"subdir", p.Subdir, pl.Subdir})
	case SourceModule:
		fs = append(fs, lockField{"version", p.Version, pl.Query})
	case SourcePath:
		fs = append(fs, lockField{"path", p.Path, pl.Path})
	}
	return append(fs, lockField{"exclude", strings.Join(p.Exclude, ","), strings.Join(pl.Exclude, ",")})
}

// Matches reports whether pl pins the source the recipe entry p names.
func (p *Plugin) Matches(pl PluginLock) bool {
	if pl.Module != p.Module {
		return false
	}
	for _, f := range p.lockFields(pl) {
		if f.recipe != f.lock {
			return false
		}
	}
	return true
}

// source is the kind of source a lock entry pins.
func (pl PluginLock) source() string {
	switch {
	case pl.Version != "":
		return SourceModule
	case pl.Path != "":
		return SourcePath
	}
	return SourceGit
}

// pin is what a lock entry pins, for people: "commit (ref)", "version
// (sum)" or "path".
func (pl PluginLock) pin() string {
	switch pl.source() {
	case SourceModule:
		return fmt.Sprintf("%s (%s)", pl.Version, pl.Sum)
	case SourcePath:
		return pl.Path + " (" + pl.ContentHash + ")"
	}
	return fmt.Sprintf("%s (%s)", pl.Commit, pl.Ref)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// Diff lists what differs between an old lock and a new one, one line each, in the
// form "what: old -> new". Empty means nothing moved.
func Diff(old, cur *Lock) []string {
	var out []string
	if old.Base.Ref != cur.Base.Ref {
		out = append(out, fmt.Sprintf("base: ref %s -> %s", old.Base.Ref, cur.Base.Ref))
	}
	if old.Base.Digest != cur.Base.Digest {
		out = append(out, fmt.Sprintf("base %s: %s -> %s", cur.Base.Ref, old.Base.Digest, cur.Base.Digest))
	}
	oldP := map[string]string{}
	for _, p := range old.Base.Platforms {
		oldP[p.Platform] = p.Digest
	}
	for _, p := range cur.Base.Platforms {
		if d, ok := oldP[p.Platform]; ok && d != p.Digest {
			out = append(out, fmt.Sprintf("base %s %s: %s -> %s", cur.Base.Ref, p.Platform, d, p.Digest))
		} else if !ok {
			out = append(out, fmt.Sprintf("base %s %s: new platform %s", cur.Base.Ref, p.Platform, p.Digest))
		}
		delete(oldP, p.Platform)
	}
	// Sorted: the diff is printed and quoted in errors, never in map order.
	for _, plat := range slices.Sorted(maps.Keys(oldP)) {
		out = append(out, fmt.Sprintf("base %s %s: platform gone", cur.Base.Ref, plat))
	}
	for _, p := range cur.Plugins {
		o, ok := old.Plugin(p.Alias)
		if !ok {
			out = append(out, fmt.Sprintf("plugin %s: new at %s", p.Alias, p.pin()))
			continue
		}
		for _, f := range [][3]string{{"module", o.Module, p.Module}, {"git", o.Git, p.Git}, {"ref", o.Ref, p.Ref}, {"subdir", o.Subdir, p.Subdir},
			{"path", o.Path, p.Path}, {"version query", o.Query, p.Query}, {"version", o.Version, p.Version}, {"sum", o.Sum, p.Sum}} {
			if f[1] != f[2] {
				out = append(out, fmt.Sprintf("plugin %s: %s %s -> %s", p.Alias, f[0], f[1], f[2]))
			}
		}
		if o.Commit != p.Commit {
			out = append(out, fmt.Sprintf("plugin %s (%s %s): commit %s -> %s", p.Alias, p.Module, p.Ref, orNone(o.Commit), orNone(p.Commit)))
		}
		if o.ContentHash != p.ContentHash {
			out = append(out, fmt.Sprintf("plugin %s (%s): content %s -> %s", p.Alias, p.Module, o.ContentHash, p.ContentHash))
		}
	}
	for _, o := range old.Plugins {
		if _, ok := cur.Plugin(o.Alias); !ok {
			out = append(out, fmt.Sprintf("plugin %s: removed", o.Alias))
		}
	}
	return out
}
