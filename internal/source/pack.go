package source

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/idxfile"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/hash"
	"github.com/go-git/go-git/v5/storage"
	"github.com/go-git/go-git/v5/storage/filesystem"

	"github.com/xtraefik/xtraefik/internal/place"
)

// A fetch writes its pack through packStorage rather than go-git's own pack
// writer: go-git v5 indexes a fetched pack by inflating every object whole
// into memory, even one that no delta needs (go-git#1774), so a 200 MB file
// cost 200 MB on its first fetch. packStorage writes the pack to disk as it
// arrives and indexes it from there: whole objects are hashed as streams,
// and deltas are applied base first, as git's own index-pack does, with
// only the bases still needed kept, small ones in memory and large ones in
// temporary files.
type packStorage struct {
	*filesystem.Storage
	ctx context.Context // the fetch's: indexing stops when it is done
	dir string          // the repository's objects/pack directory
}

// fetchStorer returns the storage a fetch into repo, the bare repository at
// dir, writes through: packStorage over the cache's own filesystem storage.
func fetchStorer(ctx context.Context, repo *git.Repository, dir string) storage.Storer {
	st, ok := repo.Storer.(*filesystem.Storage)
	if !ok {
		return repo.Storer
	}
	return packStorage{Storage: st, ctx: ctx, dir: filepath.Join(dir, "objects", "pack")}
}

// PackfileWriter implements storer.PackfileWriter. Only a fetch holding
// the repository's lock may call it.
func (s packStorage) PackfileWriter() (io.WriteCloser, error) {
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return nil, err
	}
	// Under the lock, a temporary file of ours already here is what a
	// killed fetch left behind.
	for _, prefix := range []string{"tmp_pack_", "tmp_idx_", "tmp_base_"} {
		debris, _ := filepath.Glob(filepath.Join(s.dir, prefix+"*"))
		for _, p := range debris {
			_ = os.Remove(p)
		}
	}
	t, err := place.NewTemp(s.dir, "tmp_pack_")
	if err != nil {
		return nil, err
	}
	return &packWriter{s: s, t: t, w: bufio.NewWriterSize(t, 64<<10)}, nil
}

// packWriter spools a fetched pack to a temporary file; Close indexes it and
// moves both into place, or removes the file.
type packWriter struct {
	s packStorage
	t *place.Temp
	w *bufio.Writer
	n int64
}

func (w *packWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	w.n += int64(n)
	return n, err
}

func (w *packWriter) Close() error {
	defer w.t.Abort() // nothing left to do once committed
	if err := w.w.Flush(); err != nil {
		return err
	}
	if w.n == 0 {
		return nil // go-git reports the empty pack itself
	}
	sum, idx, err := indexPack(w.s.ctx, w.t.File)
	if err != nil {
		return fmt.Errorf("index fetched pack: %w", err)
	}
	base := filepath.Join(w.s.dir, "pack-"+sum.String())
	if regularFile(base+".pack") && regularFile(base+".idx") {
		return nil // the same pack, fetched before
	}
	// The index goes into place first, under a temporary name and renamed
	// whole (the directory synced), and the pack after it: a pack is only
	// ever seen with its index, and a crash leaves no half-written index
	// behind a good name.
	if err := writeIndex(base+".idx", w.s.dir, idx); err != nil {
		return err
	}
	if err := w.t.Commit(base+".pack", 0o444); err != nil {
		return err
	}
	// The storage read its pack indexes before the fetch; it must see
	// this one for the lookups that follow.
	w.s.Reindex()
	return nil
}

func writeIndex(path, dir string, idx *idxfile.MemoryIndex) error {
	t, err := place.NewTemp(dir, "tmp_idx_")
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(t)
	if _, err := idxfile.NewEncoder(bw).Encode(idx); err != nil {
		t.Abort()
		return err
	}
	if err := bw.Flush(); err != nil {
		t.Abort()
		return err
	}
	return t.Commit(path, 0o444)
}

func regularFile(path string) bool {
	fi, err := os.Lstat(path)
	return err == nil && fi.Mode().IsRegular()
}

// Bounds on a fetched pack. maxDeltaDepth is the deepest delta chain git
// writes (pack-objects caps --depth at 4095) and go-git reads. Everything
// inflated, read again or written while a pack is indexed, plus a charge per
// delta command, may total maxExpandFixed plus maxExpandRatio times the
// pack's size: far beyond a plugin's history (a source tree's pack expands
// some tens of times), far short of what a pack of crafted deltas (each a
// few bytes that copy megabytes) would cost in time and temporary files.
const (
	maxDeltaDepth  = 4095
	maxExpandFixed = 1 << 30
	maxExpandRatio = 100
)

