package blobstore

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/xtraefik/xtraefik/internal/testenv"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func randomBlob(t *testing.T, n int) ([]byte, v1.Hash) {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b, digestOf(b)
}

// fill stores a large blob the way a registry read does: through a Writer.
func fill(t *testing.T, s *Store, data []byte, h v1.Hash) {
	t.Helper()
	w, err := s.Writer(h)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
}

func readAll(t *testing.T, s *Store, h v1.Hash) ([]byte, error) {
	t.Helper()
	rc, err := s.Open(h)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func TestSmallBlobs(t *testing.T) {
	s := newStore(t)
	data, h := randomBlob(t, 300)
	if _, err := s.Get(h); !errors.Is(err, ErrNotFound) {
		t.Fatalf("empty store: %v", err)
	}
	if err := s.Put(h, data[:10]); err == nil {
		t.Fatal("Put took content that is not the digest")
	}
	if err := s.Put(h, data); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(h)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Get: %v", err)
	}
	// Damaged on disk: detected by digest, removed, reported as missing.
	p, _ := s.path(h)
	if err := os.WriteFile(p, []byte("tampered"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(h); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("damaged blob: %v", err)
	}
	if s.Has(h) {
		t.Fatal("a damaged blob stayed in the store")
	}
}

func TestLargeBlobs(t *testing.T) {
	s := newStore(t)
	data, h := randomBlob(t, 1<<20)

	// A writer given other content keeps nothing.
	w, err := s.Writer(h)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data[1:])
	if err := w.Commit(); err == nil || !strings.Contains(err.Error(), "received content with digest") {
		t.Fatalf("wrong content committed: %v", err)
	}
	if s.Has(h) {
		t.Fatal("wrong content kept")
	}
	// A writer aborted half-way keeps nothing either.
	w, _ = s.Writer(h)
	w.Write(data[:100])
	w.Abort()
	if s.Has(h) {
		t.Fatal("partial content kept")
	}
	if left, _ := filepath.Glob(filepath.Join(s.Dir(), "sha256", ".tmp-*")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}

	fill(t, s, data, h)
	got, err := readAll(t, s, h)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Open: %v", err)
	}

	// An edit (here through a hard link, as a layout output shares the
	// file) changes the stamp: the blob is hashed again, found damaged and
	// removed.
	p, _ := s.path(h)
	link := filepath.Join(t.TempDir(), "layout-blob")
	if err := os.Link(p, link); err != nil {
		t.Skipf("no hard links here: %v", err)
	}
	f, err := os.OpenFile(link, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("X"), 4096)
	f.Close()
	if _, err := s.Open(h); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("blob edited through a link: %v", err)
	}
	if s.Has(h) {
		t.Fatal("a damaged blob stayed in the store")
	}
}

func TestVerifyOnlyWhenTheFileChanged(t *testing.T) {
	s := newStore(t)
	data, h := randomBlob(t, 4096)
	fill(t, s, data, h)
	p, _ := s.path(h)
	stamp, err := os.ReadFile(p + ".ok")
	if err != nil {
		t.Fatalf("a committed blob has no stamp: %v", err)
	}
	// A stamp that no longer describes the file makes Verify hash again
	// and write a new one; the content is still right, so the blob stays.
	if err := os.WriteFile(p+".ok", []byte("stale"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Verify(h); err != nil {
		t.Fatal(err)
	}
	again, _ := os.ReadFile(p + ".ok")
	if string(again) != string(stamp) {
		t.Fatalf("re-verified stamp %q, want %q", again, stamp)
	}
}

func TestLink(t *testing.T) {
	s := newStore(t)
	data, h := randomBlob(t, 64<<10)
	fill(t, s, data, h)
	out := t.TempDir()
	dst := filepath.Join(out, h.Hex)
	if err := s.Link(h, dst); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(dst)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("linked blob differs: %v", err)
	}
	if fi, err := os.Stat(dst); err != nil || fi.Mode().Perm() != blobMode {
		t.Errorf("the output's blob is %v, want read-only %v: %v", fi.Mode(), fs.FileMode(blobMode), err)
	}
	// Linking (a new hard link changes the ctime) leaves the blob stamped
	// as verified: the next build does not hash it again.
	p, _ := s.path(h)
	if !stamped(t, p) {
		t.Error("after Link the stamp no longer describes the file")
	}
	if err := s.Link(h, dst); err == nil {
		t.Fatal("Link replaced an existing file")
	}
	// Release (an --overwrite build removing the layout it replaces)
	// leaves the blob verified too, and removes the output's file.
	s.Release(out)
	if _, err := os.Lstat(dst); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Release left the output's link: %v", err)
	}
	if !stamped(t, p) {
		t.Error("after Release the stamp no longer describes the file")
	}
	// A link removed by someone else moves the ctime unseen: the next use
	// hashes the blob again (it is intact, so it stays and is stamped).
	if err := s.Link(h, dst); err != nil {
		t.Fatal(err)
	}
	os.Remove(dst)
	if hardLinks && !clones(t, p) && stamped(t, p) {
		t.Error("a link removed behind the store's back left the blob trusted without a hash")
	}
	if _, err := s.Verify(h); err != nil || !stamped(t, p) {
		t.Errorf("an intact blob after an outside removal: %v, stamped %v", err, stamped(t, p))
	}
	_, missing := randomBlob(t, 10)
	if err := s.Link(missing, filepath.Join(t.TempDir(), "x")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing blob: %v", err)
	}
}

