package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"golang.org/x/mod/semver"
	modzip "golang.org/x/mod/zip"

	"github.com/xtraefik/xtraefik/internal/fileset"
	"github.com/xtraefik/xtraefik/internal/manifest"
	"github.com/xtraefik/xtraefik/internal/plugin"
	"github.com/xtraefik/xtraefik/internal/redact"
	"github.com/xtraefik/xtraefik/internal/source"
	"github.com/xtraefik/xtraefik/internal/source/modproxy"
	"github.com/xtraefik/xtraefik/recipe"
)

// moduleFetcher resolves module-proxy plugin versions and fetches them
// verified and re-vendored; *modproxy.Client is the implementation.
type moduleFetcher interface {
	Resolve(ctx context.Context, module, query string) (string, error)
	Fetch(ctx context.Context, module, version, wantSum string) (*modproxy.Module, error)
}

// sources resolves each plugin from the source its recipe entry names.
type sources struct {
	o       *options
	git     fetcher
	modules moduleFetcher
	// gitLocal and modulesLocal read the local caches only: a locked
	// plugin is looked for there before the shared tree cache, and the
	// origin comes last. Nil without a tree cache.
	gitLocal     fetcher
	modulesLocal moduleFetcher
	// newModules makes the module proxy client once, for modules nil:
	// plugins resolve concurrently (fetchAll).
	newModules func() (moduleFetcher, error)
}

// newSources resolves plugins with o's fetchers, the default ones where o
// names none (made when first needed).
func newSources(o *options) *sources {
	s := &sources{o: o, git: o.Fetcher, modules: o.Modules}
	s.newModules = sync.OnceValues(func() (moduleFetcher, error) {
		c, err := modproxy.New(modproxy.Options{Env: o.Env, CacheDir: filepath.Join(o.CacheDir, "mod"), Direct: s.direct, Offline: o.Offline})
		if err != nil {
			return nil, fmt.Errorf("module proxy: %w", err)
		}
		return c, nil
	})
	return s
}

// resolve resolves one plugin: its files from its source (pinned by the
// lock unless updated), the recipe's exclude patterns applied, hashed,
// and its manifest read and checked for the target Traefik.
func (s *sources) resolve(ctx context.Context, alias, traefikVersion string) (*plugin.Plugin, []string, error) {
	o := s.o
	spec := o.Recipe.Plugins[alias]
	pl, locked := o.Lock.Plugin(alias)
	locked = locked && spec.Matches(pl) && !o.UpdateAll && !slices.Contains(o.Update, alias)
	p := &plugin.Plugin{Alias: alias, Module: spec.Module, Config: spec.Config, ExpectStatus: spec.ExpectStatus}
	where := fmt.Sprintf("plugin %s (%s)", alias, spec.Module)
	var (
		err      error
		warnings []string
		shared   bool
	)
	// A locked plugin comes from the local caches, else from the tree
	// cache a fleet shares (checked against the lock's hash), else from
	// its source.
	if locked && !o.reresolve() && o.Trees != nil && spec.Source() != recipe.SourcePath && pl.ContentHash != "" && s.gitLocal != nil {
		local := *s
		local.git, local.modules = s.gitLocal, s.modulesLocal
		var w []string
		if where, w, err = local.fetch(ctx, spec, pl, locked, p, where); err == nil {
			warnings = append(warnings, w...)
		} else if notCached(err) {
			shared, w = s.fromTrees(ctx, where, pl.ContentHash, p)
			warnings = append(warnings, w...)
			if shared {
				p.Source, err = lockedSource(spec, pl), nil
			} else {
				where, w, err = s.fetch(ctx, spec, pl, locked, p, where)
				warnings = append(warnings, w...)
			}
		}
	} else {
		var w []string
		where, w, err = s.fetch(ctx, spec, pl, locked, p, where)
		warnings = append(warnings, w...)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", where, err)
	}
	where += " at " + p.Source.Revision()
	// Also for trees from the shared tree cache, which a lock written
	// before this check may pin; module zips were checked as fetched.
	if err := checkGoMod(p.Files, spec.Module); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", where, err)
	}
	// A shared tree is stored as hashed: its exclusions are applied.
	if !shared {
		if p.Files, _, err = p.Files.Exclude(spec.Exclude); err != nil {
			return nil, nil, fmt.Errorf("%s: exclude: %w", where, err)
		}
	}
	p.Source.Exclude = spec.Exclude
	if p.Hash, err = p.Files.Hash(); err != nil {
		return nil, nil, fmt.Errorf("%s: hash: %w", where, err)
	}
	if locked && p.Hash != pl.ContentHash {
		if spec.Source() != recipe.SourcePath {
			return nil, nil, fmt.Errorf("%s: the files hash to %s, the lock has %s: the files that go into the image changed for the same %s",
				where, p.Hash, pl.ContentHash, map[string]string{recipe.SourceGit: "commit", recipe.SourceModule: "version"}[spec.Source()])
		}
		if o.Frozen {
			return nil, nil, fmt.Errorf("%w: %s: the directory's files hash to %s, the lock has %s", ErrFrozen, where, p.Hash, pl.ContentHash)
		}
		warnings = append(warnings, fmt.Sprintf("%s: the directory changed since it was locked (%s -> %s)", where, pl.ContentHash, p.Hash))
	}

	m, err := manifest.Read(p.Files)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", where, err)
	}
	if err := m.CheckFor(spec.Module, traefikVersion); err != nil {
		return nil, nil, fmt.Errorf("%s: Traefik would refuse its manifest: %w", where, err)
	}
	p.Manifest = m
	p.UseUnsafe = plugin.GrantsUnsafe(o.Recipe.AllowUnsafe, m, traefikVersion)
	return p, warnings, nil
}

