// Package fileset is the in-memory description of a plugin tree that travels from
// the git fetcher to the verifier and the layer writer: paths, normalised modes and
// lazily opened contents, never host metadata. One type shared by all stages keeps
// "the files that go into the image" a single, hashable thing.
package fileset

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// Kind is the type of an entry. Only what a git tree can express is representable.
type Kind int

const (
	// Regular is a plain file (mode 0644).
	Regular Kind = iota
	// Executable is a file with the executable bit (mode 0755).
	Executable
	// Symlink is a symbolic link whose target stays inside the tree.
	Symlink
)

// File is one entry of a Set. Directories are implied by file paths.
type File struct {
	// Path is slash-separated, relative to the set's root, clean, never "..".
	Path string
	Kind Kind
	// Size of the content in bytes (the link target length for symlinks).
	Size int64
	// Link is the symlink target, as stored (relative or absolute-inside-root).
	Link string
	// Open returns the content. Unused for symlinks.
	Open func() (io.ReadCloser, error)
	// Sum, when the producer read the content already, is its SHA-256
	// (hex): in a set made by New, Hash uses it instead of reading again,
	// and Open fails at the end of a read that gave other bytes.
	Sum string
	// sumChecked marks an Open that New made check Sum.
	sumChecked bool
}

// Mode is the normalised permission set the layer and the checkout use.
func (f File) Mode() fs.FileMode {
	switch f.Kind {
	case Executable:
		return 0o755
	case Symlink:
		return fs.ModeSymlink | 0o777
	default:
		return 0o644
	}
}

// Set is a plugin tree, sorted by Path.
type Set []File

// ErrUnsafePath marks a path or link that would leave the tree.
var ErrUnsafePath = errors.New("unsafe path")

// New sorts files, checks every path and symlink stays inside the tree, that no
// path repeats and that no path lies below a file or symlink, and returns the set.
func New(files []File) (Set, error) {
	s := append(Set(nil), files...)
	sort.Slice(s, func(i, j int) bool { return s[i].Path < s[j].Path })
	for i, f := range s {
		if err := CheckPath(f.Path); err != nil {
			return nil, err
		}
		if i > 0 && s[i-1].Path == f.Path {
			return nil, fmt.Errorf("%q appears twice", f.Path)
		}
		// A path below a file or symlink is no tree (a crafted git tree can hold
		// both names); below a symlink, WriteDir would write wherever it points.
		for d := path.Dir(f.Path); d != "."; d = path.Dir(d) {
			if _, ok := s.Lookup(d); ok {
				return nil, fmt.Errorf("%w: %q is below %q, which is not a directory", ErrUnsafePath, f.Path, d)
			}
		}
		if f.Kind == Symlink {
			if err := checkLink(f.Path, f.Link); err != nil {
				return nil, err
			}
		}
		if f.Sum != "" && f.Kind != Symlink && !f.sumChecked && f.Open != nil {
			s[i].Open, s[i].sumChecked = checkSum(f), true
		}
	}
	// Each link on its own stays inside; through one another (a -> b/..,
	// b -> ..) they may not. Resolve every link as the kernel would.
	for _, f := range s {
		if f.Kind == Symlink {
			if err := s.resolveInside(f); err != nil {
				return nil, err
			}
		}
	}
	return s, nil
}

// maxHops bounds symlink resolution, as the kernel's ELOOP does.
const maxHops = 40

// resolveInside follows link's target component by component through the set's
// own symlinks and fails if a step climbs above the tree's root.
func (s Set) resolveInside(link File) error {
	escape := fmt.Errorf("%w: symlink %q points to %q, which leads outside the plugin (or loops) through other links", ErrUnsafePath, link.Path, link.Link)
	var cur []string
	if d := path.Dir(link.Path); d != "." {
		cur = strings.Split(d, "/")
	}
	todo := strings.Split(link.Link, "/")
	for hops := 0; len(todo) > 0; {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(cur) == 0 {
				return escape
			}
			cur = cur[:len(cur)-1]
			continue
		}
		f, ok := s.Lookup(path.Join(append(append([]string(nil), cur...), c)...))
		if !ok || f.Kind != Symlink {
			cur = append(cur, c)
			continue
		}
		if hops++; hops > maxHops || strings.HasPrefix(f.Link, "/") {
			return escape
		}
		todo = append(strings.Split(f.Link, "/"), todo...)
	}
	return nil
}

// CheckPath refuses absolute paths, "..", empty elements, anything not clean,
// and control characters: a newline would let one path forge further lines
// of the Hash input, and the Go module zip rules refuse them all anyway.
func CheckPath(p string) error {
	if i := controlByte(p); i >= 0 {
		return fmt.Errorf("%w: %q holds the control character %q", ErrUnsafePath, p, p[i])
	}
	if p == "" || strings.HasPrefix(p, "/") || path.Clean(p) != p || p == "." {
		return fmt.Errorf("%w: %q is not a clean relative path", ErrUnsafePath, p)
	}
	for _, el := range strings.Split(p, "/") {
		if el == ".." {
			return fmt.Errorf("%w: %q has a \"..\" element", ErrUnsafePath, p)
		}
	}
	return nil
}