var errPackMalformed = errors.New("malformed pack")

// packEntry is one object of a pack under indexing.
type packEntry struct {
	offset int64
	crc    uint32
	typ    plumbing.ObjectType // for a delta, its base's type once resolved
	hash   plumbing.Hash       // known once resolved; at once for a whole object
	delta  bool
	done   bool
	base   int64         // an OFS delta's base offset
	ref    plumbing.Hash // a REF delta's base hash
}

// packIndexer builds the index of one pack file.
type packIndexer struct {
	ctx     context.Context
	f       *os.File
	entries []packEntry
	sc      *packfile.Scanner // random access, after the first pass
	end     int64             // where the trailing checksum starts
	// Bases too large for memory are kept in tmpDir; inMemory counts the
	// bytes of those kept in memory.
	tmpDir   string
	inMemory int64
	// The pack may expand to maxBytes (see maxExpandFixed); budget is
	// what is left.
	maxBytes, budget int64
}

// indexPack reads the pack in f and returns its checksum and index. The
// pack must stand on its own: go-git never asks for a thin pack (one with
// deltas against objects the repository already holds), so a delta whose
// base is not in the pack is an error.
func indexPack(ctx context.Context, f *os.File) (plumbing.Hash, *idxfile.MemoryIndex, error) {
	ix := &packIndexer{ctx: ctx, f: f, tmpDir: filepath.Dir(f.Name())}
	if err := ix.scan(); err != nil {
		return plumbing.ZeroHash, nil, err
	}
	ix.sc = packfile.NewScanner(f)
	if err := ix.resolve(); err != nil {
		return plumbing.ZeroHash, nil, err
	}
	var sum plumbing.Hash
	if _, err := f.ReadAt(sum[:], ix.end); err != nil {
		return plumbing.ZeroHash, nil, err
	}
	var w idxfile.Writer
	if err := w.OnHeader(uint32(len(ix.entries))); err != nil {
		return plumbing.ZeroHash, nil, err
	}
	// git refuses a pack that holds an object twice (its index would list
	// fewer objects than the pack), and no server sends one.
	seen := make(map[plumbing.Hash]struct{}, len(ix.entries))
	for _, e := range ix.entries {
		if _, dup := seen[e.hash]; dup {
			return plumbing.ZeroHash, nil, fmt.Errorf("%w: object %s appears twice", errPackMalformed, e.hash)
		}
		seen[e.hash] = struct{}{}
		w.Add(e.hash, uint64(e.offset), e.crc)
	}
	if err := w.OnFooter(sum); err != nil {
		return plumbing.ZeroHash, nil, err
	}
	idx, err := w.Index()
	return sum, idx, err
}

// scan reads the pack once from the start: each entry's place, CRC and, for
// whole objects, hash (streamed, never held), then the trailer's checksum of
// all of it.
func (ix *packIndexer) scan() error {
	if _, err := ix.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	sc := packfile.NewScanner(ix.f)
	fi, err := ix.f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	ix.maxBytes = maxExpandFixed + maxExpandRatio*size
	ix.budget = ix.maxBytes
	_, count, err := sc.Header()
	if err != nil {
		return fmt.Errorf("%w: %w", errPackMalformed, err)
	}
	// The count is the sender's word: it bounds the loop, not what is
	// reserved up front.
	hint := int(min(count, 1<<16))
	ix.entries = make([]packEntry, 0, hint)
	for i := uint32(0); i < count; i++ {
		if err := ix.ctx.Err(); err != nil {
			return err
		}
		oh, err := sc.NextObjectHeader()
		if err != nil {
			return fmt.Errorf("%w: object %d: %w", errPackMalformed, i, err)
		}
		e := packEntry{offset: oh.Offset, typ: oh.Type}
		var w io.Writer = io.Discard
		var h plumbing.Hasher
		switch oh.Type {
		case plumbing.CommitObject, plumbing.TreeObject, plumbing.BlobObject, plumbing.TagObject:
			h = plumbing.NewHasher(oh.Type, oh.Length)
			w = h
		case plumbing.OFSDeltaObject:
			e.delta, e.base = true, oh.OffsetReference
		case plumbing.REFDeltaObject:
			e.delta, e.ref = true, oh.Reference
		default:
			return fmt.Errorf("%w: object %d at %d has type %d", errPackMalformed, i, oh.Offset, oh.Type)
		}
		n, crc, err := sc.NextObject(ix.spend(w))
		if err != nil {
			return ix.malformed(err, "object %d at %d", i, oh.Offset)
		}
		if n != oh.Length {
			return fmt.Errorf("%w: object %d at %d inflates to %d bytes, not %d", errPackMalformed, i, oh.Offset, n, oh.Length)
		}
		e.crc = crc
		if !e.delta {
			e.hash, e.done = h.Sum(), true
		}
		ix.entries = append(ix.entries, e)
	}
	if _, err := sc.Checksum(); err != nil {
		return fmt.Errorf("%w: %w", errPackMalformed, err)
	}
	pos, err := sc.SeekFromStart(0)
	if err != nil {
		return err
	}
	if pos != size {
		return fmt.Errorf("%w: %d bytes after the checksum", errPackMalformed, size-pos)
	}
	ix.end = size - hash.Size
	return nil
}