// fetch reads a plugin's files from its source.
func (s *sources) fetch(ctx context.Context, spec *recipe.Plugin, pl recipe.PluginLock, locked bool, p *plugin.Plugin, where string) (string, []string, error) {
	switch spec.Source() {
	case recipe.SourceModule:
		missing, err := s.module(ctx, spec, pl, locked, p)
		if missing {
			return where, []string{where + ": go.mod requires modules but the module zip has no vendor/modules.txt " +
				"(zips of modules declaring go 1.24 or later never keep it): Traefik finds those dependencies only if the plugin needs none of them"}, err
		}
		return where, nil, err
	case recipe.SourcePath:
		return where, nil, s.path(spec, p)
	}
	where, err := s.gitTree(ctx, spec, pl, locked, p, where)
	return where, nil, err
}

// checkGoMod refuses a plugin whose root go.mod declares another module
// than the recipe's, as the go command refuses such a module and modproxy a
// module zip (for git and directory plugins this is the only check). Traefik itself (v2.11, v3.6) reads no
// go.mod: it takes the plugin from plugins-local/src/<moduleName> and
// imports the manifest's import, so the plugin's own packages, which
// import each other by the go.mod path, would be looked for where they are
// not. A plugin root without go.mod (a GOPATH-style plugin) has nothing to
// check; a go.mod that is a symlink is not followed.
func checkGoMod(files fileset.Set, module string) error {
	f, ok := files.Lookup("go.mod")
	if !ok || f.Kind != fileset.Regular {
		return nil
	}
	rc, err := f.Open()
	if err != nil {
		return fmt.Errorf("read go.mod: %w", err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, modzip.MaxGoMod+1))
	if err != nil {
		return fmt.Errorf("read go.mod: %w", err)
	}
	if len(data) > modzip.MaxGoMod {
		return fmt.Errorf("go.mod is larger than the %d bytes the go command reads", modzip.MaxGoMod)
	}
	if err := modproxy.CheckModulePath(data, module, ""); err != nil {
		return fmt.Errorf("%w (the recipe's module)", err)
	}
	return nil
}

// lockedSource is where a locked plugin came from, as its lock says: the
// source of files read from a shared tree cache.
func lockedSource(spec *recipe.Plugin, pl recipe.PluginLock) plugin.Source {
	if spec.Source() == recipe.SourceModule {
		return plugin.Source{Query: spec.Version, Version: pl.Version, Sum: pl.Sum, Vendored: pl.Vendored, Time: pl.Time}
	}
	return plugin.Source{Git: spec.LockedGit(), Ref: spec.Ref, Subdir: spec.Subdir, Commit: pl.Commit, Time: pl.Time}
}

// gitTree fetches a git plugin at its locked commit, or at what its ref
// points to now.
func (s *sources) gitTree(ctx context.Context, spec *recipe.Plugin, pl recipe.PluginLock, locked bool, p *plugin.Plugin, where string) (string, error) {
	o := s.o
	// The fetcher gets the recipe's URL: it keys its cache by it and
	// fetches from the mirror (options.Fetcher).
	url := spec.GitURL()
	if m := recipe.RewriteGit(o.GitMirrors, url); m != url {
		where += " via mirror " + redact.URL(m)
	}
	p.Source = plugin.Source{Git: spec.LockedGit(), Ref: spec.Ref, Subdir: spec.Subdir}
	if !locked || o.reresolve() {
		rv, err := s.git.Resolve(ctx, url, spec.Ref)
		if err != nil {
			return where, err
		}
		if locked && rv.Commit != pl.Commit {
			return where, fmt.Errorf("%w: %s %s now points to %s, the lock has %s", ErrFrozen, rv.Kind, spec.Ref, rv.Commit, pl.Commit)
		}
		p.Source.Commit = rv.Commit
	} else {
		p.Source.Commit = pl.Commit
	}
	tree, err := s.git.Tree(ctx, url, p.Source.Commit)
	if err != nil {
		return where, fmt.Errorf("at %s: %w", p.Source.Commit, err)
	}
	p.Source.Time, p.Files = tree.Time, tree.Files
	if spec.Subdir != "" {
		if p.Files, err = p.Files.Sub(spec.Subdir); err != nil {
			return where, fmt.Errorf("at %s: %w", p.Source.Commit, err)
		}
	}
	return where, nil
}

