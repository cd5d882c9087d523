// Package modproxy fetches plugin modules from Go module proxies (the
// GOPROXY protocol) the way the go command does, checks them against the
// checksum database, and re-vendors them exactly as `go mod vendor` would,
// because module zips keep vendor/modules.txt but drop the vendored
// packages Traefik's interpreter needs.
//
// The go command's environment is honoured with its meaning: GOPROXY (','
// and '|' fallbacks, "direct", "off"), GOPRIVATE, GONOPROXY, GONOSUMDB,
// GOSUMDB, GOINSECURE (passed to the direct source) and .netrc credentials
// (NETRC, $HOME/.netrc; GOAUTH=off disables them; like the go command, they
// are sent over https only). GOFLAGS=-insecure is ignored, as the go command
// has ignored it since Go 1.17 removed the flag.
//
// What is checked: a module's zip against the caller's expected h1: hash
// (its lock) when there is one, else against the checksum database unless
// GONOSUMDB/GOPRIVATE match or GOSUMDB=off; every re-vendored dependency
// against the module's go.sum, always. The cache is never trusted: zips
// are hashed again at each use, and a damaged one is downloaded again.
//
// An offline Client (Options.Offline) uses the cache alone: zips, .info
// files and the checksum database's records; what is missing or damaged is
// an error wrapping ErrNotCached that names module@version.
package modproxy

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb"
	"golang.org/x/mod/sumdb/dirhash"
	modzip "golang.org/x/mod/zip"

	"github.com/xtraefik/xtraefik/internal/fileset"
	"github.com/xtraefik/xtraefik/internal/place"
)

var (
	// ErrNotFound marks a module or version no proxy has (404/410 answers
	// and GOPROXY=off).
	ErrNotFound = errors.New("not found")
	// ErrChecksum marks content whose hash differs from the lock, the
	// checksum database or the plugin's go.sum.
	ErrChecksum = errors.New("checksum mismatch")
	// ErrVendor marks a vendor/modules.txt that cannot be restored from
	// module zips (a nested module, a local replacement, a missing go.sum
	// line).
	ErrVendor = errors.New("cannot re-vendor")
	// ErrNotCached marks what an offline Client cannot do from its cache:
	// a module or dependency zip (or its .info, or the checksum database's
	// record) not cached or cached damaged, and the queries only a proxy
	// answers (Resolve, Versions).
	ErrNotCached = errors.New("not in the cache (offline)")
)

// notCached is an ErrNotCached error saying in one line which module
// version is missing, and why when the cache holds a damaged copy.
type notCached struct {
	mod module.Version
	by  string // the module that vendors mod, for a dependency
	why string
	msg string // replaces the rest when set
}

func (e *notCached) Error() string {
	if e.msg != "" {
		return e.msg
	}
	s := e.mod.String()
	if e.by != "" {
		s += " (vendored by " + e.by + ")"
	}
	s += " is not in the cache (offline)"
	if e.why != "" {
		s += ": " + e.why
	}
	return s
}

func (e *notCached) Unwrap() error { return ErrNotCached }

// Options configure a Client.
type Options struct {
	// Env reads the go command's environment variables; nil means
	// os.Getenv. A recipe-level override wraps it.
	Env func(string) string
	// CacheDir keeps downloaded zips, their .info and the checksum
	// database's tiles (required). Every zip is hashed and checked again
	// each time it is used, so the cache is a download cache, never a
	// source of trust; processes may share it.
	CacheDir string
	// Direct fetches modules from their repositories, for "direct" in
	// GOPROXY and for modules GOPRIVATE/GONOPROXY match. Nil makes those
	// cases an error that says so.
	Direct DirectFunc
	// HTTPClient is used for proxies and the checksum database; nil means
	// http.DefaultClient.
	HTTPClient *http.Client
	// Offline forbids every network access (proxies, the checksum
	// database, Direct): Fetch uses only the cached zips and .info files,
	// and the checksum database's cached records; Resolve and Versions
	// fail. What is missing or damaged is an error wrapping ErrNotCached.
	Offline bool
}

