package source

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"context"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/storer"

	"github.com/xtraefik/xtraefik/internal/memstat"
	"github.com/xtraefik/xtraefik/internal/testenv"
)

// gitOut runs git in dir with stdin and returns its standard output
// untrimmed (a pack is binary).
func gitOut(t testing.TB, dir, stdin string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// emptyCacheRepo makes a bare cache repository the way a Fetcher does.
func emptyCacheRepo(t testing.TB) (string, *git.Repository) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "cache.git")
	if err := initRepo(dir); err != nil {
		t.Fatal(err)
	}
	repo, err := openRepo(dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, repo
}

// writePack stores pack in the repository at dir through the writer a fetch
// uses.
func writePack(t testing.TB, repo *git.Repository, dir string, pack []byte) error {
	t.Helper()
	return writePackContext(context.Background(), t, repo, dir, pack)
}

func writePackContext(ctx context.Context, t testing.TB, repo *git.Repository, dir string, pack []byte) error {
	t.Helper()
	w, err := fetchStorer(ctx, repo, dir).(storer.PackfileWriter).PackfileWriter()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(pack); err != nil {
		t.Fatal(err)
	}
	return w.Close()
}

// packFiles lists what the repository's pack directory holds.
func packFiles(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, "objects", "pack"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// historyRepo has thirty versions of a text file (git deltifies them), a
// binary file and a few small ones.
func historyRepo(t *testing.T) *testenv.Repo {
	r := testenv.NewRepo(t, filepath.Join(t.TempDir(), "history"))
	var text strings.Builder
	for i := range 30 {
		for j := range 40 {
			fmt.Fprintf(&text, "version %d line %d: the quick brown fox\n", i, j)
		}
		r.WriteFile("notes.txt", text.String())
		r.WriteFile(fmt.Sprintf("dir%d/plugin.go", i%3), fmt.Sprintf("package p // %d\n", i))
		if i == 10 {
			bin := make([]byte, 300<<10)
			for k := range bin {
				bin[k] = byte(k*k + k>>7)
			}
			r.WriteFile("blob.bin", string(bin))
		}
		r.Commit(fmt.Sprint("v", i))
	}
	r.Tag("v1")
	return r
}

// TestPackWriterMatchesGit: the index written for a fetched pack is the one
// git index-pack writes for it, byte for byte, and the repository reads
// every object back, whether deltas name their bases by offset or by hash.
func TestPackWriterMatchesGit(t *testing.T) {
	r := historyRepo(t)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"offset deltas", []string{"--delta-base-offset"}},
		{"hash deltas", nil},
		{"deep chains", []string{"--delta-base-offset", "--depth=250", "--window=50"}},
		{"no deltas", []string{"--depth=0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pack := gitOut(t, r.Dir, "", append([]string{"pack-objects", "--stdout", "--revs", "--all", "-q"}, tc.args...)...)
			ref := t.TempDir()
			if err := os.WriteFile(filepath.Join(ref, "p.pack"), pack, 0o644); err != nil {
				t.Fatal(err)
			}
			sum := strings.Fields(string(gitOut(t, ref, "", "index-pack", "-o", "p.idx", "p.pack")))[0]
			want, err := os.ReadFile(filepath.Join(ref, "p.idx"))
			if err != nil {
				t.Fatal(err)
			}
			dir, repo := emptyCacheRepo(t)
			if err := writePack(t, repo, dir, pack); err != nil {
				t.Fatal(err)
			}
			if got := packFiles(t, dir); len(got) != 2 || got[0] != "pack-"+sum+".idx" || got[1] != "pack-"+sum+".pack" {
				t.Fatalf("pack directory holds %v, want pack-%s.{idx,pack}", got, sum)
			}
			got, err := os.ReadFile(filepath.Join(dir, "objects", "pack", "pack-"+sum+".idx"))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("index differs from git index-pack's (%d vs %d bytes)", len(got), len(want))
			}
			gitOut(t, dir, "", "fsck", "--full", "--strict", "--no-dangling")
			assertReadsAll(t, repo, r.Dir, "--all")
			// Read-only, as git and go-git leave packs; the same pack
			// fetched again changes nothing.
			for _, n := range packFiles(t, dir) {
				if fi, err := os.Stat(filepath.Join(dir, "objects", "pack", n)); err != nil || fi.Mode().Perm() != 0o444 {
					t.Errorf("%s: %v, %v; want mode 0444", n, fi.Mode(), err)
				}
			}
			if err := writePack(t, repo, dir, pack); err != nil {
				t.Fatalf("the same pack again: %v", err)
			}
			if got := packFiles(t, dir); len(got) != 2 {
				t.Errorf("after the same pack again the pack directory holds %v", got)
			}
		})
	}
	// The fixture must hold deltas of both kinds for the cases above to
	// mean anything.
	for flag, kind := range map[string]string{"--delta-base-offset": "ofs-delta", "": "ref-delta"} {
		args := []string{"pack-objects", "--stdout", "--revs", "--all", "-q"}
		if flag != "" {
			args = append(args, flag)
		}
		ofs, ref := entryKinds(t, gitOut(t, r.Dir, "", args...))
		if n := map[string]int{"ofs-delta": ofs, "ref-delta": ref}; n[kind] < 20 {
			t.Errorf("pack %q holds %v, want at least 20 of %s", flag, n, kind)
		}
	}
}

