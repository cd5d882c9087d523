package source

import (
	"bytes"
	"compress/zlib"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/xtraefik/xtraefik/internal/memstat"
	"github.com/xtraefik/xtraefik/internal/testenv"
)

// craftedFile is one file of a crafted commit: its name and blob.
type craftedFile struct {
	name string
	hash plumbing.Hash
}

// craftedCommit puts entries (count objects, blobs) plus a root tree of
// files and a commit of it into a pack, installs the pack in a fresh
// repository (served as a remote, whose deltas a fetch reuses: pack.depth
// lets chains as deep as git writes through) and returns the remote's URL
// and the commit.
func craftedCommit(t *testing.T, count int, entries [][]byte, files []craftedFile) (string, string) {
	t.Helper()
	r := testenv.NewRepo(t, filepath.Join(t.TempDir(), "crafted"))
	r.Git("config", "pack.depth", "4095")
	sort.Slice(files, func(i, j int) bool { return files[i].name < files[j].name })
	var tree bytes.Buffer
	for _, f := range files {
		fmt.Fprintf(&tree, "100644 %s\x00", f.name)
		tree.Write(f.hash[:])
	}
	th := plumbing.ComputeHash(plumbing.TreeObject, tree.Bytes())
	commit := fmt.Appendf(nil, "tree %s\nauthor A <a@example.com> 1 +0000\ncommitter A <a@example.com> 1 +0000\n\ncrafted\n", th)
	ch := plumbing.ComputeHash(plumbing.CommitObject, commit)
	entries = append(entries, craftEntry(plumbing.TreeObject, tree.Bytes()), craftEntry(plumbing.CommitObject, commit))
	pack := craftPack(uint32(count+2), entries...)
	p := filepath.Join(r.Dir, ".git", "objects", "pack", "crafted.pack")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, pack, 0o644); err != nil {
		t.Fatal(err)
	}
	r.Git("index-pack", p)
	r.Git("update-ref", "refs/heads/main", ch.String())
	return "file://" + r.Dir, ch.String()
}

// assertTooCostly checks that reading commit of u failed for its cost, in
// words naming the commit and the remote, and as the plugin's fault: not
// damage, so the cache repository is kept (no fetch afresh, again and
// again), and an offline read fails the same way.
func assertTooCostly(t *testing.T, f *Fetcher, u, commit string, err error) {
	t.Helper()
	if !errors.Is(err, ErrTooCostly) || isDamage(err) {
		t.Fatalf("error %v, want ErrTooCostly, not damage", err)
	}
	for _, want := range []string{commit, u, "too costly", "decoded again and again"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(f.repoDir(mustRemote(t, u)), "objects")); err != nil {
		t.Errorf("the cache repository is gone: %v", err)
	}
	off := newOfflineFetcher(t, filepath.Dir(f.repoDir(mustRemote(t, u))))
	off.readFixed = f.readFixed
	if _, err := off.Tree(context.Background(), u, commit); !errors.Is(err, ErrTooCostly) {
		t.Errorf("offline: %v, want ErrTooCostly", err)
	}
}

// TestTreeDeltaChainTooCostly: a tree whose files lie along one delta
// chain (each file a one-byte change of the one before) makes every file's
// read decode all the files before it: the read stops at its budget.
func TestTreeDeltaChainTooCostly(t *testing.T) {
	const n, size = 300, 4096
	content := bytes.Repeat([]byte("abcdefghijklmnop"), size/16)
	var entries [][]byte
	var files []craftedFile
	for i := range n {
		if i == 0 {
			entries = append(entries, craftEntry(plumbing.BlobObject, content))
		} else {
			pos := i % size
			content = bytes.Clone(content)
			content[pos] = byte('A' + i%26)
			d := binary.AppendUvarint(nil, size)
			d = binary.AppendUvarint(d, size)
			if pos > 0 {
				d = append(d, 0x80|0x10|0x20, byte(pos), byte(pos>>8)) // copy 0..pos (offset 0)
			}
			d = append(d, 1, content[pos])
			if rest := size - pos - 1; rest > 0 {
				d = append(d, 0x80|0x01|0x02|0x10|0x20, byte(pos+1), byte((pos+1)>>8), byte(rest), byte(rest>>8))
			}
			entries = append(entries, craftEntry(plumbing.OFSDeltaObject, d, ofsDistance(len(entries[len(entries)-1]))...))
		}
		files = append(files, craftedFile{fmt.Sprintf("f%04d.txt", i), plumbing.ComputeHash(plumbing.BlobObject, content)})
	}
	u, commit := craftedCommit(t, n, entries, files)
	// 300 files of 4 KiB: 1.2 MB, whose reads decode 180 MB.
	f := newFetcher(t, "")
	f.readFixed = 4 << 20
	_, err := f.Tree(context.Background(), u, commit)
	assertTooCostly(t, f, u, commit, err)
}

