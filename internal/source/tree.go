package source

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"

	"github.com/xtraefik/xtraefik/internal/fileset"
)

// lfsPrefix starts every Git LFS pointer file; the specification caps
// pointers at 1024 bytes, so only small blobs can be one.
const (
	lfsPrefix     = "version https://git-lfs.github.com/spec/v1"
	lfsMaxPointer = 1024
)

// treeReader turns a commit's tree into fileset entries. Blob contents are
// read lazily by File.Open; go-git's object storage is not safe for
// concurrent use, so lookups share one mutex. The readers they return are:
// a small blob is decoded into memory, a large one (over the storage's
// LargeObjectThreshold) streams from its own handle on the pack file, and
// what it shares with the storage (the pack index, the delta base cache)
// go-git locks itself.
//
// Once the tree is read, the repository is let go (dir reopens it on the
// first Open): a build holding twenty trees whose files it never reads
// again (the verdict and the layer came from the caches) does not hold
// twenty repositories' caches in memory.
//
// Everything go-git decodes, for the walk and for the files read later, is
// charged to budget (see readBudget): a history crafted so that reading the
// files decodes the same delta bases again and again fails with
// ErrTooCostly instead of holding the build. Each distinct blob is read
// once per walk, however many paths name it.
//
// The contents of small blobs, read whole by the walk anyway, are kept (up
// to keptBlob bytes each, keptTree a tree): the files a build reads again
// straight away (go.mod, .traefik.yml) then need no repository reopened.
type treeReader struct {
	repo *git.Repository
	// stream is the repository opened again to stream blobs during the
	// walk (blobReader), when one needs it; closed after the walk.
	stream *git.Repository
	dir    string
	mu     sync.Mutex
	files  []fileset.File
	kept   int64 // bytes of blob contents kept
	budget *readBudget
	// blobs holds what the walk read of each blob, links each symbolic
	// link's target: a blob named by many paths is read once.
	blobs map[plumbing.Hash]blobRead
	links map[plumbing.Hash]string
}

// blobRead is what the walk learnt of one blob: its size, its SHA-256, and
// its content when kept.
type blobRead struct {
	size    int64
	sum     [sha256.Size]byte
	content []byte
}

// Bounds of the blob contents a tree keeps in memory.
const (
	keptBlob = 32 << 10
	keptTree = 256 << 10
)

// repository is the repository to read blobs from, reopened from dir
// after release; call with mu held.
func (tr *treeReader) repository() (*git.Repository, error) {
	if tr.repo == nil {
		repo, err := openRepoWith(tr.dir, repoOptions{cache: reopenCache, read: true, budget: tr.budget})
		if err == nil && repo == nil {
			err = fmt.Errorf("cache repository %s vanished", tr.dir)
		}
		if err != nil {
			return nil, err
		}
		tr.repo = repo
	}
	return tr.repo, nil
}

// readTree reads commit h, which the repository has. Failures to read its
// objects are marked as damage; every blob is read through once, so a
// damaged pack shows here, where a fresh fetch can still repair it, not
// when the files are read later (the object cache keeps what was read).
// readTree reads commit h's tree from repo, the cache repository in dir.
//
// Every object is checked against its name (checkedObject, and the blob's
// SHA-1 computed as it is read through): a cache directory is an input from
// whoever could write it (a restored CI cache), and an object stored under
// another's name is damage, never the plugin's files.
//
// What go-git decodes is charged to budget, which repo's object cache
// charges (repoOptions.budget); ctx stops the walk between entries.
func readTree(ctx context.Context, repo *git.Repository, dir string, h plumbing.Hash, budget *readBudget) (*Tree, error) {
	obj, err := checkedObject(repo, h)
	if err != nil {
		return nil, fmt.Errorf("read commit: %w", err)
	}
	if obj.Type() != plumbing.CommitObject {
		return nil, fmt.Errorf("%s is a %s, not a commit", h, obj.Type())
	}
	c, err := object.DecodeCommit(repo.Storer, obj)
	if err != nil {
		return nil, &damage{fmt.Errorf("read commit: %w", err)}
	}
	tr := &treeReader{repo: repo, dir: dir, budget: budget, blobs: map[plumbing.Hash]blobRead{}, links: map[plumbing.Hash]string{}}
	defer func() {
		if tr.stream != nil {
			closeRepo(tr.stream)
		}
	}()
	root, err := tr.tree(c.TreeHash)
	if err != nil {
		return nil, fmt.Errorf("read root tree: %w", err)
	}
	if err := budget.check(); err != nil {
		return nil, err
	}
	if err := tr.walk(ctx, root, ""); err != nil {
		return nil, err
	}
	if err := budget.check(); err != nil {
		return nil, err
	}
	tr.repo = nil // see treeReader
	tr.blobs, tr.links = nil, nil
	set, err := fileset.New(tr.files)
	if err != nil {
		return nil, err
	}
	return &Tree{Commit: h.String(), Time: c.Committer.When, Files: set}, nil
}

