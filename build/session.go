package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/xtraefik/xtraefik/images"
	"github.com/xtraefik/xtraefik/images/blobstore"
	"github.com/xtraefik/xtraefik/internal/cacherepo"
	"github.com/xtraefik/xtraefik/internal/outdated"
	"github.com/xtraefik/xtraefik/internal/redact"
	"github.com/xtraefik/xtraefik/internal/sandbox"
	"github.com/xtraefik/xtraefik/internal/source"
	"github.com/xtraefik/xtraefik/internal/source/modproxy"
	"github.com/xtraefik/xtraefik/recipe"
	"github.com/xtraefik/xtraefik/verify"
	"github.com/xtraefik/xtraefik/verify/interpreters"
)

// Environment variables a Session reads (through Config.Env), besides
// SOURCE_DATE_EPOCH, $XTRAEFIK_CACHE, the fleet's (EnvCacheRepo,
// EnvCacheKey, EnvCacheTrust, COSIGN_PASSWORD; EnvVerdictKey and
// EnvVerdictKeyFile are refused), the go command's for module-proxy
// plugins (GOPROXY...) and the git credential variables (source.FromEnv).
const (
	EnvGitMirrors         = "XTRAEFIK_GIT_MIRRORS"
	EnvRegistryMirrors    = "XTRAEFIK_REGISTRY_MIRRORS"
	EnvInsecureRegistries = "XTRAEFIK_INSECURE_REGISTRIES"
)

// Config is what a caller chooses beyond the recipe, as the CLI's flags and
// environment do. The zero value (with RecipeFile) is a plain build.
type Config struct {
	// RecipeFile is the recipe; its lock is recipe.LockPath(RecipeFile).
	RecipeFile string
	// Recipe, when set, is a recipe made in code (xtraefik build --with)
	// instead of RecipeFile; with RecipeFile empty it has no lock, and
	// Lock and rebase are refused.
	Recipe *recipe.Recipe
	// CacheDir holds git repositories, module downloads, base blobs
	// (blobs/), verdicts (verdicts/) and built verification workers; ""
	// means $XTRAEFIK_CACHE, else the user cache directory's xtraefik.
	CacheDir string
	// GitMirrors and RegistryMirrors (PREFIX=LOCATION) and
	// InsecureRegistries (hosts) are added to the recipe's mirrors and to
	// those the environment names.
	GitMirrors         []string
	RegistryMirrors    []string
	InsecureRegistries []string
	// Platforms (os/arch[/variant]) narrow the base in place of the
	// recipe's platforms.
	Platforms []string
	// RegistryTimeout bounds a registry request without progress (0: the
	// default; negative: no bound).
	RegistryTimeout time.Duration
	// TraefikVersion checks the plugins for this Traefik instead of the one
	// the base names.
	TraefikVersion string
	// Env is the environment the session reads instead of the process's;
	// nil means os.Getenv. Every variable goes through it: those above,
	// HOME and XDG_CACHE_HOME (the default CacheDir), XDG_CONFIG_HOME
	// (the default KeyFile), DOCKER_CONFIG, REGISTRY_AUTH_FILE and
	// XDG_RUNTIME_DIR (the default Keychain), SSH_KNOWN_HOSTS and the git
	// credential variables, and the go command's (GOPROXY...) for
	// module-proxy plugins. The exceptions are TMPDIR (os.TempDir), the
	// go command building a verification worker for a Yaegi xtraefik does
	// not link, which runs in the process environment, and the programs
	// found on the process's PATH (runc, go, worker executables).
	Env func(string) string
	// KeyFile is the host key the caches that decide trust (verdicts,
	// rendered layers, built workers) are sealed with, made on first use;
	// "" means $XDG_CONFIG_HOME/xtraefik/verdict-cache.key, else under
	// $HOME/.config (read through Env). It is kept outside CacheDir on
	// purpose: a cache restored in CI or shared must not bring the key
	// that vouches for it.
	KeyFile string
	// Keychain gives registry credentials; nil means the Docker/Podman
	// auth files found through Env (images.EnvKeychain, the files
	// authn.DefaultKeychain reads).
	Keychain authn.Keychain
	// Log receives a plain line for the base and for each plugin as they
	// resolve (what the lock pins); Status gets every event. nil discards.
	Log io.Writer
	// Offline builds from the lock and the cache directory alone, never
	// touching the network (see options.Offline); pushing is refused.
	Offline bool
	// Status hears of each stage, plugin and output as it starts and ends,
	// and of the bytes pushed (the CLI draws them as live or timestamped
	// lines); nil discards.
	Status Status
	// CacheRepo is a registry repository a fleet of runners shares
	// (package cacherepo; "" means $XTRAEFIK_CACHE_REPO): verified plugin
	// trees and verdicts are stored there and read back, so a runner
	// with an empty cache builds a locked recipe without the plugins'
	// sources. Offline, it is not used. It needs CacheKey or CacheTrust:
	// every entry there is signed, and read only if a trusted key signed
	// it.
	CacheRepo string
	// CacheKey signs what this runner writes to CacheRepo: a PEM private
	// key file (PKCS#8 Ed25519 or ECDSA as `openssl genpkey` writes it,
	// or cosign's encrypted key, its password from $COSIGN_PASSWORD) or a
	// KMS URI (sign.LoadKey); its public key is trusted. "" means
	// $XTRAEFIK_CACHE_KEY; without either the runner reads CacheRepo and
	// never writes to it.
	CacheKey string
	// CacheTrust are PEM public key files (openssl pkey -pubout,
	// cosign.pub) whose entries in CacheRepo are read, besides those the
	// path list $XTRAEFIK_CACHE_TRUST names: entries signed by any other
	// key are ignored, with a warning. Several keys let writers rotate.
	CacheTrust []string
}

