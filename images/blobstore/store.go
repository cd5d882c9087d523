// Package blobstore keeps registry blobs (manifests, configs, layers) on disk
// by digest, so that a rebuild reads its base without the registry and an OCI
// layout output links the blobs instead of copying them.
//
// Nothing read from the store is trusted: small blobs are hashed on every
// read, and a large blob is hashed again whenever its file is not the one
// the store last verified (size, inode, mtime or ctime differ), and checked
// again by every reader that streams it. An output's hard link shares the
// blob's inode, so an edit through it (as root, or after a chmod; size and
// mtime kept) changes the store's file too: the ctime it cannot help moving
// makes the next use hash the blob, which is then removed and fetched again.
// A blob that fails is removed, so the caller fetches it again. Writers go
// through a temporary file renamed into place, so concurrent processes
// sharing a store see a whole blob or none.
package blobstore

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/xtraefik/xtraefik/internal/place"
	"github.com/xtraefik/xtraefik/internal/private"
)

// ErrNotFound marks a blob the store does not hold (or held damaged).
var ErrNotFound = errors.New("not in the cache")

// blobMode is every blob's: readable by all (an output may link it), and
// written by nobody, so that a tool editing a layout output in place fails
// rather than changing the cached blob through the link.
const blobMode = 0o444

// MaxSmall bounds a blob read whole (manifests, configs).
const MaxSmall = 16 << 20

// Store is a directory of blobs: <dir>/sha256/<hex>, with <hex>.ok beside
// each verified one recording the file it verified, and records (Ref) in
// <dir>/refs.
type Store struct {
	dir string
	// secret seals the records: nil keeps none.
	secret []byte
}

// WithSecret returns the store keeping records (Ref, SetRef) sealed with
// secret. A record says which blob was made from what, which no digest
// can check: a cache directory restored from elsewhere (a poisoned CI
// cache) must not be able to plant one.
func (s *Store) WithSecret(secret []byte) *Store {
	c := *s
	c.secret = append([]byte(nil), secret...)
	return &c
}

// Open opens (creating it 0700 if needed) the store in dir, which must be
// private: whoever else could write there could stamp a planted blob as
// verified and have it linked into an output.
func Open(dir string) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("blob cache %s: %w", dir, err)
	}
	for _, d := range []string{abs, filepath.Join(abs, "sha256")} {
		if err := private.MkdirAll(d); err != nil {
			return nil, fmt.Errorf("blob cache %s: %w", d, err)
		}
	}
	return &Store{dir: abs}, nil
}

// stat describes the blob file at p; anything but a regular file (a
// symlink planted in the store) is not a blob.
func stat(p string) (fs.FileInfo, error) {
	fi, err := os.Lstat(p)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fs.ErrNotExist
	}
	return fi, nil
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) path(h v1.Hash) (string, error) {
	if h.Algorithm != "sha256" || len(h.Hex) != 64 || strings.Trim(h.Hex, "0123456789abcdef") != "" {
		return "", fmt.Errorf("blob %s: only sha256 digests are cached", h)
	}
	return filepath.Join(s.dir, "sha256", h.Hex), nil
}

// Has reports whether a blob is present (not whether it is intact).
func (s *Store) Has(h v1.Hash) bool {
	p, err := s.path(h)
	if err != nil {
		return false
	}
	_, err = stat(p)
	return err == nil
}

