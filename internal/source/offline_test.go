package source

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/idxfile"

	"github.com/xtraefik/xtraefik/internal/testenv"
)

func newOfflineFetcher(t testing.TB, cache string) *Fetcher {
	t.Helper()
	f, err := New(Options{CacheDir: cache, Auth: FromEnv(noEnv), Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestOffline fills a cache online, then reads it offline: the same files,
// no request to the server, and ErrNotCached, with a message naming the
// commit or ref and the remote, for all the cache cannot answer.
func TestOffline(t *testing.T) {
	p, srv, u := demoHTTP(t)
	cache := t.TempDir()
	ctx := context.Background()
	online, err := newFetcher(t, cache).Tree(ctx, u, p.ReleaseCommit)
	if err != nil {
		t.Fatal(err)
	}
	later := p.Repo.Commit("after the cache was filled")
	before := srv.Requests()

	f := newOfflineFetcher(t, cache)
	tree, err := f.Tree(ctx, u, p.ReleaseCommit)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := mustHash(t, tree.Files), mustHash(t, online.Files); got != want || !tree.Time.Equal(online.Time) || tree.Commit != online.Commit {
		t.Errorf("offline tree %s %v %s, online %s %v %s", got, tree.Time, tree.Commit, want, online.Time, online.Commit)
	}
	for _, tc := range []struct {
		name string
		call func() error
		want string
	}{
		{"uncached commit", func() error { _, err := f.Tree(ctx, u, later); return err },
			"commit " + later + " of " + u + " is not in the cache (offline)"},
		{"resolve", func() error { _, err := f.Resolve(ctx, u, "main"); return err },
			"main of " + u + " cannot be resolved offline: only the remote knows what it points to now"},
		{"resolve a cached commit", func() error { _, err := f.Resolve(ctx, u, p.ReleaseCommit); return err },
			p.ReleaseCommit + " of " + u + " cannot be resolved offline: only the remote knows what it points to now"},
		{"list tags", func() error { _, err := f.ListTags(ctx, u); return err },
			"tags of " + u + " cannot be listed offline: only the remote knows its tags now"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if !errors.Is(err, ErrNotCached) || err.Error() != tc.want {
				t.Errorf("err = %v, want ErrNotCached saying %q", err, tc.want)
			}
		})
	}
	if n := srv.Requests(); n != before {
		t.Errorf("offline Fetcher made %d requests", n-before)
	}
	// With the server gone, the cached commit is still there.
	srv.Stop()
	if tree, err := newOfflineFetcher(t, cache).Tree(ctx, u, p.HeadCommit); err != nil || tree.Commit != p.HeadCommit {
		t.Errorf("offline Tree of the cached head with the server stopped: %v", err)
	}
}

// TestOfflineEmptyCache: nothing cached, nothing written.
func TestOfflineEmptyCache(t *testing.T) {
	parent := t.TempDir()
	cache := filepath.Join(parent, "cache")
	f := newOfflineFetcher(t, cache)
	const u = "https://git.example.test/team/plugin.git"
	commit := strings.Repeat("ab", 20)
	_, err := f.Tree(context.Background(), "https://bob:hunter2@git.example.test/team/plugin.git", commit)
	if want := "commit " + commit + " of " + u + " is not in the cache (offline)"; !errors.Is(err, ErrNotCached) || err.Error() != want {
		t.Errorf("err = %v, want ErrNotCached saying %q", err, want)
	}
	if ents, err := os.ReadDir(parent); err != nil || len(ents) != 0 {
		t.Errorf("offline Fetcher wrote a cache: %v %v", ents, err)
	}
}

// damageRepo damages the cache repository of u in the way named; "blob
// damaged" garbles the compressed data of the object blob only.
func damageRepo(t *testing.T, f *Fetcher, u, how, blob string) {
	t.Helper()
	r, err := parseRemote(u)
	if err != nil {
		t.Fatal(err)
	}
	dir := f.repoDir(r)
	packs, err := filepath.Glob(filepath.Join(dir, "objects", "pack", "*.pack"))
	if err != nil || len(packs) == 0 {
		t.Fatalf("no pack in %s: %v", dir, err)
	}
	for _, p := range packs {
		switch how {
		case "truncated pack":
			err = os.Truncate(p, 12) // the header only: the index still lists every object
		case "zeroed pack":
			var fi os.FileInfo
			if fi, err = os.Stat(p); err == nil {
				b, _ := os.ReadFile(p)
				copy(b[12:], make([]byte, fi.Size()-12))
				err = os.WriteFile(p, b, 0o600)
			}
		case "pack removed":
			err = os.Remove(p)
		case "index damaged":
			err = os.WriteFile(strings.TrimSuffix(p, ".pack")+".idx", []byte("not an index"), 0o600)
		case "blob damaged":
			off := packOffset(t, strings.TrimSuffix(p, ".pack")+".idx", blob)
			b, _ := os.ReadFile(p)
			// Past the object header and the zlib header: deflate data.
			copy(b[off+8:off+40], bytes.Repeat([]byte{0xff}, 32))
			err = os.WriteFile(p, b, 0o600)
		default:
			t.Fatalf("unknown damage %q", how)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestDamagedCache: a cache repository whose objects cannot be read is
// reported offline, and replaced by a fresh fetch online.
func TestDamagedCache(t *testing.T) {
	p, srv, u := demoHTTP(t)
	want := moduleHash(t)
	ctx := context.Background()
	// A blob larger than an LFS pointer, which Tree reads through only to
	// find damage.
	license := p.Repo.Git("rev-parse", p.ReleaseCommit+":LICENSE")
	for _, how := range []string{"truncated pack", "zeroed pack", "pack removed", "index damaged", "blob damaged"} {
		t.Run(how, func(t *testing.T) {
			cache := t.TempDir()
			f := newFetcher(t, cache)
			if _, err := f.Tree(ctx, u, p.ReleaseCommit); err != nil {
				t.Fatal(err)
			}
			damageRepo(t, f, u, how, license)

			before := srv.Requests()
			_, err := newOfflineFetcher(t, cache).Tree(ctx, u, p.ReleaseCommit)
			prefix := "commit " + p.ReleaseCommit + " of " + u + " is not in the cache (offline)"
			if how != "pack removed" {
				// go-git reads the packs present: without its pack, the
				// commit is simply not cached.
				prefix += ": cache repository " + f.repoDir(mustRemote(t, u)) + " is damaged: "
			}
			if !errors.Is(err, ErrNotCached) || !strings.HasPrefix(err.Error(), prefix) || strings.Contains(err.Error(), "\n") || (how == "pack removed" && err.Error() != prefix) {
				t.Errorf("offline: err = %v, want one line of ErrNotCached starting %q", err, prefix)
			}
			if n := srv.Requests(); n != before {
				t.Errorf("offline Fetcher made %d requests", n-before)
			}

			tree, err := newFetcher(t, cache).Tree(ctx, u, p.ReleaseCommit)
			if err != nil {
				t.Fatalf("online Tree of a damaged cache: %v", err)
			}
			if got := mustHash(t, tree.Files); got != want {
				t.Errorf("refetched tree hash %s, want %s", got, want)
			}
			if srv.Requests() == before {
				t.Error("the damaged repository was not fetched again")
			}
			if _, err := newOfflineFetcher(t, cache).Tree(ctx, u, p.EarlyCommit); err != nil {
				t.Errorf("offline after the repair: %v", err)
			}
			if res, err := newFetcher(t, cache).Resolve(ctx, u, demoVersion); err != nil || res.Commit != p.ReleaseCommit {
				t.Errorf("Resolve after the repair = %+v, %v", res, err)
			}
			assertNoDebris(t, cache)
		})
	}
}

// TestDamagedStreamedBlob: a blob the walk streams from the pack (over
// streamObject, so never decoded whole) is checked as it streams: damage
// in its compressed data is reported offline and fetched afresh online.
func TestDamagedStreamedBlob(t *testing.T) {
	r := testenv.NewRepo(t, filepath.Join(t.TempDir(), "streamed"))
	data := make([]byte, 4*streamObject)
	for i := range data {
		data[i] = byte(i*7 + i>>5 + i>>11) // compresses, but not to nothing
	}
	r.WriteFile("data.bin", string(data))
	r.WriteFile("main.go", "package main\n")
	commit := r.Commit("streamed")
	blob := r.Git("rev-parse", commit+":data.bin")
	u := "file://" + r.Dir
	cache := t.TempDir()
	ctx := context.Background()
	f := newFetcher(t, cache)
	if _, err := f.Tree(ctx, u, commit); err != nil {
		t.Fatal(err)
	}
	damageRepo(t, f, u, "blob damaged", blob)

	_, err := newOfflineFetcher(t, cache).Tree(ctx, u, commit)
	if !errors.Is(err, ErrNotCached) || !strings.Contains(err.Error(), "is damaged: ") || !strings.Contains(err.Error(), "data.bin") {
		t.Fatalf("offline Tree of a damaged streamed blob: %v; want ErrNotCached naming data.bin", err)
	}
	tree, err := newFetcher(t, cache).Tree(ctx, u, commit)
	if err != nil {
		t.Fatalf("online Tree of a damaged streamed blob: %v", err)
	}
	if got := readFile(t, tree.Files, "data.bin"); got != string(data) {
		t.Errorf("data.bin after the repair: %d bytes, not the committed ones", len(got))
	}
}

// packOffset is the offset of object h in the pack of index idx.
func packOffset(t testing.TB, idx, h string) int64 {
	t.Helper()
	off, err := readIndex(t, idx).FindOffset(plumbing.NewHash(h))
	if err != nil {
		t.Fatalf("object %s in %s: %v", h, idx, err)
	}
	return off
}

// readIndex decodes the pack index at path.
func readIndex(t testing.TB, path string) *idxfile.MemoryIndex {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mi := idxfile.NewMemoryIndex()
	if err := idxfile.NewDecoder(f).Decode(mi); err != nil {
		t.Fatal(err)
	}
	return mi
}

func mustRemote(t testing.TB, u string) remote {
	t.Helper()
	r, err := parseRemote(u)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// assertNoDebris checks that no damaged repository or half-made one is
// left beside the cache repositories.
func assertNoDebris(t *testing.T, cache string) {
	t.Helper()
	ents, err := os.ReadDir(cache)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("left over: %s", e.Name())
		}
	}
}

// TestDamagedCacheResolve: Resolve on a damaged cache repository repairs
// it too.
func TestDamagedCacheResolve(t *testing.T) {
	p, _, u := demo(t)
	ctx := context.Background()
	for _, how := range []string{"truncated pack", "zeroed pack", "pack removed", "index damaged"} {
		t.Run(how, func(t *testing.T) {
			f := newFetcher(t, "")
			if _, err := f.Resolve(ctx, u, demoVersion); err != nil {
				t.Fatal(err)
			}
			damageRepo(t, f, u, how, "")
			if res, err := f.Resolve(ctx, u, demoVersion); err != nil || res.Commit != p.ReleaseCommit {
				t.Fatalf("Resolve on a damaged cache = %+v, %v", res, err)
			}
			if _, err := f.Tree(ctx, u, p.ReleaseCommit); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestDamagedCacheConcurrent: fetchers of "different processes" meet one
// damaged repository at once; all end with the right files.
func TestDamagedCacheConcurrent(t *testing.T) {
	p, _, u := demo(t)
	cache := t.TempDir()
	if _, err := newFetcher(t, cache).Tree(context.Background(), u, p.ReleaseCommit); err != nil {
		t.Fatal(err)
	}
	damageRepo(t, newFetcher(t, cache), u, "truncated pack", "")
	want := moduleHash(t)
	var wg sync.WaitGroup
	errs := make([]error, 6)
	hashes := make([]string, 6)
	for i := range errs {
		wg.Go(func() {
			f, err := New(Options{CacheDir: cache, Auth: FromEnv(noEnv)})
			if err != nil {
				errs[i] = err
				return
			}
			tree, err := f.Tree(context.Background(), u, p.ReleaseCommit)
			if err != nil {
				errs[i] = err
				return
			}
			hashes[i], errs[i] = tree.Files.Hash()
		})
	}
	wg.Wait()
	for i := range errs {
		if errs[i] != nil || hashes[i] != want {
			t.Errorf("fetcher %d: %s, %v; want %s", i, hashes[i], errs[i], want)
		}
	}
	assertNoDebris(t, cache)
}

// TestMirrorKeepsTheRemotesCache: the cache is keyed by the remote's own
// URL, whichever mirror served it. Filled through a mirror (the remote's
// own host never resolves), an offline Fetcher told of no mirror reads the
// commit; filled from the remote itself, an offline Fetcher with a mirror
// reads it too. A cache repository an older xtraefik keyed by the mirror's
// URL is a miss, not an error.
func TestMirrorKeepsTheRemotesCache(t *testing.T) {
	p, srv, mirrorURL := demo(t)
	const origin = "https://git.invalid/traefik/plugindemo.git"
	toMirror := func(string) string { return mirrorURL }
	ctx := context.Background()

	cache := t.TempDir()
	through, err := New(Options{CacheDir: cache, Auth: FromEnv(noEnv), Mirror: toMirror})
	if err != nil {
		t.Fatal(err)
	}
	rv, err := through.Resolve(ctx, origin, demoVersion)
	if err != nil || rv.Commit != p.ReleaseCommit {
		t.Fatalf("resolve through the mirror: %v %v", rv, err)
	}
	online, err := through.Tree(ctx, origin, rv.Commit)
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	tree, err := newOfflineFetcher(t, cache).Tree(ctx, origin, rv.Commit)
	if err != nil {
		t.Fatalf("offline without the mirror after a build through it: %v", err)
	}
	if mustHash(t, tree.Files) != mustHash(t, online.Files) || tree.Commit != online.Commit {
		t.Error("offline tree differs from the one fetched through the mirror")
	}
	// Online, the cached commit needs neither the remote nor the mirror.
	if _, err := newFetcher(t, cache).Tree(ctx, origin, rv.Commit); err != nil {
		t.Errorf("online, cached, with the server gone: %v", err)
	}

	// The other way: filled from the remote itself, read offline through
	// a mirror that does not exist.
	p2, _, remoteURL := demo(t)
	cache2 := t.TempDir()
	if _, err := newFetcher(t, cache2).Tree(ctx, remoteURL, p2.ReleaseCommit); err != nil {
		t.Fatal(err)
	}
	viaMirror, err := New(Options{CacheDir: cache2, Auth: FromEnv(noEnv), Offline: true, Mirror: func(string) string { return "git://mirror.invalid/plugindemo" }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := viaMirror.Tree(ctx, remoteURL, p2.ReleaseCommit); err != nil {
		t.Errorf("offline with a mirror after a build from the remote: %v", err)
	}

	// A cache keyed by the mirror's URL (as xtraefik wrote it before):
	// offline, a miss naming the remote.
	p3, _, oldMirror := demo(t)
	cache3 := t.TempDir()
	if _, err := newFetcher(t, cache3).Tree(ctx, oldMirror, p3.ReleaseCommit); err != nil {
		t.Fatal(err)
	}
	old, err := New(Options{CacheDir: cache3, Auth: FromEnv(noEnv), Offline: true, Mirror: func(string) string { return oldMirror }})
	if err != nil {
		t.Fatal(err)
	}
	_, err = old.Tree(ctx, origin, p3.ReleaseCommit)
	if want := "commit " + p3.ReleaseCommit + " of " + origin + " is not in the cache (offline)"; !errors.Is(err, ErrNotCached) || err.Error() != want {
		t.Errorf("a cache keyed by the mirror: %v, want %q", err, want)
	}
}

// TestBufferedIdx: a pack index opened to read objects is read through a
// buffer; reads and seeks (from the current position too) give the
// file's bytes, and other files are opened as they are.
func TestBufferedIdx(t *testing.T) {
	dir := t.TempDir()
	content := make([]byte, 100_000)
	for i := range content {
		content[i] = byte(i * 31)
	}
	for _, name := range []string{"pack.idx", "pack.pack"} {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	fsys := bufferedIdx{osfs.New(dir)}
	if f, err := fsys.Open("pack.pack"); err != nil {
		t.Fatal(err)
	} else if _, ok := f.(*bufferedFile); ok {
		t.Error("a pack file is read through the index buffer")
	} else {
		f.Close()
	}
	f, err := fsys.Open("pack.idx")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, ok := f.(*bufferedFile); !ok {
		t.Fatalf("the index is opened as %T, not buffered", f)
	}
	read := func(n int) []byte {
		b := make([]byte, n)
		if _, err := io.ReadFull(f, b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	at := func(off int64) {
		t.Helper()
		if got, want := read(10), content[off:off+10]; !bytes.Equal(got, want) {
			t.Fatalf("at %d: %v, want %v", off, got, want)
		}
	}
	at(0)
	if n, err := f.Seek(5, io.SeekCurrent); err != nil || n != 15 {
		t.Fatalf("Seek(5, current) = %d, %v; want 15", n, err)
	}
	at(15)
	if n, err := f.Seek(50_000, io.SeekStart); err != nil || n != 50_000 {
		t.Fatalf("Seek(50000, start) = %d, %v", n, err)
	}
	at(50_000)
	if rest, err := io.ReadAll(f); err != nil || !bytes.Equal(rest, content[50_010:]) {
		t.Fatalf("the rest: %d bytes, %v", len(rest), err)
	}
}
