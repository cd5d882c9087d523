package verify

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/xtraefik/xtraefik/internal/buildid"
	"github.com/xtraefik/xtraefik/internal/manifest"
	"github.com/xtraefik/xtraefik/internal/place"
	"github.com/xtraefik/xtraefik/internal/plugin"
	"github.com/xtraefik/xtraefik/internal/private"
)

// Cache keeps verdicts across runs. A verdict is found again only under a
// key made of everything that decided it (cacheKey), so a hit is the verdict
// the same verification would give; only OK verdicts are kept.
type Cache interface {
	Get(key string) (Result, bool)
	Put(key string, r Result) error
}

// RecordCache is a Cache that also hands out and takes a verdict as a
// CachedVerdict (when it was given, who signed it), so that Layered copies a
// verdict from cache to cache as it was given, not as a new one.
type RecordCache interface {
	Cache
	// Record is Get without the note saying where the verdict came from.
	Record(key string) (CachedVerdict, bool)
	// PutRecord stores a Cacheable verdict as given (it ignores any other).
	PutRecord(key string, v CachedVerdict) error
}

// CachedVerdict is a verdict as a cache holds it.
type CachedVerdict struct {
	Result Result
	// Verified is when it was given.
	Verified time.Time
	// Signer is the fingerprint of the fleet key that signed the verdict
	// (package cacherepo), kept with a copy taken from a fleet cache; "" for
	// a verdict given on this runner.
	Signer string
}

// FleetCache is the shared cache of a fleet of runners, whose verdicts
// count because keys this runner trusts signed them.
type FleetCache interface {
	RecordCache
	// Vouches reports whether a verdict signer signed, copied earlier
	// into this runner's own cache under key, still counts: while this
	// runner trusts signer. When it does not, the FleetCache warns that
	// the copy was ignored.
	Vouches(key, signer string) bool
}

// Layered is a Cache of two: Local (this machine's) answers first; a verdict
// only Remote (a fleet's shared cache) holds is copied into Local with the
// time it was given and the key that signed it, so the next run needs no
// network for it. A copy counts only while Remote still trusts its signer:
// removing a key from the trusted ones drops the verdicts it signed on
// every runner, copies included (verdicts this runner gave are its own).
// Put writes both. Each cache applies its own trust rule (its MAC, the
// writers' signatures) to what it reads and seals what it stores with its
// own key.
type Layered struct {
	Local  RecordCache
	Remote FleetCache
}

// Get returns Local's verdict, else Remote's (copied into Local).
func (l Layered) Get(key string) (Result, bool) {
	if v, ok := l.Local.Record(key); ok && (v.Signer == "" || l.Remote.Vouches(key, v.Signer)) {
		v.Result.Notes = append(v.Result.Notes, CacheNote("the cache", v.Verified))
		return v.Result, true
	}
	v, ok := l.Remote.Record(key)
	if !ok {
		return Result{}, false
	}
	// Best effort: without the copy, the next run asks Remote again.
	_ = l.Local.PutRecord(key, v)
	v.Result.Notes = append(v.Result.Notes, CacheNote("the shared cache", v.Verified))
	return v.Result, true
}

// Put stores r in both caches, with one verification time.
func (l Layered) Put(key string, r Result) error {
	v := CachedVerdict{Result: r, Verified: time.Now()}
	return errors.Join(l.Local.PutRecord(key, v), l.Remote.PutRecord(key, v))
}

// DirCache is a Cache of one JSON file per verdict in Dir, safe for
// concurrent processes (entries are written beside their name and renamed
// into place). A verdict is a claim nobody can check without verifying
// again, so an entry counts only if it carries the MAC made with Secret: a
// key kept outside the cache (see NewDirCache), which a restored or shared
// cache directory, or another user, does not have. Dir must belong to the
// caller and be writable by nobody else; an entry that does not decode,
// holds another key or fails its MAC is ignored (and removed).
// Runners share verdicts through package cacherepo, whose records are
// signed with each writer's key pair, not sealed with this key.
type DirCache struct {
	Dir    string
	Secret []byte
}

