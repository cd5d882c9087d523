package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/xtraefik/xtraefik/images"
	"github.com/xtraefik/xtraefik/internal/plugin"
	"github.com/xtraefik/xtraefik/internal/source"
	"github.com/xtraefik/xtraefik/internal/source/modproxy"
	"github.com/xtraefik/xtraefik/recipe"
	"github.com/xtraefik/xtraefik/verify"
	"github.com/xtraefik/xtraefik/verify/interpreters"
)

// options configures resolution and assembly.
type options struct {
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
	// CacheDir holds fetched git repositories and module downloads
	// (the default Fetcher's and Modules' caches).
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
	// TraefikVersion, when set, is the Traefik the plugins are checked for,
	// instead of the one the base names.
	TraefikVersion string
	// Fetcher gets plugin trees; nil uses a git cache in CacheDir, keyed by
	// the recipe's URLs and fetching through GitMirrors. A Fetcher is given
	// the recipe's URLs, and applies mirrors itself.
	Fetcher fetcher
	// Modules gets module-proxy plugins; nil uses the Go module proxies the
	// environment names (GOPROXY...), with a download cache in CacheDir.
	Modules moduleFetcher
	// Env reads the go command's environment for module-proxy plugins; nil
	// means os.Getenv.
	Env func(string) string
	// Bases reads base images; nil reads them with package images.
	Bases baseResolver
	// Log receives a line for the base and each plugin resolved; nil
	// discards.
	Log io.Writer
	// Offline resolves from the lock and the local caches alone: nothing
	// is fetched, Frozen checks the lock against the recipe only, and
	// whatever is missing is listed in one NotCachedError.
	Offline bool
	// NeedBaseLayers says an output reads the base's layers (an OCI
	// layout, a docker archive, the runtime check): offline, the blob
	// cache (Images.Cache) must hold them too.
	NeedBaseLayers bool
	// Status hears of each stage and plugin as it starts and ends; nil
	// discards.
	Status Status
	// Trees is a tree cache a fleet shares (package cacherepo): a locked
	// plugin the local caches lack is read from it before its source.
	// Used with the default Fetcher and Modules only (a caller's own
	// fetchers decide where files come from).
	Trees treeCache
	// Binaries is where a fleet keeps what each base's Traefik binary
	// says (package cacherepo), read when the local blob cache lacks it
	// and written once the binary is read: a runner of the fleet streams
	// a base's binary layer only when no runner did.
	Binaries binaryCache
}

// reresolve says whether pinned sources are asked again (Frozen online).
func (o *options) reresolve() bool { return o.Frozen && !o.Offline }

func (o *options) logf(format string, args ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, format+"\n", args...)
	}
}

// ErrNotCached is the error (a NotCachedError) of an offline resolution
// that needs what the caches lack.
var ErrNotCached = errors.New("not in the cache")

// NotCachedError lists everything an offline resolution needed and the
// caches lacked: Errs holds each source's error (errors.Is finds the
// source's own sentinel: images.ErrNotCached, source.ErrNotCached...),
// Missing one line each.
type NotCachedError struct {
	Missing []string
	Errs    []error
}

func (e *NotCachedError) Error() string {
	things := "things are"
	if len(e.Missing) == 1 {
		things = "thing is"
	}
	return fmt.Sprintf("offline: %d %s not in the cache directory (run the same command once online with the same cache directory):\n  - %s",
		len(e.Missing), things, strings.Join(e.Missing, "\n  - "))
}

// Is makes errors.Is(err, ErrNotCached) true.
func (e *NotCachedError) Is(target error) bool { return target == ErrNotCached }

// Unwrap gives the errors of the sources.
func (e *NotCachedError) Unwrap() []error { return e.Errs }

// notCached tells the errors of a source that lacked something offline.
func notCached(err error) bool {
	return errors.Is(err, images.ErrNotCached) || errors.Is(err, source.ErrNotCached) || errors.Is(err, modproxy.ErrNotCached)
}

// ErrFrozen is the error of a frozen resolution (BuildRequest.Frozen) that finds
// the lock missing, out of date or no longer what the sources resolve to.
var ErrFrozen = errors.New("not as locked")