// DirectRequest asks the direct source for a module at a version or query.
type DirectRequest struct {
	Module string
	// Query is an exact version for Fetch; for Resolve, any query the go
	// command accepts (latest, a version prefix, a branch, a commit).
	Query string
	// Insecure is set when GOINSECURE matches the module: plain http and
	// unverified TLS are allowed for its repository.
	Insecure bool
}

// DirectModule is what the direct source found: the module's root
// directory at Version (the files as committed; the module zip is made
// from them here, with the go command's rules).
type DirectModule struct {
	Version string
	Time    time.Time
	Files   fileset.Set
}

// DirectFunc fetches a module from its version control repository (the
// caller routes it to the git source). It should wrap ErrNotFound when the
// module or version does not exist, so callers can tell that from an
// outage. The zip made from Files is hashed and checked like a proxy's.
type DirectFunc func(ctx context.Context, req DirectRequest) (*DirectModule, error)

// Module is a fetched, verified and re-vendored module version.
type Module struct {
	Path, Version string
	// Sum is the h1: hash of the module zip, as go.sum writes it.
	Sum string
	// Time is the version's commit time as the proxy reports it.
	Time time.Time
	// Files are the module's files as Traefik gets them: the zip's content
	// plus vendor/ restored from vendor/modules.txt. Module zips record no
	// modes: every file is Regular.
	Files fileset.Set
	// Vendored lists the modules restored into vendor/, in modules.txt order.
	Vendored []Dep
	// VendorMissing is set when go.mod requires modules but the zip has no
	// vendor/modules.txt. Zips of modules declaring go 1.24 or later never
	// keep one (golang.org/x/mod/zip), so whether the plugin vendored is
	// unknowable from the proxy: Traefik finds those dependencies only if
	// the plugin needs none of them at run time.
	VendorMissing bool
}

// Dep is one module restored into vendor/.
type Dep struct {
	// Path and Version as vendor/modules.txt names them.
	Path, Version string
	// Replace is the module@version actually fetched when modules.txt
	// records a replacement ("" otherwise).
	Replace string
	// Sum is the h1: hash of the fetched zip (checked against go.sum).
	Sum string
}

// Client fetches modules. It is safe for concurrent use.
type Client struct {
	env      *env
	cacheDir string
	direct   DirectFunc
	http     *http.Client
	offline  bool

	sumOnce   sync.Once
	sumClient *sumdb.Client
	sumOps    *sumOps
}

// New reads the environment and creates the cache directory (unless
// offline).
func New(o Options) (*Client, error) {
	if o.CacheDir == "" {
		return nil, errors.New("modproxy: Options.CacheDir is required")
	}
	get := o.Env
	if get == nil {
		get = os.Getenv
	}
	e, err := parseEnv(get)
	if err != nil {
		return nil, fmt.Errorf("module proxy settings: %w", err)
	}
	dir, err := filepath.Abs(o.CacheDir)
	if err != nil {
		return nil, fmt.Errorf("module cache directory: %w", err)
	}
	// Private modules end up here: keep the cache to its owner. Offline,
	// nothing is written: a missing cache is only an empty one.
	if !o.Offline {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create module cache directory: %w", err)
		}
	}
	hc := o.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{env: e, cacheDir: dir, direct: o.Direct, http: hc, offline: o.Offline}, nil
}

// info is the .info answer of the GOPROXY protocol.
type info struct {
	Version string
	Time    time.Time
}