// NewDirCache opens the verdict cache in dir with the secret in keyFile,
// creating either (0700 and 0600) when missing. It refuses a directory or
// key file owned by another user or open to others: whoever can write
// there can make a plugin pass.
func NewDirCache(dir, keyFile string) (*DirCache, error) {
	if err := private.MkdirAll(dir); err != nil {
		return nil, fmt.Errorf("verdict cache %s: %w", dir, err)
	}
	secret, err := LoadKey(keyFile)
	if err != nil {
		return nil, err
	}
	return &DirCache{Dir: dir, Secret: secret}, nil
}

// DefaultKeyFile is where a host keeps the key its caches are sealed with:
// $XDG_CONFIG_HOME/xtraefik/verdict-cache.key, else under $HOME/.config.
func DefaultKeyFile() (string, error) { return KeyFileFor(os.Getenv) }

// KeyFileFor is DefaultKeyFile with the variables read through env (a
// library caller's environment, build.Config.Env). The key is kept outside
// the cache directory on purpose: a cache restored in CI or shared must not
// bring the key that vouches for its entries.
func KeyFileFor(env func(string) string) (string, error) {
	config := env("XDG_CONFIG_HOME")
	if config == "" && env("HOME") != "" {
		config = filepath.Join(env("HOME"), ".config")
	}
	if config == "" {
		return "", errors.New("no configuration directory for the host key (set HOME or XDG_CONFIG_HOME)")
	}
	return filepath.Join(config, "xtraefik", "verdict-cache.key"), nil
}

// LoadKey reads the secret in keyFile, making it (0600, in a 0700
// directory) when missing; it refuses a key or directory another user
// owns or may write. The caches that decide what is trusted (verdicts,
// rendered layers) seal their entries with it.
func LoadKey(keyFile string) ([]byte, error) {
	if err := private.MkdirAll(filepath.Dir(keyFile)); err != nil {
		return nil, fmt.Errorf("verdict cache key %s: %w", keyFile, err)
	}
	secret, err := os.ReadFile(keyFile)
	if errors.Is(err, fs.ErrNotExist) {
		secret = make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(keyFile, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			if !errors.Is(err, fs.ErrExist) {
				return nil, fmt.Errorf("verdict cache key: %w", err)
			}
			// Another process made it first: use theirs.
			if secret, err = os.ReadFile(keyFile); err != nil {
				return nil, fmt.Errorf("verdict cache key: %w", err)
			}
		} else {
			_, werr := f.Write(secret)
			if cerr := f.Close(); werr == nil {
				werr = cerr
			}
			if werr != nil {
				return nil, fmt.Errorf("verdict cache key: %w", werr)
			}
		}
	} else if err != nil {
		return nil, fmt.Errorf("verdict cache key: %w", err)
	}
	if err := private.Check(keyFile); err != nil {
		return nil, fmt.Errorf("verdict cache key %s: %w", keyFile, err)
	}
	if len(secret) < minSecret {
		return nil, fmt.Errorf("verdict cache key %s: too short", keyFile)
	}
	return secret, nil
}

// OpenDirCache opens the verdict cache in dir with a secret the caller
// holds (read once by the caller, e.g. build's user key) instead of a key
// file.
func OpenDirCache(dir string, secret []byte) (*DirCache, error) {
	if len(secret) < minSecret {
		return nil, fmt.Errorf("verdict cache key: shorter than %d bytes", minSecret)
	}
	if err := private.MkdirAll(dir); err != nil {
		return nil, fmt.Errorf("verdict cache %s: %w", dir, err)
	}
	return &DirCache{Dir: dir, Secret: append([]byte(nil), secret...)}, nil
}

// cacheEntry is one sealed verdict record: a file of a DirCache
// (SealVerdict).
type cacheEntry struct {
	Key      string    `json:"key"`
	Verified time.Time `json:"verified"`
	Result   Result    `json:"result"`
	// Signer is CachedVerdict.Signer: the fleet key that signed a copy.
	Signer string `json:"signer,omitempty"`
	// MAC is HMAC-SHA256 over all of the above as stored.
	MAC string `json:"mac"`
}

