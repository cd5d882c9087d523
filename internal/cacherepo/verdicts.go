package cacherepo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/xtraefik/xtraefik/verify"
)

// Verdicts is a verify.Cache (a verify.FleetCache, for verify.Layered)
// kept in the Store's repository, one record per verdict tagged
// "verdict-<key>". A record is signed by its writer (Keys.Signer) over the
// tag, the verdict, when it was given and the signer, and counts only if a
// key this runner trusts signed it: write access to the registry is not
// enough to make a plugin pass, nor is holding another runner's key —
// only the private keys of trusted writers are. A read-only Store's
// Verdicts reads and never writes.
//
// verify.Cache has no context: Verdicts uses the one given to
// Store.Verdicts for every request, so it lives as long as one build.
// Failures never fail a build: a record that no trusted key signed, or a
// registry that does not answer, is a miss, and Warnings says what
// happened. After the registry fails once (other than "not found")
// Verdicts stops asking it, so that a registry gone silent costs one stall
// per build, not one per plugin; likewise for writing.
type Verdicts struct {
	ctx   context.Context
	store *Store

	mu       sync.Mutex
	warnings []error
	// down: reading failed once; noPush: writing did (a runner may well
	// have read-only credentials).
	down, noPush bool
}

// Verdicts is the store's verdict cache for the build running under ctx.
func (s *Store) Verdicts(ctx context.Context) *Verdicts {
	return &Verdicts{ctx: ctx, store: s}
}

// Warnings returns what was ignored so far: records that did not open
// (ErrUntrusted, ErrForged), entries that are no records, a failing
// registry.
func (v *Verdicts) Warnings() []error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]error(nil), v.warnings...)
}

func (v *Verdicts) warn(err error, down bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.warnings = append(v.warnings, err)
	v.down = v.down || down
}

func (v *Verdicts) isDown() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.down
}

// pushFailed records the first failed write and turns writing off.
func (v *Verdicts) pushFailed(err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.noPush {
		v.warnings = append(v.warnings, fmt.Errorf("%w; no more verdicts are stored there in this build", err))
	}
	v.noPush = true
}

// tag is where the verdict under key is kept. Keys are verify's hex hashes;
// anything else has no tag.
func (v *Verdicts) tag(key string) (name.Tag, bool) {
	const prefix = "verdict-"
	if key == "" || len(prefix)+len(key) > 128 || strings.Trim(key, "0123456789abcdef") != "" {
		return name.Tag{}, false
	}
	return v.store.repo.Tag(prefix + key), true
}

// Get returns the verdict stored under key, with a note naming the cache.
func (v *Verdicts) Get(key string) (verify.Result, bool) {
	c, ok := v.Record(key)
	if !ok {
		return verify.Result{}, false
	}
	c.Result.Notes = append(c.Result.Notes, verify.CacheNote("the fleet cache "+v.store.String(), c.Verified))
	return c.Result, true
}

// Record is Get without the note: the verdict as signed, when it was given
// and the fingerprint of the trusted key that signed it.
func (v *Verdicts) Record(key string) (verify.CachedVerdict, bool) {
	tag, ok := v.tag(key)
	if !ok || v.isDown() || v.ctx.Err() != nil {
		return verify.CachedVerdict{}, false
	}
	data, err := v.read(tag)
	switch {
	case errors.Is(err, ErrNotFound):
		return verify.CachedVerdict{}, false
	case errors.Is(err, ErrMismatch):
		v.warn(fmt.Errorf("verdict ignored: %w", err), false)
		return verify.CachedVerdict{}, false
	case err != nil:
		v.warn(fmt.Errorf("verdicts in %s not read for the rest of this build, as it failed: %w", v.store, err), true)
		return verify.CachedVerdict{}, false
	}
	rec, err := v.store.keys.open(data, kindVerdict, tag.TagStr())
	if err == nil {
		err = checkVerdict(rec, key)
	}
	if err != nil {
		v.warn(fmt.Errorf("verdict %s ignored, the plugin is verified here again: %w", tag.TagStr(), err), false)
		return verify.CachedVerdict{}, false
	}
	return verify.CachedVerdict{Result: *rec.Result, Verified: *rec.Verified, Signer: rec.Signer}, true
}

