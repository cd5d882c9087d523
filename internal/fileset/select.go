package fileset

import (
	"fmt"
	"path"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
)

// Sub re-roots the set at dir: the files below it, with dir/ dropped from
// their paths. Symlinks must stay inside dir, as they must stay inside a
// whole plugin.
func (s Set) Sub(dir string) (Set, error) {
	if err := CheckPath(dir); err != nil {
		return nil, fmt.Errorf("subdirectory %q: %w", dir, err)
	}
	prefix := dir + "/"
	var files []File
	for _, f := range s {
		if rest, ok := strings.CutPrefix(f.Path, prefix); ok {
			f.Path = rest
			files = append(files, f)
		} else if f.Path == dir {
			return nil, fmt.Errorf("subdirectory %q is a file or a symlink, not a directory", dir)
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("subdirectory %q holds no files", dir)
	}
	return New(files)
}

// Exclude drops the files whose paths match any of patterns (doublestar
// syntax: ** matches any number of directories) and returns what it kept
// and what it dropped. A symlink left pointing at a dropped file is an
// error: the image would hold a dangling link.
func (s Set) Exclude(patterns []string) (kept Set, dropped []string, err error) {
	if len(patterns) == 0 {
		return s, nil, nil
	}
	var files []File
	for _, f := range s {
		match := false
		for _, p := range patterns {
			if ok, _ := doublestar.Match(p, f.Path); ok {
				match = true
				break
			}
		}
		if match {
			dropped = append(dropped, f.Path)
			continue
		}
		files = append(files, f)
	}
	kept, err = New(files)
	if err != nil {
		return nil, nil, err
	}
	for _, f := range kept {
		if f.Kind != Symlink {
			continue
		}
		// The link's target as a path in the set (links through links are
		// checked by New already).
		target := path.Join(path.Dir(f.Path), f.Link)
		for _, d := range dropped {
			if target == d || strings.HasPrefix(d, target+"/") {
				return nil, nil, fmt.Errorf("symlink %s points to %s, which the exclude patterns drop", f.Path, f.Link)
			}
		}
	}
	return kept, dropped, nil
}
