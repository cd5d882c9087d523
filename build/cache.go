package build

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/xtraefik/xtraefik/images/blobstore"
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

// PruneReport says what PruneCache removed.
type PruneReport struct {
	Dir      string                `json:"dir"`
	Blobs    blobstore.PruneResult `json:"blobs"`
	Verdicts int                   `json:"verdictsRemoved"`
}

// PruneCache trims the cache directory dir: base blobs by age and size,
// verdicts by age. Builds may run meanwhile: one that needs a removed
// blob fetches it again. Git repositories, module downloads and
// verification workers are kept (they are small next to base layers, and
// an offline build needs them).
func PruneCache(dir string, opts PruneOptions) (*PruneReport, error) {
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
	if opts.MaxAge > 0 && !opts.DryRun {
		n, err := (&verify.DirCache{Dir: filepath.Join(dir, "verdicts")}).Prune(opts.MaxAge)
		if err != nil {
			return nil, fmt.Errorf("prune verdicts: %w", err)
		}
		rep.Verdicts = n
	}
	return rep, nil
}
