package gobuildinfo

import (
	"bytes"
	"debug/buildinfo"
	"errors"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/xtraefik/xtraefik/internal/memstat"
)

// self is this test binary: a real Go executable with build info.
func self(t *testing.T) (string, []byte) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	return exe, data
}

// Read from a stream gives exactly what debug/buildinfo gives from the
// whole file, keeping a few megabytes at most.
func TestReadMatchesWholeFile(t *testing.T) {
	exe, data := self(t)
	want, err := buildinfo.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	var got *debug.BuildInfo
	// The stream is not kept: what Read allocates is bounded by its
	// limits, not by the file (this one is several megabytes).
	alloc := memstat.Allocated(func() { got, err = Read(bytes.NewReader(data), int64(len(data))) })
	if err != nil {
		t.Fatal(err)
	}
	if bound := uint64(1 << 20); alloc > bound || uint64(len(data)) < 2*bound {
		t.Fatalf("Read of a %d-byte file allocated %d bytes (bound %d)", len(data), alloc, bound)
	}
	if got.String() != want.String() || got.GoVersion != want.GoVersion {
		t.Fatalf("stream build info:\n%s\nwhole file:\n%s", got, want)
	}
}

// A window too small for the blob is a miss, never a wrong answer; Spool
// reads it from a temporary copy it removes.
func TestIncompleteThenSpool(t *testing.T) {
	exe, data := self(t)
	want, err := buildinfo.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	_, err = ReadLimits(bytes.NewReader(data), int64(len(data)), Limits{Head: 64 << 10, Tail: 64 << 10, Window: 64, Windows: 8})
	if !errors.Is(err, ErrIncomplete) {
		t.Fatalf("tiny window: %v, want ErrIncomplete", err)
	}
	dir := t.TempDir()
	got, err := Spool(bytes.NewReader(data), int64(len(data)), dir)
	if err != nil || got.String() != want.String() {
		t.Fatalf("Spool: %v\n%v", err, got)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("Spool left %d file(s) in %s", len(ents), dir)
	}
}

// Hostile and foreign input: a script, a truncated stream, ELF magic with
// garbage, and a stream of decoy magic strings are refused with an error.
func TestNotGo(t *testing.T) {
	_, data := self(t)
	decoys := bytes.Repeat(append(append([]byte(nil), magic...), 0, 0), 4096)
	for name, tc := range map[string]struct {
		data []byte
		size int64
		want string
	}{
		"script":    {[]byte("#!/bin/sh\nexec traefik \"$@\"\n"), 0, "unrecognized file format"},
		"truncated": {data[:len(data)/2], int64(len(data)), "unexpected EOF"},
		"bad elf":   {append([]byte("\x7fELF\x02\x01\x01"), bytes.Repeat([]byte{0xff}, 1000)...), 0, "unrecognized file format"},
		"decoys":    {decoys, 0, "unrecognized file format"},
	} {
		size := tc.size
		if size == 0 {
			size = int64(len(tc.data))
		}
		_, err := Read(bytes.NewReader(tc.data), size)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, tc.want)
		}
		// A file that is no Go program says so; a broken stream does not.
		if notGo := name != "truncated"; errors.Is(err, ErrNotGo) != notGo {
			t.Errorf("%s: %v: ErrNotGo %v, want %v", name, err, errors.Is(err, ErrNotGo), notGo)
		}
	}
	if _, err := Read(io.LimitReader(bytes.NewReader(nil), 0), 0); err == nil {
		t.Error("empty file: no error")
	}
}