// fetcher resolves plugin refs and reads plugin trees; *source.Fetcher is
// the git implementation.
type fetcher interface {
	Resolve(ctx context.Context, url, ref string) (source.Resolved, error)
	Tree(ctx context.Context, url, commit string) (*source.Tree, error)
}

// baseResolver reads a base image by reference, or by the digest a lock
// pins; remoteBases (package images) is the implementation.
type baseResolver interface {
	Resolve(ctx context.Context, ref images.Reference, opts images.Options) (*images.Base, error)
	ResolveDigest(ctx context.Context, ref images.Reference, digest v1.Hash, opts images.Options) (*images.Base, error)
}

// remoteBases is the baseResolver of package images: registries, OCI
// layouts and docker archives.
type remoteBases struct{}

// Resolve is images.Resolve.
func (remoteBases) Resolve(ctx context.Context, ref images.Reference, opts images.Options) (*images.Base, error) {
	return images.Resolve(ctx, ref, opts)
}

// ResolveDigest is images.ResolveDigest.
func (remoteBases) ResolveDigest(ctx context.Context, ref images.Reference, d v1.Hash, opts images.Options) (*images.Base, error) {
	return images.ResolveDigest(ctx, ref, d, opts)
}

// Target is the Traefik that will load the plugins, computed once (target)
// and read by every stage after: what the plugins are checked for, which
// interpreters verify them, and where those were read.
type Target struct {
	// Version is "v3.6.12": Config.TraefikVersion, else the version the
	// base's Traefik binary was built as, else the base's labels; "" when
	// nothing names it.
	Version string `json:"version,omitempty"`
	// Yaegi, Wazero and HTTPWasm ("module@version") are the interpreters
	// that Traefik embeds (interpreters.Interpreter); Wazero and HTTPWasm
	// are "" for Traefik v2. All are "" when nothing names them: the
	// plugins are then UNVERIFIED.
	Yaegi    string `json:"yaegi,omitempty"`
	Wazero   string `json:"wazero,omitempty"`
	HTTPWasm string `json:"httpWasm,omitempty"`
	// InterpreterSource says where they were read: InterpreterFromBinary,
	// InterpreterFromGoMod or InterpreterFromTable; "" when nowhere.
	InterpreterSource string `json:"interpreterSource,omitempty"`
	// Binary is the path of the base's Traefik binary in the image when
	// its build info was read (first platform).
	Binary string `json:"binary,omitempty"`
	// Notes say why a source preferred to InterpreterSource did not
	// answer, and where the labels and the binary disagree.
	Notes []string `json:"notes,omitempty"`
}

// Interpreter is the target's interpreters.
func (t Target) Interpreter() interpreters.Interpreter {
	return interpreters.Interpreter{Yaegi: t.Yaegi, Wazero: t.Wazero, HTTPWasm: t.HTTPWasm}
}

func (t *Target) setInterpreter(in interpreters.Interpreter, source string) {
	t.Yaegi, t.Wazero, t.HTTPWasm, t.InterpreterSource = in.Yaegi, in.Wazero, in.HTTPWasm, source
}

// Summary is the target in a few words, for reports.
func (t Target) Summary() string {
	s := "Traefik " + orUnknown(t.Version)
	switch t.InterpreterSource {
	case InterpreterFromBinary:
		return fmt.Sprintf("%s: yaegi %s, read from the base's Traefik binary %s", s, t.Yaegi, t.Binary)
	case InterpreterFromGoMod:
		return fmt.Sprintf("%s: yaegi %s, read from Traefik's go.mod for %s (module proxy)", s, t.Yaegi, t.Version)
	case InterpreterFromTable:
		return fmt.Sprintf("%s: yaegi %s, from xtraefik's table of releases", s, t.Yaegi)
	}
	return s + ": interpreter unknown"
}

// resolution is everything a recipe resolved to, each fact computed once:
// the stages after it read these and derive none of them again.
type resolution struct {
	Recipe *recipe.Recipe
	Base   *images.Base
	// Traefik is what the plugins are checked and verified for.
	Traefik Target
	// Epoch is the timestamp every layer entry, config date and document
	// carries: SOURCE_DATE_EPOCH, else the newest plugin commit.
	Epoch   time.Time
	Plugins []plugin.Plugin
	// Warnings are worth telling the user but do not stop the build.
	Warnings []string
}

