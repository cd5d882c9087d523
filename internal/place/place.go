// Package place writes files so that no reader and no crash ever sees a
// part, and serialises the processes that share a directory. It is the one
// place for that:
//
//   - Lock takes an advisory lock on a lock file (caches shared by
//     concurrent runs).
//   - WriteFile and Temp replace a file whole: written beside it, flushed,
//     renamed over it, the directory synced (cache entries, the lock file).
//   - Target puts an output (a file or a directory) at a path the user
//     named without ever losing what was there: the content is written to
//     a temporary sibling and moved into place at the end; an existing
//     target is refused unless overwrite is asked for, and then it is moved
//     aside until the caller commits, so that Undo can put it back.
//     Temporary siblings left by a killed run are removed by the next run
//     that writes the same target.
package place

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
)

// ErrExists is returned for a target that exists when overwrite was not asked for.
var ErrExists = errors.New("already exists")

// Kind says whether a target is a file or a directory.
type Kind int

const (
	File Kind = iota
	Dir
)

// Check refuses a target the write could not replace: an existing one without
// overwrite (an empty directory is no content to lose when a directory is
// written), or a directory where a file goes and the reverse.
func Check(path string, kind Kind, overwrite bool) error {
	info, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	switch {
	case kind == File && info.IsDir():
		return fmt.Errorf("%s is a directory", path)
	case kind == Dir && !info.IsDir():
		if overwrite {
			return nil
		}
		return fmt.Errorf("%s %w (a file)", path, ErrExists)
	case overwrite:
		return nil
	case kind == Dir:
		empty, err := isEmptyDir(path)
		if err != nil || empty {
			return err
		}
		return fmt.Errorf("%s %w and is not empty", path, ErrExists)
	}
	return fmt.Errorf("%s %w", path, ErrExists)
}

// Target is one output being written. Create it with New, write to Temp (or
// File), then Place it; Undo restores what was at the path before New, and
// Commit drops the previous content kept for Undo.
type Target struct {
	path      string
	kind      Kind
	overwrite bool

	tmp     string
	file    *os.File // the temporary file, or the directory's lock handle
	parents []string // directories New created, outermost first

	placed   bool
	aside    string      // previous content, moved aside by Place
	emptyDir fs.FileMode // mode of an empty directory Place removed, else 0
}

// New checks path, creates its missing parent directories (when mkParents),
// removes temporaries a killed run left beside it and creates the temporary
// sibling, locked for as long as this process writes it.
func New(path string, kind Kind, overwrite, mkParents bool) (*Target, error) {
	if err := Check(path, kind, overwrite); err != nil {
		return nil, err
	}
	t := &Target{path: path, kind: kind, overwrite: overwrite}
	parent := filepath.Dir(path)
	if mkParents {
		var err error
		if t.parents, err = mkdirAll(parent); err != nil {
			return nil, err
		}
	}
	CleanStale(path)
	if err := t.create(); err != nil {
		t.removeParents()
		return nil, err
	}
	return t, nil
}

// tmpPrefix starts every temporary sibling of path; the creator's pid follows,
// for people who find one (the lock is what tells a live writer).
func tmpPrefix(path string) string { return "." + filepath.Base(path) + ".tmp-" }

func (t *Target) create() error {
	prefix := tmpPrefix(t.path) + strconv.Itoa(os.Getpid()) + "-"
	dir := filepath.Dir(t.path)
	if t.kind == File {
		f, err := os.CreateTemp(dir, prefix)
		if err != nil {
			return err
		}
		t.tmp, t.file = f.Name(), f
	} else {
		tmp, err := os.MkdirTemp(dir, prefix)
		if err != nil {
			return err
		}
		f, err := os.Open(tmp)
		if err != nil {
			os.Remove(tmp)
			return err
		}
		t.tmp, t.file = tmp, f
	}
	if !tempLocks {
		return nil
	}
	// Held for as long as this process writes it: the sign that its
	// writer is alive (CleanStale).
	if ok, err := tryLock(t.file); !ok || err != nil {
		t.file.Close()
		os.RemoveAll(t.tmp)
		if err == nil {
			err = errors.New("held by another process")
		}
		return fmt.Errorf("lock %s: %w", t.tmp, err)
	}
	return nil
}

// Temp is the temporary sibling to write.
func (t *Target) Temp() string { return t.tmp }

// File is the open temporary file of a File target.
func (t *Target) File() *os.File { return t.file }

// Path is the target's path.
func (t *Target) Path() string { return t.path }

