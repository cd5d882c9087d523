package place

import (
	"os"
	"path/filepath"
	"strings"
	"time"
)

// legacyAge is how old an unlocked temporary without a pid in its name (written
// by xtraefik before temporaries were locked) must be before it is removed: such
// a writer cannot be told apart from a dead one any other way.
const legacyAge = 24 * time.Hour

// CleanStale removes the temporary siblings of path that no live process
// holds: their writer was killed before it could place or remove them. Only
// temporaries are removed, never content moved aside for a restore.
func CleanStale(path string) {
	dir := filepath.Dir(path)
	prefix := tmpPrefix(path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok {
			continue
		}
		p := filepath.Join(dir, e.Name())
		pid, _, withPid := strings.Cut(rest, "-")
		if !withPid || pid == "" || strings.Trim(pid, "0123456789") != "" {
			if info, err := e.Info(); err != nil || time.Since(info.ModTime()) < legacyAge {
				continue
			}
		}
		removeIfUnheld(p)
	}
}

// removeIfUnheld removes p unless another process holds its lock.
func removeIfUnheld(p string) {
	if !tempLocks {
		return
	}
	f, err := os.Open(p)
	if err != nil {
		return
	}
	defer f.Close()
	if ok, err := tryLock(f); !ok || err != nil {
		return
	}
	os.RemoveAll(p)
}
