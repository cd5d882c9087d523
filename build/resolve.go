// Package build turns a recipe (and its lock) into an assembled image: it resolves
// the base and every plugin to exact digests and commits, checks and verifies the
// plugins, and appends them as one layer. Writing the result somewhere is Publish's
// job; build itself never writes outside its cache.
package build

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/xtraefik/xtraefik/fileset"
	"github.com/xtraefik/xtraefik/images"
	"github.com/xtraefik/xtraefik/manifest"
	"github.com/xtraefik/xtraefik/recipe"
	"github.com/xtraefik/xtraefik/source"
	"github.com/xtraefik/xtraefik/verify"
)

// Options configures resolution and assembly.
type Options struct {
	Recipe *recipe.Recipe
	// Lock pins the base and plugins; nil resolves everything afresh.
	Lock *recipe.Lock
	// Frozen re-resolves everything and fails, naming what moved, if anything
	// differs from Lock (which must then exist and match the recipe).
	Frozen bool
	// UpdateBase re-resolves the base, UpdateAll every plugin, Update the
	// plugins named, even where Lock pins them (xtraefik lock --update).
	UpdateBase bool
	UpdateAll  bool
	Update     []string
	// CacheDir holds fetched git repositories.
	CacheDir string
	// GitAuth supplies git credentials; nil reads them from the environment.
	GitAuth source.AuthFunc
	// GitMirrors are applied to every plugin URL (recipe mirrors plus flags).
	GitMirrors []recipe.GitMirror
	// Images carries registry access settings (keychain, mirrors, insecure hosts,
	// platforms).
	Images images.Options
	// Epoch, when set (SOURCE_DATE_EPOCH), stamps every timestamp; otherwise the
	// newest plugin commit time is used.
	Epoch *time.Time
	// Log receives one line per stage; nil discards.
	Log io.Writer
}

func (o *Options) logf(format string, args ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, format+"\n", args...)
	}
}

// Plugin is a resolved plugin: the recipe entry, its commit and its files.
type Plugin struct {
	Alias    string
	Spec     *recipe.Plugin
	Commit   string
	RefKind  source.Kind
	Time     time.Time
	Files    fileset.Set
	Hash     string
	Manifest *manifest.Manifest
}

// Resolution is everything a recipe resolved to.
type Resolution struct {
	Recipe  *recipe.Recipe
	Base    *images.Base
	Plugins []Plugin
	// Warnings are worth telling the user but do not stop the build.
	Warnings []string
}

// Lock renders the resolution as a lock.
func (r *Resolution) Lock() *recipe.Lock {
	l := &recipe.Lock{Version: recipe.LockVersion, Base: recipe.BaseLock{
		Ref:       r.Recipe.Base,
		Digest:    r.Base.Digest.String(),
		MediaType: string(r.Base.MediaType),
	}}
	for _, p := range r.Base.Platforms {
		l.Base.Platforms = append(l.Base.Platforms, recipe.PlatformLock{Platform: p.Platform.String(), Digest: p.Digest.String()})
	}
	for _, p := range r.Plugins {
		l.Plugins = append(l.Plugins, recipe.PluginLock{
			Alias: p.Alias, Module: p.Spec.Module, Git: p.Spec.LockedGit(), Ref: p.Spec.Ref,
			Commit: p.Commit, CommitTime: p.Time.UTC(), ContentHash: p.Hash,
		})
	}
	return l
}

// Epoch is the timestamp every layer entry and config date gets.
func (r *Resolution) Epoch(o *Options) time.Time {
	if o.Epoch != nil {
		return o.Epoch.UTC()
	}
	var t time.Time
	for _, p := range r.Plugins {
		if p.Time.After(t) {
			t = p.Time
		}
	}
	return t.UTC()
}

// Resolve resolves the base and every plugin. With a lock (and not Frozen) it
// uses the pinned digests and commits and touches the network only to fetch what
// the cache lacks; with Frozen it re-resolves and compares.
func Resolve(ctx context.Context, o *Options) (*Resolution, error) {
	r := o.Recipe
	res := &Resolution{Recipe: r}
	if o.Lock != nil {
		if stale := o.Lock.Stale(r); len(stale) > 0 {
			if o.Frozen {
				return nil, fmt.Errorf("--frozen: the lock does not match the recipe: %s; run `xtraefik lock`", strings.Join(stale, "; "))
			}
			res.Warnings = append(res.Warnings, "lock out of date, resolving afresh: "+strings.Join(stale, "; "))
		}
	} else if o.Frozen {
		return nil, fmt.Errorf("--frozen: no lock file for %s; run `xtraefik lock` first", r.Path)
	}

	base, err := resolveBase(ctx, o)
	if err != nil {
		return nil, err
	}
	res.Base = base
	o.logf("base %s -> %s (%d platform(s))", r.Base, base.Digest, len(base.Platforms))
	version, err := res.TraefikVersion()
	if err != nil {
		return nil, err
	}

	fetcher, err := source.New(source.Options{CacheDir: o.CacheDir, Auth: o.GitAuth})
	if err != nil {
		return nil, fmt.Errorf("git cache: %w", err)
	}
	for _, alias := range r.Aliases() {
		p, err := resolvePlugin(ctx, o, fetcher, alias, version)
		if err != nil {
			return nil, err
		}
		o.logf("plugin %s: %s %s -> %s (%s)", alias, p.Spec.Module, p.Spec.Ref, p.Commit, p.Hash)
		res.Plugins = append(res.Plugins, *p)
	}
	return res, nil
}