// entryKinds counts OFS and REF delta entries by walking the pack's
// headers with the scanner go-git reads packs with.
func entryKinds(t *testing.T, pack []byte) (ofs, ref int) {
	t.Helper()
	f := tempFile(t, pack)
	ix := &packIndexer{ctx: context.Background(), f: f}
	if err := ix.scan(); err != nil {
		t.Fatal(err)
	}
	for _, e := range ix.entries {
		switch {
		case e.delta && e.ref.IsZero():
			ofs++
		case e.delta:
			ref++
		}
	}
	return ofs, ref
}

func tempFile(t testing.TB, b []byte) *os.File {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "p.pack"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	return f
}

// assertReadsAll reads every object git lists for revs in src through repo
// and checks each one's content hashes to its name.
func assertReadsAll(t *testing.T, repo *git.Repository, src string, revs ...string) {
	t.Helper()
	list := gitOut(t, src, "", append([]string{"rev-list", "--objects"}, revs...)...)
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(string(list)), "\n") {
		h := plumbing.NewHash(strings.Fields(line)[0])
		obj, err := repo.Storer.EncodedObject(plumbing.AnyObject, h)
		if err != nil {
			t.Fatalf("object %s: %v", h, err)
		}
		rc, err := obj.Reader()
		if err != nil {
			t.Fatal(err)
		}
		hasher := plumbing.NewHasher(obj.Type(), obj.Size())
		if _, err := io.Copy(hasher, rc); err != nil {
			t.Fatal(err)
		}
		rc.Close()
		if got := hasher.Sum(); got != h {
			t.Fatalf("object %s reads back as %s", h, got)
		}
		n++
	}
	if n == 0 {
		t.Fatal("no objects listed")
	}
}

// TestPackWriterThinPack: a thin pack, with deltas against objects only
// the receiving repository holds, is never asked for (go-git does not ask
// for thin-pack); one sent anyway is refused and nothing of it kept.
func TestPackWriterThinPack(t *testing.T) {
	r := testenv.NewRepo(t, filepath.Join(t.TempDir(), "thin"))
	var text strings.Builder
	for j := range 400 {
		fmt.Fprintf(&text, "line %d of a file long enough to be worth a delta\n", j)
	}
	r.WriteFile("notes.txt", text.String())
	a := r.Commit("a")
	r.WriteFile("notes.txt", text.String()+"one more line\n")
	b := r.Commit("b")
	oldBlob := r.Git("rev-parse", a+":notes.txt")

	thin := gitOut(t, r.Dir, b+"\n^"+a+"\n", "pack-objects", "--stdout", "--revs", "--thin", "--delta-base-offset", "-q")
	// git itself refuses the pack without --fix-thin: it is thin.
	ref := t.TempDir()
	if err := os.WriteFile(filepath.Join(ref, "p.pack"), thin, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("git", "-C", ref, "index-pack", "-o", "p.idx", "p.pack")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "unresolved delta") {
		t.Fatalf("git index-pack of the thin pack: %v, %s; want unresolved deltas", err, out)
	}

	dir, repo := emptyCacheRepo(t)
	full := gitOut(t, r.Dir, a+"\n", "pack-objects", "--stdout", "--revs", "-q")
	if err := writePack(t, repo, dir, full); err != nil {
		t.Fatal(err)
	}
	before := packFiles(t, dir)
	err := writePack(t, repo, dir, thin)
	if !errors.Is(err, errPackMalformed) || !strings.Contains(err.Error(), "delta base "+oldBlob+" is not in the pack") {
		t.Fatalf("thin pack: %v", err)
	}
	if got := packFiles(t, dir); !slices.Equal(got, before) {
		t.Errorf("pack directory %v after the refused pack, was %v", got, before)
	}
}

