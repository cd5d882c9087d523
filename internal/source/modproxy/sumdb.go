package modproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb"

	"github.com/xtraefik/xtraefik/internal/place"
)

// sumOps implements sumdb.ClientOps over the Client's HTTP client, with the
// database's tiles, records and latest signed tree kept under
// <CacheDir>/sumdb, so later runs prove the log only grew.
type sumOps struct {
	c   *Client
	cfg *sumDBConfig
	ctx context.Context // the context of the Client's first lookup

	baseOnce sync.Once
	base     string
	baseErr  error

	mu       sync.Mutex
	security []string // SecurityError messages, for the error returned
}

func (o *sumOps) dir() string { return filepath.Join(o.c.cacheDir, "sumdb") }

// ReadRemote fetches from the database, or through the first proxy that
// says it proxies it (<proxy>/sumdb/<name>/supported), as the go command
// does (cmd/go/internal/modfetch.dbClient.initBase).
func (o *sumOps) ReadRemote(p string) ([]byte, error) {
	if o.c.offline {
		// Offline, lookups are answered from the cached records and
		// tiles only.
		return nil, ErrNotCached
	}
	o.baseOnce.Do(o.initBase)
	if o.baseErr != nil {
		return nil, o.baseErr
	}
	// The sumdb client's API has no context: bound each request instead.
	ctx, cancel := context.WithTimeout(o.ctx, sumDBTimeout)
	defer cancel()
	return o.c.get(ctx, o.base+p)
}

// sumDBTimeout bounds one request to the checksum database (a lookup or a
// tile, a few kilobytes).
const sumDBTimeout = time.Minute

func (o *sumOps) initBase() {
	if o.cfg.base != nil {
		o.base = strings.TrimSuffix(o.cfg.base.String(), "/")
		return
	}
	for _, p := range o.c.env.proxies {
		if p.url == "direct" || p.url == "off" {
			break
		}
		if strings.HasPrefix(p.url, "file:") {
			continue
		}
		ctx, cancel := context.WithTimeout(o.ctx, sumDBTimeout)
		_, err := o.c.get(ctx, p.url+"/sumdb/"+o.cfg.name+"/supported")
		cancel()
		if err == nil {
			o.base = p.url + "/sumdb/" + o.cfg.name
			return
		}
		if !errors.Is(err, ErrNotFound) && !p.fallBackOnError {
			o.baseErr = fmt.Errorf("ask proxy whether it serves checksum database %s: %w", o.cfg.name, err)
			return
		}
	}
	// No proxy serves it: go to the database itself.
	o.base = "https://" + o.cfg.name
}

func (o *sumOps) ReadConfig(file string) ([]byte, error) {
	if file == "key" {
		return []byte(o.cfg.key), nil
	}
	p, err := o.configPath(file)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil // start from the empty tree
	}
	return b, err
}

func (o *sumOps) configPath(file string) (string, error) {
	if !filepath.IsLocal(filepath.FromSlash(file)) {
		return "", fmt.Errorf("checksum database file %q is not a local path", file)
	}
	return filepath.Join(o.dir(), "config", filepath.FromSlash(file)), nil
}

// WriteConfig replaces the latest signed tree if it is still old; a lock
// file makes the compare-and-swap hold between processes too.
func (o *sumOps) WriteConfig(file string, old, new []byte) error {
	p, err := o.configPath(file)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	unlock, err := place.Lock(o.ctx, p+".lock", nil)
	if err != nil {
		return err
	}
	defer unlock()
	cur, err := os.ReadFile(p)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if !bytes.Equal(cur, old) {
		return sumdb.ErrWriteConflict
	}
	return place.WriteFile(p, new, 0o600)
}

func (o *sumOps) ReadCache(file string) ([]byte, error) {
	if !filepath.IsLocal(filepath.FromSlash(file)) {
		return nil, os.ErrNotExist
	}
	return os.ReadFile(filepath.Join(o.dir(), "cache", filepath.FromSlash(file)))
}

// WriteCache stores tiles and records; a failure only costs a later
// download, as in the go command.
func (o *sumOps) WriteCache(file string, data []byte) {
	if !filepath.IsLocal(filepath.FromSlash(file)) {
		return
	}
	p := filepath.Join(o.dir(), "cache", filepath.FromSlash(file))
	if os.MkdirAll(filepath.Dir(p), 0o700) == nil {
		_ = place.WriteFile(p, data, 0o600)
	}
}

func (o *sumOps) Log(string) {}

// SecurityError keeps the message: the lookup then fails with ErrSecurity
// and the caller reports it.
func (o *sumOps) SecurityError(msg string) {
	o.mu.Lock()
	o.security = append(o.security, msg)
	o.mu.Unlock()
}

func (o *sumOps) securityText() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return strings.Join(o.security, "\n")
}

// sumDB returns the checksum database client, made on first use.
func (c *Client) sumDB(ctx context.Context) (*sumdb.Client, *sumOps) {
	c.sumOnce.Do(func() {
		// The ops live as long as the Client; the first caller's context
		// would end with its call, so requests use a context that only
		// keeps its values.
		c.sumOps = &sumOps{c: c, cfg: c.env.sumDB, ctx: context.WithoutCancel(ctx)}
		c.sumClient = sumdb.NewClient(c.sumOps)
	})
	return c.sumClient, c.sumOps
}

// checkSumDB compares sum, the h1: hash of mod@version's zip, with the
// checksum database's record.
func (c *Client) checkSumDB(ctx context.Context, mod, version, sum string) error {
	return c.checkSumDBLine(ctx, mod, version, "", sum)
}

// checkSumDBLine compares sum with the checksum database's record of
// mod@version<suffix>: the zip's for "", the go.mod file's for "/go.mod".
func (c *Client) checkSumDBLine(ctx context.Context, mod, version, suffix, sum string) error {
	db, ops := c.sumDB(ctx)
	lines, err := db.Lookup(mod, version+suffix)
	if err != nil {
		if errors.Is(err, sumdb.ErrSecurity) {
			return fmt.Errorf("%w: checksum database %s misbehaves: %s", ErrChecksum, c.env.sumDB.name, ops.securityText())
		}
		if c.offline {
			// The sumdb package flattens its errors: any failure offline
			// is a record or tile that was never cached.
			return &notCached{mod: module.Version{Path: mod, Version: version}, why: "checksum database " + c.env.sumDB.name + " has no cached record of it (lock its h1: hash, or fetch it online once)"}
		}
		return fmt.Errorf("look up %s@%s in checksum database %s (set GONOSUMDB or GOPRIVATE for private modules, GOSUMDB=off to skip): %w", mod, version, c.env.sumDB.name, err)
	}
	prefix := mod + " " + version + suffix + " "
	for _, l := range lines {
		if db, ok := strings.CutPrefix(l, prefix); ok && strings.HasPrefix(db, "h1:") {
			if db != sum {
				return fmt.Errorf("%w: downloaded %s, but checksum database %s says %s for %s@%s%s (SECURITY ERROR: the proxy, or the origin it copied, may have been tampered with)", ErrChecksum, sum, c.env.sumDB.name, db, mod, version, suffix)
			}
			return nil
		}
	}
	return fmt.Errorf("%w: checksum database %s has no h1: hash for %s@%s%s", ErrChecksum, c.env.sumDB.name, mod, version, suffix)
}