// stamped reports whether p's stamp describes the file as it is now (the
// next Verify will not hash it).
func stamped(t *testing.T, p string) bool {
	t.Helper()
	return (&Store{dir: filepath.Dir(filepath.Dir(p))}).Stamped(v1.Hash{Algorithm: "sha256", Hex: filepath.Base(p)})
}

// clones reports whether the filesystem holding p makes copy-on-write
// clones: then Link gives every output a file of its own.
func clones(t *testing.T, p string) bool {
	t.Helper()
	return reflink(p, filepath.Join(t.TempDir(), "probe")) == nil
}

// TestEditThroughOutput: an output's blob edited in place, the edit
// hidden as well as a user can (the same size, the mtime set back; as
// root, or after a chmod, which moves the ctime too), is found by the
// store at its next use: hashed, refused as damaged and removed, so the
// caller fetches it again, and never linked into another output. Removing
// another output (Release) in between does not make the store trust the
// edited file again.
func TestEditThroughOutput(t *testing.T) {
	if !hardLinks {
		t.Skip("outputs get copies here")
	}
	s := newStore(t)
	data, h := randomBlob(t, 1<<20)
	fill(t, s, data, h)
	first, second := t.TempDir(), t.TempDir()
	for _, dir := range []string{first, second} {
		if err := s.Link(h, filepath.Join(dir, h.Hex)); err != nil {
			t.Fatal(err)
		}
	}
	p, _ := s.path(h)
	if clones(t, p) {
		t.Skip("the filesystem clones: no output shares the store's inode")
	}
	out := filepath.Join(first, h.Hex)
	testenv.EditInPlace(t, out, 4096, "X")

	s.Release(second) // the --overwrite of another layout
	if stamped(t, p) {
		t.Fatal("Release stamped a file edited through another link")
	}
	third := filepath.Join(t.TempDir(), h.Hex)
	if err := s.Link(h, third); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "damaged in the cache") {
		t.Fatalf("Link of a blob edited through an output: %v", err)
	}
	if _, err := os.Lstat(third); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the edited blob was placed in a new output: %v", err)
	}
	if s.Has(h) {
		t.Fatal("the edited blob stayed in the store")
	}
	// Fetched again, the store is whole, and the edited output holds its
	// own (unshared) inode.
	fill(t, s, data, h)
	if got, err := readAll(t, s, h); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("refetched blob: %v", err)
	}
	a, _ := os.Stat(out)
	b, _ := os.Stat(p)
	if os.SameFile(a, b) {
		t.Error("the edited output still shares the store's file")
	}

	// A chmod alone (the first step of an edit as a user) moves the ctime
	// and costs a hash; the intact blob stays.
	fourth := filepath.Join(t.TempDir(), h.Hex)
	if err := s.Link(h, fourth); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(fourth, 0o644); err != nil {
		t.Fatal(err)
	}
	if stamped(t, p) {
		t.Error("a chmod through an output left the stamp valid")
	}
	if _, err := s.Verify(h); err != nil {
		t.Fatalf("an intact blob after a chmod: %v", err)
	}
}

func TestConcurrentWriters(t *testing.T) {
	s := newStore(t)
	data, h := randomBlob(t, 256<<10)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			other, err := Open(s.Dir()) // as another process would
			if err != nil {
				t.Error(err)
				return
			}
			w, err := other.Writer(h)
			if err != nil {
				t.Error(err)
				return
			}
			for off := 0; off < len(data); off += 4096 {
				w.Write(data[off : off+4096])
			}
			if err := w.Commit(); err != nil {
				t.Error(err)
			}
			if got, err := readAll(t, other, h); err != nil || !bytes.Equal(got, data) {
				t.Errorf("reader beside writers: %v", err)
			}
		}()
	}
	wg.Wait()
}