// craftPack assembles a pack from raw entries, with a correct header and
// trailer unless the entries themselves are wrong.
func craftPack(count uint32, entries ...[]byte) []byte {
	var b bytes.Buffer
	b.WriteString("PACK")
	_ = binary.Write(&b, binary.BigEndian, uint32(2))
	_ = binary.Write(&b, binary.BigEndian, count)
	for _, e := range entries {
		b.Write(e)
	}
	sum := sha1.Sum(b.Bytes())
	b.Write(sum[:])
	return b.Bytes()
}

// craftEntry is one pack entry: type and size, what a delta names its base
// by (extra), then content compressed.
func craftEntry(typ plumbing.ObjectType, content []byte, extra ...byte) []byte {
	var b bytes.Buffer
	size := len(content)
	hdr := []byte{byte(typ)<<4 | byte(size&0x0f)}
	for size >>= 4; size > 0; size >>= 7 {
		hdr[len(hdr)-1] |= 0x80
		hdr = append(hdr, byte(size&0x7f))
	}
	b.Write(hdr)
	b.Write(extra)
	zw := zlib.NewWriter(&b)
	_, _ = zw.Write(content)
	_ = zw.Close()
	return b.Bytes()
}

// TestPackWriterRefuses: a pack a hostile or broken server sends is
// refused with what is wrong with it, and nothing of it is kept.
func TestPackWriterRefuses(t *testing.T) {
	blob := craftEntry(plumbing.BlobObject, []byte("hello, world\n"))
	good := craftPack(1, blob)
	// A delta of 13 source bytes to 20 target bytes that copies 20 bytes
	// from offset 0: past the end of its base.
	badDelta := craftEntry(plumbing.OFSDeltaObject, []byte{13, 20, 0x80 | 0x10, 20}, byte(len(blob)))
	unknown := plumbing.NewHash("0123456789abcdef0123456789abcdef01234567")
	refDelta := craftEntry(plumbing.REFDeltaObject, []byte{13, 13, 0x80 | 0x10, 13}, unknown[:]...)
	withCount := func(p []byte, n uint32) []byte {
		p = bytes.Clone(p[:len(p)-20])
		binary.BigEndian.PutUint32(p[8:], n)
		sum := sha1.Sum(p)
		return append(p, sum[:]...)
	}
	// The same past its base, of a base large enough to be kept in a file
	// and patched as a stream.
	large := craftEntry(plumbing.BlobObject, make([]byte, 5<<20))
	off := 5<<20 - 2
	streamDelta := binary.AppendUvarint(nil, 5<<20)
	streamDelta = binary.AppendUvarint(streamDelta, 10)
	streamDelta = append(streamDelta, 0x80|0x07|0x10, byte(off), byte(off>>8), byte(off>>16), 10)
	badStream := craftEntry(plumbing.OFSDeltaObject, streamDelta, ofsDistance(len(large))...)
	for _, tc := range []struct {
		name, want string
		pack       []byte
	}{
		{"checksum", "checksum mismatch", append(bytes.Clone(good[:len(good)-1]), good[len(good)-1]^1)},
		{"truncated", "malformed pack: object 0", good[:len(good)-25]},
		{"junk after the checksum", "4 bytes after the checksum", append(bytes.Clone(good), "junk"...)},
		{"more objects claimed", "malformed pack: object 1", withCount(good, 2)},
		{"reserved type", "has type 5", craftPack(1, craftEntry(plumbing.ObjectType(5), []byte("x")))},
		{"delta past its base", fmt.Sprint("delta at ", 12+len(blob)), craftPack(2, blob, badDelta)},
		{"streamed delta past its base", fmt.Sprint("delta at ", 12+len(large), ": invalid delta"), craftPack(2, large, badStream)},
		{"ten-byte delta size", fmt.Sprint("delta at ", 12+len(blob), ": invalid delta"), craftPack(2, blob, craftEntry(plumbing.OFSDeltaObject, []byte{0x8d, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0, 14, 0x90, 13, 1, '!'}, byte(len(blob))))},
		{"base nowhere", "delta base " + unknown.String() + " is not in the pack", craftPack(2, blob, refDelta)},
		{"not a pack", "malformed pack", []byte("<html>502 Bad Gateway</html>")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, repo := emptyCacheRepo(t)
			err := writePack(t, repo, dir, tc.pack)
			if !errors.Is(err, errPackMalformed) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if got := packFiles(t, dir); len(got) != 0 {
				t.Errorf("left in the pack directory: %v", got)
			}
		})
	}
	// The same entries, well formed, are accepted: the cases above fail
	// for what each changes.
	dir, repo := emptyCacheRepo(t)
	if err := writePack(t, repo, dir, good); err != nil {
		t.Fatalf("the well-formed pack: %v", err)
	}
	if _, err := repo.Storer.EncodedObject(plumbing.BlobObject, plumbing.ComputeHash(plumbing.BlobObject, []byte("hello, world\n"))); err != nil {
		t.Fatalf("the blob of the well-formed pack: %v", err)
	}
}