// Get returns a small blob, hashed as it is read; a damaged one is removed
// and reported as ErrNotFound.
func (s *Store) Get(h v1.Hash) ([]byte, error) {
	p, err := s.path(h)
	if err != nil {
		return nil, err
	}
	if _, err := stat(p); err != nil {
		return nil, fmt.Errorf("blob %s: %w", h, ErrNotFound)
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blob %s: %w", h, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxSmall+1))
	f.Close()
	if err != nil {
		return nil, err
	}
	if len(data) > MaxSmall || digestOf(data) != h {
		s.remove(h)
		return nil, fmt.Errorf("blob %s: damaged in the cache, removed: %w", h, ErrNotFound)
	}
	s.touch(p)
	return data, nil
}

// Put stores a small blob after checking it has digest h.
func (s *Store) Put(h v1.Hash, data []byte) error {
	p, err := s.path(h)
	if err != nil {
		return err
	}
	if digestOf(data) != h {
		return fmt.Errorf("blob %s: content has digest %s", h, digestOf(data))
	}
	if s.Has(h) {
		return nil
	}
	if err := place.WriteFile(p, data, blobMode); err != nil {
		return fmt.Errorf("cache blob %s: %w", h, err)
	}
	return nil
}

// Open returns a large blob for reading. The file is hashed first unless it
// is the file the store verified last; the reader hashes again as it goes
// and fails at the end if the content is not h after all.
func (s *Store) Open(h v1.Hash) (io.ReadCloser, error) {
	p, err := s.Verify(h)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blob %s: %w", h, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	return &verifying{r: f, c: f, h: sha256.New(), want: h}, nil
}

// Stamped reports whether blob h's file is the one the store verified
// last, so that its next use will not hash it.
func (s *Store) Stamped(h v1.Hash) bool {
	p, err := s.path(h)
	if err != nil {
		return false
	}
	fi, err := stat(p)
	if err != nil {
		return false
	}
	stamp, err := os.ReadFile(p + ".ok")
	return err == nil && string(stamp) == stampOf(fi)
}

// Verify makes sure the blob is present and intact, hashing it unless the
// file is the one verified last, and returns its path. A damaged blob is
// removed (ErrNotFound).
func (s *Store) Verify(h v1.Hash) (string, error) {
	p, _, err := s.verify(h)
	return p, err
}

// verify is Verify also returning the file as it was verified; fi is nil
// when the file changed while it was hashed (its content was h, but what
// it holds now is not known).
func (s *Store) verify(h v1.Hash) (p string, fi fs.FileInfo, _ error) {
	p, err := s.path(h)
	if err != nil {
		return "", nil, err
	}
	fi, err = stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil, fmt.Errorf("blob %s: %w", h, ErrNotFound)
	}
	if err != nil {
		return "", nil, err
	}
	if stamp, err := os.ReadFile(p + ".ok"); err == nil && string(stamp) == stampOf(fi) {
		s.touch(p + ".ok")
		return p, fi, nil
	}
	got, err := hashFile(p)
	if err != nil {
		return "", nil, err
	}
	if got != h {
		s.remove(h)
		return "", nil, fmt.Errorf("blob %s: damaged in the cache (content is %s), removed: %w", h, got, ErrNotFound)
	}
	// Stamp the file just hashed: if it changed meanwhile, the stamp will
	// not match it and the next reader hashes again. A store that cannot
	// be written (a read-only, seeded cache) is hashed on every use.
	stampFile(p, fi)
	if after, err := stat(p); err != nil || stampOf(after) != stampOf(fi) {
		return p, nil, nil
	}
	return p, fi, nil
}

// Writer returns a writer that stores what is written as blob h once it is
// closed with exactly that content; Abort drops it.
func (s *Store) Writer(h v1.Hash) (*Writer, error) {
	p, err := s.path(h)
	if err != nil {
		return nil, err
	}
	t, err := place.NewTemp(filepath.Dir(p), ".tmp-"+h.Hex[:12]+"-*")
	if err != nil {
		return nil, fmt.Errorf("cache blob %s: %w", h, err)
	}
	return &Writer{t: t, h: sha256.New(), want: h, dest: p}, nil
}

// Writer fills one blob (see Store.Writer).
type Writer struct {
	t    *place.Temp
	h    hash.Hash
	want v1.Hash
	dest string
	n    int64
	done bool
}

func (w *Writer) Write(p []byte) (int, error) {
	w.h.Write(p)
	w.n += int64(len(p))
	return w.t.Write(p)
}

