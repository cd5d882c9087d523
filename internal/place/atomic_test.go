package place

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// WriteFile replaces a file whole with the mode asked for, whatever the
// umask, and leaves no temporary behind.
func TestWriteFile(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	dir := t.TempDir()
	p := filepath.Join(dir, "entry")
	write(t, p, "old")
	if err := WriteFile(p, []byte("new"), 0o444); err != nil {
		t.Fatal(err)
	}
	if got := read(t, p); got != "new" {
		t.Errorf("content %q, want new", got)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o444 {
		t.Errorf("mode %v (%v), want 0444", fi.Mode(), err)
	}
	if got := names(t, dir); got != "entry" {
		t.Errorf("directory holds %s, want only entry", got)
	}
}

// A failed write (here: the destination is a directory) keeps what the
// path held and removes its temporary.
func TestWriteFileFailureKeepsOld(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "entry")
	write(t, filepath.Join(p, "inside"), "kept")
	if err := WriteFile(p, []byte("new"), 0o600); err == nil {
		t.Fatal("a file replaced a directory")
	}
	if got := read(t, filepath.Join(p, "inside")); got != "kept" {
		t.Errorf("the directory's file reads %q", got)
	}
	if got := names(t, dir); got != "entry" {
		t.Errorf("directory holds %s, want only entry", got)
	}
}

// A temporary aborted, or aborted after its commit, removes only itself.
func TestTempAbort(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "blob")
	tmp, err := NewTemp(dir, ".tmp-*")
	if err != nil {
		t.Fatal(err)
	}
	tmp.WriteString("partial")
	tmp.Abort()
	if got := names(t, dir); got != "" {
		t.Errorf("after Abort the directory holds %s", got)
	}
	tmp, err = NewTemp(dir, ".tmp-*")
	if err != nil {
		t.Fatal(err)
	}
	tmp.WriteString("whole")
	if err := tmp.Commit(p, 0o600); err != nil {
		t.Fatal(err)
	}
	tmp.Abort()
	if got := read(t, p); got != "whole" {
		t.Errorf("after Commit then Abort: %q", got)
	}
	if err := tmp.Commit(p, 0o600); !errors.Is(err, os.ErrClosed) {
		t.Errorf("a second Commit: %v, want ErrClosed", err)
	}
}

// Lock excludes a second holder (another open file, as another process
// has) until the first releases it, and a waiter gives up with its context.
func TestLock(t *testing.T) {
	p := filepath.Join(t.TempDir(), "cache.lock")
	unlock, err := Lock(t.Context(), p, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	var progress strings.Builder
	if _, err := Lock(ctx, p, &progress); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a second Lock while held: %v, want the context's deadline", err)
	}
	if !strings.Contains(progress.String(), "waiting for another process to release "+p) {
		t.Errorf("the waiter was not told: %q", progress.String())
	}
	unlock()
	unlock2, err := Lock(t.Context(), p, nil)
	if err != nil {
		t.Fatalf("Lock after release: %v", err)
	}
	unlock2()
}