// TestPackWriterStreamsLargeObjects: a large file on its first fetch costs
// a few buffers, not its size (go-git's own indexer inflated it whole).
func TestPackWriterStreamsLargeObjects(t *testing.T) {
	const size = 64 << 20
	r := testenv.NewRepo(t, filepath.Join(t.TempDir(), "large"))
	big := make([]byte, size)
	for i := range big {
		big[i] = byte(i*7 + i>>9 + i>>20)
	}
	r.WriteFile("data.bin", string(big))
	r.WriteFile("main.go", "package main\n")
	r.Commit("large")
	want := plumbing.ComputeHash(plumbing.BlobObject, big)
	big = nil
	pack := gitOut(t, r.Dir, "", "pack-objects", "--stdout", "--revs", "--all", "-q")
	dir, repo := emptyCacheRepo(t)

	var err error
	n := memstat.Allocated(func() { err = writePack(t, repo, dir, pack) })
	if err != nil {
		t.Fatal(err)
	}
	if n > 4<<20 {
		t.Errorf("indexing a pack with a %d-byte blob allocated %d bytes", size, n)
	}
	if _, err := repo.Storer.EncodedObject(plumbing.BlobObject, want); err != nil {
		t.Errorf("the large blob: %v", err)
	}
}

// TestIncrementalFetch: a second fetch, over a real git daemon, into a
// cache that holds the commit before brings a pack that stands on its own
// (git verify-pack fails on a thin one), the new files read back, and a
// killed fetch's temporary file is cleared.
func TestIncrementalFetch(t *testing.T) {
	root := t.TempDir()
	r := testenv.NewRepo(t, filepath.Join(root, "grow"))
	var text strings.Builder
	for j := range 400 {
		fmt.Fprintf(&text, "line %d of a file long enough to be worth a delta\n", j)
	}
	r.WriteFile("plugin.go", "package grow\n")
	r.WriteFile("notes.txt", text.String())
	a := r.Commit("a")
	srv := testenv.StartGitDaemon(t, root)
	u := srv.URL + "grow"
	f := newFetcher(t, "")
	ctx := context.Background()
	if _, err := f.Tree(ctx, u, a); err != nil {
		t.Fatal(err)
	}
	packDir := filepath.Join(f.repoDir(mustRemote(t, u)), "objects", "pack")
	// What a fetch killed half-way leaves is cleared by the next one.
	debris := filepath.Join(packDir, "tmp_pack_123456")
	if err := os.WriteFile(debris, []byte("PACK\x00\x00"), 0o644); err != nil {
		t.Fatal(err)
	}
	r.WriteFile("notes.txt", text.String()+"one more line\n")
	b := r.Commit("b")
	tree, err := f.Tree(ctx, u, b)
	if err != nil {
		t.Fatalf("Tree of the new commit: %v", err)
	}
	if got := readFile(t, tree.Files, "notes.txt"); got != text.String()+"one more line\n" {
		t.Errorf("notes.txt of the new commit: %d bytes", len(got))
	}
	var idx []string
	for _, n := range packFiles(t, filepath.Dir(filepath.Dir(packDir))) {
		switch {
		case strings.HasSuffix(n, ".idx"):
			idx = append(idx, n)
		case !strings.HasSuffix(n, ".pack"):
			t.Errorf("left in the pack directory: %s", n)
		}
	}
	if len(idx) != 2 {
		t.Fatalf("pack indexes %v, want one per fetch", idx)
	}
	gitOut(t, packDir, "", append([]string{"verify-pack"}, idx...)...)
}