// Lock renders the resolution as a lock.
func (r *resolution) Lock() *recipe.Lock {
	l := &recipe.Lock{Version: recipe.LockVersion, Base: recipe.BaseLock{
		Ref:       r.Recipe.Base,
		Digest:    r.Base.Digest.String(),
		MediaType: string(r.Base.MediaType),
	}}
	for _, p := range r.Base.Platforms {
		l.Base.Platforms = append(l.Base.Platforms, recipe.PlatformLock{Platform: p.Platform.String(), Digest: p.Digest.String()})
	}
	for _, p := range r.Plugins {
		src := p.Source
		src.Time = src.Time.UTC()
		l.Plugins = append(l.Plugins, recipe.PluginLock{Alias: p.Alias, Module: p.Module, Source: src, ContentHash: p.Hash})
	}
	return l
}

// resolve resolves the base and every plugin, telling r of the base and
// of each plugin's fetch (plugins resolve side by side, told of in the
// recipe's order: fetchAll). With a lock (and not Frozen) it uses the pinned
// digests and commits and touches the network only to fetch what the cache
// lacks; with Frozen it re-resolves and compares. A plugin's error is a
// StageError of StageFetch naming it.
func resolve(ctx context.Context, r *runner, o *options) (*resolution, error) {
	rc := o.Recipe
	res := &resolution{Recipe: rc}
	if o.Lock != nil {
		if stale := o.Lock.Stale(rc); len(stale) > 0 {
			if o.Frozen {
				return nil, fmt.Errorf("%w: the lock does not match the recipe: %s; run `xtraefik lock`", ErrFrozen, strings.Join(stale, "; "))
			}
			res.Warnings = append(res.Warnings, "lock out of date, resolving afresh: "+strings.Join(stale, "; "))
		}
	} else if o.Frozen {
		return nil, fmt.Errorf("%w: there is no lock file for %s; run `xtraefik lock` first", ErrFrozen, rc.Path)
	} else if o.Offline {
		return nil, &NotCachedError{Missing: []string{fmt.Sprintf("the lock of %s: offline, only what a lock pins can be built; lock the recipe online first", rc.Path)}}
	}

	// Offline, every miss is gathered so that one error lists them all.
	var missing NotCachedError
	gather := func(err error) bool {
		if o.Offline && notCached(err) {
			missing.Missing, missing.Errs = append(missing.Missing, err.Error()), append(missing.Errs, err)
			return true
		}
		return false
	}
	r.Start(StageResolve, rc.Base)
	base, err := resolveBase(ctx, o)
	if err != nil && !gather(err) {
		r.Done(StageResolve, rc.Base, "", err)
		return nil, unreachable(ctx, o, viaRegistry, err)
	}
	res.Base = base
	if base != nil {
		o.logf("base %s -> %s (%d platform(s))", rc.Base, base.Digest, len(base.Platforms))
		var warnings []string
		if res.Traefik, warnings, err = target(ctx, r, o, base); err != nil && !gather(err) {
			r.Done(StageResolve, rc.Base, "", err)
			return nil, err
		}
		res.Warnings = append(res.Warnings, warnings...)
		if o.Offline && o.NeedBaseLayers {
			for _, l := range base.MissingLayers() {
				missing.Missing, missing.Errs = append(missing.Missing, l), append(missing.Errs, fmt.Errorf("%s: %w", l, images.ErrNotCached))
			}
		}
		r.Done(StageResolve, rc.Base, fmt.Sprintf("%s (%d platform(s))", base.Digest, len(base.Platforms)), nil)
	} else {
		r.Done(StageResolve, rc.Base, "not in the cache (listed at the end)", nil)
	}

	src := newSources(o)
	if src.git == nil {
		mirror := func(url string) string { return recipe.RewriteGit(o.GitMirrors, url) }
		if src.git, err = source.New(source.Options{CacheDir: o.CacheDir, Auth: o.GitAuth, Offline: o.Offline, Mirror: mirror}); err != nil {
			return nil, fmt.Errorf("git cache: %w", err)
		}
		if o.Trees != nil && !o.Offline && o.Modules == nil {
			if src.gitLocal, err = source.New(source.Options{CacheDir: o.CacheDir, Auth: o.GitAuth, Offline: true, Mirror: mirror}); err != nil {
				return nil, fmt.Errorf("git cache: %w", err)
			}
			if src.modulesLocal, err = modproxy.New(modproxy.Options{Env: o.Env, CacheDir: filepath.Join(o.CacheDir, "mod"), Offline: true}); err != nil {
				return nil, fmt.Errorf("module proxy: %w", err)
			}
		}
	}
	fetch := func(ctx context.Context, alias string) fetched {
		if err := ctx.Err(); err != nil {
			// An earlier plugin failed, or the caller gave up: this one
			// is not started.
			return fetched{err: fmt.Errorf("plugin %s (%s): %w", alias, rc.Plugins[alias].Module, err)}
		}
		p, warnings, err := src.resolve(ctx, alias, res.Traefik.Version)
		return fetched{plugin: p, warnings: warnings, err: err}
	}
	start := func(alias string) { r.Start(StageFetch, alias) }
	err = fetchAll(ctx, rc.Aliases(), fetch, start, func(alias string, f fetched) error {
		if gather(f.err) {
			r.Done(StageFetch, alias, "not in the cache (listed at the end)", nil)
			return nil
		}
		if f.err != nil {
			r.Done(StageFetch, alias, "", f.err)
			return stageFailed(ctx, StageFetch, alias, unreachable(ctx, o, sourceKind(rc.Plugins[alias]), f.err))
		}
		p := f.plugin
		r.Done(StageFetch, alias, p.Module+" "+p.Source.Revision(), nil)
		o.logf("plugin %s: %s -> %s (%s)", alias, p.Module, p.Source.Revision(), p.Hash)
		res.Plugins = append(res.Plugins, *p)
		res.Warnings = append(res.Warnings, f.warnings...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(missing.Missing) > 0 {
		return nil, &missing
	}
	res.Epoch = epoch(o, res.Plugins)
	return res, nil
}

// fetchParallel bounds the plugins resolved at once. With warm caches
// resolving is CPU work (every cached git object is inflated and hashed
// against its name), which two cores halve; cold, one plugin's tree is
// read while another is fetched (source.Fetcher fetches one at a time).
// Each plugin in flight may hold a repository's object cache: more at
// once would raise the memory a build peaks at (docs/design.md, Memory).
const fetchParallel = 2

// fetched is what resolving one plugin gave.
type fetched struct {
	plugin   *plugin.Plugin
	warnings []string
	err      error
}

// fetchAll runs fetch for each alias, up to fetchParallel at once, and
// hands the results to done in the order of aliases, calling start as it
// begins to wait for each: a Status, the log and the error a command
// returns are the same whichever plugin finishes first. The first error
// done returns ends it: the fetches still running see their context
// cancelled, and fetchAll returns once they have all returned.
func fetchAll(ctx context.Context, aliases []string, fetch func(context.Context, string) fetched, start func(string), done func(string, fetched) error) error {
	ctx, cancel := context.WithCancel(ctx)
	results := make([]fetched, len(aliases))
	ready := make([]chan struct{}, len(aliases))
	for i := range ready {
		ready[i] = make(chan struct{})
	}
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(fetchParallel, len(aliases)) {
		wg.Go(func() {
			for i := range next {
				results[i] = fetch(ctx, aliases[i])
				close(ready[i])
			}
		})
	}
	go func() {
		// Every index is handed out, even after a failure (fetch sees
		// the cancelled context), so that every ready channel closes.
		defer close(next)
		for i := range aliases {
			next <- i
		}
	}()
	defer func() {
		cancel()
		wg.Wait()
	}()
	for i, alias := range aliases {
		start(alias)
		<-ready[i]
		if err := done(alias, results[i]); err != nil {
			return err
		}
	}
	return nil
}

// epoch is SOURCE_DATE_EPOCH, else the newest plugin commit time.
func epoch(o *options, plugins []plugin.Plugin) time.Time {
	if o.Epoch != nil {
		return o.Epoch.UTC()
	}
	var t time.Time
	for _, p := range plugins {
		if p.Source.Time.After(t) {
			t = p.Source.Time
		}
	}
	return t.UTC()
}

// target names the Traefik the plugins are for and the interpreters it
// embeds, each from the first source that answers, never guessed:
//
//   - the version: the caller's word (Config.TraefikVersion), else the
//     base's Traefik binary (its Go build info), else the base's labels;
//   - the interpreters: the binary's build info (unless the caller named
//     another version), else Traefik's go.mod for that exact version from
//     the module proxy, else xtraefik's table; else none (UNVERIFIED).
//
// warnings tell where the labels and the binary disagree.
func target(ctx context.Context, r *runner, o *options, base *images.Base) (t Target, warnings []string, err error) {
	labels := ""
	if len(base.Platforms) > 0 {
		cf, err := base.ConfigFile(0)
		if err != nil {
			return t, nil, err
		}
		labels = verify.TraefikVersionFromLabels(cf.Config.Labels)
	}
	t.Version = o.TraefikVersion
	if t.Version == "" {
		info, ok, why, fleetWarnings, err := baseTraefik(ctx, r, o, base)
		warnings = append(warnings, fleetWarnings...)
		if err != nil {
			return t, nil, fmt.Errorf("read the base's Traefik binary: %w", err)
		}
		switch {
		case !ok:
			t.Notes = append(t.Notes, "the base's Traefik binary was not read: "+why)
		case info.Path == "":
			t.Notes = append(t.Notes, "the base holds no Traefik binary where its entrypoint, command and PATH would find one")
		case info.NotTraefik != "":
			t.Notes = append(t.Notes, "the base's "+info.Path+" is no Traefik binary: "+info.NotTraefik)
		default:
			t.Binary, t.Version = info.Path, info.Version
			t.setInterpreter(info.In, InterpreterFromBinary)
			w := ""
			if table, known := interpreters.ForTraefik(labels); info.Version == "" && known && table.Yaegi != info.In.Yaegi {
				// A binary built with -trimpath records no link flags, so
				// no version: its interpreter still decides.
				w = fmt.Sprintf("the base's labels say Traefik %s, which embeds yaegi %s, but its Traefik binary %s links yaegi %s: the binary decides", labels, table.Yaegi, info.Path, info.In.Yaegi)
			} else if labels != "" && info.Version != "" && labels != info.Version {
				w = fmt.Sprintf("the base's labels say Traefik %s, but its Traefik binary %s is %s (yaegi %s): the binary decides", labels, info.Path, info.Version, info.In.Yaegi)
			}
			if w != "" {
				t.Notes, warnings = append(t.Notes, w), append(warnings, w)
			}
		}
		if t.Version == "" {
			t.Version = labels
		}
	}
	if t.InterpreterSource != "" || t.Version == "" {
		return t, warnings, nil
	}
	in, ok, why := traefikGoMod(ctx, o, t.Version)
	if ok {
		t.setInterpreter(in, InterpreterFromGoMod)
		return t, warnings, nil
	}
	t.Notes = append(t.Notes, "Traefik's go.mod was not read: "+why)
	if in, ok := interpreters.ForTraefik(t.Version); ok {
		t.setInterpreter(in, InterpreterFromTable)
	}
	return t, warnings, nil
}

func resolveBase(ctx context.Context, o *options) (*images.Base, error) {
	r := o.Recipe
	bases := o.Bases
	if bases == nil {
		bases = remoteBases{}
	}
	ref, err := images.ParseReference(r.Base)
	if err != nil {
		return nil, r.Errorf([]string{"base"}, "%v", err)
	}
	opts := o.Images
	opts.Offline = opts.Offline || o.Offline // one switch: no registry either
	locked := o.Lock != nil && o.Lock.Base.Ref == r.Base && !o.UpdateBase
	if !locked || o.reresolve() {
		base, err := bases.Resolve(ctx, ref, opts)
		if err != nil {
			return nil, err // names the base, and the mirror if any
		}
		if locked && base.Digest.String() != o.Lock.Base.Digest {
			return nil, fmt.Errorf("%w: base %s moved: the lock has %s, it now resolves to %s", ErrFrozen, r.Base, o.Lock.Base.Digest, base.Digest)
		}
		return base, nil
	}
	d, err := v1.NewHash(o.Lock.Base.Digest)
	if err != nil {
		return nil, fmt.Errorf("lock: base digest %q: %w", o.Lock.Base.Digest, err)
	}
	base, err := bases.ResolveDigest(ctx, ref, d, opts)
	if err != nil {
		return nil, fmt.Errorf("%w (the digest the lock pins)", err)
	}
	return base, nil
}