// Aside is where Place moved the previous content, which Commit removes
// ("" when there was none, or once committed or undone).
func (t *Target) Aside() string { return t.aside }

// Place moves the temporary into place: files become 0644 and directories
// 0755, whatever the umask-free temporaries were. An existing target (only
// with overwrite, or an empty directory) is kept aside for Undo.
func (t *Target) Place() error {
	if t.placed {
		return nil
	}
	mode := fs.FileMode(0o644)
	if t.kind == Dir {
		mode = 0o755
	} else if err := t.file.Sync(); err != nil {
		return err
	}
	if err := os.Chmod(t.tmp, mode); err != nil {
		return err
	}
	if err := Check(t.path, t.kind, t.overwrite); err != nil {
		return err
	}
	info, err := os.Lstat(t.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return err
	case info.IsDir() && t.kind == Dir && !t.overwrite:
		// Check found it empty; os.Rename refuses any existing directory.
		if err := os.Remove(t.path); err != nil {
			return err
		}
		t.emptyDir = info.Mode().Perm() | fs.ModeDir
	default:
		aside, err := asideName(t.path)
		if err != nil {
			return err
		}
		if err := os.Rename(t.path, aside); err != nil {
			return err
		}
		t.aside = aside
	}
	if err := t.move(); err != nil {
		t.restore()
		return err
	}
	t.placed = true
	t.file.Close()
	return nil
}

// move renames the temporary to the path; a file is linked first when the path
// is meant to be free, so that a file created meanwhile is never replaced.
func (t *Target) move() error {
	if t.kind == Dir || t.aside != "" {
		return os.Rename(t.tmp, t.path)
	}
	if err := os.Link(t.tmp, t.path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s %w", t.path, ErrExists)
		}
		// No hard links on this file system: the check above has to do.
		return os.Rename(t.tmp, t.path)
	}
	return os.Remove(t.tmp)
}

// restore puts back what Place moved away.
func (t *Target) restore() error {
	switch {
	case t.aside != "":
		if err := os.Rename(t.aside, t.path); err != nil {
			return fmt.Errorf("restore %s from %s: %w", t.path, t.aside, err)
		}
		t.aside = ""
	case t.emptyDir != 0:
		if err := os.Mkdir(t.path, t.emptyDir.Perm()); err != nil {
			return fmt.Errorf("restore the empty directory %s: %w", t.path, err)
		}
		t.emptyDir = 0
	}
	return nil
}

// Undo removes what this Target wrote, puts back what it replaced, and removes
// the parent directories New created if they are empty again.
func (t *Target) Undo() error {
	var err error
	if t.placed {
		err = os.RemoveAll(t.path)
		if err == nil {
			err = t.restore()
		}
		t.placed = false
	} else {
		t.file.Close()
		err = os.RemoveAll(t.tmp)
	}
	t.removeParents()
	return err
}

// Commit keeps the placed output: the previous content is removed.
func (t *Target) Commit() error {
	if t.aside == "" {
		return nil
	}
	err := os.RemoveAll(t.aside)
	t.aside = ""
	return err
}

func (t *Target) removeParents() {
	for i := len(t.parents) - 1; i >= 0; i-- {
		if os.Remove(t.parents[i]) != nil {
			return
		}
	}
	t.parents = nil
}

// mkdirAll creates dir and its missing parents (0755) and returns those it
// created, outermost first.
func mkdirAll(dir string) ([]string, error) {
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	var created []string
	for i := len(missing) - 1; i >= 0; i-- {
		err := os.Mkdir(missing[i], 0o755)
		if errors.Is(err, fs.ErrExist) {
			continue // another writer made it: not ours to remove
		}
		if err == nil {
			// Readable by a scanner or CI step running as another user,
			// whatever the umask, like the files inside.
			created = append(created, missing[i])
			err = os.Chmod(missing[i], 0o755)
		}
		if err != nil {
			for j := len(created) - 1; j >= 0; j-- {
				os.Remove(created[j])
			}
			return nil, err
		}
	}
	return created, nil
}

// asideName reserves a unique name beside path for its previous content.
func asideName(path string) (string, error) {
	d, err := os.MkdirTemp(filepath.Dir(path), "."+filepath.Base(path)+".old-"+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return "", err
	}
	// Only the name was wanted; rename needs it free.
	return d, os.Remove(d)
}

func isEmptyDir(p string) (bool, error) {
	f, err := os.Open(p)
	if err != nil {
		return false, err
	}
	defer f.Close()
	_, err = f.Readdirnames(1)
	if errors.Is(err, io.EOF) {
		return true, nil
	}
	return false, err
}