// Fetch downloads module@version (an exact, canonical version), checks the
// zip's hash and re-vendors it. The hash is checked against wantSum when it
// is not empty (the lock's h1: hash), else against the checksum database
// when one applies: the lock is the plugin's go.sum, and like the go
// command with a go.sum line, Fetch then does not ask the database again
// (the lock was checked against it when written).
//
// Offline, a missing or damaged zip (or .info, or dependency zip) is an
// ErrNotCached error naming module@version; when several dependencies are
// missing, the error joins one such line per dependency (errors.Join).
func (c *Client) Fetch(ctx context.Context, mod, version, wantSum string) (*Module, error) {
	if err := checkVersion(mod, version); err != nil {
		return nil, err
	}
	m := module.Version{Path: mod, Version: version}
	check := func(sum string) error {
		if wantSum != "" {
			if sum != wantSum {
				return fmt.Errorf("%w: the zip hashes to %s, but the lock says %s: the same version now has other content", ErrChecksum, sum, wantSum)
			}
			return nil
		}
		if c.env.checkSum(mod) {
			return c.checkSumDB(ctx, mod, version, sum)
		}
		return nil
	}
	z, err := c.verifiedZip(ctx, m, check, true)
	if errors.Is(err, ErrNotCached) {
		return nil, err // names module@version already
	}
	if err != nil {
		return nil, fmt.Errorf("fetch %s@%s: %w", mod, version, err)
	}
	files := z.files
	out := &Module{Path: mod, Version: version, Sum: z.sum, Time: z.time}
	if out.Vendored, out.VendorMissing, files, err = c.revendor(ctx, m, files); errors.Is(err, ErrNotCached) {
		return nil, err
	} else if err != nil {
		return nil, fmt.Errorf("%s@%s: %w", mod, version, err)
	}
	if out.Files, err = fileset.New(files); err != nil {
		return nil, fmt.Errorf("%s@%s: %w", mod, version, err)
	}
	return out, nil
}

func checkVersion(mod, version string) error {
	if err := module.Check(mod, version); err != nil {
		return fmt.Errorf("module %s@%s: %w", mod, version, err)
	}
	if module.CanonicalVersion(version) != version {
		return fmt.Errorf("module %s@%s: %q is not an exact, canonical version (resolve queries with Resolve)", mod, version, version)
	}
	return nil
}

// cachedZip is a zip in the cache whose hash passed the checks, and its
// files, read while the zip was locked.
type cachedZip struct {
	sum   string
	time  time.Time
	files []fileset.File
}

// zipPath is where module@version's zip is cached, in the go command's
// cache/download layout.
func (c *Client) zipPath(m module.Version) (string, error) {
	emod, err := module.EscapePath(m.Path)
	if err != nil {
		return "", err
	}
	ev, err := module.EscapeVersion(m.Version)
	if err != nil {
		return "", err
	}
	return filepath.Join(c.cacheDir, "download", filepath.FromSlash(emod), "@v", ev+".zip"), nil
}