// resolve works out every delta from its base down, as git index-pack
// does: each whole object that deltas stand on is read a second time, then
// its deltas are applied depth first, each result streamed into its hasher.
// A base is kept (see hold) only while deltas remain to be applied to it,
// so a chain of versions of one file holds two of them at a time, plus one
// delta's instructions, however long the chain.
func (ix *packIndexer) resolve() error {
	byBase := map[int64][]int{}        // OFS deltas by their base's offset
	byRef := map[plumbing.Hash][]int{} // REF deltas by their base's hash
	for i, e := range ix.entries {
		switch {
		case !e.delta:
		case e.ref.IsZero():
			byBase[e.base] = append(byBase[e.base], i)
		default:
			byRef[e.ref] = append(byRef[e.ref], i)
		}
	}
	children := func(i int) []int {
		e := ix.entries[i]
		kids := byBase[e.offset]
		if refs := byRef[e.hash]; len(refs) > 0 {
			kids = append(slices.Clip(kids), refs...)
			delete(byRef, e.hash) // a duplicate object gives them no second time
		}
		return kids
	}
	type frame struct {
		base  *heldObject
		kids  []int
		depth int
	}
	var stack []frame
	defer func() {
		for _, fr := range stack {
			ix.release(fr.base)
		}
	}()
	for i := range ix.entries {
		if ix.entries[i].delta {
			continue
		}
		kids := children(i)
		if len(kids) == 0 {
			continue
		}
		base, err := ix.readEntry(i)
		if err != nil {
			return err
		}
		stack = append(stack, frame{base: base, kids: kids})
		for len(stack) > 0 {
			if err := ix.ctx.Err(); err != nil {
				return err
			}
			top := &stack[len(stack)-1]
			k, base, depth := top.kids[0], top.base, top.depth+1
			top.kids = top.kids[1:]
			last := len(top.kids) == 0
			if last {
				stack = stack[:len(stack)-1]
			}
			if depth > maxDeltaDepth {
				if last {
					ix.release(base)
				}
				return fmt.Errorf("%w: delta chain at %d deeper than %d", errPackMalformed, ix.entries[k].offset, maxDeltaDepth)
			}
			// A REF delta names its base by a hash known only once the
			// base is resolved: while any wait, every result is kept.
			keep := len(byBase[ix.entries[k].offset]) > 0 || len(byRef) > 0
			target, err := ix.applyDelta(k, base, keep)
			if last {
				ix.release(base)
			}
			if err != nil {
				return err
			}
			if kids := children(k); len(kids) > 0 {
				stack = append(stack, frame{base: target, kids: kids, depth: depth})
			} else if target != nil {
				ix.release(target)
			}
		}
	}
	for _, e := range ix.entries {
		switch {
		case e.done:
		case e.ref.IsZero():
			return fmt.Errorf("%w: delta at %d has no object at its base offset %d", errPackMalformed, e.offset, e.base)
		default:
			return fmt.Errorf("%w: delta base %s is not in the pack", errPackMalformed, e.ref)
		}
	}
	return nil
}

// readEntry reads entry i as stored, a whole object's content or a delta's
// instructions, into a heldObject.
func (ix *packIndexer) readEntry(i int) (*heldObject, error) {
	e := ix.entries[i]
	oh, err := ix.sc.SeekObjectHeader(e.offset)
	if err != nil {
		return nil, err
	}
	o, w, err := ix.hold(e.typ, oh.Length)
	if err != nil {
		return nil, err
	}
	_, _, err = ix.sc.NextObject(ix.spend(w))
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		ix.release(o)
		return nil, ix.malformed(err, "object at %d", e.offset)
	}
	return o, nil
}

