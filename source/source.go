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
// Transports are go-git's: http(s), git://, ssh, file:// and local paths (the
// last two run the git-upload-pack program, so they need git installed).
// Credentials follow FromEnv unless Options.Auth says otherwise.
package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/agnivade/levenshtein"
	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/filesystem"

	"github.com/xtraefik/xtraefik/fileset"
	"github.com/xtraefik/xtraefik/internal/redact"
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
)

// Fetcher fetches from remotes through its cache. It is safe for concurrent
// use.
type Fetcher struct {
	cacheDir string
	auth     AuthFunc
	progress io.Writer
}

// New checks opts and creates the cache directory.
func New(opts Options) (*Fetcher, error) {
	if opts.CacheDir == "" {
		return nil, errors.New("source: Options.CacheDir is required")
	}
	dir, err := filepath.Abs(opts.CacheDir)
	if err != nil {
		return nil, fmt.Errorf("source: cache directory: %w", err)
	}
	// Private plugins end up here: keep the cache to its owner.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("source: create cache directory: %w", err)
	}
	auth := opts.Auth
	if auth == nil {
		auth = FromEnv(os.Getenv)
	}
	return &Fetcher{cacheDir: dir, auth: auth, progress: opts.Progress}, nil
}

// remote is a parsed remote URL.
type remote struct {
	// display is the URL without secrets: what errors show, what Auth gets.
	display string
	// fetchURL is what go-git dials: display, or the absolute path for
	// local repositories.
	fetchURL string
	// key identifies the cache repository.
	key string
	// basic holds http(s) userinfo credentials, which win over Auth.
	basic *http.BasicAuth
}

func parseRemote(raw string) (remote, error) {
	if raw == "" {
		return remote{}, errors.New("empty repository URL")
	}
	ep, err := transport.NewEndpoint(raw)
	if err != nil {
		// url.Parse errors quote the input, which may hold a password.
		return remote{}, fmt.Errorf("invalid repository URL %s", redact.URL(raw))
	}
	switch ep.Protocol {
	case "file":
		p := filepath.Clean(ep.Path)
		return remote{display: raw, fetchURL: p, key: "file://" + filepath.ToSlash(p)}, nil
	case "http", "https":
		u, err := url.Parse(raw)
		if err != nil {
			return remote{}, fmt.Errorf("invalid repository URL %s", redact.URL(raw))
		}
		var basic *http.BasicAuth
		if u.User != nil {
			pass, _ := u.User.Password()
			basic = &http.BasicAuth{Username: u.User.Username(), Password: pass}
			u.User = nil
		}
		s := strings.TrimSuffix(u.String(), "/")
		return remote{display: s, fetchURL: s, key: s, basic: basic}, nil
	default:
		// ssh: a user name is not a secret, and it selects the account,
		// so it stays in the URL; a password in an ssh URL is unused.
		s := strings.TrimSuffix(redact.URL(raw), "/")
		return remote{display: s, fetchURL: s, key: s}, nil
	}
}

// repoDir is the cache repository of r: a readable prefix plus a hash of
// the whole key, so distinct URLs never share a repository.
func (f *Fetcher) repoDir(r remote) string {
	sum := sha256.Sum256([]byte(r.key))
	name := r.key
	if i := strings.Index(name, "://"); i >= 0 {
		name = name[i+3:]
	}
	b := []byte(name)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	name = strings.Trim(string(b), "._")
	if len(name) > 64 {
		name = name[len(name)-64:]
	}
	return filepath.Join(f.cacheDir, name+"-"+hex.EncodeToString(sum[:8])+".git")
}

// openRepo opens a cache repository read-only in spirit: object lookups
// only, no lock. It returns nil, nil when the repository does not exist.
func openRepo(dir string) (*git.Repository, error) {
	if _, err := os.Stat(filepath.Join(dir, "objects")); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	st := filesystem.NewStorageWithOptions(osfs.New(dir), cache.NewObjectLRUDefault(), filesystem.Options{})
	repo, err := git.Open(st, nil)
	if err != nil {
		return nil, fmt.Errorf("open cache repository %s (delete it to start afresh): %w", dir, err)
	}
	return repo, nil
}

// initRepo creates the bare cache repository under a temporary name and
// renames it into place, so a crash never leaves a half-made one.
func initRepo(dir string) error {
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".init-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if _, err := git.PlainInit(tmp, true); err != nil {
		return err
	}
	return os.Rename(tmp, dir)
}