// Session is one recipe and its lock merged with a Config: every command
// (lock, build, rebase, verify) runs from the options it decides once.
type Session struct {
	// Recipe is as read; Locked is the lock as on disk (nil when there is
	// none) and moves when the session writes LockFile: read it when no
	// Lock or rebase of this session is running.
	Recipe   *recipe.Recipe
	Locked   *recipe.Lock
	LockFile string
	opts     options
	// fleet is the cache repository, nil without one or offline.
	fleet *cacherepo.Store
	// keyFile is Config.KeyFile or its default ("" when Env names no
	// configuration directory: noKeyFile says so).
	keyFile   string
	noKeyFile error
	// mu guards what concurrent commands on one Session share: the lock as
	// last written (Locked, opts.Lock) and the cache key, read once.
	mu     sync.Mutex
	key    []byte
	keyErr error
}

// Open reads the recipe and its lock and merges them with cfg: recipe
// mirrors first, then the environment's, then cfg's.
func Open(cfg Config) (*Session, error) {
	env := cfg.Env
	if env == nil {
		env = os.Getenv
	}
	r := cfg.Recipe
	if r == nil {
		var err error
		if r, err = recipe.Load(cfg.RecipeFile); err != nil {
			return nil, err
		}
	} else if err := r.Validate(); err != nil {
		// A recipe made in code gets the checks a file gets.
		return nil, err
	}
	var (
		lockFile string
		lock     *recipe.Lock
		err      error
	)
	if cfg.RecipeFile != "" {
		lockFile = recipe.LockPath(cfg.RecipeFile)
		if lock, err = recipe.ReadLock(lockFile); err != nil {
			return nil, err
		}
	}
	o := options{Recipe: r, Lock: lock, CacheDir: cfg.CacheDir, Log: cfg.Log, Status: cfg.Status, GitAuth: source.FromEnv(env),
		TraefikVersion: cfg.TraefikVersion, Env: env, Offline: cfg.Offline}
	if o.CacheDir, err = CacheDir(cfg.CacheDir, env); err != nil {
		return nil, err
	}
	o.GitMirrors = append(o.GitMirrors, r.Mirrors.Git...)
	for _, s := range append(splitList(env(EnvGitMirrors)), cfg.GitMirrors...) {
		m, err := recipe.ParseGitMirror(s)
		if err != nil {
			return nil, err
		}
		o.GitMirrors = append(o.GitMirrors, m)
	}
	regs := append([]recipe.RegistryMirror(nil), r.Mirrors.Registries...)
	for _, s := range append(splitList(env(EnvRegistryMirrors)), cfg.RegistryMirrors...) {
		m, err := recipe.ParseRegistryMirror(s)
		if err != nil {
			return nil, err
		}
		regs = append(regs, m)
	}
	for _, m := range regs {
		o.Images.Mirrors = append(o.Images.Mirrors, images.Mirror{Prefix: m.Prefix, Location: m.Location})
	}
	o.Images.Insecure = append(append(append(o.Images.Insecure, r.Mirrors.Insecure...), splitList(env(EnvInsecureRegistries))...), cfg.InsecureRegistries...)
	o.Images.Keychain = cfg.Keychain
	if o.Images.Keychain == nil {
		o.Images.Keychain = images.EnvKeychain(env)
	}
	plats, where := cfg.Platforms, "platform"
	if len(plats) == 0 {
		plats, where = r.Platforms, "platforms"
	}
	for _, p := range plats {
		pl, err := images.ParsePlatform(p)
		if err != nil {
			if where == "platforms" {
				return nil, r.Errorf([]string{"platforms"}, "%v", err)
			}
			return nil, fmt.Errorf("platform %q: %w", p, err)
		}
		o.Images.Platforms = append(o.Images.Platforms, *pl)
	}
	o.Images.Offline = cfg.Offline
	o.Images.RequestTimeout = cfg.RegistryTimeout
	if o.Images.RequestTimeout == 0 {
		o.Images.RequestTimeout = images.DefaultRequestTimeout
	}
	if o.Epoch, err = epochFromEnv(env("SOURCE_DATE_EPOCH")); err != nil {
		return nil, err
	}
	sess := &Session{Recipe: r, Locked: lock, LockFile: lockFile, opts: o, keyFile: cfg.KeyFile}
	if sess.keyFile == "" {
		sess.keyFile, sess.noKeyFile = verify.KeyFileFor(env)
	}
	if err := legacyVerdictKey(env); err != nil {
		return nil, err
	}
	if sess.fleet, err = openFleet(cfg, o, env); err != nil {
		return nil, err
	}
	if sess.fleet != nil {
		sess.opts.Trees, sess.opts.Binaries = sess.fleet, sess.fleet
	}
	return sess, nil
}