// applyDelta applies delta k to base, streaming the result into its hasher
// and, when keep says deltas may stand on it, into a heldObject it returns.
func (ix *packIndexer) applyDelta(k int, base *heldObject, keep bool) (_ *heldObject, err error) {
	e := &ix.entries[k]
	d, err := ix.readEntry(k)
	if err != nil {
		return nil, err
	}
	defer ix.release(d)
	src, err := base.open()
	if err != nil {
		return nil, err
	}
	defer src.Close()
	delta, err := d.open()
	if err != nil {
		return nil, err
	}
	defer delta.Close()

	var (
		target *heldObject
		tw     io.WriteCloser
		h      plumbing.Hasher
	)
	defer func() {
		if err != nil && target != nil {
			ix.release(target)
		}
	}()
	cost := int64(patchCommand)
	if base.path != "" {
		cost = patchCommandFile
	}
	err = ix.patch(src, base.size, cost, bufio.NewReader(delta), func(size int64) (io.Writer, error) {
		h = plumbing.NewHasher(base.typ, size)
		if !keep {
			return h, nil
		}
		var err error
		if target, tw, err = ix.hold(base.typ, size); err != nil {
			return nil, err
		}
		return io.MultiWriter(h, tw), nil
	})
	if tw != nil {
		if cerr := tw.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return nil, ix.malformed(err, "delta at %d", e.offset)
	}
	e.typ, e.hash, e.done = base.typ, h.Sum(), true
	return target, nil
}

// What the patcher charges each command of a delta beyond the bytes it
// writes: a delta of many one-byte copies costs time per command, and when
// its base is in a file every command costs patchCommandFile, since each
// copy from it is a read system call.
const (
	patchCommand     = 64
	patchCommandFile = 1024
)

// deltaSize reads one of the two sizes a delta starts with, as go-git reads
// them back (at most nine bytes: git writes no more, and go-git refuses an
// object that has more, so the cache must too).
func deltaSize(r io.ByteReader) (uint64, error) {
	var x uint64
	for shift := 0; shift < 63; shift += 7 {
		b, err := r.ReadByte()
		if err != nil {
			return 0, packfile.ErrInvalidDelta
		}
		x |= uint64(b&0x7f) << shift
		if b < 0x80 {
			return x, nil
		}
	}
	return 0, packfile.ErrInvalidDelta
}

// deltaCopy reads the offset and size of a delta's copy command cmd (its
// high bit set): the bits of cmd say which of the next seven bytes follow,
// four of offset and three of size, little-endian; a size of 0 means
// 0x10000.
func deltaCopy(cmd byte, delta io.ByteReader) (off, n int64, err error) {
	for i := range 7 {
		if cmd&(1<<i) == 0 {
			continue
		}
		b, err := delta.ReadByte()
		if err != nil {
			return 0, 0, packfile.ErrInvalidDelta
		}
		if i < 4 {
			off |= int64(b) << (8 * i)
		} else {
			n |= int64(b) << (8 * (i - 4))
		}
	}
	if n == 0 {
		n = 0x10000
	}
	return off, n, nil
}

// patch applies a delta in git's format (the base's size, the result's,
// then commands that copy a range of the base or insert bytes of the delta)
// to a base read at offsets, writing the result to the writer that start
// returns once the result's size is known. It is go-git's PatchDelta for a base
// and a result too large for memory (go-git's own streaming patcher reads
// its base again from the start for every copy that goes backwards), and
// charges each command (cost) and every byte written.
func (ix *packIndexer) patch(base io.ReaderAt, baseSize, cost int64, delta *bufio.Reader, start func(size int64) (io.Writer, error)) error {
	srcSize, err := deltaSize(delta)
	if err != nil || srcSize != uint64(baseSize) {
		return packfile.ErrInvalidDelta
	}
	size, err := deltaSize(delta)
	if err != nil || size > math.MaxInt64 {
		return packfile.ErrInvalidDelta
	}
	w, err := start(int64(size))
	if err != nil {
		return err
	}
	w = ix.spend(w)
	buf := make([]byte, 32<<10)
	for left := int64(size); left > 0; {
		if err := ix.charge(cost); err != nil {
			return err
		}
		cmd, err := delta.ReadByte()
		if err != nil {
			return packfile.ErrInvalidDelta
		}
		var n int64
		switch {
		case cmd&0x80 != 0: // copy from the base
			var off int64
			if off, n, err = deltaCopy(cmd, delta); err != nil {
				return err
			}
			if n > left || off+n > baseSize {
				return packfile.ErrInvalidDelta
			}
			if m, err := io.CopyBuffer(w, io.NewSectionReader(base, off, n), buf); err != nil {
				return err
			} else if m != n {
				return packfile.ErrInvalidDelta
			}
		case cmd != 0: // insert the next cmd bytes of the delta
			if n = int64(cmd); n > left {
				return packfile.ErrInvalidDelta
			}
			if _, err := io.ReadFull(delta, buf[:n]); err != nil {
				return packfile.ErrInvalidDelta
			}
			if _, err := w.Write(buf[:n]); err != nil {
				return err
			}
		default:
			return packfile.ErrDeltaCmd
		}
		left -= n
	}
	if _, err := delta.ReadByte(); err != io.EOF {
		return packfile.ErrInvalidDelta // the delta goes on past its result
	}
	return nil
}

