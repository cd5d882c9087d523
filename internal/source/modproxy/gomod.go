package modproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/dirhash"

	"github.com/xtraefik/xtraefik/internal/place"
)

// GoMod returns module@version's go.mod (an exact, canonical version), as
// the module proxies GOPROXY lists serve it (<version>.mod), checked
// against the checksum database's "/go.mod" record unless GONOSUMDB,
// GOPRIVATE or GOSUMDB=off say not to, like the go command. It is kept in
// the cache (download/<module>/@v/<version>.mod, the go command's layout)
// and checked again at each use. Offline, the cache answers, checked
// against the database's cached records; a missing or damaged file is an
// ErrNotCached error naming module@version.
func (c *Client) GoMod(ctx context.Context, mod, version string) ([]byte, error) {
	if err := checkVersion(mod, version); err != nil {
		return nil, err
	}
	m := module.Version{Path: mod, Version: version}
	zp, err := c.zipPath(m)
	if err != nil {
		return nil, err
	}
	stem := strings.TrimSuffix(zp, ".zip")
	mp := stem + ".mod"
	check := func(data []byte) error {
		if !c.env.checkSum(mod) {
			return nil
		}
		sum, err := dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(data)), nil
		})
		if err != nil {
			return err
		}
		return c.checkSumDBLine(ctx, mod, version, "/go.mod", sum)
	}
	if c.offline {
		if _, err := os.Stat(mp); err != nil {
			return nil, &notCached{mod: m, why: "its go.mod was never fetched"}
		}
	} else if err := os.MkdirAll(filepath.Dir(zp), 0o700); err != nil {
		return nil, err
	}
	unlock, err := place.Lock(ctx, stem+".lock", nil)
	if err != nil {
		return nil, err
	}
	defer unlock()
	damaged := ""
	if data, err := readSmall(mp); err == nil {
		switch err := check(data); {
		case err == nil:
			return data, nil
		case errors.Is(err, ErrChecksum):
			damaged = "its cached go.mod is damaged: " + oneLine(err)
		default:
			return nil, err
		}
	}
	if c.offline {
		return nil, &notCached{mod: m, why: damaged}
	}
	var data []byte
	err = c.tryRoute(ctx, mod, func(proxy string) error {
		suffix, err := versionSuffix(version, "mod")
		if err != nil {
			return err
		}
		u, err := modURL(proxy, mod, suffix)
		if err != nil {
			return err
		}
		data, err = c.get(ctx, u)
		return err
	}, func(ctx context.Context) error {
		dm, err := c.fetchDirect(ctx, mod, version)
		if err != nil {
			return err
		}
		if dm.Version != version {
			return fmt.Errorf("direct source answered version %s for %s@%s", dm.Version, mod, version)
		}
		for _, f := range dm.Files {
			if f.Path == "go.mod" {
				data, err = readAll(f)
				return err
			}
		}
		return fmt.Errorf("%s@%s has no go.mod: %w", mod, version, ErrNotFound)
	})
	if err != nil {
		return nil, fmt.Errorf("go.mod of %s@%s: %w", mod, version, err)
	}
	if err := check(data); err != nil {
		return nil, fmt.Errorf("go.mod of %s@%s: %w", mod, version, err)
	}
	if err := place.WriteFile(mp, data, 0o600); err != nil {
		return nil, fmt.Errorf("cache go.mod of %s@%s: %w", mod, version, err)
	}
	return data, nil
}

// readSmall reads a cached file no larger than a proxy answer may be.
func readSmall(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSmall+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxSmall {
		return nil, fmt.Errorf("%s is larger than %d bytes", p, maxSmall)
	}
	return b, nil
}
