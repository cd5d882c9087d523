package place

import (
	"io/fs"
	"os"
	"path/filepath"
)

// Temp is a file written in the directory of its destination and renamed
// over it whole by Commit, so that a reader in another process sees the old
// content or the new, never a part. Write through the embedded file; do not
// Close it: Commit or Abort does.
type Temp struct {
	*os.File
	done bool
}

// NewTemp creates a temporary file in dir, named after pattern as
// os.CreateTemp names it. dir must be the destination's directory: a
// rename does not cross file systems.
func NewTemp(dir, pattern string) (*Temp, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	return &Temp{File: f}, nil
}

// Commit gives the temporary perm (whatever the umask), flushes it to disk,
// renames it to path and makes the rename durable. On failure the
// temporary is removed and path keeps what it had.
func (t *Temp) Commit(path string, perm fs.FileMode) (err error) {
	if t.done {
		return fs.ErrClosed
	}
	defer func() {
		if err != nil {
			t.Abort()
		}
	}()
	if err := t.Chmod(perm); err != nil {
		return err
	}
	if err := t.Sync(); err != nil {
		return err
	}
	if err := t.Close(); err != nil {
		return err
	}
	if err := os.Rename(t.Name(), path); err != nil {
		return err
	}
	t.done = true
	return syncDir(filepath.Dir(path))
}

// Abort closes and removes the temporary; after Commit it does nothing.
func (t *Temp) Abort() {
	if t.done {
		return
	}
	t.done = true
	t.Close()
	os.Remove(t.Name())
}

// WriteFile replaces path with data, mode perm, as Temp does: a reader sees
// the old content or the new, and the new is on disk when it returns.
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	t, err := NewTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	if _, err := t.Write(data); err != nil {
		t.Abort()
		return err
	}
	return t.Commit(path, perm)
}
