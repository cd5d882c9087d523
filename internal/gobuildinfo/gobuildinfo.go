// Package gobuildinfo reads the Go build information (debug/buildinfo) of an
// executable that arrives as a stream, such as a file inside a container
// image layer, without keeping a copy of it.
//
// debug/buildinfo needs an io.ReaderAt, but it reads little: the format's
// headers (at the start of the file, and at its end for the section names
// of an ELF file), and the build info blob, which starts with a 16-byte
// aligned magic string. Read keeps those parts only as the stream goes by
// and answers debug/buildinfo from them; a read of anything else marks the
// result incomplete (ErrIncomplete) rather than answering it wrong, so a
// result is always the one the whole file would give. Spool is the bounded
// fallback for such a file.
package gobuildinfo

import (
	"bytes"
	"debug/buildinfo"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
)

// ErrIncomplete is the error of Read when debug/buildinfo needed a part of
// the file Read did not keep: the file must be read whole (Spool).
var ErrIncomplete = errors.New("the build info lies outside the parts of the file kept from the stream")

// ErrNotGo marks a file that is no Go executable with build info (a
// script, another program, a damaged file): a fact about the file, not
// a failure to read it.
var ErrNotGo = errors.New("not a Go executable with build info")

// magic starts the build info blob (debug/buildinfo's buildInfoMagic); the
// linker aligns it to 16 bytes.
var magic = []byte("\xff Go buildinf:")

const align = 16

// Limits are how much Read keeps. The defaults hold Traefik's build info
// (its module list is tens of kilobytes) in a few megabytes at most.
type Limits struct {
	// Head and Tail are kept whole: the format's headers.
	Head, Tail int64
	// Window is kept from each aligned magic string on, for at most
	// Windows of them (read-only data may hold the magic too).
	Window  int64
	Windows int
}

// DefaultLimits keep at most 64 KiB + 64 KiB + 8 × 256 KiB.
var DefaultLimits = Limits{Head: 64 << 10, Tail: 64 << 10, Window: 256 << 10, Windows: 8}

// block is the unit the stream is read in; a multiple of align, so that an
// aligned magic string never straddles two blocks.
const block = 64 << 10

// Read reads the build info of the size-byte executable r streams, with
// DefaultLimits. It reads r to the end of the file.
func Read(r io.Reader, size int64) (*debug.BuildInfo, error) {
	return ReadLimits(r, size, DefaultLimits)
}

// ReadLimits is Read keeping what l says.
func ReadLimits(r io.Reader, size int64, l Limits) (*debug.BuildInfo, error) {
	if size <= 0 {
		return nil, errors.New("read Go build info: empty file")
	}
	c := &capture{size: size}
	c.add(0, min(l.Head, size))
	if t := max(size-l.Tail, 0); t > 0 {
		c.add(t, size-t)
	}
	buf := make([]byte, block)
	windows := 0
	for off := int64(0); off < size; {
		n, err := io.ReadFull(r, buf[:min(block, size-off)])
		if err != nil {
			return nil, fmt.Errorf("read the executable at byte %d of %d: %w", off+int64(n), size, err)
		}
		chunk := buf[:n]
		for i := 0; windows < l.Windows; {
			j := bytes.Index(chunk[i:], magic)
			if j < 0 {
				break
			}
			at := i + j
			if at%align == 0 {
				c.add(off+int64(at), min(l.Window, size-off-int64(at)))
				windows++
			}
			i = at + 1
		}
		c.feed(off, chunk)
		off += int64(n)
	}
	bi, err := buildinfo.Read(c)
	if c.missed {
		// Whatever debug/buildinfo concluded, it did not see the file.
		return nil, ErrIncomplete
	}
	if err != nil {
		// Every read was answered as the file would answer it: the
		// file is what failed.
		return nil, fmt.Errorf("%w: %v", ErrNotGo, err)
	}
	return bi, nil
}

// Spool reads the build info of the size-byte executable r streams by
// copying it into a temporary file in dir ("": the default), removed
// before Spool returns. Callers bound size: Spool writes size bytes.
func Spool(r io.Reader, size int64, dir string) (*debug.BuildInfo, error) {
	f, err := os.CreateTemp(dir, "xtraefik-gobinary-")
	if err != nil {
		return nil, fmt.Errorf("temporary file for the executable: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	n, err := io.Copy(f, io.LimitReader(r, size))
	if err != nil {
		return nil, fmt.Errorf("copy the executable to %s: %w", f.Name(), err)
	}
	if n != size {
		return nil, fmt.Errorf("copy the executable: %w after %d of %d bytes", io.ErrUnexpectedEOF, n, size)
	}
	bi, err := buildinfo.Read(f)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotGo, err)
	}
	return bi, nil
}

// span is a part of the file kept: data grows to n bytes from off as the
// stream passes.
type span struct {
	off, n int64
	data   []byte
}

// capture is the parts of a size-byte file kept from its stream, read
// back as an io.ReaderAt.
type capture struct {
	size   int64
	spans  []*span
	missed bool
}

func (c *capture) add(off, n int64) {
	if n > 0 {
		c.spans = append(c.spans, &span{off: off, n: n, data: make([]byte, 0, n)})
	}
}

// feed gives every span its part of chunk, the bytes at off.
func (c *capture) feed(off int64, chunk []byte) {
	end := off + int64(len(chunk))
	for _, s := range c.spans {
		from := max(s.off+int64(len(s.data)), off)
		to := min(s.off+s.n, end)
		if from < to {
			s.data = append(s.data, chunk[from-off:to-off]...)
		}
	}
}

// ReadAt answers from one span holding the whole range, as the file
// would; any other read is a miss.
func (c *capture) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	if off >= c.size {
		return 0, io.EOF
	}
	want, eof := p, false
	if off+int64(len(p)) > c.size {
		want, eof = p[:c.size-off], true
	}
	for _, s := range c.spans {
		if s.off <= off && off+int64(len(want)) <= s.off+int64(len(s.data)) {
			n := copy(want, s.data[off-s.off:])
			if eof {
				return n, io.EOF
			}
			return n, nil
		}
	}
	c.missed = true
	return 0, ErrIncomplete
}