// Vouches reports whether a verdict signer signed, copied into a runner's
// own cache under key by an earlier build, still counts: while this Store
// trusts signer. A key dropped from the trusted ones (--cache-trust) takes
// its verdicts with it, copies included; the warning says so.
func (v *Verdicts) Vouches(key, signer string) bool {
	if _, ok := v.store.keys.trust[signer]; ok {
		return true
	}
	where := "under key " + key
	if tag, ok := v.tag(key); ok {
		where = tag.TagStr()
	}
	v.warn(fmt.Errorf("verdict %s, copied from the cache repository by an earlier build, ignored, the plugin is verified here again: %w: signed by key %s, which is no longer trusted", where, ErrUntrusted, shownKey(signer)), false)
	return false
}

// checkVerdict checks that a signed verdict record is one of key, and a
// verdict a cache keeps.
func checkVerdict(rec *record, key string) error {
	switch {
	case rec.Key != key:
		return fmt.Errorf("%w: record moved between keys: signed by %s for key %s", ErrForged, rec.Signer, rec.Key)
	case rec.Result == nil || rec.Verified == nil:
		return fmt.Errorf("%w: signed by %s, but holds no verdict", ErrForged, rec.Signer)
	case !verify.Cacheable(*rec.Result):
		return fmt.Errorf("%w: signed by %s, but holds a verdict no cache keeps (%s)", ErrForged, rec.Signer, rec.Result.Status)
	}
	return nil
}

func (v *Verdicts) read(tag name.Tag) ([]byte, error) {
	return v.store.readRecord(v.ctx, tag, VerdictArtifactType)
}

// readRecord reads the signed record (a DSSE envelope, not yet opened)
// of the artifact of artifactType tagged tag, bounded by maxRecord.
func (s *Store) readRecord(ctx context.Context, tag name.Tag, artifactType string) ([]byte, error) {
	m, err := s.fetchArtifact(ctx, tag, artifactType, VerdictMediaType, s.maxRecord)
	if err != nil {
		return nil, err
	}
	blob := tag.Context().Digest(m.Layers[0].Digest.String())
	layer, err := remote.Layer(blob, s.remote(ctx)...)
	if err != nil {
		return nil, s.opts.Explain(err, blob)
	}
	rc, err := layer.Compressed()
	if err != nil {
		return nil, s.opts.Explain(err, blob)
	}
	defer rc.Close()
	// One byte over the size lets the digest check see the end of the blob.
	data, err := io.ReadAll(io.LimitReader(rc, m.Layers[0].Size+1))
	if err != nil {
		return nil, s.opts.Explain(err, blob)
	}
	return data, nil
}

// Put stores a verify.Cacheable verdict under key; it ignores any other.
func (v *Verdicts) Put(key string, r verify.Result) error {
	return v.PutRecord(key, verify.CachedVerdict{Result: r, Verified: time.Now()})
}

// PutRecord is Put of a verdict given at c.Verified, signed with this
// Store's key (c.Signer is not kept: the record names its own).
func (v *Verdicts) PutRecord(key string, c verify.CachedVerdict) error {
	r, verified := c.Result, c.Verified
	if !verify.Cacheable(r) {
		return nil
	}
	tag, ok := v.tag(key)
	if !ok {
		return fmt.Errorf("verdict cache: key %q is not a hex hash", key)
	}
	if err := v.ctx.Err(); err != nil {
		return fmt.Errorf("verdict cache: %w", err)
	}
	if v.store.ReadOnly() {
		return nil // no signing key: this runner reads only
	}
	v.mu.Lock()
	noPush := v.noPush
	v.mu.Unlock()
	if noPush {
		return fmt.Errorf("verdict cache %s: not written to for the rest of this build", v.store)
	}
	r.Duration = 0
	at := verified.UTC()
	data, err := v.store.keys.seal(record{Kind: kindVerdict, Tag: tag.TagStr(), Key: key, Verified: &at, Result: &r})
	if err != nil {
		return fmt.Errorf("verdict cache: %w", err)
	}
	layer := static.NewLayer(data, types.MediaType(VerdictMediaType))
	if err := v.store.push(v.ctx, tag, VerdictArtifactType, layer, nil, nil); err != nil {
		err = fmt.Errorf("verdict cache: %w", err)
		v.pushFailed(err)
		return err
	}
	return nil
}

var _ verify.FleetCache = (*Verdicts)(nil)
