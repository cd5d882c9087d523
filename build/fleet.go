package build

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/xtraefik/xtraefik/cacherepo"
	"github.com/xtraefik/xtraefik/fileset"
	"github.com/xtraefik/xtraefik/plugin"
	"github.com/xtraefik/xtraefik/verify"
)

// Environment variables of a fleet of runners sharing a cache repository.
const (
	// EnvCacheRepo names the cache repository (Config.CacheRepo).
	EnvCacheRepo = "XTRAEFIK_CACHE_REPO"
	// EnvVerdictKey is the verdict key, hex-encoded (at least 32 bytes),
	// in place of the key file: runners holding the same key trust each
	// other's verdicts in the cache repository. Without it, verdicts stay
	// on each runner (trees are still shared).
	EnvVerdictKey = "XTRAEFIK_VERDICT_KEY"
	// EnvVerdictKeyFile names a file holding that key instead: unlike the
	// environment, a file can be kept from code running as the same user
	// (a process's environment is readable in /proc).
	EnvVerdictKeyFile = "XTRAEFIK_VERDICT_KEY_FILE"
)

// TreeCache is a store of verified plugin trees shared by a fleet of
// runners, keyed by content hash; *cacherepo.Store is the implementation.
// Nothing it returns is trusted: a tree counts only if it hashes to what
// the lock pins.
type TreeCache interface {
	GetTree(ctx context.Context, contentHash string) (fileset.Set, error)
	PutTree(ctx context.Context, p plugin.Plugin) error
}

// fromTrees reads a locked plugin's files from the shared tree cache. It
// reports whether it found them; an entry that does not match the lock, or
// a cache that fails, is a warning and a miss.
func (s *sources) fromTrees(ctx context.Context, where, hash string, p *plugin.Plugin) (bool, []string) {
	files, err := s.o.Trees.GetTree(ctx, hash)
	switch {
	case err == nil:
		// GetTree checked the hash; checked again with the rest below.
		p.Files = files
		return true, nil
	case errors.Is(err, cacherepo.ErrNotFound):
		return false, nil
	case errors.Is(err, cacherepo.ErrMismatch):
		return false, []string{fmt.Sprintf("%s: the cache repository's entry is not what the lock pins, ignored (fetched from the source, and the entry replaced): %v", where, err)}
	}
	return false, []string{fmt.Sprintf("%s: cache repository not used: %v", where, err)}
}

// shareTrees stores the verified plugin trees in the cache repository
// (those already there cost one manifest request each). A failure is a
// warning: the build does not depend on the cache.
func shareTrees(ctx context.Context, o *Options, res *Resolution, rep *Report) {
	if o.Trees == nil {
		return
	}
	for _, p := range res.Plugins {
		if p.Source.Path != "" {
			continue // a working copy is nobody else's to build, and never read back
		}
		if err := o.Trees.PutTree(ctx, p); err != nil {
			// One warning: read-only credentials would fail every plugin.
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("the cache repository did not take plugin %s, nor will it take the others in this build: %v", p.Alias, err))
			return
		}
	}
}

// verdictKey reads EnvVerdictKey, or the file EnvVerdictKeyFile names;
// nil when neither is set.
func verdictKey(env func(string) string) ([]byte, error) {
	v, from := strings.TrimSpace(env(EnvVerdictKey)), "$"+EnvVerdictKey
	if file := env(EnvVerdictKeyFile); file != "" {
		if v != "" {
			return nil, fmt.Errorf("both $%s and $%s are set: give the fleet's key once", EnvVerdictKey, EnvVerdictKeyFile)
		}
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("$%s: %w", EnvVerdictKeyFile, err)
		}
		v, from = strings.TrimSpace(string(data)), file
	}
	if v == "" {
		return nil, nil
	}
	key, err := hex.DecodeString(v)
	if err != nil || len(key) < 32 {
		return nil, fmt.Errorf("%s is not a verdict key: give 64 or more hex digits (openssl rand -hex 32)", from)
	}
	return key, nil
}

// fleetVerdicts layers the cache repository's verdicts under the local
// cache c, sealed with c's key.
func fleetVerdicts(ctx context.Context, store *cacherepo.Store, c *verify.DirCache) (verify.Cache, *cacherepo.Verdicts, error) {
	v, err := store.Verdicts(ctx, c.Secret)
	if err != nil {
		return nil, nil, err
	}
	return verify.Layered{Local: c, Remote: v}, v, nil
}
