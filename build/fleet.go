package build

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/xtraefik/xtraefik/internal/cacherepo"
	"github.com/xtraefik/xtraefik/internal/fileset"
	"github.com/xtraefik/xtraefik/internal/plugin"
	"github.com/xtraefik/xtraefik/internal/sign"
	"github.com/xtraefik/xtraefik/verify"
)

// Environment variables of a fleet of runners sharing a cache repository.
const (
	// EnvCacheRepo names the cache repository (Config.CacheRepo).
	EnvCacheRepo = "XTRAEFIK_CACHE_REPO"
	// EnvCacheKey names the private key that signs what this runner
	// writes to the cache repository (Config.CacheKey).
	EnvCacheKey = "XTRAEFIK_CACHE_KEY"
	// EnvCacheTrust lists public key files (separated by
	// os.PathListSeparator) whose entries this runner reads
	// (Config.CacheTrust).
	EnvCacheTrust = "XTRAEFIK_CACHE_TRUST"
	// EnvVerdictKey and EnvVerdictKeyFile were a secret the fleet shared
	// to seal its verdicts. They are refused (legacyVerdictKey): any
	// runner holding the secret could write verdicts all others trusted.
	EnvVerdictKey     = "XTRAEFIK_VERDICT_KEY"
	EnvVerdictKeyFile = "XTRAEFIK_VERDICT_KEY_FILE"
)

// legacyVerdictKey refuses a fleet secret from before signed cache
// entries, saying what replaces it.
func legacyVerdictKey(env func(string) string) error {
	for _, v := range []string{EnvVerdictKey, EnvVerdictKeyFile} {
		if env(v) != "" {
			return fmt.Errorf("$%s is no longer read: a key the fleet shares lets every runner holding it write verdicts every other runner trusts. "+
				"Make a key pair (openssl genpkey -algorithm ed25519 -out cache.key && openssl pkey -in cache.key -pubout -out cache.pub), "+
				"give the runners that may write the cache --cache-key cache.key ($%s), every runner --cache-trust cache.pub ($%s), and unset $%s",
				v, EnvCacheKey, EnvCacheTrust, v)
		}
	}
	return nil
}

// fleetKeys loads the signing key (password from $COSIGN_PASSWORD, as
// cosign reads it) and the trusted public keys: keyRef, else $XTRAEFIK_CACHE_KEY;
// trust and $XTRAEFIK_CACHE_TRUST.
func fleetKeys(ctx context.Context, keyRef string, trust []string, env func(string) string) (cacherepo.Keys, error) {
	var keys cacherepo.Keys
	from := "--cache-key"
	if keyRef == "" {
		keyRef, from = env(EnvCacheKey), "$"+EnvCacheKey
	}
	if keyRef != "" {
		sv, err := sign.LoadKey(ctx, keyRef, func() ([]byte, error) { return []byte(env("COSIGN_PASSWORD")), nil })
		if err != nil {
			return keys, fmt.Errorf("%s: %w", from, err)
		}
		keys.Signer = sv
	}
	for _, f := range append(filepath.SplitList(env(EnvCacheTrust)), trust...) {
		if f == "" {
			continue
		}
		v, err := sign.LoadPublicKey(f)
		if err != nil {
			return keys, fmt.Errorf("cache trust: %w", err)
		}
		keys.Trust = append(keys.Trust, v)
	}
	return keys, nil
}

// treeCache is a store of verified plugin trees shared by a fleet of
// runners, keyed by content hash; *cacherepo.Store is the implementation.
// Nothing it returns is trusted: a tree counts only if it hashes to what
// the lock pins.
type treeCache interface {
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
	case errors.Is(err, cacherepo.ErrUntrusted), errors.Is(err, cacherepo.ErrForged):
		return false, []string{fmt.Sprintf("%s: the cache repository's entry is ignored, fetched from the source: %v", where, err)}
	}
	return false, []string{fmt.Sprintf("%s: cache repository not used: %v", where, err)}
}

// shareTrees stores the verified plugin trees in the cache repository
// (those already there cost one manifest request each). A failure is a
// warning: the build does not depend on the cache.
func shareTrees(ctx context.Context, o *options, res *resolution, rep *Report) {
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

// fleetVerdicts layers the cache repository's verdicts under the local
// cache c.
func fleetVerdicts(ctx context.Context, store *cacherepo.Store, c *verify.DirCache) (verify.Cache, *cacherepo.Verdicts) {
	v := store.Verdicts(ctx)
	return verify.Layered{Local: c, Remote: v}, v
}
