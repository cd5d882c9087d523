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
	"runtime/debug"
	"slices"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/xtraefik/xtraefik/internal/filelock"
	"github.com/xtraefik/xtraefik/manifest"
	"github.com/xtraefik/xtraefik/plugin"
)

// Cache keeps verdicts across runs. A verdict is found again only under a
// key made of everything that decided it (cacheKey), so a hit is the verdict
// the same verification would give; only OK verdicts are kept.
type Cache interface {
	Get(key string) (Result, bool)
	Put(key string, r Result) error
}

// DirCache is a Cache of one JSON file per verdict in Dir, safe for
// concurrent processes (entries are written beside their name and renamed
// into place). A verdict is a claim nobody can check without verifying
// again, so an entry counts only if it carries the MAC made with Secret: a
// key kept outside the cache (see NewDirCache), which a restored or shared
// cache directory, or another user, does not have. Dir must belong to the
// caller and be writable by nobody else; an entry that does not decode,
// holds another key or fails its MAC is ignored (and removed).
type DirCache struct {
	Dir    string
	Secret []byte
}

// NewDirCache opens the verdict cache in dir with the secret in keyFile,
// creating either (0700 and 0600) when missing. It refuses a directory or
// key file owned by another user or open to others: whoever can write
// there can make a plugin pass.
func NewDirCache(dir, keyFile string) (*DirCache, error) {
	if err := privateDir(dir); err != nil {
		return nil, fmt.Errorf("verdict cache %s: %w", dir, err)
	}
	if err := privateDir(filepath.Dir(keyFile)); err != nil {
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
	if err := private(keyFile); err != nil {
		return nil, fmt.Errorf("verdict cache key %s: %w", keyFile, err)
	}
	if len(secret) < 32 {
		return nil, fmt.Errorf("verdict cache key %s: too short", keyFile)
	}
	return &DirCache{Dir: dir, Secret: secret}, nil
}

// cacheEntry is one file of a DirCache.
type cacheEntry struct {
	Key      string    `json:"key"`
	Verified time.Time `json:"verified"`
	Result   Result    `json:"result"`
	// MAC is HMAC-SHA256 over Key, Verified and Result as stored.
	MAC string `json:"mac"`
}

func (d *DirCache) path(key string) string { return filepath.Join(d.Dir, key+".json") }

func (d *DirCache) mac(e cacheEntry) (string, error) {
	e.MAC = ""
	data, err := json.Marshal(e)
	if err != nil {
		return "", err
	}
	m := hmac.New(sha256.New, d.Secret)
	m.Write(data)
	return hex.EncodeToString(m.Sum(nil)), nil
}

// Get returns the verdict stored under key.
func (d *DirCache) Get(key string) (Result, bool) {
	data, err := os.ReadFile(d.path(key))
	if err != nil {
		return Result{}, false
	}
	var e cacheEntry
	err = json.Unmarshal(data, &e)
	var want string
	if err == nil {
		want, err = d.mac(e)
	}
	if err != nil || e.Key != key || e.Result.Status != StatusOK || !hmac.Equal([]byte(want), []byte(e.MAC)) {
		os.Remove(d.path(key)) // corrupt, foreign or forged: verify again
		return Result{}, false
	}
	e.Result.Notes = append(e.Result.Notes, "verdict from the cache: verified "+e.Verified.UTC().Format(time.RFC3339)+" with the same files, configuration, interpreter and xtraefik")
	return e.Result, true
}

// Put stores an OK verdict given under full containment under key: a
// verdict from a sandbox the plugin could reach out of is not kept.
func (d *DirCache) Put(key string, r Result) error {
	if r.Status != StatusOK || r.Containment == nil || !r.Containment.Full() {
		return nil
	}
	r.Duration = 0
	e := cacheEntry{Key: key, Verified: time.Now().UTC(), Result: r}
	var err error
	if e.MAC, err = d.mac(e); err != nil {
		return err
	}
	data, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if err := filelock.WriteFile(d.path(key), data); err != nil {
		return fmt.Errorf("verdict cache: %w", err)
	}
	return nil
}

// Prune removes entries not used (read or written) for maxAge, and reports
// how many it removed.
func (d *DirCache) Prune(maxAge time.Duration) (int, error) {
	entries, err := os.ReadDir(d.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range entries {
		info, err := e.Info()
		if err == nil && time.Since(info.ModTime()) > maxAge {
			if os.Remove(filepath.Join(d.Dir, e.Name())) == nil {
				n++
			}
		}
	}
	return n, nil
}

// privateDir makes dir (0700) when missing and checks it is private.
func privateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return private(dir)
}

// cacheKey is the hash of everything that decides p's verdict: its files
// and those of every other plugin of the tree (Yaegi's GOPATH lookup sees
// them), its configuration and expected status, the useUnsafe decision and
// the trust given, the Traefik version, the interpreter, the containment
// asked for, and this xtraefik build.
func cacheKey(p plugin.Plugin, all []plugin.Plugin, interpreter string, opts Options, self string) (string, error) {
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
		"schema": 1, "xtraefik": self, "alias": p.Alias, "module": p.Module, "hash": own, "tree": hashes,
		"config": string(config), "expect": p.ExpectStatus, "useUnsafe": p.UseUnsafe, "allowUnsafe": opts.AllowUnsafe,
		"traefik": opts.TraefikVersion, "yaegi": opts.Yaegi, "interpreter": interpreter, "sandbox": string(opts.Sandbox),
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

// buildIdentity names this xtraefik build: its module version and commit
// when it has them, else (a development build) its executable's size and
// time, so a rebuilt binary never reuses an older one's verdicts.
func buildIdentity() string {
	id := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		id = bi.Main.Version
		revision, modified := "", true
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				revision = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		switch {
		case revision != "" && !modified:
			return id + "+" + revision
		case id != "(devel)" && id != "" && revision == "":
			return id // go install module@version
		}
	}
	if exe, err := os.Executable(); err == nil {
		if info, err := os.Stat(exe); err == nil {
			id += fmt.Sprintf("+exe:%d:%d", info.Size(), info.ModTime().UnixNano())
		}
	}
	return id
}

// fromCache fills the results the cache holds and returns each laid-out
// plugin's cache key ("" without a cache); the others are verified.
func (v *Verifier) fromCache(plugins []plugin.Plugin, laidOut []bool, pl *plan, results []Result) []string {
	keys := make([]string, len(plugins))
	if v.opts.Cache == nil {
		return keys
	}
	self := buildIdentity()
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
		key, err := cacheKey(p, plugins, interpreter, v.opts, self)
		if err != nil {
			continue
		}
		keys[i] = key
		if r, ok := v.opts.Cache.Get(key); ok {
			r.Alias, r.Module, r.Commit, r.Version, r.Cached = p.Alias, p.Module, p.Source.Commit, p.Source.Version, true
			results[i] = r
		}
	}
	return keys
}