// walk descends the tree itself rather than using object.TreeWalker, which
// ends silently on a subtree it cannot read: a truncated plugin must be an
// error, not a smaller plugin.
func (tr *treeReader) walk(ctx context.Context, t *object.Tree, dir string) error {
	for _, e := range t.Entries {
		// What the last entry cost is known now; a read stops here too
		// when cancelled (a build failing elsewhere waits for it).
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := tr.budget.check(); err != nil {
			return err
		}
		p := e.Name
		if dir != "" {
			p = dir + "/" + e.Name
		}
		if e.Name == "" || e.Name == "." || e.Name == ".." || strings.ContainsAny(e.Name, "/\x00") {
			where := dir
			if where == "" {
				where = "the root directory"
			}
			return fmt.Errorf("%w: tree entry %q in %s", fileset.ErrUnsafePath, e.Name, where)
		}
		// A control character (a newline, an escape) is refused now, before
		// any blob is read, naming the path; fileset.New would refuse it too.
		if err := fileset.CheckPath(p); err != nil {
			return err
		}
		if strings.EqualFold(e.Name, ".git") {
			return wrapf(ErrUnsupported, "%s: a committed .git entry (git itself refuses these)", p)
		}
		switch e.Mode {
		case filemode.Dir:
			sub, err := tr.tree(e.Hash)
			if err != nil {
				return fmt.Errorf("read tree %s: %w", p, err)
			}
			if err := tr.walk(ctx, sub, p); err != nil {
				return err
			}
		case filemode.Regular, filemode.Deprecated:
			if err := tr.addBlob(p, fileset.Regular, e.Hash); err != nil {
				return err
			}
		case filemode.Executable:
			if err := tr.addBlob(p, fileset.Executable, e.Hash); err != nil {
				return err
			}
		case filemode.Symlink:
			target, err := tr.link(e.Hash)
			if err != nil {
				return &damage{fmt.Errorf("read symlink %s: %w", p, err)}
			}
			tr.files = append(tr.files, fileset.File{Path: p, Kind: fileset.Symlink, Link: target, Size: int64(len(target))})
		case filemode.Submodule:
			return wrapf(ErrUnsupported, "plugin uses git submodules (%s): Traefik would not fetch them either; vendor the code instead", p)
		default:
			return wrapf(ErrUnsupported, "%s has git file mode %o, which a plugin cannot use", p, uint32(e.Mode))
		}
	}
	return nil
}

// link reads the target of a symbolic link, blob h, once per walk.
func (tr *treeReader) link(h plumbing.Hash) (string, error) {
	if target, ok := tr.links[h]; ok {
		return target, nil
	}
	size, err := tr.size(h)
	if err != nil {
		return "", err
	}
	b, err := tr.content(h, size)
	if err != nil {
		return "", err
	}
	tr.budget.read(size)
	tr.links[h] = string(b)
	return tr.links[h], nil
}

func (tr *treeReader) addBlob(p string, kind fileset.Kind, h plumbing.Hash) error {
	r, ok := tr.blobs[h]
	if !ok {
		var err error
		if r, err = tr.readBlob(p, h); err != nil {
			return err
		}
		tr.blobs[h] = r
		tr.budget.read(r.size)
		if r.content != nil {
			tr.kept += r.size
		}
	}
	size, sum, content := r.size, r.sum, r.content
	// The content was just read (damage shows now, not later): its hash
	// is kept, so hashing the tree reads nothing again, and every later
	// read must give the same bytes (fileset.New sees to it).
	open := func() (io.ReadCloser, error) {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		repo, err := tr.repository()
		if err != nil {
			return nil, fmt.Errorf("read %s (blob %s): %w", p, h, err)
		}
		b, err := repo.BlobObject(h)
		if err != nil {
			return nil, fmt.Errorf("read %s (blob %s): %w", p, h, err)
		}
		// The stream holds no unlocked storage state (see treeReader), so
		// it may be read after the lock is released.
		// fileset.New makes the reader check the content against Sum.
		err = chargeStream(repo, h, size, largeObject, tr.budget)
		var rc io.ReadCloser
		if err == nil {
			rc, err = b.Reader()
		}
		if err == nil {
			err = tr.budget.check()
			if err != nil {
				rc.Close()
			}
		}
		if err != nil {
			return nil, fmt.Errorf("read %s (blob %s): %w", p, h, err)
		}
		return budgetedReader{ReadCloser: rc, budget: tr.budget, what: p}, nil
	}
	if content != nil {
		// Checked against its name as it was read, like the bytes a
		// reopened repository would give.
		open = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(content)), nil }
	}
	tr.files = append(tr.files, fileset.File{Path: p, Kind: kind, Size: size, Sum: hex.EncodeToString(sum[:]), Open: open})
	return nil
}