// Commit renames the blob into place if its content is the digest it was
// opened for; otherwise it is dropped and Commit says why.
func (w *Writer) Commit() error {
	if w.done {
		return nil
	}
	w.done = true
	got := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(w.h.Sum(nil))}
	if got != w.want {
		w.t.Abort()
		return fmt.Errorf("blob %s: received content with digest %s (%d bytes)", w.want, got, w.n)
	}
	if err := w.t.Commit(w.dest, blobMode); err != nil {
		return err
	}
	restampFile(w.dest)
	return nil
}

// Abort drops a blob not completely received.
func (w *Writer) Abort() {
	if !w.done {
		w.done = true
		w.t.Abort()
	}
}

// Link puts blob h at dst, read-only (0444): a copy-on-write clone where the
// filesystem has them (a file of its own), else a hard link, else a copy. The
// blob is verified first. A hard link shares the store's inode with the
// output: the stamp's ctime is what makes an edit through it seen (see the
// package comment), and the link itself, which moves the ctime, is stamped
// only if nothing else changed the file.
func (s *Store) Link(h v1.Hash, dst string) error {
	p, fi, err := s.verify(h)
	if err != nil {
		return err
	}
	if err := reflink(p, dst); err == nil {
		if err := os.Chmod(dst, blobMode); err != nil {
			os.Remove(dst)
			return err
		}
		return nil
	}
	if hardLinks && fi != nil {
		if err := os.Link(p, dst); err == nil {
			if s.restampAfter(p, fi, 1) {
				return nil
			}
			// Something besides the link changed the file: what dst holds
			// was not verified.
			os.Remove(dst)
			return fmt.Errorf("blob %s: the cached file changed while it was linked", h)
		}
	}
	rc, err := s.Open(h)
	if err != nil {
		return err
	}
	defer rc.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, blobMode)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, rc)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(dst)
	}
	return err
}

// Release removes the files of an output's blob directory (blobs named by
// their hex digest, as in an OCI layout's blobs/sha256) that are hard links
// of this store's blobs, before the output itself is removed: removing a
// link moves the blob's ctime, and a blob whose stamp still described it
// just before is stamped again, so the next build does not hash it. Other
// files are left to the caller. Errors do not matter: a blob left
// unstamped is only hashed again.
func (s *Store) Release(blobsDir string) {
	entries, err := os.ReadDir(blobsDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		h := v1.Hash{Algorithm: "sha256", Hex: e.Name()}
		p, err := s.path(h)
		if err != nil || !e.Type().IsRegular() {
			continue
		}
		out := filepath.Join(blobsDir, e.Name())
		before, err := stat(p)
		if err != nil {
			continue
		}
		if ofi, err := os.Lstat(out); err != nil || !os.SameFile(before, ofi) {
			continue
		}
		stamp, _ := os.ReadFile(p + ".ok")
		verified := string(stamp) == stampOf(before)
		if err := os.Remove(out); err == nil && verified {
			s.restampAfter(p, before, -1)
		}
	}
}

// restampAfter stamps p again after the store added (delta 1) or removed
// (delta -1) one hard link to it, if the file is otherwise as verified in
// before: the same inode, size and mtime, and the link count moved by
// exactly delta. Otherwise the stamp is dropped and the next reader hashes
// the file. A write racing the link call itself cannot be told from the
// link (both move the ctime only); anything earlier is seen.
func (s *Store) restampAfter(p string, before fs.FileInfo, delta int) bool {
	after, err := stat(p)
	if err == nil && os.SameFile(before, after) && after.Size() == before.Size() &&
		after.ModTime().Equal(before.ModTime()) && after.Mode() == before.Mode() &&
		int64(linkCount(after)) == int64(linkCount(before))+int64(delta) {
		stampFile(p, after)
		return true
	}
	os.Remove(p + ".ok")
	return false
}