// module fetches a module-proxy plugin at its locked version and hash, or
// at what its version query resolves to now.
// It reports whether the module lacks the vendor/modules.txt its go.mod
// calls for.
func (s *sources) module(ctx context.Context, spec *recipe.Plugin, pl recipe.PluginLock, locked bool, p *plugin.Plugin) (vendorMissing bool, err error) {
	o := s.o
	mods, err := s.moduleFetcher()
	if err != nil {
		return false, err
	}
	p.Source = plugin.Source{Query: spec.Version}
	version, wantSum := pl.Version, pl.Sum
	if !locked || o.reresolve() {
		v, err := mods.Resolve(ctx, spec.Module, spec.Version)
		if err != nil {
			return false, fmt.Errorf("version %s: %w", spec.Version, err)
		}
		if locked && v != pl.Version {
			return false, fmt.Errorf("%w: version %s now resolves to %s, the lock has %s", ErrFrozen, spec.Version, v, pl.Version)
		}
		if !locked {
			version, wantSum = v, ""
		}
	}
	m, err := mods.Fetch(ctx, spec.Module, version, wantSum)
	if err != nil {
		return false, err // names both hashes when the lock's differs
	}
	p.Source.Version, p.Source.Sum, p.Source.Time, p.Files = m.Version, m.Sum, m.Time, m.Files
	for _, d := range m.Vendored {
		v := d.Path + "@" + d.Version
		if d.Replace != "" {
			v += " => " + d.Replace
		}
		p.Source.Vendored = append(p.Source.Vendored, v+" "+d.Sum)
	}
	return m.VendorMissing, nil
}

func (s *sources) moduleFetcher() (moduleFetcher, error) {
	if s.modules != nil {
		return s.modules, nil
	}
	return s.newModules()
}

// path reads a directory plugin: the files as they are now (a working
// copy's .git left out; symlinks must stay inside).
func (s *sources) path(spec *recipe.Plugin, p *plugin.Plugin) error {
	dir := s.o.Recipe.Dir(spec)
	files, err := fileset.FromDir(dir)
	if err != nil {
		return err
	}
	p.Source, p.Files = plugin.Source{Path: spec.Path}, files
	return nil
}

// direct is "direct" in GOPROXY and the source of GOPRIVATE modules: the
// module's git repository, https://<module>.git with the git mirrors
// applied, and its semver tags as versions.
func (s *sources) direct(ctx context.Context, req modproxy.DirectRequest) (*modproxy.DirectModule, error) {
	o := s.o
	url := "https://" + req.Module + ".git"
	version := req.Query
	if !semver.IsValid(version) || semver.Canonical(version) != version {
		tags, err := source.ListTags(ctx, recipe.RewriteGit(o.GitMirrors, url), o.GitAuth)
		if err != nil {
			return nil, err
		}
		if version, err = pickTag(tags, req.Query); err != nil {
			return nil, fmt.Errorf("%s: %w", redact.URL(url), err)
		}
	}
	rv, err := s.git.Resolve(ctx, url, "refs/tags/"+version)
	if err != nil {
		if errors.Is(err, source.ErrNotFound) {
			return nil, fmt.Errorf("%s has no tag %s: %w", redact.URL(url), version, modproxy.ErrNotFound)
		}
		return nil, err
	}
	tree, err := s.git.Tree(ctx, url, rv.Commit)
	if err != nil {
		return nil, err
	}
	return &modproxy.DirectModule{Version: version, Time: tree.Time, Files: tree.Files}, nil
}

// pickTag answers a version query from semver tags: "latest" (the newest
// release, else the newest pre-release) or a version prefix (v1, v1.6).
func pickTag(tags []source.Tag, query string) (string, error) {
	prefix := ""
	if query != "latest" {
		if !semver.IsValid(query) || strings.Count(query, ".") > 1 {
			return "", fmt.Errorf("version query %q: from a git repository, use an exact version, latest or a prefix such as v1.6", query)
		}
		prefix = query + "."
	}
	var release, pre string
	for _, t := range tags {
		v := t.Name
		if !semver.IsValid(v) || semver.Canonical(v) != v || (prefix != "" && !strings.HasPrefix(v, prefix)) {
			continue
		}
		if semver.Prerelease(v) == "" {
			if release == "" || semver.Compare(v, release) > 0 {
				release = v
			}
		} else if pre == "" || semver.Compare(v, pre) > 0 {
			pre = v
		}
	}
	switch {
	case release != "":
		return release, nil
	case pre != "":
		return pre, nil
	}
	return "", fmt.Errorf("no tag matches version %s: %w", query, modproxy.ErrNotFound)
}