// openFleet opens the cache repository cfg or the environment names, with
// its keys; nil without one, or offline.
func openFleet(cfg Config, o options, env func(string) string) (*cacherepo.Store, error) {
	repo, from := cfg.CacheRepo, ""
	if repo == "" {
		repo, from = env(EnvCacheRepo), "$"+EnvCacheRepo+": "
	}
	if repo == "" {
		if cfg.CacheKey != "" || len(cfg.CacheTrust) > 0 {
			return nil, errors.New("a cache key and trusted keys sign and check the entries of a cache repository: name one too")
		}
		return nil, nil
	}
	if o.Offline {
		// Checked offline too (a typo should not wait for the next
		// online run), but not used: a cache repository is on the
		// network, and so may be the signing key (KMS).
		if _, err := o.Images.Repository(repo); err != nil {
			// The value may carry credentials (https://user:token@reg/x).
			return nil, fmt.Errorf("%scache repository %q: %w", from, redact.URL(repo), redact.Error(err))
		}
		return nil, nil
	}
	keys, err := fleetKeys(context.Background(), cfg.CacheKey, cfg.CacheTrust, env)
	if err != nil {
		return nil, err
	}
	if keys.Signer == nil && len(keys.Trust) == 0 {
		return nil, fmt.Errorf("%scache repository %s: give a key: --cache-key (%s) to sign what this runner writes there, or --cache-trust (%s) to read entries signed with that public key and write nothing; make a pair with openssl genpkey -algorithm ed25519 -out cache.key && openssl pkey -in cache.key -pubout -out cache.pub",
			from, redact.URL(repo), EnvCacheKey, EnvCacheTrust)
	}
	store, err := cacherepo.New(repo, o.Images, keys)
	if err != nil {
		return nil, fmt.Errorf("%s%w", from, err)
	}
	return store, nil
}