// TestTreeStarTooCostly: many small files, each a delta on one large
// blob, make each small read decode the large blob again: go-git would
// stream a base over its large-object threshold outside its cache, so the
// walk decodes every object in memory, where each is charged.
func TestTreeStarTooCostly(t *testing.T) {
	const n, small, large = 200, 4096, 2 << 20
	base := make([]byte, large)
	for i := range base {
		base[i] = byte(i*7 + i>>10)
	}
	entries := [][]byte{craftEntry(plumbing.BlobObject, base)}
	files := []craftedFile{{"base.bin", plumbing.ComputeHash(plumbing.BlobObject, base)}}
	dist := len(entries[0])
	for i := range n {
		off := i * (large / n)
		d := binary.AppendUvarint(nil, large)
		d = binary.AppendUvarint(d, small)
		d = append(d, 0x80|0x01|0x02|0x04|0x10|0x20, byte(off), byte(off>>8), byte(off>>16), 0xff, 0x0f, 1, byte(i)) // copy small-1 (4095) bytes from off
		e := craftEntry(plumbing.OFSDeltaObject, d, ofsDistance(dist)...)
		entries = append(entries, e)
		dist += len(e)
		target := append(bytes.Clone(base[off:off+small-1]), byte(i))
		files = append(files, craftedFile{fmt.Sprintf("s%03d.txt", i), plumbing.ComputeHash(plumbing.BlobObject, target)})
	}
	u, commit := craftedCommit(t, n+1, entries, files)
	// 2.8 MB of files, whose reads decode the 2 MiB blob 200 times.
	f := newFetcher(t, "")
	f.readFixed = 4 << 20
	_, err := f.Tree(context.Background(), u, commit)
	assertTooCostly(t, f, u, commit, err)
}

