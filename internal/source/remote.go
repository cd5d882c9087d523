package source

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/filesystem"

	"github.com/xtraefik/xtraefik/internal/redact"
)

// remote is a parsed remote URL.
type remote struct {
	// display is the URL without secrets: what errors show, what Auth gets.
	display string
	// fetchURL is what go-git dials: display, or the absolute path for
	// local repositories.
	fetchURL string
	// key identifies the cache repository: the remote's own URL, also
	// when a mirror serves it.
	key string
	// origin is the remote's own URL without secrets: display, unless a
	// mirror serves the remote.
	origin string
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
		return remote{display: raw, fetchURL: p, key: "file://" + filepath.ToSlash(p), origin: raw}, nil
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
		return remote{display: s, fetchURL: s, key: s, origin: s, basic: basic}, nil
	default:
		// ssh: a user name is not a secret, and it selects the account,
		// so it stays in the URL; a password in an ssh URL is unused.
		s := strings.TrimSuffix(redact.URL(raw), "/")
		return remote{display: s, fetchURL: s, key: s, origin: s}, nil
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
	return filepath.Join(f.cacheDir, name+"-"+hex.EncodeToString(sum[:repoHashHex/2])+".git")
}

// repoHashHex is the length of the hash that ends a cache repository's name.
const repoHashHex = 16

// IsCacheRepo reports whether name (a base name) is one repoDir gives a
// cache repository: <prefix>-<16 lowercase hex digits>.git, the prefix made
// of letters, digits, '.', '-' and '_'. Pruning removes only these, never a
// user's repository (.git, project.git) sharing the directory.
func IsCacheRepo(name string) bool {
	stem, ok := strings.CutSuffix(name, ".git")
	if !ok || len(stem) < repoHashHex+1 || stem[len(stem)-repoHashHex-1] != '-' {
		return false
	}
	prefix, hash := stem[:len(stem)-repoHashHex-1], stem[len(stem)-repoHashHex:]
	for _, c := range hash {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	for _, c := range prefix {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return !strings.HasPrefix(prefix, ".")
}

// Memory bounds of a cache repository's object storage. A fetch and the
// first read of a tree walk every object once: the cache keeps delta bases
// and trees. A tree reopened for its files' contents (a layer, an SBOM,
// verification) reads each blob once per consumer, while up to one
// repository per plugin stays open: its cache is kept small, or twenty
// plugins hold twenty caches full of blobs nobody reads again.
const (
	largeObject = 1 << 20
	// streamObject is largeObject for the blobs a walk streams
	// (repoOptions.stream); go-git decodes smaller ones whole on lookup.
	streamObject = 16 << 10
	objectCache  = 16 * cache.MiByte
	reopenCache  = 256 * cache.KiByte
)

// openRepo opens a cache repository read-only in spirit: object lookups
// only, no lock, an object cache of objectCache bytes. It returns nil, nil
// when the repository does not exist.
func openRepo(dir string) (*git.Repository, error) {
	return openRepoWith(dir, repoOptions{cache: objectCache})
}

// repoOptions say how a cache repository is opened.
type repoOptions struct {
	cache cache.FileSize
	// keep holds the pack files open from one object to the next (one
	// open and one decoder per pack, not per object) until closeRepo: only
	// for a caller that closes the repository when done.
	keep bool
	// blobless keeps blobs out of the object cache (see blobless).
	blobless bool
	// stream streams every object over streamObject instead of
	// largeObject (treeReader.blobReader).
	stream bool
	// read says the repository is opened to read objects only: its pack
	// indexes are read through a buffer (bufferedIdx).
	read bool
	// budget, if set, is charged every object go-git decodes in memory
	// (chargedCache); blobless then keeps blobs out of the cache as well.
	budget *readBudget
	// inMemory has go-git decode every object it is asked for in memory,
	// never streaming one: a tree walk's small blobs and their bases
	// (treeReader.blobReader streams the blobs over streamObject itself,
	// charged first). go-git streams a large delta by
	// reading its base again from the start at every copy that goes
	// backwards, and its base outside the cache: what it decodes so is
	// neither linear nor counted.
	inMemory bool
}

// bufferedIdx is a cache repository's file system for reading objects:
// go-git decodes a pack index with one read call for each 4-byte field (a
// thousand calls for a small pack, at every open), so index files are read
// through a buffer. Nothing else changes.
type bufferedIdx struct{ billy.Filesystem }

func (fsys bufferedIdx) Open(name string) (billy.File, error) {
	f, err := fsys.Filesystem.Open(name)
	if err != nil || !strings.HasSuffix(name, ".idx") {
		return f, err
	}
	return &bufferedFile{File: f, r: bufio.NewReaderSize(f, 32<<10)}, nil
}

// bufferedFile reads f through r; a seek drops what r holds.
type bufferedFile struct {
	billy.File
	r *bufio.Reader
}

func (f *bufferedFile) Read(p []byte) (int, error) { return f.r.Read(p) }

func (f *bufferedFile) Seek(offset int64, whence int) (int64, error) {
	if whence == io.SeekCurrent {
		offset -= int64(f.r.Buffered())
	}
	n, err := f.File.Seek(offset, whence)
	f.r.Reset(f.File)
	return n, err
}

// blobless is an object cache that keeps no blob. go-git keys what it
// caches by hash, so it hashes every object it decodes; a walk of a
// commit's tree reads each blob once and hashes it against its name
// itself (readThrough), so caching blobs would hash each twice and hold
// them all for nothing. Trees, commits and tags are kept; a blob that is
// the delta base of another blob of the same tree is decoded again.
type blobless struct{ cache.Object }

func (c blobless) Put(o plumbing.EncodedObject) {
	if o.Type() != plumbing.BlobObject {
		c.Object.Put(o)
	}
}

// openRepoWith is openRepo with o.
func openRepoWith(dir string, o repoOptions) (*git.Repository, error) {
	if _, err := os.Stat(filepath.Join(dir, "objects")); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	// Blobs over largeObject stream from the pack instead of being decoded
	// into memory; the object cache holds small objects (trees, commits,
	// delta bases) and need not be go-git's default 96 MiB.
	var objects cache.Object = cache.NewObjectLRU(o.cache)
	switch {
	case o.budget != nil:
		objects = chargedCache{Object: objects, budget: o.budget, keepBlobs: !o.blobless}
	case o.blobless:
		objects = blobless{objects}
	}
	large := int64(largeObject)
	switch {
	case o.inMemory:
		large = 0 // go-git's "no threshold"
	case o.stream:
		large = streamObject
	}
	fsys := osfs.New(dir)
	if o.read {
		fsys = bufferedIdx{fsys}
	}
	st := filesystem.NewStorageWithOptions(fsys, objects, filesystem.Options{LargeObjectThreshold: large, KeepDescriptors: o.keep})
	repo, err := git.Open(st, nil)
	if err != nil {
		return nil, fmt.Errorf("open cache repository %s: %w", dir, err)
	}
	return repo, nil
}

// closeRepo releases what an open repository holds (the pack files of
// repoOptions.keep).
func closeRepo(repo *git.Repository) {
	if c, ok := repo.Storer.(io.Closer); ok {
		_ = c.Close()
	}
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

// discardRepo moves a damaged cache repository out of the way in one
// rename (a reader sees it whole or not at all), then deletes it.
func discardRepo(dir string) error {
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".damaged-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	return os.Rename(dir, filepath.Join(tmp, "repo"))
}