// restampFile records p as verified as it is now.
func restampFile(p string) {
	if fi, err := stat(p); err == nil {
		stampFile(p, fi)
	}
}

// racyWindow is how close to now a change may be and still be missed by
// a stamp where timestamps have whole seconds only: a file changed within
// it is not stamped there, so the next use hashes it again (git's
// racy-clean rule). Nanosecond timestamps need no such wait.
const racyWindow = 2 * time.Second

// stampFile records fi, the file at p that was just verified.
func stampFile(p string, fi fs.FileInfo) {
	m, c := fi.ModTime(), changeTime(fi)
	coarse := m.Nanosecond() == 0 && c.Nanosecond() == 0
	if coarse && (time.Since(m) < racyWindow || time.Since(c) < racyWindow) {
		return
	}
	_ = place.WriteFile(p+".ok", []byte(stampOf(fi)), 0o600)
}

func (s *Store) remove(h v1.Hash) {
	if p, err := s.path(h); err == nil {
		os.Remove(p)
		os.Remove(p + ".ok")
	}
}

// touch records a use, for Prune's age limit; failures do not matter.
func (s *Store) touch(p string) {
	now := time.Now()
	_ = os.Chtimes(p, now, now)
}

// verifying hashes what is read and fails at EOF unless it was want.
type verifying struct {
	r    io.Reader
	c    io.Closer
	h    hash.Hash
	want v1.Hash
}

func (v *verifying) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	if errors.Is(err, io.EOF) {
		if got := hex.EncodeToString(v.h.Sum(nil)); got != v.want.Hex {
			return n, fmt.Errorf("blob %s: the cached file changed while it was read (content is sha256:%s)", v.want, got)
		}
	}
	return n, err
}

func (v *verifying) Close() error { return v.c.Close() }

func digestOf(data []byte) v1.Hash {
	sum := sha256.Sum256(data)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}

func hashFile(p string) (v1.Hash, error) {
	f, err := os.Open(p)
	if err != nil {
		return v1.Hash{}, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return v1.Hash{}, err
	}
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}, nil
}

// Ref returns the record kept under name (see SetRef); ok is false when
// there is none, or none sealed with this store's secret.
func (s *Store) Ref(name string) (data []byte, ok bool) {
	p, err := s.refPath(name)
	if err != nil || s.secret == nil {
		return nil, false
	}
	if _, err := stat(p); err != nil {
		return nil, false
	}
	raw, err := os.ReadFile(p)
	if err != nil || len(raw) > MaxSmall {
		return nil, false
	}
	mac, data, found := bytes.Cut(raw, []byte("\n"))
	if !found || !hmac.Equal(mac, s.seal(name, data)) {
		// Forged, or sealed with another host key (a cache directory
		// another user or host wrote): not used, left alone.
		return nil, false
	}
	s.touch(p)
	return data, true
}

// SetRef keeps a small record under name (hex): what a blob was made
// from, for instance, so that it need not be made again. It is sealed
// with the store's secret; without one nothing is kept.
func (s *Store) SetRef(name string, data []byte) error {
	p, err := s.refPath(name)
	if err != nil || s.secret == nil {
		return err
	}
	if err := private.MkdirAll(filepath.Dir(p)); err != nil {
		return err
	}
	return place.WriteFile(p, append(append(s.seal(name, data), '\n'), data...), 0o600)
}

// seal is the hex HMAC-SHA256 of a record and its name.
func (s *Store) seal(name string, data []byte) []byte {
	m := hmac.New(sha256.New, s.secret)
	m.Write([]byte(name))
	m.Write([]byte{0})
	m.Write(data)
	return []byte(hex.EncodeToString(m.Sum(nil)))
}

func (s *Store) refPath(name string) (string, error) {
	if name == "" || len(name) > 128 || strings.Trim(name, "0123456789abcdef") != "" {
		return "", fmt.Errorf("blob cache record %q: want a hex name", name)
	}
	return filepath.Join(s.dir, "refs", name), nil
}
