// Package source fetches plugin code from git at pinned revisions.
//
// Every remote has one bare repository in the cache directory. Resolve always
// asks the remote (fetching all branches and tags into the cache, like
// `git fetch --prune --force`) what a tag, branch or commit stands for now;
// Tree reads a commit's files straight from the object database, going to the
// network only when the commit is not cached yet. No work tree is ever
// checked out, so nothing of git's own (.git, hooks, config) can reach an
// image.
//
// An offline Fetcher (Options.Offline) never opens a connection: Tree reads
// cached commits only, Resolve and ListTags fail, and what the cache lacks
// is an error wrapping ErrNotCached. A cache repository found damaged is
// fetched afresh online, and reported as not cached offline.
//
// Transports are go-git's: http(s), git://, ssh, file:// and local paths (the
// last two run the git-upload-pack program, so they need git installed).
// Credentials follow FromEnv unless Options.Auth says otherwise.
package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"

	"github.com/xtraefik/xtraefik/internal/fileset"
	"github.com/xtraefik/xtraefik/internal/place"
)

// Options configure a Fetcher.
type Options struct {
	// CacheDir holds one bare repository per remote URL (required). It is
	// safe to share between processes.
	CacheDir string
	// Auth supplies credentials; nil means FromEnv(os.Getenv).
	Auth AuthFunc
	// Progress, if set, receives human-readable progress (the server's
	// messages included).
	Progress io.Writer
	// Offline forbids every network connection: Tree answers from the
	// cache only, and Resolve and ListTags, which must ask the remote,
	// fail. What the cache lacks (or holds damaged) is an error wrapping
	// ErrNotCached.
	Offline bool
	// Mirror, if set, gives the URL to fetch a remote from instead of its
	// own (git's url.<base>.insteadOf). The cache stays keyed by the
	// remote's own URL: a mirror changes where the bytes come from, not
	// what they are (a commit is named by its hash, and the caller checks
	// the files' hash), so any mirror fills the same cache and an offline
	// Fetcher finds what was fetched through a mirror without being told
	// of it.
	Mirror func(url string) string
}

// Kind says what a ref resolved to.
type Kind string

// Kinds of refs.
const (
	KindTag    Kind = "tag"
	KindBranch Kind = "branch"
	KindCommit Kind = "commit"
)

// Resolved is what a ref stands for on a remote at the time of the call.
type Resolved struct {
	// Commit is the full hex commit hash (annotated tags are peeled).
	Commit string
	Kind   Kind
	// Ref is the full ref name (refs/tags/v1.0.0, refs/heads/main), or the
	// commit hash for KindCommit.
	Ref string
}

// Tree is the content of one commit.
type Tree struct {
	Commit string
	// Time is the committer time, a natural SOURCE_DATE_EPOCH for layers.
	Time  time.Time
	Files fileset.Set
}

var (
	// ErrNotFound marks a ref or commit the remote does not have.
	ErrNotFound = errors.New("not found")
	// ErrUnsupported marks content a plugin must not rely on: submodules,
	// Git LFS pointers, .git entries, unknown file modes.
	ErrUnsupported = errors.New("unsupported plugin content")
	// ErrNotCached marks what an offline Fetcher cannot do from its cache:
	// a commit not cached (or cached damaged), and anything that must ask
	// the remote (Resolve, ListTags).
	ErrNotCached = errors.New("not in the cache (offline)")
)

// Fetcher fetches from remotes through its cache. It is safe for concurrent
// use.
type Fetcher struct {
	cacheDir string
	auth     AuthFunc
	progress io.Writer
	offline  bool
	mirror   func(string) string
	// readFixed, if not 0, replaces maxReadFixed (tests).
	readFixed int64
	// fetching holds one fetch at a time: a fetch indexes the pack it
	// receives holding up to 16 MiB of delta bases (docs/design.md,
	// Memory), while callers read trees side by side.
	fetching chan struct{}
}