// copyOptions is a copy of the merged options, for one command.
func (s *Session) copyOptions() *options {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.opts
	return &o
}

// locked is the lock as last read or written (nil when there is none).
func (s *Session) locked() *recipe.Lock {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Locked
}

// withBlobCache gives o the blob cache in the cache directory's blobs/,
// created on first use: called once a command is past its checks, so
// that a refused command creates nothing. Its records (rendered layers)
// are sealed with the session's cache key; without one it keeps none.
func (s *Session) withBlobCache(o *options, rep *Report, sealed bool) error {
	if o.Images.Cache != nil {
		return nil
	}
	dir := filepath.Join(o.CacheDir, "blobs")
	if o.Offline && !exists(dir) {
		return nil // nothing cached: everything is reported missing, nothing made
	}
	store, err := blobstore.Open(dir)
	if err != nil {
		return err
	}
	if !sealed {
		o.Images.Cache = store
		return nil
	}
	if key := s.cacheKey(rep); key != nil {
		store = store.WithSecret(key)
	}
	o.Images.Cache = store
	return nil
}

// cacheKey is the secret the caches on this machine that decide what is
// trusted seal their entries with: this user's key file (made on first
// use). Nil, with a warning, when there is none: those caches then keep
// nothing.
func (s *Session) cacheKey(rep *Report) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.key == nil && s.keyErr == nil {
		switch {
		case s.noKeyFile != nil:
			s.keyErr = s.noKeyFile
		case s.opts.Offline && !exists(s.keyFile):
			return nil // an offline run makes no key: nothing it could read is sealed with one
		default:
			s.key, s.keyErr = verify.LoadKey(s.keyFile)
		}
	}
	if s.keyErr != nil {
		// Every command's report says so, once.
		if w := "verdict and layer caches not used: " + s.keyErr.Error(); !slices.Contains(rep.Warnings, w) {
			rep.Warnings = append(rep.Warnings, w)
		}
		return nil
	}
	return s.key
}