func TestPrune(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name        string
		opts        PruneOptions
		wantRemoved []int // indexes into blobs, oldest first
	}{
		{"nothing asked", PruneOptions{}, nil},
		{"by age", PruneOptions{MaxAge: 36 * time.Hour}, []int{0, 1}},
		{"by size keeps the most recent", PruneOptions{MaxSize: 2499}, []int{0, 1}},
		{"by size, down to the newest", PruneOptions{MaxSize: 1400}, []int{0, 1, 2}},
		{"dry run", PruneOptions{MaxAge: time.Hour, DryRun: true}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			// Four blobs last used 3, 2, 1 and 0 days ago, 1000, 1000, 1000
			// and 500 bytes.
			var hs []v1.Hash
			for i, n := range []int{1000, 1000, 1000, 500} {
				data, h := randomBlob(t, n)
				fill(t, s, data, h)
				p, _ := s.path(h)
				used := now.Add(-time.Duration(3-i) * 24 * time.Hour)
				os.Chtimes(p, used, used)
				os.Chtimes(p+".ok", used, used)
				hs = append(hs, h)
			}
			tc.opts.Now = now
			res, err := s.Prune(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			removed := map[int]bool{}
			for _, i := range tc.wantRemoved {
				removed[i] = true
			}
			if tc.opts.DryRun && tc.opts.MaxAge > 0 && res.Removed != 3 {
				t.Errorf("dry run reports %d removals, want 3", res.Removed)
			}
			for i, h := range hs {
				if s.Has(h) == removed[i] {
					t.Errorf("blob %d (used %d days ago): present %v, want %v", i, 3-i, s.Has(h), !removed[i])
				}
			}
			if !tc.opts.DryRun && res.Removed != len(tc.wantRemoved) {
				t.Errorf("reported %d removed, want %d", res.Removed, len(tc.wantRemoved))
			}
		})
	}
}

// TestUntrustedStoreContent: a store directory others may write is refused,
// a symlink in it is no blob, and a stamp that cannot be written (a
// read-only, seeded store) costs a hash, not the build.
func TestUntrustedStoreContent(t *testing.T) {
	open := filepath.Join(t.TempDir(), "shared")
	if err := os.MkdirAll(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(open); err == nil || !strings.Contains(err.Error(), "writable by others") {
		t.Errorf("a world-writable store was opened: %v", err)
	}

	s := newStore(t)
	data, h := randomBlob(t, 4096)
	elsewhere := filepath.Join(t.TempDir(), "planted")
	if err := os.WriteFile(elsewhere, data, 0o644); err != nil {
		t.Fatal(err)
	}
	p, _ := s.path(h)
	if err := os.Symlink(elsewhere, p); err != nil {
		t.Fatal(err)
	}
	if s.Has(h) {
		t.Error("a symlink counts as a blob")
	}
	if _, err := s.Get(h); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get of a symlink: %v", err)
	}
	if err := s.Link(h, filepath.Join(t.TempDir(), "out")); !errors.Is(err, ErrNotFound) {
		t.Errorf("Link of a symlink: %v", err)
	}
	os.Remove(p)

	fill(t, s, data, h)
	os.Remove(p + ".ok")
	if err := os.Mkdir(p+".ok", 0o700); err != nil { // the stamp cannot be written
		t.Fatal(err)
	}
	if got, err := readAll(t, s, h); err != nil || !bytes.Equal(got, data) {
		t.Errorf("a store that cannot take stamps: %v", err)
	}
}

// BenchmarkOutputCycle measures what an OCI layout build costs per base
// layer the cache holds, in the steady state of `build --oci-layout DIR
// --overwrite` (the bench/cache.sh layout rows): the layer is placed in
// the new layout and the replaced layout's link is removed. Sizes: 57 MiB,
// the Traefik binary layer of bench/cache.sh. The other cases are what
// the alternatives would cost: "outside-removal" a removal the store does
// not see (the next use hashes the blob), "copy" a file of the output's
// own for every layout (io.Copy between files: copy_file_range on Linux).
func BenchmarkOutputCycle(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "blobs"))
	if err != nil {
		b.Fatal(err)
	}
	data := make([]byte, 57<<20)
	if _, err := rand.Read(data); err != nil {
		b.Fatal(err)
	}
	h := digestOf(data)
	w, err := s.Writer(h)
	if err != nil {
		b.Fatal(err)
	}
	w.Write(data)
	if err := w.Commit(); err != nil {
		b.Fatal(err)
	}
	p, _ := s.path(h)
	dir := b.TempDir()
	dst := filepath.Join(dir, h.Hex)
	b.Run("link-release", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if err := s.Link(h, dst); err != nil {
				b.Fatal(err)
			}
			s.Release(dir)
		}
	})
	b.Run("link-outside-removal", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if err := s.Link(h, dst); err != nil {
				b.Fatal(err)
			}
			os.Remove(dst)
		}
	})
	b.Run("copy", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			in, err := os.Open(p)
			if err != nil {
				b.Fatal(err)
			}
			out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, blobMode)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(out, in); err != nil {
				b.Fatal(err)
			}
			in.Close()
			out.Close()
			os.Remove(dst)
		}
	})
}