// New checks opts and creates the cache directory (unless offline).
func New(opts Options) (*Fetcher, error) {
	if opts.CacheDir == "" {
		return nil, errors.New("source: Options.CacheDir is required")
	}
	dir, err := filepath.Abs(opts.CacheDir)
	if err != nil {
		return nil, fmt.Errorf("source: cache directory: %w", err)
	}
	// Private plugins end up here: keep the cache to its owner. Offline,
	// nothing is written: a missing cache is only a cache without commits.
	if !opts.Offline {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("source: create cache directory: %w", err)
		}
	}
	auth := opts.Auth
	if auth == nil {
		auth = FromEnv(os.Getenv)
	}
	return &Fetcher{cacheDir: dir, auth: auth, progress: opts.Progress, offline: opts.Offline, mirror: opts.Mirror, fetching: make(chan struct{}, 1)}, nil
}

// remote parses rawURL, the remote's own URL, and points it at its mirror
// if Options.Mirror names one: the key (the cache repository) stays the
// remote's own.
func (f *Fetcher) remote(rawURL string) (remote, error) {
	r, err := parseRemote(rawURL)
	if err != nil || f.mirror == nil {
		return r, err
	}
	m := f.mirror(rawURL)
	if m == rawURL {
		return r, nil
	}
	mr, err := parseRemote(m)
	if err != nil {
		return remote{}, fmt.Errorf("mirror of %s: %w", r.display, err)
	}
	mr.key, mr.origin = r.key, r.origin
	return mr, nil
}

// update fetches every branch and tag of r into its cache repository (force,
// prune) and runs then with the repository while still holding the lock.
// A cache repository that cannot be opened, or that damaged (when not nil)
// finds damaged, is replaced by an empty one first, so the fetch brings
// everything afresh; damaged looks under the lock, so a repair another
// process made meanwhile is kept.
func (f *Fetcher) update(ctx context.Context, r remote, damaged func(*git.Repository) bool, then func(*git.Repository) error) error {
	if f.offline {
		// Every caller refuses earlier, with its own words; this keeps the
		// no-network promise should one forget.
		return wrapf(ErrNotCached, "fetch %s: no network access (offline)", r.display)
	}
	select {
	case f.fetching <- struct{}{}:
		defer func() { <-f.fetching }()
	case <-ctx.Done():
		return fmt.Errorf("fetch %s: %w", r.display, ctx.Err())
	}
	dir := f.repoDir(r)
	// Processes sharing the cache serialise their fetches into one
	// repository; readers need no lock: git writes packs under a temporary
	// name, and the cache deletes objects only when it replaces a damaged
	// repository, which readers fail on anyway.
	unlock, err := place.Lock(ctx, dir+".lock", f.progress)
	if err != nil {
		return err
	}
	defer unlock()

	repo, err := openRepo(dir)
	if err != nil || (repo != nil && damaged != nil && damaged(repo)) {
		if f.progress != nil {
			fmt.Fprintf(f.progress, "cache repository %s is damaged: fetching %s afresh\n", dir, r.display)
		}
		if err := discardRepo(dir); err != nil {
			return fmt.Errorf("remove damaged cache repository %s: %w", dir, err)
		}
		repo = nil
	}
	if repo == nil {
		if _, err := os.Stat(dir); err == nil {
			// A directory without objects/ is a cache repository half
			// deleted by hand: it would block the rename into place.
			if err := discardRepo(dir); err != nil {
				return fmt.Errorf("remove damaged cache repository %s: %w", dir, err)
			}
		}
		if err := initRepo(dir); err != nil {
			return fmt.Errorf("create cache repository for %s: %w", r.display, err)
		}
		if repo, err = openRepo(dir); err != nil {
			return err
		}
	}

	var auth transport.AuthMethod
	if r.basic != nil {
		auth = r.basic
	} else if auth, err = f.auth(r.display); err != nil {
		return fmt.Errorf("credentials for %s: %w", r.display, err)
	}
	if f.progress != nil {
		fmt.Fprintf(f.progress, "fetching %s\n", r.display)
	}
	rem := git.NewRemote(fetchStorer(ctx, repo, dir), &config.RemoteConfig{Name: "origin", URLs: []string{r.fetchURL}})
	err = rem.FetchContext(ctx, &git.FetchOptions{
		RefSpecs: []config.RefSpec{"+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"},
		Tags:     git.NoTags, // the refspec already takes every tag
		Force:    true,
		Prune:    true,
		Auth:     auth,
		Progress: f.progress,
	})
	switch {
	case err == nil, errors.Is(err, git.NoErrAlreadyUpToDate):
	case errors.Is(err, transport.ErrEmptyRemoteRepository):
		return wrapf(err, "fetch %s: the repository is empty", r.display)
	case errors.Is(err, transport.ErrAuthenticationRequired), errors.Is(err, transport.ErrAuthorizationFailed):
		return wrapf(err, "fetch %s: %s (credentials come from the URL, %s, or %s and %s)", r.display, oneLine(err), EnvToken, EnvUsername, EnvPassword)
	case r.isSSH() && strings.Contains(err.Error(), "unable to authenticate"):
		// go-git's ssh transport has no sentinel error for a refused key.
		return wrapf(err, "fetch %s: %s (ssh keys come from %s, else the SSH agent at SSH_AUTH_SOCK)", r.display, oneLine(err), EnvSSHKey)
	default:
		return wrapf(err, "fetch %s: %s", r.display, oneLine(err))
	}
	return then(repo)
}