// checkLink refuses symlinks whose target resolves outside the tree. An absolute
// target would resolve against the image root, never inside the plugin.
func checkLink(p, target string) error {
	// Only its digest is hashed, but the target is written into tar
	// headers and messages, and no real plugin has such a link.
	if i := controlByte(target); i >= 0 {
		return fmt.Errorf("%w: symlink %q points to %q, which holds the control character %q", ErrUnsafePath, p, target, target[i])
	}
	if target == "" || strings.HasPrefix(target, "/") {
		return fmt.Errorf("%w: symlink %q points to %q, outside the plugin", ErrUnsafePath, p, target)
	}
	joined := path.Join(path.Dir(p), target)
	if joined == ".." || strings.HasPrefix(joined, "../") {
		return fmt.Errorf("%w: symlink %q points to %q, outside the plugin", ErrUnsafePath, p, target)
	}
	return nil
}

// controlByte is the index of the first byte of s that is an ASCII control
// character (0x00-0x1f, 0x7f), or -1.
func controlByte(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return i
		}
	}
	return -1
}

// Hash is the content hash of exactly what goes into the image: for each entry, in
// path order, its kind, path and the SHA-256 of its content (or link target).
// One line per entry: New refuses paths with control characters, so no path
// can hold a line break and pass for several entries.
// It is independent of git objects, so the same files from another commit or
// another mirror hash alike.
func (s Set) Hash() (string, error) {
	h := sha256.New()
	for _, f := range s {
		// A Set made without New must not forge lines either.
		if err := CheckPath(f.Path); err != nil {
			return "", err
		}
		sum, err := f.sum()
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %o %s\n", sum, f.Mode(), f.Path)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

func (f File) sum() (string, error) {
	if f.Sum != "" && f.sumChecked && f.Kind != Symlink {
		return f.Sum, nil
	}
	h := sha256.New()
	if f.Kind == Symlink {
		io.WriteString(h, f.Link)
		return hex.EncodeToString(h.Sum(nil)), nil
	}
	rc, err := f.Open()
	if err != nil {
		return "", fmt.Errorf("open %s: %w", f.Path, err)
	}
	defer rc.Close()
	if _, err := io.Copy(h, rc); err != nil {
		return "", fmt.Errorf("read %s: %w", f.Path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Lookup returns the entry at p.
func (s Set) Lookup(p string) (File, bool) {
	i := sort.Search(len(s), func(i int) bool { return s[i].Path >= p })
	if i < len(s) && s[i].Path == p {
		return s[i], true
	}
	return File{}, false
}

// WriteDir materialises the set under dir (which must exist), with normalised
// modes, so that tools reading a real directory (the interpreter) see exactly what
// the image will hold.
func (s Set) WriteDir(dir string) error {
	// Verification lays out a tree per plugin: each directory is made once,
	// not looked up again for every file in it.
	made := map[string]bool{}
	for _, f := range s {
		dst := filepath.Join(dir, filepath.FromSlash(f.Path))
		if parent := filepath.Dir(dst); !made[parent] {
			if err := os.MkdirAll(parent, 0o755); err != nil {
				return err
			}
			made[parent] = true
		}
		if f.Kind == Symlink {
			if err := os.Symlink(f.Link, dst); err != nil {
				return err
			}
			continue
		}
		if err := writeFile(dst, f); err != nil {
			return fmt.Errorf("write %s: %w", f.Path, err)
		}
	}
	return nil
}

func writeFile(dst string, f File) error {
	rc, err := f.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, f.Mode().Perm())
	if err != nil {
		return err
	}
	// The umask may have narrowed the mode; the checkout must match the image.
	if _, err := io.Copy(out, rc); err != nil {
		out.Close()
		return err
	}
	if err := out.Chmod(f.Mode().Perm()); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Bounds of FromDir. A directory plugin is read once (see FromDir): small
// files into memory, larger ones into a private spool file, so memory stays
// flat whatever the plugin weighs.
const (
	// MaxDirBytes bounds the whole tree. Memory is not the limit (large files
	// are spooled to disk); this guards against a path: that names the wrong
	// directory (a home directory, a build output) filling the disk and the
	// image. Module zips are capped at 500 MiB; a plugin twice that is a mistake.
	MaxDirBytes = 1 << 30
	// SpoolThreshold: files larger than this go to the spool file.
	SpoolThreshold = 1 << 20
	// maxMemBytes bounds what small files keep in memory together; past it,
	// small files are spooled too.
	maxMemBytes = 16 << 20
)

// dirReader reads a directory's files once. Spooled contents go into one
// temporary file, unlinked as soon as it is created: nobody can open it by
// name, so what later stages read is exactly what was read here. It lives as
// long as the Set's Open functions refer to it (closed by its finalizer).
type dirReader struct {
	spool        *os.File
	spoolSize    int64
	total, inMem int64
}

// read reads the regular file at p, refusing one that is no longer the file
// info describes (replaced by a symlink or another file), that changes size
// while read, or that takes the total over MaxDirBytes.
func (r *dirReader) read(p string, info fs.FileInfo) (int64, func() (io.ReadCloser, error), error) {
	f, err := openNoFollow(p)
	if err != nil {
		return 0, nil, err
	}
	defer f.Close()
	now, err := f.Stat()
	if err != nil {
		return 0, nil, err
	}
	if !now.Mode().IsRegular() || !os.SameFile(info, now) {
		return 0, nil, errors.New("changed while it was read")
	}
	size := now.Size()
	if r.total += size; r.total > MaxDirBytes {
		return 0, nil, fmt.Errorf("the plugin directory holds more than %d MiB", MaxDirBytes>>20)
	}
	if size <= SpoolThreshold && r.inMem+size <= maxMemBytes {
		r.inMem += size
		data := make([]byte, size)
		if _, err := io.ReadFull(f, data); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
				return 0, nil, errors.New("changed while it was read")
			}
			return 0, nil, err
		}
		var more [1]byte
		if n, _ := f.Read(more[:]); n != 0 {
			return 0, nil, errors.New("changed while it was read")
		}
		return size, func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }, nil
	}
	if r.spool == nil {
		if r.spool, err = newSpool(); err != nil {
			return 0, nil, fmt.Errorf("spool file: %w", err)
		}
	}
	off := r.spoolSize
	// Only appended to (readers use ReadAt), so the write offset is the end;
	// io.Copy lets the kernel copy (copy_file_range) where it can.
	n, err := io.Copy(r.spool, io.LimitReader(f, size+1))
	r.spoolSize += n
	if err != nil {
		return 0, nil, fmt.Errorf("copy to the spool file: %w", err)
	}
	if n != size {
		return 0, nil, errors.New("changed while it was read")
	}
	spool := r.spool
	// A SectionReader reads with ReadAt: concurrent Opens share no offset.
	return size, func() (io.ReadCloser, error) { return io.NopCloser(io.NewSectionReader(spool, off, size)), nil }, nil
}

// newSpool creates the spool file and unlinks it at once: nothing is left
// behind, and nothing can reach its contents by name.
func newSpool() (*os.File, error) {
	f, err := os.CreateTemp("", "xtraefik-plugin-*")
	if err != nil {
		return nil, err
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// close releases the spool after a failed read; a Set that was returned
// keeps it.
func (r *dirReader) close() {
	if r.spool != nil {
		r.spool.Close()
	}
}

// FromDir reads a working copy (a plugin author's directory) into a Set, skipping
// .git. Modes are normalised to what git would record.
func FromDir(dir string) (Set, error) {
	// The directory named may itself be a symlink (WalkDir would not enter it).
	resolved, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	dir = resolved
	var files []File
	var r dirReader
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rel == "." {
			return nil
		}
		if d.Name() == ".git" {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil // a worktree's or submodule's .git file
		}
		if d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			files = append(files, File{Path: rel, Kind: Symlink, Link: target, Size: int64(len(target))})
		case info.Mode().IsRegular():
			kind := Regular
			if info.Mode()&0o111 != 0 {
				kind = Executable
			}
			// Read once, now: every later stage (hash, manifest, verification,
			// layer, SBOM) sees these bytes, whatever happens to the
			// directory meanwhile, so what was verified is what is shipped.
			size, open, err := r.read(p, info)
			if err != nil {
				return fmt.Errorf("%s: %w", rel, err)
			}
			files = append(files, File{Path: rel, Kind: kind, Size: size, Open: open})
		default:
			return fmt.Errorf("%s: unsupported file type %s", rel, info.Mode().Type())
		}
		return nil
	})
	if err != nil {
		r.close()
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	s, err := New(files)
	if err != nil {
		r.close()
	}
	return s, err
}

// checkSum wraps f's Open so that a read ending with other bytes than f.Sum
// fails: whatever is made of the content (a layer, a verification copy)
// is what the set's hash stands for.
func checkSum(f File) func() (io.ReadCloser, error) {
	open, want, name := f.Open, f.Sum, f.Path
	return func() (io.ReadCloser, error) {
		rc, err := open()
		if err != nil {
			return nil, err
		}
		return &sumReader{rc: rc, h: sha256.New(), want: want, name: name}, nil
	}
}

type sumReader struct {
	rc   io.ReadCloser
	h    hash.Hash
	want string
	name string
}

func (r *sumReader) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	r.h.Write(p[:n])
	if errors.Is(err, io.EOF) && hex.EncodeToString(r.h.Sum(nil)) != r.want {
		return n, fmt.Errorf("%s: the content changed since it was hashed", r.name)
	}
	return n, err
}

func (r *sumReader) Close() error { return r.rc.Close() }