// TestPackWriterDeltaOrder: a REF delta may come before its base, and a
// delta may stand on another delta; git reads both, and so does the cache.
func TestPackWriterDeltaOrder(t *testing.T) {
	blob := craftEntry(plumbing.BlobObject, []byte("hello, world\n"))
	base := plumbing.ComputeHash(plumbing.BlobObject, []byte("hello, world\n"))
	// "hello, world" copied from the base, then "!\n" inserted.
	excl := []byte{13, 14, 0x90, 12, 2, '!', '\n'}
	want1 := plumbing.ComputeHash(plumbing.BlobObject, []byte("hello, world!\n"))
	refFirst := craftEntry(plumbing.REFDeltaObject, excl, base[:]...)
	// On top of the first delta: "hello, world!" copied, then "?\n".
	want2 := plumbing.ComputeHash(plumbing.BlobObject, []byte("hello, world!?\n"))
	second := craftEntry(plumbing.OFSDeltaObject, []byte{14, 15, 0x90, 13, 2, '?', '\n'}, byte(len(refFirst)+len(blob)))
	pack := craftPack(3, refFirst, blob, second)

	dir, repo := emptyCacheRepo(t)
	if err := writePack(t, repo, dir, pack); err != nil {
		t.Fatal(err)
	}
	for _, h := range []plumbing.Hash{base, want1, want2} {
		if _, err := repo.Storer.EncodedObject(plumbing.BlobObject, h); err != nil {
			t.Errorf("blob %s: %v", h, err)
		}
	}
	gitOut(t, dir, "", "fsck", "--full", "--strict", "--no-dangling")
}

// TestPackWriterLongChain: versions of a file, each a delta on the one
// before, are each resolved once, streamed from their base: small ones
// kept in memory only while a delta stands on them, large ones kept on
// disk, so a long history of a large file costs little memory. (git
// pack-objects builds such chains for real histories; they are crafted
// here because git picks bases by its own heuristics.)
func TestPackWriterLongChain(t *testing.T) {
	for _, tc := range []struct {
		name           string
		size, versions int
		byHash         bool
		maxAlloc       uint64
	}{
		// About versions × size in all: resolving each from the start of
		// the chain would be versions²/2 × size.
		{"small versions", 2 << 20, 30, false, 3 * 30 * 2 << 20},
		// Bases over memObject live in files: a few buffers in all.
		{"large versions", 12 << 20, 10, false, 4 << 20},
		// REF deltas: every result is kept until its hash is known.
		{"large versions by hash", 12 << 20, 6, true, 4 << 20},
		{"small versions by hash", 64 << 10, 200, true, 3 * 200 * 64 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pack, want := chainPack(tc.size, tc.versions, tc.byHash)
			dir, repo := emptyCacheRepo(t)
			var err error
			n := memstat.Allocated(func() { err = writePack(t, repo, dir, pack) })
			if err != nil {
				t.Fatal(err)
			}
			if n > tc.maxAlloc {
				t.Errorf("resolving %d versions of %d bytes allocated %d bytes", tc.versions, tc.size, n)
			}
			for v, h := range want {
				if _, err := repo.Storer.EncodedObject(plumbing.BlobObject, h); err != nil {
					t.Fatalf("version %d: %v", v, err)
				}
			}
			if got := packFiles(t, dir); len(got) != 2 {
				t.Errorf("pack directory holds %v, want the pack and its index", got)
			}
			gitOut(t, dir, "", "fsck", "--full", "--strict", "--no-dangling")
			v := string(gitOut(t, filepath.Join(dir, "objects", "pack"), "", "verify-pack", "-v", packIndex(t, dir)))
			if !strings.Contains(v, fmt.Sprintf("chain length = %d: 1 object", tc.versions-1)) {
				t.Fatalf("git does not see a chain of %d deltas:\n%s", tc.versions-1, v)
			}
		})
	}
}

