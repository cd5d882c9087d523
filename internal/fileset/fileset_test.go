package fileset

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/xtraefik/xtraefik/internal/memstat"
)

func content(s string) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(s)), nil }
}

func reg(p, s string) File { return File{Path: p, Size: int64(len(s)), Open: content(s)} }

func TestNewRefusesEscapes(t *testing.T) {
	tests := []struct {
		name  string
		files []File
		want  string // "" = accepted
	}{
		{"plain", []File{reg("a.go", "x"), reg("sub/b.go", "y")}, ""},
		{"internal link", []File{reg("sub/b.go", "y"), {Path: "l", Kind: Symlink, Link: "sub/b.go"}}, ""},
		{"internal link up", []File{{Path: "sub/l", Kind: Symlink, Link: "../a.go"}}, ""},
		{"dotdot path", []File{reg("../a.go", "x")}, `"../a.go" has a ".." element`},
		{"dotdot element", []File{reg("a/../../b", "x")}, "not a clean relative path"},
		{"absolute", []File{reg("/etc/passwd", "x")}, "not a clean relative path"},
		{"link escapes", []File{{Path: "sub/l", Kind: Symlink, Link: "../../etc/passwd"}}, `symlink "sub/l" points to "../../etc/passwd", outside the plugin`},
		{"absolute link", []File{{Path: "l", Kind: Symlink, Link: "/etc/passwd"}}, "outside the plugin"},
		{"duplicate", []File{reg("a", "x"), reg("a", "y")}, `"a" appears twice`},
		{"escape through links", []File{{Path: "sub/x", Kind: Symlink, Link: ".."}, {Path: "y", Kind: Symlink, Link: "sub/x/.."}}, "leads outside the plugin (or loops) through other links"},
		{"link loop", []File{{Path: "a", Kind: Symlink, Link: "b"}, {Path: "b", Kind: Symlink, Link: "a/c"}}, "leads outside the plugin"},
		{"chain inside", []File{reg("d/f", "x"), {Path: "a", Kind: Symlink, Link: "d"}, {Path: "b", Kind: Symlink, Link: "a/f"}}, ""},
		{"below a file", []File{reg("a", "x"), reg("a/b", "y")}, `"a/b" is below "a", which is not a directory`},
		// Control characters: a newline would forge Hash lines, the others
		// reach terminals and tar headers; the Go module zip rules refuse all.
		{"newline", []File{reg("a.go\nb.go", "x")}, `"a.go\nb.go" holds the control character '\n'`},
		{"carriage return", []File{reg("a\r", "x")}, `holds the control character '\r'`},
		{"tab", []File{reg("a\tb", "x")}, `holds the control character '\t'`},
		{"escape", []File{reg("sub/\x1b[2Ja", "x")}, `holds the control character '\x1b'`},
		{"nul", []File{reg("a\x00", "x")}, `holds the control character '\x00'`},
		{"del", []File{reg("a\x7f", "x")}, `holds the control character '\x7f'`},
		{"unit separator", []File{reg("a\x1f", "x")}, `holds the control character '\x1f'`},
		{"newline in a directory", []File{reg("d\n/a", "x")}, "control character"},
		{"newline in a link", []File{reg("a", "x"), {Path: "l", Kind: Symlink, Link: "a\nb"}}, `symlink "l" points to "a\nb", which holds the control character '\n'`},
		{"utf-8 and space", []File{reg("é dir/ünï code.go", "x")}, ""},
		// y resolves above the root through sub/x; y/evil would be written there.
		{"below a symlink", []File{{Path: "sub/x", Kind: Symlink, Link: ".."}, {Path: "y", Kind: Symlink, Link: "sub/x/.."}, reg("y/evil", "x")}, `"y/evil" is below "y", which is not a directory`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.files)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
			if tt.name != "duplicate" && !errors.Is(err, ErrUnsafePath) {
				t.Errorf("error %v is not ErrUnsafePath", err)
			}
		})
	}
}

// TestHash: the hash covers paths, kinds and content, not order or host state.
func TestHash(t *testing.T) {
	a, _ := New([]File{reg("a", "1"), reg("b", "2")})
	b, _ := New([]File{reg("b", "2"), reg("a", "1")})
	ha, _ := a.Hash()
	hb, _ := b.Hash()
	if ha != hb || !strings.HasPrefix(ha, "sha256:") {
		t.Errorf("order changed the hash: %s %s", ha, hb)
	}
	for name, other := range map[string][]File{
		"content": {reg("a", "1"), reg("b", "3")},
		"path":    {reg("a", "1"), reg("c", "2")},
		"mode":    {reg("a", "1"), {Path: "b", Kind: Executable, Size: 1, Open: content("2")}},
	} {
		s, _ := New(other)
		if h, _ := s.Hash(); h == ha {
			t.Errorf("changing the %s kept the hash", name)
		}
	}
}

