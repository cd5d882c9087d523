package build

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/xtraefik/xtraefik/images/blobstore"
	"github.com/xtraefik/xtraefik/internal/place"
	"github.com/xtraefik/xtraefik/internal/source"
	"github.com/xtraefik/xtraefik/verify"
	"github.com/xtraefik/xtraefik/verify/provision"
)

// CacheDir is the cache directory a session uses: dir when given, else
// $XTRAEFIK_CACHE, else the user cache directory's xtraefik.
func CacheDir(dir string, env func(string) string) (string, error) {
	if env == nil {
		env = os.Getenv
	}
	if dir == "" {
		dir = env(provision.CacheEnv)
	}
	if dir != "" {
		return dir, nil
	}
	base, err := userCacheDir(env)
	if err != nil {
		return "", fmt.Errorf("no cache directory (set %s): %w", provision.CacheEnv, err)
	}
	return filepath.Join(base, "xtraefik"), nil
}

// userCacheDir is os.UserCacheDir reading the variables through env, so
// that a library caller's environment, not the process's, decides.
func userCacheDir(env func(string) string) (string, error) {
	switch runtime.GOOS {
	case "darwin", "ios":
		if home := env("HOME"); home != "" {
			return filepath.Join(home, "Library", "Caches"), nil
		}
		return "", errors.New("$HOME is not defined")
	case "windows":
		if d := env("LocalAppData"); d != "" {
			return d, nil
		}
		return "", errors.New("%LocalAppData% is not defined")
	}
	if d := env("XDG_CACHE_HOME"); d != "" {
		if !filepath.IsAbs(d) {
			return "", errors.New("path in $XDG_CACHE_HOME is relative")
		}
		return d, nil
	}
	if home := env("HOME"); home != "" {
		return filepath.Join(home, ".cache"), nil
	}
	return "", errors.New("neither $XDG_CACHE_HOME nor $HOME are defined")
}

// PruneOptions bound a cache directory (PruneCache); zero values do not
// bound.
type PruneOptions struct {
	// MaxAge removes base blobs, git repositories, module versions and
	// verdicts not used for longer.
	MaxAge time.Duration
	// MaxSize bounds the base blobs, the bulk of a cache, removing the
	// least recently used first.
	MaxSize int64
	// DryRun reports without removing.
	DryRun bool
}

// PruneReport says what PruneCache removed (or, dry, would remove).
type PruneReport struct {
	Dir string `json:"dir"`
	// Missing is true when Dir does not exist: nothing to prune.
	Missing  bool                  `json:"missing,omitempty"`
	Blobs    blobstore.PruneResult `json:"blobs"`
	Verdicts int                   `json:"verdictsRemoved"`
	// GitRepositories and Modules count the git repositories and module
	// versions (zip, .info, .mod) not used for MaxAge.
	GitRepositories int `json:"gitRepositoriesRemoved"`
	Modules         int `json:"modulesRemoved"`
}

// PruneCache trims the cache directory dir: base blobs by age and size;
// verdicts, git repositories and module downloads by age (each marks its
// last use). Builds may run meanwhile: a repository or module is removed
// under the lock its fetches take, and a build that needs something
// removed fetches it again. Verification workers are kept.
//
// Only what xtraefik puts there is touched, as dir may be shared (--cache-dir
// .): repositories named as package source names them, never a symbolic
// link, and nothing through a symbolically linked blobs, verdicts or mod.
func PruneCache(ctx context.Context, dir string, opts PruneOptions) (*PruneReport, error) {
	rep := &PruneReport{Dir: dir}
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		rep.Missing = true
		return rep, nil
	}
	blobs := filepath.Join(dir, "blobs")
	if ok, err := realDir(blobs); err != nil {
		return nil, err
	} else if ok {
		store, err := blobstore.Open(blobs)
		if err != nil {
			return nil, err
		}
		if rep.Blobs, err = store.Prune(blobstore.PruneOptions{MaxAge: opts.MaxAge, MaxSize: opts.MaxSize, DryRun: opts.DryRun}); err != nil {
			return nil, fmt.Errorf("prune %s: %w", blobs, err)
		}
	}
	if opts.MaxAge <= 0 {
		return rep, nil
	}
	verdicts := filepath.Join(dir, "verdicts")
	if ok, err := realDir(verdicts); err != nil {
		return nil, err
	} else if ok {
		if rep.Verdicts, err = (&verify.DirCache{Dir: verdicts}).Prune(opts.MaxAge, opts.DryRun); err != nil {
			return nil, fmt.Errorf("prune %s: %w", verdicts, err)
		}
	}
	old := func(p string) bool {
		fi, err := os.Lstat(p)
		return err == nil && time.Since(fi.ModTime()) > opts.MaxAge
	}
	// remove deletes paths under lock, once nobody fetches into them, and
	// reports whether it did (a dry run: whether it would).
	remove := func(lock string, paths ...string) (bool, error) {
		if opts.DryRun {
			return true, nil
		}
		unlock, err := place.Lock(ctx, lock, nil)
		if err != nil {
			return false, err
		}
		defer unlock()
		if !old(paths[0]) {
			return false, nil // used while we waited
		}
		for _, p := range paths {
			if err := os.RemoveAll(p); err != nil {
				return false, err
			}
		}
		return true, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("prune %s: %w", dir, err)
	}
	for _, e := range entries {
		if !e.IsDir() || !source.IsCacheRepo(e.Name()) { // IsDir is false for a symbolic link
			continue
		}
		p := filepath.Join(dir, e.Name())
		if !old(p) {
			continue
		}
		removed, err := remove(p+".lock", p)
		if err != nil {
			return nil, fmt.Errorf("prune %s: %w", p, err)
		}
		if removed {
			rep.GitRepositories++
		}
	}
	downloads := filepath.Join(dir, "mod", "download")
	for _, d := range []string{filepath.Join(dir, "mod"), downloads} {
		if ok, err := realDir(d); err != nil || !ok {
			return rep, err
		}
	}
	// WalkDir does not follow symbolic links below its root.
	err = filepath.WalkDir(downloads, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() || filepath.Ext(p) != ".zip" || !old(p) {
			return err
		}
		stem := strings.TrimSuffix(p, ".zip")
		removed, err := remove(stem+".lock", p, stem+".info", stem+".mod")
		if removed {
			rep.Modules++
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("prune %s: %w", downloads, err)
	}
	return rep, nil
}

// realDir reports whether p is a directory itself, not a symbolic link to
// one; a missing p is not, anything else there is an error.
func realDir(p string) (bool, error) {
	fi, err := os.Lstat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("prune %s: %w", p, err)
	case fi.Mode()&fs.ModeSymlink != 0:
		return false, nil
	case !fi.IsDir():
		return false, fmt.Errorf("prune %s: not a directory", p)
	}
	return true, nil
}