// chainPack crafts a pack of versions of a size-byte blob, each a delta on
// the one before that keeps all but the last byte (naming its base by hash
// if byHash, else by offset), and returns it with the versions' hashes.
func chainPack(size, versions int, byHash bool) ([]byte, []plumbing.Hash) {
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i*31 + i>>11)
	}
	entries := [][]byte{craftEntry(plumbing.BlobObject, data)}
	want := []plumbing.Hash{plumbing.ComputeHash(plumbing.BlobObject, data)}
	for v := 1; v < versions; v++ {
		delta := binary.AppendUvarint(nil, uint64(size))
		delta = binary.AppendUvarint(delta, uint64(size))
		keep := size - 1
		delta = append(delta, 0x80|0x10|0x20|0x40, byte(keep), byte(keep>>8), byte(keep>>16), 1, byte(v))
		if byHash {
			prev := want[len(want)-1]
			entries = append(entries, craftEntry(plumbing.REFDeltaObject, delta, prev[:]...))
		} else {
			entries = append(entries, craftEntry(plumbing.OFSDeltaObject, delta, ofsDistance(len(entries[len(entries)-1]))...))
		}
		data[size-1] = byte(v)
		want = append(want, plumbing.ComputeHash(plumbing.BlobObject, data))
	}
	return craftPack(uint32(versions), entries...), want
}

// ofsDistance encodes how far back an OFS delta's base is, as git does.
func ofsDistance(n int) []byte {
	b := []byte{byte(n & 0x7f)}
	for n >>= 7; n > 0; n >>= 7 {
		n--
		b = append([]byte{0x80 | byte(n&0x7f)}, b...)
	}
	return b
}

// packIndex names the one pack index in the repository at dir.
func packIndex(t testing.TB, dir string) string {
	t.Helper()
	for _, n := range packFiles(t, dir) {
		if strings.HasSuffix(n, ".idx") {
			return n
		}
	}
	t.Fatal("no pack index")
	return ""
}

// copyDelta is a delta on a size-byte base that copies all of it k times,
// then inserts b.
func copyDelta(size, k int, b byte) []byte {
	d := binary.AppendUvarint(nil, uint64(size))
	d = binary.AppendUvarint(d, uint64(size*k+1))
	for range k {
		d = append(d, 0x80|0x10|0x20|0x40, byte(size), byte(size>>8), byte(size>>16))
	}
	return append(d, 1, b)
}

// TestPackWriterBombs: packs crafted to cost far more than their size, and
// a fetch cancelled while its pack is indexed, stop with what happened and
// leave nothing behind.
func TestPackWriterBombs(t *testing.T) {
	const mib = 1 << 20
	blob := craftEntry(plumbing.BlobObject, make([]byte, mib))
	// 5 KB of delta that copies the 1 MiB base 1100 times: 1.1 GiB.
	expand := craftEntry(plumbing.OFSDeltaObject, copyDelta(mib, 1100, 1), ofsDistance(len(blob))...)
	small := craftEntry(plumbing.BlobObject, []byte("hello, world\n"))
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name  string
		ctx   context.Context
		pack  []byte
		is    error
		wants string
	}{
		{"expanding delta", context.Background(), craftPack(2, blob, expand), errTooLarge, "expands too far: more than"},
		{"object twice", context.Background(), craftPack(2, small, small), errPackMalformed, "appears twice"},
		{"cancelled", cancelled, craftPack(2, blob, craftEntry(plumbing.OFSDeltaObject, copyDelta(mib, 1, 1), ofsDistance(len(blob))...)), context.Canceled, "context canceled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, repo := emptyCacheRepo(t)
			err := writePackContext(tc.ctx, t, repo, dir, tc.pack)
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.wants) {
				t.Fatalf("error %v, want %v with %q", err, tc.is, tc.wants)
			}
			if got := packFiles(t, dir); len(got) != 0 {
				t.Errorf("left in the pack directory: %v", got)
			}
		})
	}
}