// TestTreeHistoryWithinBudget: a plugin's ordinary history (files edited
// over many commits, packed by git with deltas as deep as its default
// allows) decodes a multiple of its files well within the budget's ratio
// alone.
func TestTreeHistoryWithinBudget(t *testing.T) {
	r := testenv.NewRepo(t, filepath.Join(t.TempDir(), "history"))
	lines := make([]string, 400)
	for i := range lines {
		lines[i] = fmt.Sprintf("func f%d(x int) int { return x * %d }", i, i)
	}
	var commit string
	for c := range 60 {
		for k := range 8 {
			lines[(c*37+k*11)%len(lines)] = fmt.Sprintf("// commit %d file %d", c, k)
			r.WriteFile(fmt.Sprintf("pkg%d/file%d.go", k%3, k), "package p\n"+strings.Join(lines, "\n"))
		}
		commit = r.Commit(fmt.Sprintf("c%d", c))
	}
	r.Git("repack", "-adf", "--depth=50", "--window=250")
	u := "file://" + r.Dir
	f := newFetcher(t, "")
	if _, err := f.Tree(context.Background(), u, commit); err != nil {
		t.Fatal(err)
	}
	dir := f.repoDir(mustRemote(t, u))
	depth := 0
	for _, l := range strings.Split(string(gitOut(t, dir, "", "verify-pack", "-v", filepath.Join(dir, "objects", "pack", packIndex(t, dir)))), "\n") {
		if fs := strings.Fields(l); len(fs) == 7 {
			depth = max(depth, atoi(fs[5]))
		}
	}
	if depth < 20 {
		t.Fatalf("the cache's deltas are %d deep at most: not the history this test needs", depth)
	}
	for _, h := range []string{commit, r.Rev("HEAD~30")} {
		b := f.newBudget()
		if _, err := cachedTree(context.Background(), dir, plumbing.NewHash(h), b); err != nil {
			t.Fatal(err)
		}
		spent, files := b.spent.Load(), b.files.Load()
		t.Logf("%s: %d bytes of files, %d decoded (%.1fx), deltas up to %d deep", h, files, spent, float64(spent)/float64(files), depth)
		// Measured: 13x for the last commit, 36x for one 30 commits
		// older (its files deep in their chains: git's newest is the
		// base).
		if spent > maxReadRatio/2*files {
			t.Errorf("%s: %d bytes of files decoded %d bytes: more than %d times", h, files, spent, maxReadRatio/2)
		}
	}
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// TestTreeReadsEachBlobOnce: a blob named by many paths (and a tree by
// many directories) is read once per walk; every path has its content.
func TestTreeReadsEachBlobOnce(t *testing.T) {
	r := testenv.NewRepo(t, filepath.Join(t.TempDir(), "same"))
	big := make([]byte, 64<<10)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	small := strings.Repeat("x", 600)
	for d := range 10 {
		for i := range 10 {
			r.WriteFile(fmt.Sprintf("d%d/big%d.bin", d, i), string(big))
			r.WriteFile(fmt.Sprintf("d%d/small%d.txt", d, i), small)
		}
	}
	commit := r.Commit("same")
	u := "file://" + r.Dir
	f := newFetcher(t, "")
	if _, err := f.Tree(context.Background(), u, commit); err != nil {
		t.Fatal(err)
	}
	b := f.newBudget()
	tree, err := cachedTree(context.Background(), f.repoDir(mustRemote(t, u)), plumbing.NewHash(commit), b)
	if err != nil {
		t.Fatal(err)
	}
	if len(tree.Files) != 200 {
		t.Fatalf("%d files, want 200", len(tree.Files))
	}
	// Read once: the two blobs, eleven trees of a few hundred bytes, the
	// commit. Read per path: 100 times 64 KiB.
	if spent, once := b.spent.Load(), int64(len(big)+len(small)); spent > once+16<<10 {
		t.Errorf("the walk decoded %d bytes; its blobs are %d bytes", spent, once)
	}
	if files := b.files.Load(); files != int64(len(big)+len(small)) {
		t.Errorf("the budget counts %d bytes of files, want %d (each blob once)", files, len(big)+len(small))
	}
	for _, fl := range tree.Files {
		want := small
		if strings.Contains(fl.Path, "big") {
			want = string(big)
		}
		if got := readFile(t, tree.Files, fl.Path); got != want {
			t.Errorf("%s: %d bytes, want %d", fl.Path, len(got), len(want))
		}
	}
}

// TestTreeReadCancelled: a cancelled read of a cached commit stops.
func TestTreeReadCancelled(t *testing.T) {
	r := testenv.NewRepo(t, filepath.Join(t.TempDir(), "plug"))
	r.WriteFile("go.mod", "module example.com/plug\n")
	commit := r.Commit("init")
	u := "file://" + r.Dir
	cache := t.TempDir()
	if _, err := newFetcher(t, cache).Tree(context.Background(), u, commit); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := newOfflineFetcher(t, cache).Tree(ctx, u, commit)
	if !errors.Is(err, context.Canceled) || isDamage(err) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
}

// plantLoose writes a loose object file for name into the cache
// repository of u: header, then content (compressed at best).
func plantLoose(t *testing.T, f *Fetcher, u, name, header string, content func(io.Writer)) {
	t.Helper()
	var b bytes.Buffer
	zw, err := zlib.NewWriterLevel(&b, zlib.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(zw, header)
	content(zw)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(f.repoDir(mustRemote(t, u)), "objects", name[:2], name[2:])
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b.Bytes(), 0o444); err != nil {
		t.Fatal(err)
	}
}

// loosePlanted is a one-commit repository holding name, fetched into a
// cache, where a loose object with header and content then stands in for
// that file's packed blob. It returns the online fetcher, the URL, the
// commit and the cache directory.
func loosePlanted(t *testing.T, name, data, header string, content func(io.Writer)) (*Fetcher, string, string, string) {
	t.Helper()
	r := testenv.NewRepo(t, filepath.Join(t.TempDir(), "loose"))
	r.WriteFile("go.mod", "module example.com/loose\n")
	r.WriteFile(name, data)
	commit := r.Commit("loose")
	u := "file://" + r.Dir
	cache := t.TempDir()
	f := newFetcher(t, cache)
	if _, err := f.Tree(context.Background(), u, commit); err != nil {
		t.Fatal(err)
	}
	plantLoose(t, f, u, strings.TrimSpace(r.Git("rev-parse", commit+":"+name)), header, content)
	return f, u, commit, cache
}

// refetchedWhole checks that online, the damaged repository is fetched
// afresh and name reads back as data.
func refetchedWhole(t *testing.T, f *Fetcher, u, commit, name, data string) {
	t.Helper()
	tree, err := f.Tree(context.Background(), u, commit)
	if err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, tree.Files, name); got != data {
		t.Errorf("%s: %d bytes after the fresh fetch", name, len(got))
	}
}