// budgetedReader fails a read of a file once what the tree's reads
// decoded is past their budget (go-git decodes a streamed delta's base as
// the stream is read).
type budgetedReader struct {
	io.ReadCloser
	budget *readBudget
	what   string
}

func (r budgetedReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if berr := r.budget.check(); berr != nil {
		return n, fmt.Errorf("read %s: %w", r.what, berr)
	}
	return n, err
}

// readBlob reads blob h, named by path p, through once: its size, its
// SHA-256 and, when the tree keeps it, its content.
func (tr *treeReader) readBlob(p string, h plumbing.Hash) (blobRead, error) {
	size, err := tr.size(h)
	if err != nil {
		return blobRead{}, &damage{fmt.Errorf("read %s: %w", p, err)}
	}
	keep := size <= keptBlob && tr.kept+size <= keptTree
	var (
		sum     [sha256.Size]byte
		content []byte
	)
	if size <= lfsMaxPointer {
		b, err := tr.content(h, size)
		if err != nil {
			return blobRead{}, &damage{fmt.Errorf("read %s: %w", p, err)}
		}
		if bytes.HasPrefix(b, []byte(lfsPrefix)) {
			return blobRead{}, wrapf(ErrUnsupported, "%s is a Git LFS pointer, not the file: Traefik would load the pointer; commit the content itself", p)
		}
		sum = sha256.Sum256(b)
		if keep {
			content = b
		}
	} else if sum, content, err = tr.readThrough(h, size, keep); err != nil {
		if errors.Is(err, ErrTooCostly) {
			return blobRead{}, fmt.Errorf("read %s: %w", p, err)
		}
		return blobRead{}, &damage{fmt.Errorf("read %s: %w", p, err)}
	}
	return blobRead{size: size, sum: sum, content: content}, nil
}

// size reads a blob's size from the pack header when the storage can.
func (tr *treeReader) size(h plumbing.Hash) (int64, error) {
	if s, ok := tr.repo.Storer.(interface {
		EncodedObjectSize(plumbing.Hash) (int64, error)
	}); ok {
		return s.EncodedObjectSize(h)
	}
	b, err := tr.repo.BlobObject(h)
	if err != nil {
		return 0, err
	}
	return b.Size, nil
}

// content reads blob h, of size bytes (its header's), whole, and checks it
// against its git name. A stream going past size is not read further (a
// loose object's reader does not stop at its header's size): holding more
// or fewer bytes is damage.
func (tr *treeReader) content(h plumbing.Hash, size int64) ([]byte, error) {
	b, err := tr.repo.BlobObject(h)
	if err != nil {
		return nil, err
	}
	rc, err := b.Reader()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	content, err := io.ReadAll(io.LimitReader(rc, size+1))
	if err == nil && int64(len(content)) != size {
		err = fmt.Errorf("blob %s holds %s bytes, its header says %d", h, holds(int64(len(content)), size), size)
	}
	if err == nil {
		err = checkName(plumbing.BlobObject, h, plumbing.ComputeHash(plumbing.BlobObject, content))
	}
	return content, err
}

// holds says how many bytes a blob read through a limit of size+1 holds.
func holds(n, size int64) string {
	if n > size {
		return fmt.Sprintf("more than %d", size)
	}
	return fmt.Sprint(n)
}

// readThrough decodes a blob and hashes it: damage in its pack data shows
// now rather than when the file is read. Its git name is computed in the
// same pass and must be h. With keep, the content is returned too.
func (tr *treeReader) readThrough(h plumbing.Hash, size int64, keep bool) (sum [sha256.Size]byte, content []byte, err error) {
	rc, err := tr.blobReader(h, size)
	if err != nil {
		return sum, nil, err
	}
	defer rc.Close()
	d := sha256.New()
	name := plumbing.NewHasher(plumbing.BlobObject, size)
	w := io.MultiWriter(d, name)
	var buf *bytes.Buffer
	if keep {
		buf = bytes.NewBuffer(make([]byte, 0, size))
		w = io.MultiWriter(d, name, buf)
	}
	// A stream going past size is not read further: a loose object's
	// reader does not stop at its header's size.
	n, err := io.Copy(w, io.LimitReader(rc, size+1))
	if err == nil && n != size {
		err = fmt.Errorf("blob %s holds %s bytes, its header says %d", h, holds(n, size), size)
	}
	if err == nil {
		err = tr.budget.check()
	}
	if err == nil {
		err = checkName(plumbing.BlobObject, h, name.Sum())
	}
	d.Sum(sum[:0])
	if err == nil && buf != nil {
		content = buf.Bytes()
	}
	return sum, content, err
}