// minSecret is the shortest key a verdict may be sealed with.
const minSecret = 32

func entryMAC(secret []byte, e cacheEntry) (string, error) {
	e.MAC = ""
	data, err := json.Marshal(e)
	if err != nil {
		return "", err
	}
	m := hmac.New(sha256.New, secret)
	m.Write(data)
	return hex.EncodeToString(m.Sum(nil)), nil
}

// Cacheable reports whether a cache keeps r: only an OK verdict given under
// full containment (a verdict from a sandbox the plugin could reach out of
// is not kept).
func Cacheable(r Result) bool {
	return r.Status == StatusOK && r.Containment != nil && r.Containment.Full()
}

// SealVerdict is the record of v stored under key: JSON with an
// HMAC-SHA256 made with secret over all of it (its signer included), so
// that only a holder of secret can make a record OpenVerdict accepts. It
// refuses a verdict that is not Cacheable.
func SealVerdict(secret []byte, key string, v CachedVerdict) ([]byte, error) {
	if len(secret) < minSecret {
		return nil, fmt.Errorf("seal verdict: the key is shorter than %d bytes", minSecret)
	}
	r := v.Result
	if !Cacheable(r) {
		return nil, errors.New("seal verdict: only an OK verdict given under full containment is kept")
	}
	r.Duration = 0
	e := cacheEntry{Key: key, Verified: v.Verified.UTC(), Result: r, Signer: v.Signer}
	var err error
	if e.MAC, err = entryMAC(secret, e); err != nil {
		return nil, err
	}
	return json.Marshal(e)
}

// OpenVerdict returns the verdict a record holds, when it was given and who
// signed it, if the record decodes, was stored under key, holds an OK
// verdict and carries the MAC made with secret; ok is false for anything
// else (corrupt, moved from another key, edited, or sealed with another
// secret).
func OpenVerdict(secret []byte, key string, data []byte) (v CachedVerdict, ok bool) {
	if len(secret) < minSecret {
		return CachedVerdict{}, false
	}
	var e cacheEntry
	if err := json.Unmarshal(data, &e); err != nil {
		return CachedVerdict{}, false
	}
	want, err := entryMAC(secret, e)
	if err != nil || e.Key != key || e.Result.Status != StatusOK || !hmac.Equal([]byte(want), []byte(e.MAC)) {
		return CachedVerdict{}, false
	}
	return CachedVerdict{Result: e.Result, Verified: e.Verified, Signer: e.Signer}, true
}

// CacheNote is the note a verdict from a cache carries: where it came from
// and when it was given.
func CacheNote(where string, verified time.Time) string {
	return "verdict from " + where + ": verified " + verified.UTC().Format(time.RFC3339) + " with the same files, configuration, interpreter and xtraefik"
}

func (d *DirCache) path(key string) string { return filepath.Join(d.Dir, key+".json") }

// Get returns the verdict stored under key. It does not look at who signed
// a copy from a fleet cache: Layered does, with the fleet's trusted keys.
func (d *DirCache) Get(key string) (Result, bool) {
	v, ok := d.Record(key)
	if !ok {
		return Result{}, false
	}
	v.Result.Notes = append(v.Result.Notes, CacheNote("the cache", v.Verified))
	return v.Result, true
}

// Record is Get without the note: the verdict as stored, when it was given
// and who signed it.
func (d *DirCache) Record(key string) (CachedVerdict, bool) {
	data, err := os.ReadFile(d.path(key))
	if err != nil {
		return CachedVerdict{}, false
	}
	v, ok := OpenVerdict(d.Secret, key, data)
	if !ok {
		os.Remove(d.path(key)) // corrupt, foreign or forged: verify again
		return CachedVerdict{}, false
	}
	// The entry's time is its last use, which Prune goes by: a verdict
	// read every day stays. Best effort: a read-only cache still answers.
	now := time.Now()
	_ = os.Chtimes(d.path(key), now, now)
	return v, true
}