// TestHashOneLinePerEntry: one entry whose path holds a line break and the
// next entry's hash line would hash exactly like the two real entries; such
// a path is refused by New and by Hash, so the hash pins the files.
func TestHashOneLinePerEntry(t *testing.T) {
	honest, err := New([]File{reg("a.go", "package a\n"), reg("b.go", "package b\n")})
	if err != nil {
		t.Fatal(err)
	}
	want, err := honest.Hash()
	if err != nil {
		t.Fatal(err)
	}
	sumB := sha256.Sum256([]byte("package b\n"))
	forged := reg("a.go\n"+hex.EncodeToString(sumB[:])+" 644 b.go", "package a\n")
	if _, err := New([]File{forged}); !errors.Is(err, ErrUnsafePath) {
		t.Errorf("New accepted the forged entry: %v", err)
	}
	if got, err := (Set{forged}).Hash(); err == nil {
		t.Errorf("Hash of the forged entry = %s (the honest set's is %s), want an error", got, want)
	}
}

// TestFromDirRefusesControlCharacters: a working copy with a newline in a
// file name is refused, naming the file.
func TestFromDirRefusesControlCharacters(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.go\nb.go"), []byte("x"), 0o644); err != nil {
		t.Skipf("this file system refuses a newline in a name: %v", err)
	}
	_, err := FromDir(dir)
	if !errors.Is(err, ErrUnsafePath) || !strings.Contains(err.Error(), `"a.go\nb.go"`) {
		t.Errorf("FromDir: %v, want ErrUnsafePath naming \"a.go\\nb.go\"", err)
	}
}

