package build

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/xtraefik/xtraefik/images/blobstore"
	"github.com/xtraefik/xtraefik/internal/filelock"
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
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory (set %s): %w", provision.CacheEnv, err)
	}
	return filepath.Join(base, "xtraefik"), nil
}

// PruneOptions bound a cache directory (PruneCache); zero values do not
// bound.
type PruneOptions struct {
	// MaxAge removes base blobs and verdicts not used for longer.
	MaxAge time.Duration
	// MaxSize bounds the base blobs, the bulk of a cache, removing the
	// least recently used first.
	MaxSize int64
	// DryRun reports without removing.
	DryRun bool
}

// PruneReport says what PruneCache removed (or, dry, would remove).
type PruneReport struct {
	Dir      string                `json:"dir"`
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
func PruneCache(ctx context.Context, dir string, opts PruneOptions) (*PruneReport, error) {
	rep := &PruneReport{Dir: dir}
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return rep, nil
	}
	blobs := filepath.Join(dir, "blobs")
	if _, err := os.Stat(blobs); err == nil {
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
	if !opts.DryRun {
		n, err := (&verify.DirCache{Dir: filepath.Join(dir, "verdicts")}).Prune(opts.MaxAge)
		if err != nil {
			return nil, fmt.Errorf("prune verdicts: %w", err)
		}
		rep.Verdicts = n
	}
	old := func(p string) bool {
		fi, err := os.Stat(p)
		return err == nil && time.Since(fi.ModTime()) > opts.MaxAge
	}
	// remove deletes paths under lock, once nobody fetches into them.
	remove := func(lock string, paths ...string) error {
		if opts.DryRun {
			return nil
		}
		unlock, err := filelock.Lock(ctx, lock, nil)
		if err != nil {
			return err
		}
		defer unlock()
		if !old(paths[0]) {
			return nil // used while we waited
		}
		for _, p := range paths {
			if err := os.RemoveAll(p); err != nil {
				return err
			}
		}
		return nil
	}
	repos, _ := filepath.Glob(filepath.Join(dir, "*.git"))
	for _, p := range repos {
		if old(p) {
			if err := remove(p+".lock", p); err != nil {
				return nil, fmt.Errorf("prune %s: %w", p, err)
			}
			rep.GitRepositories++
		}
	}
	downloads := filepath.Join(dir, "mod", "download")
	err := filepath.WalkDir(downloads, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return filepath.SkipDir
		}
		if err != nil || d.IsDir() || filepath.Ext(p) != ".zip" || !old(p) {
			return err
		}
		stem := strings.TrimSuffix(p, ".zip")
		if err := remove(stem+".lock", p, stem+".info", stem+".mod"); err != nil {
			return err
		}
		rep.Modules++
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("prune %s: %w", downloads, err)
	}
	return rep, nil
}