// TestLooseBombBounded: a loose object (found first by the walk's stream)
// whose header says 20,000 bytes and which inflates to 64 MiB is damage,
// found reading 20,001 bytes of it, not after holding it all.
func TestLooseBombBounded(t *testing.T) {
	mid := strings.Repeat("x", 20000)
	f, u, commit, cache := loosePlanted(t, "mid.txt", mid, "blob 20000\x00", func(w io.Writer) {
		zeros := make([]byte, 1<<20)
		for range 64 {
			_, _ = w.Write(zeros)
		}
	})
	var err error
	n := memstat.Allocated(func() { _, err = newOfflineFetcher(t, cache).Tree(context.Background(), u, commit) })
	if !errors.Is(err, ErrNotCached) || !strings.Contains(err.Error(), "more than 20000") {
		t.Fatalf("offline: %v, want the cache damaged (not cached), the blob holding more than its header says", err)
	}
	if n > 16<<20 {
		t.Errorf("reading the bomb allocated %d bytes", n)
	}
	refetchedWhole(t, f, u, commit, "mid.txt", mid)
}

// TestLooseLyingSize: a loose object whose header gives a packed blob a
// smaller size than it has is damage: the walk would otherwise read the
// whole packed blob as a small file and keep it in memory past keptBlob.
func TestLooseLyingSize(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", (1<<20)/16)
	f, u, commit, cache := loosePlanted(t, "big.txt", big, "blob 7\x00", func(w io.Writer) { _, _ = io.WriteString(w, big) })
	_, err := newOfflineFetcher(t, cache).Tree(context.Background(), u, commit)
	if !errors.Is(err, ErrNotCached) || !strings.Contains(err.Error(), "its header says 7") {
		t.Fatalf("offline: %v, want the cache damaged (not cached), the blob's size not its header's", err)
	}
	refetchedWhole(t, f, u, commit, "big.txt", big)
}

// TestTreeBackwardCopiesTooCostly: a file over streamObject stored as a
// delta whose copies alternate between the two ends of its base makes
// go-git's streaming patcher read the base from its start for every other
// byte (3 MiB for each of a million pairs): the read fails at once, its
// cost charged from the delta's commands before it streams.
func TestTreeBackwardCopiesTooCostly(t *testing.T) {
	const size, pairs = 3 << 20, 1 << 20
	base := make([]byte, size)
	d := binary.AppendUvarint(nil, size)
	d = binary.AppendUvarint(d, 2*pairs)
	for range pairs {
		o := size - 1
		d = append(d, 0x80|0x07|0x10, byte(o), byte(o>>8), byte(o>>16), 1, 0x80|0x10, 1) // copy the last byte, then the first
	}
	e := craftEntry(plumbing.BlobObject, base)
	u, commit := craftedCommit(t, 2, [][]byte{e, craftEntry(plumbing.OFSDeltaObject, d, ofsDistance(len(e))...)}, []craftedFile{
		{"base.bin", plumbing.ComputeHash(plumbing.BlobObject, base)},
		{"t.bin", plumbing.ComputeHash(plumbing.BlobObject, make([]byte, 2*pairs))},
	})
	f := newFetcher(t, "")
	_, err := f.Tree(context.Background(), u, commit)
	assertTooCostly(t, f, u, commit, err)
}

// TestTreeLargeDeltaStreams: a large file stored as a delta on a small
// base streams through the walk instead of being decoded whole.
func TestTreeLargeDeltaStreams(t *testing.T) {
	const size, copies = 1 << 20, 64
	base := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	d := binary.AppendUvarint(nil, size)
	d = binary.AppendUvarint(d, size*copies)
	for range copies {
		d = append(d, 0x80|0x40, 0x10) // copy 1 MiB from offset 0
	}
	e := craftEntry(plumbing.BlobObject, base)
	u, commit := craftedCommit(t, 2, [][]byte{e, craftEntry(plumbing.OFSDeltaObject, d, ofsDistance(len(e))...)}, []craftedFile{
		{"base.bin", plumbing.ComputeHash(plumbing.BlobObject, base)},
		{"big.bin", plumbing.ComputeHash(plumbing.BlobObject, bytes.Repeat(base, copies))},
	})
	cache := t.TempDir()
	if _, err := newFetcher(t, cache).Tree(context.Background(), u, commit); err != nil {
		t.Fatal(err)
	}
	var err error
	n := memstat.Allocated(func() { _, err = newOfflineFetcher(t, cache).Tree(context.Background(), u, commit) })
	if err != nil {
		t.Fatal(err)
	}
	if n > 24<<20 {
		t.Errorf("reading a 64 MiB file stored as a delta allocated %d bytes", n)
	}
}