// Put stores a Cacheable verdict under key; it ignores any other.
func (d *DirCache) Put(key string, r Result) error {
	return d.PutRecord(key, CachedVerdict{Result: r, Verified: time.Now()})
}

// PutRecord stores v as given (a copy from another cache keeps its time and
// signer).
func (d *DirCache) PutRecord(key string, v CachedVerdict) error {
	if !Cacheable(v.Result) {
		return nil
	}
	data, err := SealVerdict(d.Secret, key, v)
	if err != nil {
		return fmt.Errorf("verdict cache: %w", err)
	}
	if err := place.WriteFile(d.path(key), data, 0o600); err != nil {
		return fmt.Errorf("verdict cache: %w", err)
	}
	return nil
}

// Prune removes entries not used (read or written) for maxAge, and reports
// how many it removed; dryRun counts them without removing. Only regular
// files are entries: a symbolic link or directory put there is left alone.
func (d *DirCache) Prune(maxAge time.Duration, dryRun bool) (int, error) {
	entries, err := os.ReadDir(d.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil || time.Since(info.ModTime()) <= maxAge {
			continue
		}
		if dryRun || os.Remove(filepath.Join(d.Dir, e.Name())) == nil {
			n++
		}
	}
	return n, nil
}

// cacheKey is the hash of everything that decides p's verdict: its files
// and those of every other plugin of the tree (Yaegi's GOPATH lookup sees
// them), its configuration and expected status, the useUnsafe decision and
// the trust given, the interpreter and what else of the Traefik release
// matters (traefik: plan.keyTraefik, the release itself only when the
// interpreter is not exactly known), the containment asked for, and this
// xtraefik build.
func cacheKey(p plugin.Plugin, all []plugin.Plugin, interpreter, traefik string, opts Options, self string) (string, error) {
	hashes := make([]string, 0, len(all))
	for _, q := range all {
		h, err := contentHash(q)
		if err != nil {
			return "", err
		}
		hashes = append(hashes, q.Module+"="+h)
	}
	slices.Sort(hashes)
	own, err := contentHash(p)
	if err != nil {
		return "", err
	}
	config, err := yaml.Marshal(p.Config)
	if err != nil {
		return "", err
	}
	data, err := json.Marshal(map[string]any{
		"schema": 2, "xtraefik": self, "alias": p.Alias, "module": p.Module, "hash": own, "tree": hashes,
		"config": string(config), "expect": p.ExpectStatus, "useUnsafe": p.UseUnsafe, "allowUnsafe": opts.AllowUnsafe,
		"traefik": traefik, "interpreter": interpreter, "sandbox": string(opts.Sandbox),
		"approximate": opts.AcceptApproximate, "timeout": opts.Timeout.String(), "memory": opts.MemoryLimit,
	})
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

func contentHash(p plugin.Plugin) (string, error) {
	if p.Hash != "" {
		return p.Hash, nil
	}
	return p.Files.Hash()
}

// fromCache fills the results the cache holds and returns each laid-out
// plugin's cache key ("" without a cache); the others are verified.
func (v *Verifier) fromCache(plugins []plugin.Plugin, laidOut []bool, pl *plan, results []Result) []string {
	keys := make([]string, len(plugins))
	if v.opts.Cache == nil {
		return keys
	}
	self := buildid.Self()
	for i, p := range plugins {
		if !laidOut[i] {
			continue
		}
		m := p.Manifest
		if m == nil {
			var err error
			if m, err = manifest.Read(p.Files); err != nil {
				continue // verifyOne says why
			}
		}
		interpreter := pl.yaegiName()
		if m.IsWasm() {
			interpreter = interpreterName(true)
		}
		key, err := cacheKey(p, plugins, interpreter, pl.keyTraefik(m.IsWasm()), v.opts, self)
		if err != nil {
			continue
		}
		keys[i] = key
		if r, ok := v.opts.Cache.Get(key); ok {
			r.Alias, r.Module, r.Commit, r.Version, r.Cached = p.Alias, p.Module, p.Source.Commit, p.Source.Version, true
			r.InterpreterSource = pl.interpreterSource
			results[i] = r
		}
	}
	return keys
}