// verifiedZip returns m's zip from the cache or downloads it, hashes it,
// runs check on the hash and reads the files; needTime asks for the .info
// too. A cached zip (or .info) that fails is replaced by a download (a
// damaged cache must not wedge a build); offline, it is reported as not
// cached. A new zip is renamed into the cache only after it passed.
//
// Processes sharing the cache hold <version>.lock (as the go command
// does) from the check to the reading: a zip is never read other than it
// was checked, nor downloaded by two at once.
func (c *Client) verifiedZip(ctx context.Context, m module.Version, check func(sum string) error, needTime bool) (*cachedZip, error) {
	zp, err := c.zipPath(m)
	if err != nil {
		return nil, err
	}
	if c.offline {
		if _, err := os.Stat(zp); err != nil {
			return nil, &notCached{mod: m}
		}
	} else if err := os.MkdirAll(filepath.Dir(zp), 0o700); err != nil {
		return nil, err
	}
	unlock, err := place.Lock(ctx, strings.TrimSuffix(zp, ".zip")+".lock", nil)
	if err != nil {
		return nil, err
	}
	defer unlock()
	z, damaged, err := c.fromCache(m, zp, check, needTime)
	switch {
	case z != nil:
		// Marks the use for xtraefik cache prune.
		now := time.Now()
		_ = os.Chtimes(zp, now, now)
		return z, nil
	case err != nil:
		return nil, err
	case c.offline:
		return nil, &notCached{mod: m, why: damaged}
	case damaged != "":
		os.Remove(zp)
	}
	tmp, err := place.NewTemp(filepath.Dir(zp), ".tmp-*.zip")
	if err != nil {
		return nil, err
	}
	defer tmp.Abort()
	var t time.Time
	err = c.tryRoute(ctx, m.Path, func(proxy string) error {
		if err := resetFile(tmp.File); err != nil {
			return err
		}
		suffix, err := versionSuffix(m.Version, "zip")
		if err != nil {
			return err
		}
		u, err := modURL(proxy, m.Path, suffix)
		if err != nil {
			return err
		}
		rc, err := c.open(ctx, u)
		if err != nil {
			return err
		}
		defer rc.Close()
		n, err := io.Copy(tmp, io.LimitReader(rc, modzip.MaxZipFile+1))
		if err != nil {
			return fmt.Errorf("download %s: %w", u, err)
		}
		if n > modzip.MaxZipFile {
			return fmt.Errorf("%s is larger than the %d bytes a module zip may have", u, int64(modzip.MaxZipFile))
		}
		// The go command needs only .mod and .zip for a known version, so
		// a proxy tree it filled may lack the .info of dependencies: it is
		// asked for only when the time is wanted (the plugin itself).
		if needTime {
			if t, err = c.proxyTime(ctx, proxy, m); err != nil {
				return err
			}
		}
		return nil
	}, func(ctx context.Context) error {
		if err := resetFile(tmp.File); err != nil {
			return err
		}
		dm, err := c.fetchDirect(ctx, m.Path, m.Version)
		if err != nil {
			return err
		}
		if dm.Version != m.Version {
			return fmt.Errorf("direct source answered version %s for %s@%s", dm.Version, m.Path, m.Version)
		}
		t = dm.Time
		return modzip.Create(tmp, m, zipFiles(dm.Files))
	})
	if err != nil {
		return nil, err
	}
	sum, sums, err := hashZip(m, tmp.Name())
	if err != nil {
		return nil, err
	}
	if err := check(sum); err != nil {
		return nil, err
	}
	files, err := readZip(tmp.Name(), sums, m)
	if err != nil {
		return nil, err
	}
	if needTime || !t.IsZero() {
		if err := c.writeInfoCache(zp, t); err != nil {
			return nil, err
		}
	}
	if err := tmp.Commit(zp, 0o600); err != nil {
		return nil, err
	}
	return &cachedZip{sum: sum, time: t, files: files}, nil
}

// fromCache returns m's cached zip if it passes check (and its .info,
// when needTime, can be read). Otherwise damaged says what is wrong with
// the cached copy ("" when there is none), and err is a failure that says
// nothing about the copy (the checksum database unreachable).
func (c *Client) fromCache(m module.Version, zp string, check func(sum string) error, needTime bool) (z *cachedZip, damaged string, err error) {
	if _, err := os.Stat(zp); err != nil {
		return nil, "", nil
	}
	sum, sums, err := hashZip(m, zp)
	if err != nil {
		return nil, "its cached zip is damaged: " + oneLine(err), nil
	}
	if err := check(sum); errors.Is(err, ErrChecksum) {
		return nil, "its cached zip is damaged: " + oneLine(err), nil
	} else if err != nil {
		return nil, "", err
	}
	var t time.Time
	if needTime {
		if t, err = readInfoCache(zp); err != nil {
			return nil, "its cached .info is missing or damaged", nil
		}
	}
	files, err := readZip(zp, sums, m)
	if err != nil {
		return nil, "its cached zip is damaged: " + oneLine(err), nil
	}
	return &cachedZip{sum: sum, time: t, files: files}, "", nil
}