// peakHeap runs f and returns the largest live heap seen meanwhile, the GC
// kept close behind.
func peakHeap(f func()) uint64 {
	old := debug.SetGCPercent(10)
	defer debug.SetGCPercent(old)
	runtime.GC()
	var peak atomic.Uint64
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > peak.Load() {
				peak.Store(m.HeapAlloc)
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	f()
	close(stop)
	<-done
	return peak.Load()
}

// combPack crafts a chain of n versions of a size-byte blob in which every
// version also has a leaf delta. With the chain's next link first in the
// pack, every version waits for its leaf while the chain goes on.
func combPack(size, n int, chainFirst bool) []byte {
	entries := [][]byte{craftEntry(plumbing.BlobObject, make([]byte, size))}
	off, baseOff, baseSize := 12+len(entries[0]), 12, size
	for i := 1; i <= n; i++ {
		next, leaf := copyDelta(baseSize, 1, byte(i)), copyDelta(baseSize, 1, ^byte(i))
		order := [][]byte{leaf, next}
		if chainFirst {
			order = [][]byte{next, leaf}
		}
		nextOff := off
		for j, d := range order {
			if j == 1 && !chainFirst {
				nextOff = off
			}
			e := craftEntry(plumbing.OFSDeltaObject, d, ofsDistance(off-baseOff)...)
			off += len(e)
			entries = append(entries, e)
		}
		baseOff, baseSize = nextOff, baseSize+1
	}
	return craftPack(uint32(len(entries)), entries...)
}

// TestPackWriterManyWaitingBases: however many bases wait for their
// deltas, those kept in memory stay within memBudget; the rest wait in
// temporary files, removed once done.
func TestPackWriterManyWaitingBases(t *testing.T) {
	for _, chainFirst := range []bool{false, true} {
		t.Run(fmt.Sprint("chain first ", chainFirst), func(t *testing.T) {
			pack := combPack(1<<20, 100, chainFirst)
			dir, repo := emptyCacheRepo(t)
			var err error
			peak := peakHeap(func() { err = writePack(t, repo, dir, pack) })
			if err != nil {
				t.Fatal(err)
			}
			// memBudget of bases, a delta and its result, the GC's slack.
			if peak > 40<<20 {
				t.Errorf("peak heap %d MiB for 201 objects of 1 MiB", peak>>20)
			}
			if got := packFiles(t, dir); len(got) != 2 {
				t.Errorf("pack directory holds %v, want the pack and its index", got)
			}
			gitOut(t, dir, "", "fsck", "--full", "--strict", "--no-dangling")
		})
	}
}

// FuzzPatch: the patcher that applies deltas to bases read at offsets
// agrees with go-git's PatchDelta, result and refusal alike, but for a
// delta whose sizes are cut off by its end, which go-git's in-memory
// patcher reads as zero and its streaming one (and ours) refuses.
func FuzzPatch(f *testing.F) {
	base := []byte("hello, world\n")
	f.Add(base, []byte{13, 14, 0x90, 12, 2, '!', '\n'})
	f.Add(base, []byte{13, 20, 0x90, 20})                                                              // past the base
	f.Add(base, []byte{13, 13, 0x91, 1, 12, 1, 'h'})                                                   // offset byte
	f.Add(base, []byte{13, 3, 0x90, 1, 0x90, 1, 0x90, 1})                                              // backwards, thrice
	f.Add(base, []byte{13, 2, 0x90, 1, 0x90, 1, 0x90, 1})                                              // more than the result
	f.Add(base, []byte{13, 1, 0x90, 1, 7})                                                             // trailing bytes
	f.Add(base, []byte{13, 1, 0})                                                                      // reserved command
	f.Add(bytes.Repeat([]byte{7}, 70000), []byte{0xf0, 0xa2, 4, 0x81, 0x80, 4, 0x80, 1, 'x'})          // size 0 is 64 KiB
	f.Add(base, []byte{0x8d, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0, 14, 0x90, 13, 1, '!'}) // ten-byte size
	f.Add(base, []byte{0x8d, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0, 14, 0x90, 13, 1, '!'})       // nine bytes
	f.Add(base, []byte{13, 0x80, 0x80, 0x80})                                                          // size cut off
	f.Fuzz(func(t *testing.T, base, delta []byte) {
		if len(base) == 0 || len(delta) < 4 {
			return // PatchDelta refuses these outright; git never makes them
		}
		want, wantErr := packfile.PatchDelta(base, delta)
		ix := &packIndexer{ctx: context.Background(), budget: 1 << 40}
		var got bytes.Buffer
		err := ix.patch(bytes.NewReader(base), int64(len(base)), patchCommand, bufio.NewReader(bytes.NewReader(delta)), func(size int64) (io.Writer, error) {
			if size > 1<<20 {
				return nil, errors.New("too large for the test")
			}
			return &got, nil
		})
		if err != nil && err.Error() == "too large for the test" {
			return
		}
		if err != nil && wantErr == nil && sizesCut(delta) {
			return // refused on purpose: go-git's streaming reader refuses it too
		}
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("patch: %v; PatchDelta: %v", err, wantErr)
		}
		if err == nil && !bytes.Equal(got.Bytes(), want) {
			t.Fatalf("patch gave %q, PatchDelta %q", got.Bytes(), want)
		}
	})
}

