package blobstore

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// PruneOptions bound the store; zero values do not bound.
type PruneOptions struct {
	// MaxAge removes blobs not used (read, linked or written) for longer.
	MaxAge time.Duration
	// MaxSize removes the least recently used blobs until the rest fit.
	MaxSize int64
	// DryRun reports what would go without removing it.
	DryRun bool
	// Now is the time ages count from; zero means time.Now().
	Now time.Time
}

// PruneResult says what Prune removed and what is left.
type PruneResult struct {
	Removed      int   `json:"removed"`
	RemovedBytes int64 `json:"removedBytes"`
	Kept         int   `json:"kept"`
	KeptBytes    int64 `json:"keptBytes"`
}

type entry struct {
	path string
	size int64
	used time.Time
}

// Prune removes blobs by age, then by size, least recently used first, and
// temporary files left by killed writers. A build reading a blob meanwhile
// keeps its open file; one about to read it fetches it again.
func (s *Store) Prune(opts PruneOptions) (PruneResult, error) {
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	dir := filepath.Join(s.dir, "sha256")
	des, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return PruneResult{}, nil
	}
	if err != nil {
		return PruneResult{}, err
	}
	var res PruneResult
	var blobs []entry
	for _, de := range des {
		name := de.Name()
		p := filepath.Join(dir, name)
		fi, err := de.Info()
		if err != nil {
			continue
		}
		switch {
		case strings.HasPrefix(name, ".tmp-"):
			// A writer alive now touches its file continuously; an hour of
			// silence means it died.
			if now.Sub(fi.ModTime()) > time.Hour && !opts.DryRun {
				os.Remove(p)
			}
		case strings.HasSuffix(name, ".ok"):
		default:
			e := entry{path: p, size: fi.Size(), used: fi.ModTime()}
			if ok, err := os.Stat(p + ".ok"); err == nil && ok.ModTime().After(e.used) {
				e.used = ok.ModTime()
			}
			blobs = append(blobs, e)
		}
	}
	// Records (Ref) are hints a few bytes long: they go by age only.
	if refs, err := os.ReadDir(filepath.Join(s.dir, "refs")); err == nil && opts.MaxAge > 0 && !opts.DryRun {
		for _, de := range refs {
			if fi, err := de.Info(); err == nil && fi.Mode().IsRegular() && now.Sub(fi.ModTime()) > opts.MaxAge {
				os.Remove(filepath.Join(s.dir, "refs", de.Name()))
			}
		}
	}
	sort.Slice(blobs, func(i, j int) bool { return blobs[i].used.After(blobs[j].used) })
	var total int64
	full := false
	for _, e := range blobs {
		old := opts.MaxAge > 0 && now.Sub(e.used) > opts.MaxAge
		// Strictly least recently used: once one does not fit, no older one stays.
		full = full || (opts.MaxSize > 0 && total+e.size > opts.MaxSize)
		if !old && !full {
			total += e.size
			res.Kept++
			res.KeptBytes += e.size
			continue
		}
		if !opts.DryRun {
			if err := os.Remove(e.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return res, err
			}
			os.Remove(e.path + ".ok")
		}
		res.Removed++
		res.RemovedBytes += e.size
	}
	return res, nil
}