// oneLine flattens an error for a one-line message.
func oneLine(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }

func resetFile(f *os.File) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.Seek(0, io.SeekStart)
	return err
}

// zipSums holds the SHA-256 of every file of a module zip, by zip name, as
// hashed for its h1: hash: what readZip's readers must give back.
type zipSums map[string][sha256.Size]byte

// hashZip checks the zip against the module zip rules (paths, sizes,
// case collisions: what Unzip would refuse) and returns its h1: hash
// (dirhash.HashZip's) and the hash of each file.
func hashZip(m module.Version, file string) (string, zipSums, error) {
	if _, err := modzip.CheckZip(m, file); err != nil {
		return "", nil, fmt.Errorf("invalid module zip: %w", err)
	}
	zr, err := zip.OpenReader(file)
	if err != nil {
		return "", nil, fmt.Errorf("hash module zip: %w", err)
	}
	defer zr.Close()
	var names []string
	byName := map[string]*zip.File{}
	for _, zf := range zr.File {
		names = append(names, zf.Name)
		byName[zf.Name] = zf
	}
	sums := zipSums{}
	sum, err := dirhash.Hash1(names, func(name string) (io.ReadCloser, error) {
		rc, err := byName[name].Open()
		if err != nil {
			return nil, err
		}
		return &summing{ReadCloser: rc, h: sha256.New(), done: func(s [sha256.Size]byte) { sums[name] = s }}, nil
	})
	if err != nil {
		return "", nil, fmt.Errorf("hash module zip: %w", err)
	}
	return sum, sums, nil
}

// summing hashes what is read through it and hands the sum over at Close
// (Hash1 reads each file to its end, then closes it).
type summing struct {
	io.ReadCloser
	h    hash.Hash
	done func([sha256.Size]byte)
}

func (s *summing) Read(p []byte) (int, error) {
	n, err := s.ReadCloser.Read(p)
	s.h.Write(p[:n])
	return n, err
}

func (s *summing) Close() error {
	var sum [sha256.Size]byte
	s.h.Sum(sum[:0])
	s.done(sum)
	return s.ReadCloser.Close()
}

// proxyTime reads the version's .info from the proxy that served the zip.
func (c *Client) proxyTime(ctx context.Context, proxy string, m module.Version) (time.Time, error) {
	suffix, err := versionSuffix(m.Version, "info")
	if err != nil {
		return time.Time{}, err
	}
	u, err := modURL(proxy, m.Path, suffix)
	if err != nil {
		return time.Time{}, err
	}
	b, err := c.get(ctx, u)
	if err != nil {
		return time.Time{}, err
	}
	var i info
	if err := json.Unmarshal(b, &i); err != nil {
		return time.Time{}, fmt.Errorf("%s: %w", u, err)
	}
	return i.Time, nil
}

func readInfoCache(zipPath string) (time.Time, error) {
	b, err := os.ReadFile(strings.TrimSuffix(zipPath, ".zip") + ".info")
	if err != nil {
		return time.Time{}, err
	}
	var i info
	err = json.Unmarshal(b, &i)
	return i.Time, err
}

func (c *Client) writeInfoCache(zipPath string, t time.Time) error {
	b, err := json.Marshal(info{Version: filepath.Base(strings.TrimSuffix(zipPath, ".zip")), Time: t})
	if err != nil {
		return err
	}
	return place.WriteFile(strings.TrimSuffix(zipPath, ".zip")+".info", b, 0o600)
}

func (c *Client) fetchDirect(ctx context.Context, mod, query string) (*DirectModule, error) {
	dm, err := c.direct(ctx, DirectRequest{Module: mod, Query: query, Insecure: module.MatchPrefixPatterns(c.env.insecure, mod)})
	if err != nil {
		return nil, fmt.Errorf("direct from its repository: %w", err)
	}
	if dm == nil {
		return nil, fmt.Errorf("direct source found no %s@%s: %w", mod, query, ErrNotFound)
	}
	return dm, nil
}