// Resolve asks the remote what ref stands for now: a full 40-hex commit hash
// (which must be reachable from one of the remote's branches or tags), a tag,
// a branch (tags win over branches of the same name), or a full
// refs/tags/... or refs/heads/... name. It always goes to the network.
func (f *Fetcher) Resolve(ctx context.Context, rawURL, ref string) (Resolved, error) {
	r, err := f.remote(rawURL)
	if err != nil {
		return Resolved{}, err
	}
	if ref == "" {
		return Resolved{}, fmt.Errorf("resolve on %s: empty ref", r.display)
	}
	var names []plumbing.ReferenceName
	switch {
	case isFullHash(ref):
	case strings.HasPrefix(ref, "refs/"):
		name := plumbing.ReferenceName(ref)
		if !name.IsTag() && !name.IsBranch() {
			return Resolved{}, fmt.Errorf("resolve %q on %s: only refs/tags/ and refs/heads/ names are supported; pin a commit instead", ref, r.display)
		}
		names = []plumbing.ReferenceName{name}
	default:
		names = []plumbing.ReferenceName{plumbing.NewTagReferenceName(ref), plumbing.NewBranchReferenceName(ref)}
	}
	for _, n := range names {
		if err := n.Validate(); err != nil {
			return Resolved{}, fmt.Errorf("resolve %q on %s: not a valid git ref name", ref, r.display)
		}
	}

	if f.offline {
		return Resolved{}, wrapf(ErrNotCached, "%s of %s cannot be resolved offline: only the remote knows what it points to now", ref, r.display)
	}

	var res Resolved
	resolve := func(repo *git.Repository) error {
		if names == nil {
			h := plumbing.NewHash(strings.ToLower(ref))
			ok, err := reachable(ctx, repo, h)
			if err != nil {
				return fmt.Errorf("look for commit %s on %s: %w", h, r.display, err)
			}
			if !ok {
				return wrapf(ErrNotFound, "commit %s not found on %s (no branch or tag contains it)", h, r.display)
			}
			res = Resolved{Commit: h.String(), Kind: KindCommit, Ref: h.String()}
			return nil
		}
		for _, n := range names {
			got, err := repo.Reference(n, false)
			if errors.Is(err, plumbing.ErrReferenceNotFound) {
				continue
			}
			if err != nil {
				return fmt.Errorf("read %s of %s: %w", n, r.display, &damage{err})
			}
			h, err := peel(repo, got.Hash())
			if err != nil {
				return fmt.Errorf("%s on %s: %w", n, r.display, err)
			}
			kind := KindBranch
			if n.IsTag() {
				kind = KindTag
			}
			res = Resolved{Commit: h.String(), Kind: kind, Ref: n.String()}
			return nil
		}
		if len(names) == 1 {
			return wrapf(ErrNotFound, "%s does not exist on %s", ref, r.display)
		}
		return wrapf(ErrNotFound, "neither a tag nor a branch named %q exists on %s%s", ref, r.display, hint(repo, ref))
	}
	err = f.update(ctx, r, nil, resolve)
	if isDamage(err) {
		// Objects the fetch did not bring again are unreadable: start the
		// cache repository afresh, once.
		err = f.update(ctx, r, func(*git.Repository) bool { return true }, resolve)
	}
	return res, err
}