func resolveBase(ctx context.Context, o *Options) (*images.Base, error) {
	r := o.Recipe
	ref, err := images.ParseReference(r.Base)
	if err != nil {
		return nil, r.Errorf([]string{"base"}, "%v", err)
	}
	locked := o.Lock != nil && o.Lock.Base.Ref == r.Base && !o.UpdateBase
	if !locked || o.Frozen {
		base, err := images.Resolve(ctx, ref, o.Images)
		if err != nil {
			return nil, err // names the base, and the mirror if any
		}
		if locked && base.Digest.String() != o.Lock.Base.Digest {
			return nil, fmt.Errorf("--frozen: base %s moved: the lock has %s, it now resolves to %s", r.Base, o.Lock.Base.Digest, base.Digest)
		}
		return base, nil
	}
	d, err := v1.NewHash(o.Lock.Base.Digest)
	if err != nil {
		return nil, fmt.Errorf("lock: base digest %q: %w", o.Lock.Base.Digest, err)
	}
	base, err := images.ResolveDigest(ctx, ref, d, o.Images)
	if err != nil {
		return nil, fmt.Errorf("%w (the digest the lock pins)", err)
	}
	return base, nil
}

func resolvePlugin(ctx context.Context, o *Options, f *source.Fetcher, alias, traefikVersion string) (*Plugin, error) {
	spec := o.Recipe.Plugins[alias]
	url := recipe.RewriteGit(o.GitMirrors, spec.GitURL())
	where := fmt.Sprintf("plugin %s (%s)", alias, spec.Module)
	if url != spec.GitURL() {
		where += fmt.Sprintf(" via mirror %s", url)
	}

	pl, locked := o.Lock.Plugin(alias)
	locked = locked && pl.Module == spec.Module && pl.Git == spec.LockedGit() && pl.Ref == spec.Ref &&
		!o.UpdateAll && !slices.Contains(o.Update, alias)
	p := &Plugin{Alias: alias, Spec: spec}
	if !locked || o.Frozen {
		rv, err := f.Resolve(ctx, url, spec.Ref)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if locked && rv.Commit != pl.Commit {
			return nil, fmt.Errorf("--frozen: %s: %s %s now points to %s, the lock has %s", where, rv.Kind, spec.Ref, rv.Commit, pl.Commit)
		}
		p.Commit, p.RefKind = rv.Commit, rv.Kind
	} else {
		p.Commit, p.RefKind = pl.Commit, source.KindCommit
	}

	tree, err := f.Tree(ctx, url, p.Commit)
	if err != nil {
		return nil, fmt.Errorf("%s at %s: %w", where, p.Commit, err)
	}
	p.Time, p.Files = tree.Time, tree.Files
	if p.Hash, err = tree.Files.Hash(); err != nil {
		return nil, fmt.Errorf("%s: hash: %w", where, err)
	}
	if locked && p.Hash != pl.ContentHash {
		return nil, fmt.Errorf("%s: commit %s hashes to %s, the lock has %s: the files that go into the image changed for the same commit", where, p.Commit, p.Hash, pl.ContentHash)
	}

	m, err := manifest.Read(p.Files)
	if err != nil {
		return nil, fmt.Errorf("%s at %s: %w", where, p.Commit, err)
	}
	if err := m.CheckFor(spec.Module, traefikVersion); err != nil {
		return nil, fmt.Errorf("%s at %s: Traefik would refuse its manifest: %w", where, p.Commit, err)
	}
	p.Manifest = m
	return p, nil
}

// TraefikVersion is the base's Traefik version from its labels ("" unknown).
func (r *Resolution) TraefikVersion() (string, error) {
	if len(r.Base.Platforms) == 0 {
		return "", nil
	}
	cf, err := r.Base.ConfigFile(0)
	if err != nil {
		return "", err
	}
	return verify.TraefikVersionFromLabels(cf.Config.Labels), nil
}