// update fetches every branch and tag of r into its cache repository (force,
// prune) and runs then with the repository while still holding the lock.
func (f *Fetcher) update(ctx context.Context, r remote, then func(*git.Repository) error) error {
	dir := f.repoDir(r)
	unlock, err := lockPath(ctx, dir+".lock", f.progress)
	if err != nil {
		return err
	}
	defer unlock()

	repo, err := openRepo(dir)
	if err != nil {
		return err
	}
	if repo == nil {
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
	rem := git.NewRemote(repo.Storer, &config.RemoteConfig{Name: "origin", URLs: []string{r.fetchURL}})
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
	r, err := parseRemote(rawURL)
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

	var res Resolved
	err = f.update(ctx, r, func(repo *git.Repository) error {
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
				return fmt.Errorf("read %s of %s: %w", n, r.display, err)
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
	})
	return res, err
}

// Tree returns the files of commit (a full hex hash) on the remote. A commit
// already in the cache is read without any network access.
func (f *Fetcher) Tree(ctx context.Context, rawURL, commit string) (*Tree, error) {
	r, err := parseRemote(rawURL)
	if err != nil {
		return nil, err
	}
	if !isFullHash(commit) {
		return nil, fmt.Errorf("tree of %q on %s: need a full 40-hex commit hash (use Resolve)", commit, r.display)
	}
	h := plumbing.NewHash(strings.ToLower(commit))
	dir := f.repoDir(r)
	repo, err := openRepo(dir)
	if err != nil {
		return nil, err
	}
	if repo == nil || !hasObject(repo, h) {
		err := f.update(ctx, r, func(repo *git.Repository) error {
			if !hasObject(repo, h) {
				return wrapf(ErrNotFound, "commit %s not found on %s", h, r.display)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		// A fresh handle sees the new pack files.
		if repo, err = openRepo(dir); err != nil {
			return nil, err
		}
		if repo == nil {
			return nil, fmt.Errorf("cache repository %s vanished", dir)
		}
	}
	t, err := readTree(repo, h)
	if err != nil {
		return nil, fmt.Errorf("commit %s of %s: %w", h, r.display, err)
	}
	return t, nil
}

// wrapped is an error whose message is written for people while errors.Is
// still sees the cause (a sentinel, or go-git's error).
type wrapped struct {
	msg string
	err error
}

func (e *wrapped) Error() string { return e.msg }
func (e *wrapped) Unwrap() error { return e.err }

func wrapf(err error, format string, args ...any) error {
	return &wrapped{msg: fmt.Sprintf(format, args...), err: err}
}

// oneLine flattens an error that may quote a server's response body.
func oneLine(err error) string {
	s := strings.Join(strings.Fields(err.Error()), " ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

func isFullHash(s string) bool {
	if len(s) != 40 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func hasObject(repo *git.Repository, h plumbing.Hash) bool {
	return repo.Storer.HasEncodedObject(h) == nil
}

// peel follows annotated tags (possibly tags of tags) to a commit.
func peel(repo *git.Repository, h plumbing.Hash) (plumbing.Hash, error) {
	for range 16 {
		obj, err := repo.Object(plumbing.AnyObject, h)
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("read object %s: %w", h, err)
		}
		switch o := obj.(type) {
		case *object.Commit:
			return h, nil
		case *object.Tag:
			h = o.Target
		default:
			return plumbing.ZeroHash, fmt.Errorf("points to a %s, not a commit", obj.Type())
		}
	}
	return plumbing.ZeroHash, errors.New("too many nested tags")
}

// reachable reports whether commit h is an ancestor of (or equal to) a
// branch or tag of the cache repository, which mirrors the remote right
// after a fetch. A commit left in the cache by an earlier fetch, since
// force-pushed away, is not reachable.
func reachable(ctx context.Context, repo *git.Repository, h plumbing.Hash) (bool, error) {
	if !hasObject(repo, h) {
		return false, nil
	}
	refs, err := repo.References()
	if err != nil {
		return false, err
	}
	var queue []plumbing.Hash
	err = refs.ForEach(func(ref *plumbing.Reference) error {
		if ref.Type() != plumbing.HashReference || !(ref.Name().IsTag() || ref.Name().IsBranch()) {
			return nil
		}
		if c, err := peel(repo, ref.Hash()); err == nil {
			queue = append(queue, c)
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	seen := make(map[plumbing.Hash]bool)
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		if c == h {
			return true, nil
		}
		if seen[c] {
			continue
		}
		seen[c] = true
		if err := ctx.Err(); err != nil {
			return false, err
		}
		commit, err := repo.CommitObject(c)
		if err != nil {
			return false, fmt.Errorf("read commit %s: %w", c, err)
		}
		queue = append(queue, commit.ParentHashes...)
	}
	return false, nil
}

// hint suggests tag and branch names close to ref, for typos.
func hint(repo *git.Repository, ref string) string {
	refs, err := repo.References()
	if err != nil {
		return ""
	}
	type cand struct {
		name string
		dist int
	}
	var cands []cand
	limit := max(2, len(ref)/3)
	_ = refs.ForEach(func(r *plumbing.Reference) error {
		if r.Name().IsTag() || r.Name().IsBranch() {
			if d := levenshtein.ComputeDistance(ref, r.Name().Short()); d <= limit {
				cands = append(cands, cand{r.Name().Short(), d})
			}
		}
		return nil
	})
	sort.Slice(cands, func(i, j int) bool {
		if cands[i].dist != cands[j].dist {
			return cands[i].dist < cands[j].dist
		}
		return cands[i].name < cands[j].name
	})
	var names []string
	for _, c := range cands {
		if len(names) == 5 {
			break
		}
		if len(names) == 0 || names[len(names)-1] != c.name {
			names = append(names, c.name)
		}
	}
	var s string
	if len(names) > 0 {
		s = " (similar: " + strings.Join(names, ", ") + ")"
	}
	if len(ref) >= 4 && len(ref) < 40 && strings.Trim(strings.ToLower(ref), "0123456789abcdef") == "" {
		s += "; to pin a commit, give all 40 hex digits of its hash"
	}
	return s
}

// isSSH reports whether the remote is reached over ssh (ssh:// or scp-like
// user@host:path).
func (r remote) isSSH() bool {
	ep, err := transport.NewEndpoint(r.fetchURL)
	return err == nil && ep.Protocol == "ssh"
}