// TestWriteDirFromDir: materialising under any umask gives the normalised modes,
// and reading back gives the same hash.
func TestWriteDirFromDir(t *testing.T) {
	s, err := New([]File{reg("a.go", "package a\n"), {Path: "bin/run", Kind: Executable, Size: 2, Open: content("#!")}, {Path: "link", Kind: Symlink, Link: "a.go"}})
	if err != nil {
		t.Fatal(err)
	}
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	dir := t.TempDir()
	if err := s.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{"a.go": 0o644, "bin/run": 0o755} {
		info, err := os.Stat(filepath.Join(dir, p))
		if err != nil || info.Mode().Perm() != want {
			t.Errorf("%s: mode %v (%v), want %v", p, info.Mode().Perm(), err, want)
		}
	}
	os.MkdirAll(filepath.Join(dir, ".git"), 0o755)
	os.WriteFile(filepath.Join(dir, ".git", "HEAD"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(dir, "bin", ".git"), []byte("gitdir: elsewhere"), 0o644)
	alias := filepath.Join(t.TempDir(), "alias")
	if err := os.Symlink(dir, alias); err != nil {
		t.Fatal(err)
	}
	back, err := FromDir(alias)
	if err != nil {
		t.Fatal(err)
	}
	h1, _ := s.Hash()
	h2, _ := back.Hash()
	if h1 != h2 {
		t.Errorf("round trip changed the hash (.git must be skipped): %v", back)
	}
	if f, ok := back.Lookup("link"); !ok || f.Kind != Symlink || f.Link != "a.go" {
		t.Errorf("Lookup(link) = %+v, %v", f, ok)
	}
}

// A directory that is not there is named in the error, as the user wrote it.
func TestFromDirMissingNamesIt(t *testing.T) {
	_, err := FromDir("no-such-plugin-dir")
	if err == nil || !strings.Contains(err.Error(), "read no-such-plugin-dir:") {
		t.Fatalf("err = %v", err)
	}
}

// writeBig writes size bytes of a pattern that depends on seed, 1 MiB at a time.
func writeBig(t *testing.T, p string, size int64, seed byte) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	for written := int64(0); written < size; {
		for i := range buf {
			buf[i] = byte(i) ^ seed ^ byte(written>>20)
		}
		n := min(int64(len(buf)), size-written)
		if _, err := f.Write(buf[:n]); err != nil {
			t.Fatal(err)
		}
		written += n
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func sha(t *testing.T, open func() (io.ReadCloser, error)) string {
	t.Helper()
	rc, err := open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	h := sha256.New()
	if _, err := io.Copy(h, rc); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestFromDirStreamsLargeFiles: a 64 MiB file is read, hashed and laid out
// without its content ever being on the heap, and what comes out is what
// went in.
func TestFromDirStreamsLargeFiles(t *testing.T) {
	const size = 64 << 20
	dir := t.TempDir()
	writeBig(t, filepath.Join(dir, "big.bin"), size, 1)
	os.WriteFile(filepath.Join(dir, "a.go"), []byte("package a\n"), 0o644)
	want := sha(t, func() (io.ReadCloser, error) { return os.Open(filepath.Join(dir, "big.bin")) })

	var s Set
	var err error
	if n := memstat.Allocated(func() { s, err = FromDir(dir) }); n > 4<<20 {
		t.Errorf("FromDir allocated %d bytes for a %d-byte file", n, size)
	}
	if err != nil {
		t.Fatal(err)
	}
	f, ok := s.Lookup("big.bin")
	if !ok || f.Size != size {
		t.Fatalf("big.bin: %+v, %v", f, ok)
	}
	if n := memstat.Allocated(func() { _, err = s.Hash() }); n > 4<<20 || err != nil {
		t.Errorf("Hash allocated %d bytes (%v)", n, err)
	}
	out := t.TempDir()
	if n := memstat.Allocated(func() { err = s.WriteDir(out) }); n > 4<<20 || err != nil {
		t.Errorf("WriteDir allocated %d bytes (%v)", n, err)
	}
	if got := sha(t, func() (io.ReadCloser, error) { return os.Open(filepath.Join(out, "big.bin")) }); got != want {
		t.Errorf("laid out big.bin has sha256 %s, want %s", got, want)
	}
	if got := sha(t, f.Open); got != want {
		t.Errorf("big.bin reads back as sha256 %s, want %s", got, want)
	}
}

// TestFromDirSpooledReadsOnce: a spooled file rewritten in place, truncated
// or swapped for a symlink after FromDir still reads as it was read.
func TestFromDirSpooledReadsOnce(t *testing.T) {
	const size = SpoolThreshold + 4096
	for _, change := range []string{"rewrite", "truncate", "symlink"} {
		t.Run(change, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "big.bin")
			writeBig(t, p, size, 1)
			want := sha(t, func() (io.ReadCloser, error) { return os.Open(p) })
			s, err := FromDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			switch change {
			case "rewrite": // same inode, same size, other bytes
				f, err := os.OpenFile(p, os.O_WRONLY, 0)
				if err != nil {
					t.Fatal(err)
				}
				f.WriteAt([]byte("EVIL"), 0)
				f.WriteAt([]byte("EVIL"), size-4)
				f.Close()
			case "truncate":
				os.Truncate(p, 10)
			case "symlink":
				secret := filepath.Join(t.TempDir(), "secret")
				writeBig(t, secret, size, 2)
				os.Remove(p)
				os.Symlink(secret, p)
			}
			if sha(t, func() (io.ReadCloser, error) { return os.Open(p) }) == want {
				t.Fatal("the change did not change the file")
			}
			f, _ := s.Lookup("big.bin")
			if got := sha(t, f.Open); got != want {
				t.Errorf("content read after the change has sha256 %s, want %s", got, want)
			}
		})
	}
}

// TestFromDirBoundsMemory: small files stop being kept in memory once they
// add up to maxMemBytes; the rest are spooled.
func TestFromDirBoundsMemory(t *testing.T) {
	dir := t.TempDir()
	const n, size = 40, SpoolThreshold // 40 MiB of files small enough for memory
	for i := range n {
		writeBig(t, filepath.Join(dir, fmt.Sprintf("f%02d", i)), size, byte(i))
	}
	var s Set
	var err error
	if got := memstat.Allocated(func() { s, err = FromDir(dir) }); got > maxMemBytes+8<<20 {
		t.Errorf("FromDir allocated %d bytes for %d bytes of files, want at most %d", got, n*size, maxMemBytes+8<<20)
	}
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range s {
		want := sha(t, func() (io.ReadCloser, error) { return os.Open(filepath.Join(dir, f.Path)) })
		if got := sha(t, f.Open); got != want || f.Size != size {
			t.Errorf("file %d (%s): size %d sha256 %s, want %d %s", i, f.Path, f.Size, got, size, want)
		}
	}
}

// TestHashUsesKeptSums: a file whose producer kept its content's hash is
// not read again to hash the set.
func TestHashUsesKeptSums(t *testing.T) {
	opened := 0
	s, err := New([]File{{Path: "a.go", Size: 3, Sum: strings.Repeat("ab", 32),
		Open: func() (io.ReadCloser, error) { opened++; return io.NopCloser(strings.NewReader("abc")), nil }}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Hash(); err != nil || opened != 0 {
		t.Fatalf("hash: %v, %d opens", err, opened)
	}
	// The kept sum is not the content's: a read to the end says so, so
	// nothing made of these bytes passes for what the hash stands for.
	rc, err := s[0].Open()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(rc); err == nil || !strings.Contains(err.Error(), "changed since it was hashed") {
		t.Errorf("reading content other than the sum: %v", err)
	}
	// A set not made by New does not get its sums trusted.
	lit := Set{{Path: "a.go", Size: 3, Sum: strings.Repeat("ab", 32),
		Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("abc")), nil }}}
	honest, _ := New([]File{{Path: "a.go", Size: 3, Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("abc")), nil }}})
	got, err := lit.Hash()
	want, _ := honest.Hash()
	if err != nil || got != want {
		t.Errorf("a literal set hashed its claimed sums: %s, want %s (%v)", got, want, err)
	}
}