// TestPatchChargesCommands: a delta of many one-byte copies from far into a
// large base (read from a file at each copy's offset, never again from its
// start) is charged for every command, a system call each, so its time
// stays within the pack's budget however small the pack.
func TestPatchChargesCommands(t *testing.T) {
	const baseSize, commands = 8 << 20, 5000
	off := baseSize - 1
	d := binary.AppendUvarint(nil, baseSize)
	d = binary.AppendUvarint(d, commands)
	for range commands {
		d = append(d, 0x80|0x07|0x10, byte(off), byte(off>>8), byte(off>>16), 1)
	}
	blob := craftEntry(plumbing.BlobObject, append(make([]byte, baseSize-1), 7))
	pack := craftPack(2, blob, craftEntry(plumbing.OFSDeltaObject, d, ofsDistance(len(blob))...))

	ix := &packIndexer{ctx: context.Background(), f: tempFile(t, pack), tmpDir: t.TempDir()}
	if err := ix.scan(); err != nil {
		t.Fatal(err)
	}
	ix.sc = packfile.NewScanner(ix.f)
	before := ix.budget
	if err := ix.resolve(); err != nil {
		t.Fatal(err)
	}
	if want := plumbing.ComputeHash(plumbing.BlobObject, bytes.Repeat([]byte{7}, commands)); ix.entries[1].hash != want {
		t.Errorf("result %s, want %s", ix.entries[1].hash, want)
	}
	if charged := before - ix.budget; charged < commands*patchCommandFile {
		t.Errorf("%d commands charged %d bytes, want at least %d", commands, charged, commands*patchCommandFile)
	}
	if ents, _ := os.ReadDir(ix.tmpDir); len(ents) != 0 {
		t.Errorf("temporary files left: %v", ents)
	}
}

// sizesCut says delta ends before its two sizes do.
func sizesCut(delta []byte) bool {
	r := bytes.NewReader(delta)
	for range 2 {
		for {
			b, err := r.ReadByte()
			if err != nil {
				return true
			}
			if b < 0x80 {
				break
			}
		}
	}
	return false
}

// FuzzIndexPack: whatever bytes a server sends, the writer refuses them
// and keeps nothing, or every object its index names reads back through
// go-git with content that hashes to that name.
func FuzzIndexPack(f *testing.F) {
	blob := craftEntry(plumbing.BlobObject, []byte("hello, world\n"))
	base := plumbing.ComputeHash(plumbing.BlobObject, []byte("hello, world\n"))
	ref := craftEntry(plumbing.REFDeltaObject, []byte{13, 14, 0x90, 12, 2, '!', '\n'}, base[:]...)
	f.Add(craftPack(1, blob))
	f.Add(craftPack(2, ref, blob))
	f.Add(craftPack(2, blob, craftEntry(plumbing.OFSDeltaObject, []byte{13, 14, 0x90, 12, 2, '!', '\n'}, byte(len(blob)))))
	chain, _ := chainPack(300, 6, false)
	f.Add(chain)
	chain, _ = chainPack(200, 4, true)
	f.Add(chain)
	f.Fuzz(func(t *testing.T, pack []byte) {
		if len(pack) == 0 || len(pack) > 1<<20 {
			return // nothing written is go-git's to report
		}
		dir, repo := emptyCacheRepo(t)
		if err := writePack(t, repo, dir, pack); err != nil {
			if got := packFiles(t, dir); len(got) != 0 {
				t.Fatalf("refused (%v) but left %v", err, got)
			}
			return
		}
		entries, err := readIndex(t, filepath.Join(dir, "objects", "pack", packIndex(t, dir))).Entries()
		if err != nil {
			t.Fatal(err)
		}
		for {
			e, err := entries.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			obj, err := repo.Storer.EncodedObject(plumbing.AnyObject, e.Hash)
			if err != nil {
				t.Fatalf("indexed %s, go-git cannot find it: %v", e.Hash, err)
			}
			rc, err := obj.Reader()
			if err != nil {
				t.Fatalf("indexed %s, go-git cannot read it: %v", e.Hash, err)
			}
			h := plumbing.NewHasher(obj.Type(), obj.Size())
			_, err = io.Copy(h, rc)
			rc.Close()
			if err != nil || h.Sum() != e.Hash {
				t.Fatalf("indexed %s, go-git reads %s (%v)", e.Hash, h.Sum(), err)
			}
		}
	})
}