// Where an object is kept while deltas are applied to it (or while it is
// applied, for a delta): in memory when it is small and those in memory
// stay within memBudget, else in a temporary file beside the pack. A large
// file with many versions then costs disk, not memory.
const (
	memObject = 4 << 20
	memBudget = 16 << 20
)

// hold makes a heldObject of the given type and size and returns the
// writer that fills it, to be closed once it is full.
func (ix *packIndexer) hold(typ plumbing.ObjectType, size int64) (*heldObject, io.WriteCloser, error) {
	o := &heldObject{typ: typ, size: size}
	if size <= memObject && ix.inMemory+size <= memBudget {
		ix.inMemory += size
		b := bytes.NewBuffer(make([]byte, 0, size))
		return o, &memFiller{o: o, b: b}, nil
	}
	f, err := os.CreateTemp(ix.tmpDir, "tmp_base_")
	if err != nil {
		return nil, nil, err
	}
	// Only the name is kept: a file is opened while it is read, so bases
	// waiting in files hold no descriptors.
	o.path = f.Name()
	return o, f, nil
}

// release drops what o holds.
func (ix *packIndexer) release(o *heldObject) {
	if o.path != "" {
		_ = os.Remove(o.path)
		return
	}
	ix.inMemory -= o.size
	o.mem = nil
}

// heldObject is an object's content, in memory or in a temporary file.
type heldObject struct {
	typ  plumbing.ObjectType
	size int64
	mem  []byte
	path string
}

// open returns the content for reading.
func (o *heldObject) open() (interface {
	io.Reader
	io.ReaderAt
	io.Closer
}, error) {
	if o.path != "" {
		return os.Open(o.path)
	}
	return memReader{bytes.NewReader(o.mem)}, nil
}

type memReader struct{ *bytes.Reader }

func (memReader) Close() error { return nil }

// memFiller fills a heldObject kept in memory.
type memFiller struct {
	o *heldObject
	b *bytes.Buffer
}

func (m *memFiller) Write(p []byte) (int, error) { return m.b.Write(p) }

func (m *memFiller) Close() error {
	m.o.mem = m.b.Bytes()
	return nil
}

// errTooLarge says a pack expands past its budget (see maxExpandFixed).
var errTooLarge = errors.New("expands too far")

// charge takes n bytes from what the pack may still expand to, and says
// when the fetch is cancelled.
func (ix *packIndexer) charge(n int64) error {
	if ix.budget -= n; ix.budget < 0 {
		return fmt.Errorf("%w: more than %d bytes once inflated (%d times its size plus 1 GiB)", errTooLarge, ix.maxBytes, maxExpandRatio)
	}
	return ix.ctx.Err()
}

// spend is w charging what is written to it (see charge).
func (ix *packIndexer) spend(w io.Writer) io.Writer { return spendWriter{ix, w} }

type spendWriter struct {
	ix *packIndexer
	w  io.Writer
}

func (s spendWriter) Write(p []byte) (int, error) {
	if err := s.ix.charge(int64(len(p))); err != nil {
		return 0, err
	}
	return s.w.Write(p)
}

// malformed wraps err, from reading the pack at what, as the pack's fault,
// unless the fetch was cancelled.
func (ix *packIndexer) malformed(err error, what string, args ...any) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("%w: %s: %w", errPackMalformed, fmt.Sprintf(what, args...), err)
}