// Tree returns the files of commit (a full hex hash) on the remote. A commit
// already in the cache is read without any network access. A cache
// repository found damaged (the commit's objects unreadable) is fetched
// afresh; offline, the commit is then reported as not cached.
func (f *Fetcher) Tree(ctx context.Context, rawURL, commit string) (*Tree, error) {
	r, err := f.remote(rawURL)
	if err != nil {
		return nil, err
	}
	if !isFullHash(commit) {
		return nil, fmt.Errorf("tree of %q on %s: need a full 40-hex commit hash (use Resolve)", commit, r.display)
	}
	h := plumbing.NewHash(strings.ToLower(commit))
	dir := f.repoDir(r)
	t, err := cachedTree(ctx, dir, h, f.newBudget())
	switch {
	case t != nil:
		// Marks the use for xtraefik cache prune.
		now := time.Now()
		_ = os.Chtimes(dir, now, now)
		return t, nil
	case err != nil && !isDamage(err):
		return nil, fmt.Errorf("commit %s of %s: %w", h, r.display, err)
	case f.offline && err != nil:
		return nil, wrapf(ErrNotCached, "commit %s of %s is not in the cache (offline): cache repository %s is damaged: %s", h, r.origin, dir, oneLine(err))
	case f.offline:
		return nil, wrapf(ErrNotCached, "commit %s of %s is not in the cache (offline)", h, r.origin)
	}
	var damaged func(*git.Repository) bool
	if err != nil {
		// Under the lock, read afresh from dir, as cachedTree reads (the
		// same budget: a costly history is not damage).
		damaged = func(*git.Repository) bool {
			t, err := cachedTree(ctx, dir, h, f.newBudget())
			return isDamage(err) || (t == nil && err == nil)
		}
	}
	err = f.update(ctx, r, damaged, func(repo *git.Repository) error {
		if ok, _ := hasObject(repo, h); !ok {
			return wrapf(ErrNotFound, "commit %s not found on %s", h, r.display)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// A fresh handle sees the new pack files.
	if t, err = cachedTree(ctx, dir, h, f.newBudget()); t == nil && err == nil {
		err = fmt.Errorf("cache repository %s vanished", dir)
	}
	if err != nil {
		return nil, fmt.Errorf("commit %s of %s: %w", h, r.display, err)
	}
	return t, nil
}

// cachedTree reads commit h from the cache repository at dir: nil, nil
// when it is not there; an error marked as damage when the repository or
// the commit's objects cannot be read, wrapping ErrTooCostly when reading
// them decodes more than budget allows (the plugin's history, not damage:
// a fresh fetch would bring the same objects).
func cachedTree(ctx context.Context, dir string, h plumbing.Hash, budget *readBudget) (*Tree, error) {
	// The walk reads every object once: the packs stay open for it, blobs
	// stay out of the object cache, and what go-git decodes is charged to
	// the tree's budget.
	repo, err := openRepoWith(dir, repoOptions{cache: objectCache, keep: true, blobless: true, read: true, budget: budget, inMemory: true})
	if err != nil {
		return nil, &damage{err}
	}
	if repo == nil {
		return nil, nil
	}
	defer closeRepo(repo)
	ok, err := hasObject(repo, h)
	if err != nil || !ok {
		return nil, err
	}
	return readTree(ctx, repo, dir, h, budget)
}

// ListTags is the package's ListTags with the Fetcher's credentials. The
// tags are the remote's, never the cache's: an offline Fetcher refuses.
func (f *Fetcher) ListTags(ctx context.Context, rawURL string) ([]Tag, error) {
	if f.offline {
		r, err := parseRemote(rawURL)
		if err != nil {
			return nil, err
		}
		return nil, wrapf(ErrNotCached, "tags of %s cannot be listed offline: only the remote knows its tags now", r.display)
	}
	if f.mirror != nil {
		rawURL = f.mirror(rawURL)
	}
	return ListTags(ctx, rawURL, f.auth)
}
