package verify

import (
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
	"github.com/xtraefik/xtraefik/plugin"
)

// Cache keeps verdicts across runs. A verdict is found again only under a
// key made of everything that decided it (cacheKey), so a hit is the verdict
// the same verification would give; only OK verdicts are kept.
type Cache interface {
	Get(key string) (Result, bool)
	Put(key string, r Result) error
}

// DirCache is a Cache of one JSON file per verdict in a directory, safe for
// concurrent processes: entries are written beside their name and renamed
// into place, and an entry that does not decode, or holds another key, is
// ignored (and removed).
type DirCache string

// cacheEntry is one file of a DirCache.
type cacheEntry struct {
	Key      string    `json:"key"`
	Verified time.Time `json:"verified"`
	Result   Result    `json:"result"`
}

func (d DirCache) path(key string) string { return filepath.Join(string(d), key+".json") }

// Get returns the verdict stored under key.
func (d DirCache) Get(key string) (Result, bool) {
	data, err := os.ReadFile(d.path(key))
	if err != nil {
		return Result{}, false
	}
	var e cacheEntry
	if err := json.Unmarshal(data, &e); err != nil || e.Key != key || e.Result.Status != StatusOK {
		os.Remove(d.path(key)) // corrupt or foreign: verify again
		return Result{}, false
	}
	e.Result.Notes = append(e.Result.Notes, "verdict from the cache: verified "+e.Verified.UTC().Format(time.RFC3339)+" with the same files, configuration, interpreter and xtraefik")
	return e.Result, true
}

// Put stores an OK verdict under key.
func (d DirCache) Put(key string, r Result) error {
	if r.Status != StatusOK {
		return nil
	}
	r.Duration = 0
	data, err := json.Marshal(cacheEntry{Key: key, Verified: time.Now().UTC(), Result: r})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(string(d), 0o755); err != nil {
		return fmt.Errorf("verdict cache: %w", err)
	}
	if err := filelock.WriteFile(d.path(key), data); err != nil {
		return fmt.Errorf("verdict cache: %w", err)
	}
	return nil
}

// Prune removes entries not used (read or written) for maxAge, and reports
// how many it removed.
func (d DirCache) Prune(maxAge time.Duration) (int, error) {
	entries, err := os.ReadDir(string(d))
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
			if os.Remove(filepath.Join(string(d), e.Name())) == nil {
				n++
			}
		}
	}
	return n, nil
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