// readZip returns the zip's regular files without the "module@version/"
// prefix. Contents stay in the zip: each Open decompresses its entry from
// the zip file opened here, and the reader fails unless the entry gives
// exactly the declared size and the bytes hashZip hashed (sums), so a
// cache file replaced or changed meanwhile cannot slip other content in.
// The zip stays open while the files are used: the garbage collector
// closes it with the last file. Opened while the zip's lock is held, it is
// the file that was hashed even if the cache replaces it later.
func readZip(path string, sums zipSums, m module.Version) (files []fileset.File, _ error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	zr, err := zip.NewReader(f, info.Size())
	if err != nil {
		f.Close()
		return nil, err
	}
	prefix := m.Path + "@" + m.Version + "/"
	for _, zf := range zr.File {
		name, ok := strings.CutPrefix(zf.Name, prefix)
		if !ok || name == "" || strings.HasSuffix(name, "/") {
			continue
		}
		want, ok := sums[zf.Name]
		if !ok {
			f.Close()
			return nil, fmt.Errorf("%s: not in the zip that was hashed", name)
		}
		// CheckZip vetted the declared sizes.
		size := int64(zf.UncompressedSize64)
		files = append(files, fileset.File{Path: name, Kind: fileset.Regular, Size: size,
			Open: func() (io.ReadCloser, error) {
				rc, err := zf.Open() // reads f with ReadAt: Opens share no offset
				if err != nil {
					return nil, fmt.Errorf("%s: %w", name, err)
				}
				return &checked{rc: rc, r: io.LimitReader(rc, size+1), h: sha256.New(), size: size, want: want, name: name}, nil
			}})
	}
	return files, nil
}

// checked passes an entry's content through and turns its end into an error
// when the size or the hash differ from what was hashed.
type checked struct {
	rc   io.ReadCloser
	r    io.Reader
	h    hash.Hash
	n    int64
	size int64
	want [sha256.Size]byte
	name string
}

func (c *checked) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil && err != io.EOF {
		return n, fmt.Errorf("%s: read from the module cache: %w", c.name, err)
	}
	c.h.Write(p[:n])
	c.n += int64(n)
	if c.n > c.size {
		return n, fmt.Errorf("%s: larger than the zip's directory says", c.name)
	}
	if err == io.EOF {
		var sum [sha256.Size]byte
		c.h.Sum(sum[:0])
		if c.n != c.size || sum != c.want {
			return n, fmt.Errorf("%s: changed in the module cache since it was hashed", c.name)
		}
	}
	return n, err
}

func (c *checked) Close() error { return c.rc.Close() }

func memFile(name string, b []byte) fileset.File {
	return fileset.File{Path: name, Kind: fileset.Regular, Size: int64(len(b)),
		Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }}
}

// zipFiles adapts a direct source's tree to modzip.Create, which applies
// the go command's rules (no vendored packages, no nested modules, no
// symlinks).
func zipFiles(s fileset.Set) []modzip.File {
	out := make([]modzip.File, len(s))
	for i, f := range s {
		out[i] = zipFile{f}
	}
	return out
}

type zipFile struct{ f fileset.File }

func (z zipFile) Path() string                 { return z.f.Path }
func (z zipFile) Lstat() (os.FileInfo, error)  { return fileInfo(z), nil }
func (z zipFile) Open() (io.ReadCloser, error) { return z.f.Open() }

type fileInfo struct{ f fileset.File }

func (i fileInfo) Name() string       { return filepath.Base(i.f.Path) }
func (i fileInfo) Size() int64        { return i.f.Size }
func (i fileInfo) Mode() os.FileMode  { return i.f.Mode() }
func (i fileInfo) ModTime() time.Time { return time.Time{} }
func (i fileInfo) IsDir() bool        { return false }
func (i fileInfo) Sys() any           { return nil }
