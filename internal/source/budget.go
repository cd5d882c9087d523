package source

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"sync/atomic"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// ErrTooCostly marks a plugin whose git history makes its files too costly
// to read: the pack holds objects built so that decoding the tree's files
// decodes the same delta bases again and again. It is the plugin's fault,
// not the cache's: fetching the repository again would bring the same
// objects.
var ErrTooCostly = errors.New("git history too costly to read")

// Bounds of what reading one commit's files may decode. A tree read
// decodes every object go-git touches, delta bases included: a legitimate
// history (deltas up to git's default depth of 50, vendored code) decodes a
// few times the files' size, while one tree of files laid along one long
// delta chain decodes the whole chain for every file. What is decoded may
// total maxReadFixed plus maxReadRatio times the bytes of the tree's files
// (each distinct blob counted once).
const (
	maxReadFixed = 1 << 30
	maxReadRatio = 100
)

// readBudget counts the bytes decoded while reading one commit's files:
// the walk, then the reads of files not kept in memory. It is safe for
// concurrent use (go-git decodes the base of a streamed delta in the
// stream's own goroutine).
type readBudget struct {
	fixed int64        // maxReadFixed, but in tests
	spent atomic.Int64 // bytes decoded
	files atomic.Int64 // bytes of the distinct blobs read
}

// newBudget is the budget of one tree read.
func (f *Fetcher) newBudget() *readBudget {
	b := &readBudget{fixed: maxReadFixed}
	if f.readFixed > 0 {
		b.fixed = f.readFixed
	}
	return b
}

// charge counts n bytes decoded.
func (b *readBudget) charge(n int64) { b.spent.Add(n) }

// read counts a distinct blob of n bytes, raising what may be decoded.
func (b *readBudget) read(n int64) { b.files.Add(n) }

// limit is what may be decoded given the files read so far.
func (b *readBudget) limit() int64 {
	return b.fixed + maxReadRatio*b.files.Load()
}

// check fails once more was decoded than limit allows.
func (b *readBudget) check() error {
	if spent, limit := b.spent.Load(), b.limit(); spent > limit {
		return wrapf(ErrTooCostly, "the plugin's git history makes reading its files too costly: they took decoding more than %d bytes (%d plus %d times the %d bytes of the files read so far), as deltas built to be decoded again and again do; repacking the repository (git repack -adf) gives git's own deltas", limit, b.fixed, maxReadRatio, b.files.Load())
	}
	return nil
}

// chargedCache is an object cache that charges every object go-git
// decodes in memory to a budget: go-git puts each one it decodes (a delta
// base as well as the object asked for) into its cache. Blobs are not
// kept (see blobless), unless keepBlobs.
type chargedCache struct {
	cache.Object
	budget    *readBudget
	keepBlobs bool
}

func (c chargedCache) Put(o plumbing.EncodedObject) {
	c.budget.charge(o.Size())
	if c.keepBlobs || o.Type() != plumbing.BlobObject {
		c.Object.Put(o)
	}
}

// chargedReader charges what is read from a stream go-git decodes outside
// its cache (a whole blob streamed from its pack).
type chargedReader struct {
	io.ReadCloser
	budget *readBudget
}

func (r chargedReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	r.budget.charge(int64(n))
	return n, err
}

// chargeStream charges budget what go-git reads of a delta's base to
// stream blob h, of size bytes, from a repository whose large-object
// threshold is threshold: go-git streams a delta over it with
// packfile.ReaderFromDelta, which reads its base forward and from the start
// again at every copy that goes backwards (a cost the delta's commands
// give, not its size). Nothing is charged for a blob go-git decodes in
// memory or one stored whole.
func chargeStream(repo *git.Repository, h plumbing.Hash, size, threshold int64, budget *readBudget) error {
	if size <= threshold {
		return nil
	}
	ds, ok := repo.Storer.(storer.DeltaObjectStorer)
	if !ok {
		return nil
	}
	obj, err := ds.DeltaObject(plumbing.AnyObject, h)
	if err != nil {
		return err
	}
	return chargeDelta(obj, budget)
}

// chargeDelta is chargeStream for obj, as a DeltaObjectStorer gave it:
// nothing for an object stored whole.
func chargeDelta(obj plumbing.EncodedObject, budget *readBudget) error {
	if _, delta := obj.(plumbing.DeltaObject); !delta {
		return nil
	}
	rc, err := obj.Reader()
	if err != nil {
		return err
	}
	defer rc.Close()
	cost, err := streamCost(bufio.NewReader(rc))
	if err != nil {
		return err
	}
	budget.charge(cost)
	return nil
}

// streamCost is the number of base bytes go-git's streaming patcher reads
// to apply delta, plus one per command: a copy at an offset behind the
// last one reads the base from its start.
func streamCost(delta io.ByteReader) (int64, error) {
	for range 2 { // the base's size, the result's
		if _, err := binary.ReadUvarint(delta); err != nil {
			return 0, packfile.ErrInvalidDelta
		}
	}
	var cost, pos int64
	for {
		cmd, err := delta.ReadByte()
		if err == io.EOF {
			return cost, nil
		}
		if err != nil {
			return 0, err
		}
		cost++
		switch {
		case cmd&0x80 != 0:
			off, n, err := deltaCopy(cmd, delta)
			if err != nil {
				return 0, err
			}
			if off < pos {
				pos = 0
			}
			cost += off - pos + n
			pos = off + n
		case cmd != 0:
			for range cmd {
				if _, err := delta.ReadByte(); err != nil {
					return 0, packfile.ErrInvalidDelta
				}
			}
		default:
			return 0, packfile.ErrInvalidDelta
		}
	}
}