// blobReader reads blob h, of size bytes, for the walk. A blob over
// streamObject streams: stored whole, straight from its pack (go-git would
// decode it whole into memory first, byte by byte through its pack
// scanner); a delta through go-git's streaming patcher, once what that
// reads of its base is charged (chargeStream). A smaller blob is decoded in
// memory by the walk's repository (opened inMemory), each base charged to
// the budget as it is decoded.
func (tr *treeReader) blobReader(h plumbing.Hash, size int64) (io.ReadCloser, error) {
	if size > streamObject {
		if tr.stream == nil {
			repo, err := openRepoWith(tr.dir, repoOptions{cache: reopenCache, keep: true, blobless: true, stream: true, read: true, budget: tr.budget})
			if err == nil && repo == nil {
				err = fmt.Errorf("cache repository %s vanished", tr.dir)
			}
			if err != nil {
				return nil, err
			}
			tr.stream = repo
		}
		if ds, ok := tr.stream.Storer.(storer.DeltaObjectStorer); ok {
			obj, err := ds.DeltaObject(plumbing.AnyObject, h)
			if err != nil {
				return nil, err
			}
			if _, delta := obj.(plumbing.DeltaObject); !delta {
				if obj.Type() != plumbing.BlobObject {
					return nil, fmt.Errorf("object %s is a %s, not a blob", h, obj.Type())
				}
				rc, err := obj.Reader()
				if err != nil {
					return nil, err
				}
				return chargedReader{ReadCloser: rc, budget: tr.budget}, nil
			}
			// A delta streams too, its bases decoded in memory (and
			// charged by the cache), once what streaming it reads of its
			// base is charged.
			if err := chargeDelta(obj, tr.budget); err != nil {
				return nil, err
			}
			if err := tr.budget.check(); err != nil {
				return nil, err
			}
			b, err := tr.stream.BlobObject(h)
			if err != nil {
				return nil, err
			}
			return b.Reader()
		}
	}
	b, err := tr.repo.BlobObject(h)
	if err != nil {
		return nil, err
	}
	return b.Reader()
}

// tree reads tree h, checked against its name; a failure is damage.
func (tr *treeReader) tree(h plumbing.Hash) (*object.Tree, error) {
	obj, err := checkedObject(tr.repo, h)
	if err != nil {
		return nil, err
	}
	if obj.Type() != plumbing.TreeObject {
		return nil, &damage{fmt.Errorf("object %s is a %s, not a tree", h, obj.Type())}
	}
	t, err := object.DecodeTree(tr.repo.Storer, obj)
	if err != nil {
		return nil, &damage{err}
	}
	return t, nil
}

// maxCheckedObject bounds a commit, tag or tree read whole to check its
// name: git's own are far smaller (a tree of 10,000 entries is about 400 KB).
const maxCheckedObject = 64 << 20

// checkedObject reads object h from the cache repository and, when it is a
// commit, tag or tree (small objects, read whole), checks that its content
// hashes to h, as git names objects; the object returned is then the
// checked copy, not read again. A blob is returned unread: the callers that
// read one check it as they do (addBlob, readThrough). Every failure, a
// mismatch included, is damage: the repository is fetched afresh.
func checkedObject(repo *git.Repository, h plumbing.Hash) (plumbing.EncodedObject, error) {
	obj, err := repo.Storer.EncodedObject(plumbing.AnyObject, h)
	if err != nil {
		return nil, &damage{fmt.Errorf("read object %s: %w", h, err)}
	}
	if obj.Type() == plumbing.BlobObject {
		return obj, nil
	}
	if obj.Size() > maxCheckedObject {
		return nil, &damage{fmt.Errorf("object %s is a %s of %d bytes, more than any git writes", h, obj.Type(), obj.Size())}
	}
	rc, err := obj.Reader()
	if err != nil {
		return nil, &damage{fmt.Errorf("read object %s: %w", h, err)}
	}
	defer rc.Close()
	content, err := io.ReadAll(io.LimitReader(rc, maxCheckedObject+1))
	if err != nil {
		return nil, &damage{fmt.Errorf("read object %s: %w", h, err)}
	}
	if err := checkName(obj.Type(), h, plumbing.ComputeHash(obj.Type(), content)); err != nil {
		return nil, &damage{err}
	}
	checked := &plumbing.MemoryObject{}
	checked.SetType(obj.Type())
	if _, err := checked.Write(content); err != nil {
		return nil, &damage{err}
	}
	return checked, nil
}

// checkName fails when an object stored as h hashes to got: the cache
// holds another object under h's name.
func checkName(t plumbing.ObjectType, h, got plumbing.Hash) error {
	if got != h {
		return fmt.Errorf("the %s stored as %s in the cache repository is %s: the cache was tampered with or damaged", t, h, got)
	}
	return nil
}