// exists reports whether path is there (anything but a missing entry
// counts).
func exists(path string) bool {
	_, err := os.Lstat(path)
	return !errors.Is(err, fs.ErrNotExist)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// LockRequest says what `lock` re-resolves beyond what the lock lacks.
type LockRequest struct {
	// UpdateBase re-resolves the base; UpdateAll every plugin; Update the
	// plugins named.
	UpdateBase bool
	UpdateAll  bool
	Update     []string
}

// Lock resolves the recipe and writes its lock, keeping what the lock pins
// unless the request updates it. The report lists what moved.
func (s *Session) Lock(ctx context.Context, req LockRequest) (*Report, error) {
	rep := s.newReport("lock")
	if s.LockFile == "" {
		return rep.fail(errors.New("this recipe has no file, so its lock has nowhere to go"))
	}
	o := s.copyOptions()
	o.UpdateBase, o.UpdateAll, o.Update = req.UpdateBase, req.UpdateAll, req.Update
	j := s.newJob(o, rep)
	return j.finish(j.r.run(ctx,
		j.prepare(verify.Options{}, false, nil, false),
		j.relock(true),
		j.writeLock(true),
	))
}

func (s *Session) writeLock(l *recipe.Lock, rep *Report) error {
	if s.LockFile == "" {
		return errors.New("this recipe has no file, so its lock has nowhere to go")
	}
	if err := recipe.WriteLock(s.LockFile, l); err != nil {
		return err
	}
	s.mu.Lock()
	s.Locked, s.opts.Lock = l, l
	s.mu.Unlock()
	rep.Lock.Written = true
	return nil
}

// BuildRequest is what a build writes and checks.
type BuildRequest struct {
	Outputs Outputs
	// Publishers are the caller's own outputs (see Publisher), given the
	// image after Outputs are written.
	Publishers []Publisher
	// Frozen fails if anything resolves differently from the lock.
	Frozen bool
	// Rebase re-resolves the base and records it in the lock once the
	// image is built, checked and written (the lock must exist).
	Rebase bool
	// Verify tunes verification (timeouts, workers, containment).
	Verify verify.Options
	// Runtime, when set, runs the image's own Traefik before anything is
	// written.
	Runtime *RuntimeCheck
	// CheckReproducible builds a second time from the first build's pins and
	// fails unless the digests match.
	CheckReproducible bool
	// NoVerdictCache verifies every plugin even when the cache holds its
	// verdict for the same inputs.
	NoVerdictCache bool
}

// BuildResult is what Session.Build made: the report `--output json`
// prints, and the images, as go-containerregistry values, to hand to
// go-containerregistry or ko.
type BuildResult struct {
	// Report is filled as far as the build got, also when it failed.
	Report *Report
	// Image is the full image and PluginsImage the plugins image, each when
	// it was asked for and the build succeeded (verified, checked and
	// written); nil otherwise.
	Image, PluginsImage *Image
}

// Build resolves, verifies and assembles the image, runs the checks asked
// for, and writes every output, then the request's Publishers, all or
// nothing. Outputs and publishers are checked before anything is fetched.
// The result is never nil. Concurrent calls on one Session are safe.
func (s *Session) Build(ctx context.Context, req BuildRequest) (*BuildResult, error) {
	req.Outputs.custom = req.Publishers
	rep, err := s.build(ctx, req)
	out := &BuildResult{Report: rep}
	if rep.built != nil && err == nil {
		out.Image, out.PluginsImage = newImage(rep.built.Image), newImage(rep.built.PluginsImage)
	}
	rep.built = nil // the report holds no image past the build
	return out, err
}

// build is Build's pipeline; the report's built field holds what it made.
func (s *Session) build(ctx context.Context, req BuildRequest) (*Report, error) {
	cmd := "build"
	if req.Rebase {
		cmd = "rebase"
	}
	rep := s.newReport(cmd)
	if req.Rebase && s.locked() == nil {
		return rep.fail(errors.New("rebase needs a lock: lock the recipe first"))
	}
	o := s.copyOptions()
	o.Frozen = req.Frozen
	switch {
	case o.Offline && req.Rebase:
		return rep.fail(errors.New("offline: a rebase asks the registry where the base's tag points now, which needs the network"))
	case o.Offline && (len(req.Outputs.Push) > 0 || len(req.Outputs.PluginsImage) > 0):
		return rep.fail(errors.New("offline: pushing needs the network; write an OCI layout offline and push it later (crane push, skopeo copy)"))
	}
	if err := req.Outputs.Validate(ctx, o.Images); err != nil {
		return rep.fail(err)
	}
	o.NeedBaseLayers = req.Outputs.OCILayout != "" || req.Outputs.Tarball != "" || req.Runtime != nil
	o.UpdateBase = req.Rebase
	rt := req.Runtime.options()
	j := s.newJob(o, rep)
	defer j.close()
	// After the outputs are checked: a refused build creates nothing, the
	// cache directory included.
	rep, err := j.finish(j.r.run(ctx,
		j.prepare(req.Verify, req.NoVerdictCache, rt, true),
		when(req.Rebase, j.relock(false)),
		j.resolve(),
		j.verify(true),
		j.assemble(wantImages{full: req.Outputs.wantsImage(), plugins: req.Outputs.wantsPlugins()}),
		j.shareTrees(),
		j.runtime(rt),
		j.reproducible(req.CheckReproducible),
		j.publish(req.Outputs),
		when(req.Rebase, j.writeLock(false)),
	))
	if err == nil {
		rep.built = j.res
	}
	return rep, err
}

// when is s when the request asks for it, else no stage.
func when(asked bool, s stage) stage {
	if !asked {
		return stage{}
	}
	return s
}

// VerifyRequest tunes Session.Verify.
type VerifyRequest struct {
	Verify verify.Options
	// NoVerdictCache verifies every plugin even when the cache holds its
	// verdict for the same inputs.
	NoVerdictCache bool
	// Runtime, when set, also assembles the image and runs its own Traefik.
	Runtime *RuntimeCheck
	// Base, when set, checks the plugins as the lock pins them against
	// this base (a tag or a digest) instead of the recipe's, with its
	// Traefik's interpreter: will the locked plugins work on this
	// release? The lock must exist and match the recipe; it is not
	// changed.
	Base string
}

// Verify resolves the recipe and checks every plugin the way Traefik will
// load it, without writing anything. Plugins that are not OK are in the
// report and make the error.
func (s *Session) Verify(ctx context.Context, req VerifyRequest) (*Report, error) {
	rep := s.newReport("verify")
	o := s.copyOptions()
	if req.Base != "" {
		if err := s.onBase(o, req.Base); err != nil {
			return rep.fail(err)
		}
	}
	o.NeedBaseLayers = req.Runtime != nil
	rt := req.Runtime.options()
	j := s.newJob(o, rep)
	defer j.close()
	return j.finish(j.r.run(ctx,
		j.prepare(req.Verify, req.NoVerdictCache, rt, true),
		j.resolve(),
		j.verify(false),
		j.shareTrees(),
		j.runtime(rt),
	))
}

// onBase points o at base instead of the recipe's, keeping every plugin
// as the lock pins it: the recipe and lock o holds become copies naming
// base, which is resolved afresh.
func (s *Session) onBase(o *options, base string) error {
	if _, err := images.ParseReference(base); err != nil {
		return fmt.Errorf("--base: %w", err)
	}
	// The command to run names the recipe, so that it can be pasted as is.
	lockCmd := "xtraefik lock"
	if s.Recipe.Path != "" && s.Recipe.Path != "recipe.yaml" {
		lockCmd += " -f " + s.Recipe.Path
	}
	locked := s.locked()
	if locked == nil {
		return fmt.Errorf("checking against another base uses the plugins the lock pins, and there is no lock: run `%s` first", lockCmd)
	}
	if stale := locked.Stale(s.Recipe); len(stale) > 0 {
		return fmt.Errorf("checking against another base uses the plugins the lock pins, and the lock does not match the recipe: %s; run `%s`", strings.Join(stale, "; "), lockCmd)
	}
	r, l := *s.Recipe, *locked
	r.Base, l.Base = base, recipe.BaseLock{Ref: base}
	o.Recipe, o.Lock, o.UpdateBase = &r, &l, true
	return nil
}

// verifyOptions completes vo with the session's caches: workers are built
// into the cache directory, and OK verdicts are kept in its verdicts/
// directory (keyed by everything that decides them, and authenticated with
// a key kept in the user's configuration directory: verify.DirCache). A
// cache that cannot be trusted is not used, with a warning.
func (s *Session) verifyOptions(ctx context.Context, vo verify.Options, noCache bool, rep *Report) (verify.Options, *cacherepo.Verdicts) {
	if vo.WorkerCache == "" {
		vo.WorkerCache = s.opts.CacheDir
	}
	vo.Offline = vo.Offline || s.opts.Offline
	key := s.cacheKey(rep)
	if vo.WorkerKey == nil {
		// Built workers are recorded under the same host key as verdicts,
		// found through Config, not the process environment.
		vo.WorkerKey = key
	}
	if vo.KeyFile == "" {
		vo.KeyFile = s.keyFile
	}
	if vo.Cache != nil || noCache {
		return vo, nil
	}
	dir := filepath.Join(s.opts.CacheDir, "verdicts")
	if key == nil || s.opts.Offline && !exists(dir) {
		return vo, nil
	}
	c, err := verify.OpenDirCache(dir, key)
	if err != nil {
		rep.Warnings = append(rep.Warnings, "verdict cache not used: "+err.Error())
		return vo, nil
	}
	vo.Cache = c
	if s.fleet == nil {
		return vo, nil
	}
	layered, verdicts := fleetVerdicts(ctx, s.fleet, c)
	vo.Cache = layered
	return vo, verdicts
}

// noteVerdicts adds what the cache repository's verdicts ignored (records
// no trusted key signed, a registry that failed) to the report.
func noteVerdicts(v *cacherepo.Verdicts, rep *Report) {
	if v == nil {
		return
	}
	for _, err := range v.Warnings() {
		rep.Warnings = append(rep.Warnings, "cache repository: "+err.Error())
	}
}

// runtimeIsolation is the isolation the runtime check may use under the
// verifier's containment mode: sandbox.ModeRequire holds it to runc, the
// one isolation with the verifier's guarantees.
func runtimeIsolation(isolation string, mode sandbox.Mode) (string, error) {
	if mode != sandbox.ModeRequire {
		return isolation, nil
	}
	switch isolation {
	case IsolationAuto, "":
		return IsolationRunc, nil
	case IsolationChroot, IsolationNone:
		return "", fmt.Errorf("containment is required, but the runtime check would run plugin code under isolation %s, which does not contain it; use runc", isolation)
	}
	return isolation, nil
}

// VerifyDir verifies a plugin author's working copy (verify.VerifyDir),
// reported as Session.Verify reports a recipe's plugins.
func VerifyDir(ctx context.Context, dir string, expectStatus int, vo verify.Options) (*Report, error) {
	rep := &Report{Command: "verify", start: time.Now()}
	if expectStatus != 0 && (expectStatus < 100 || expectStatus > 599) {
		return rep.fail(fmt.Errorf("expected status %d is not an HTTP status", expectStatus))
	}
	r := &runner{}
	err := r.run(ctx, stage{name: StageVerify, timing: &rep.Timings.Verify, run: func(ctx context.Context) error {
		rs, err := verify.VerifyDir(ctx, dir, expectStatus, vo)
		rep.Verify = rs
		if err != nil {
			return err
		}
		return verdictsFailed(rs, false)
	}})
	if err != nil {
		return rep.fail(err)
	}
	return rep.done(), nil
}

// OutdatedReport is what Outdated finds: the base and each plugin, with
// the newer releases of each (`xtraefik outdated -o json` prints it).
type OutdatedReport = outdated.Report

// Outdated lists newer plugin releases and Traefik tags than the recipe and
// its lock stand for, through the session's mirrors, registries,
// credentials and module proxies.
func (s *Session) Outdated(ctx context.Context, pre bool) (*OutdatedReport, error) {
	o := s.copyOptions()
	if o.Offline {
		return nil, errors.New("outdated asks every source what is new, which needs the network: it cannot run offline")
	}
	opts := outdated.Options{Git: outdated.NewGitLister(o.GitAuth), Images: outdated.NewImageLister(o.Images),
		GitMirrors: o.GitMirrors, Pre: pre}
	var gomods goModReader
	if mods, err := modproxy.New(modproxy.Options{Env: o.Env, CacheDir: filepath.Join(o.CacheDir, "mod")}); err == nil {
		opts.Modules, gomods = mods, mods
	}
	opts.Interpreter = func(ctx context.Context, version string) (string, error) {
		return releaseInterpreter(ctx, gomods, version)
	}
	return outdated.Check(ctx, s.Recipe, s.locked(), opts)
}

// releaseInterpreter is the Yaegi a Traefik release embeds, by version
// alone (no base image is read): xtraefik's release table, else that
// release's own go.mod through gomods (the module proxies and checksum
// database the environment names, as for a base whose binary cannot
// answer); nil gomods asks the table only.
func releaseInterpreter(ctx context.Context, gomods goModReader, version string) (string, error) {
	if in, ok := interpreters.ForTraefik(version); ok {
		return in.Yaegi, nil
	}
	if gomods == nil {
		return "", nil
	}
	in, err := goModInterpreter(ctx, gomods, version)
	if err != nil {
		return "", fmt.Errorf("not in xtraefik's table, and Traefik's go.mod was not read: %w", err)
	}
	return in.Yaegi, nil
}
