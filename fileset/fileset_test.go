package fileset

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
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
