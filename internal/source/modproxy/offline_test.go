package modproxy

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xtraefik/xtraefik/internal/testenv"
)

const (
	providerDemo        = "github.com/traefik/pluginproviderdemo"
	providerDemoVersion = "v0.3.0" // vendors github.com/traefik/genconf
)

// sumDBAsked reports whether requests (a proxy that serves the checksum
// database, see GoProxyServer.ServeSumDB) went to the database.
func sumDBAsked(reqs []string) bool {
	for _, r := range reqs {
		if strings.HasPrefix(r, "/sumdb/") {
			return true
		}
	}
	return false
}

// TestOfflineFromCache fills a cache online, then fetches offline: the
// same module, and not one request, with or without the lock's hash (the
// checksum database's record was cached by the first fetch).
func TestOfflineFromCache(t *testing.T) {
	p := testenv.GoProxy(t, append([]string{providerDemo + "@" + providerDemoVersion}, testenv.VendoredModules(t, providerDemo, providerDemoVersion)...)...)
	db := testenv.SumDB(t, p)
	p.ServeSumDB(db)
	env := envOf(t, "GOPROXY", p.URL, "GOSUMDB", db.VerifierKey)
	cache := t.TempDir()
	ctx := context.Background()
	online, err := newClient(t, Options{CacheDir: cache, Env: env}).Fetch(ctx, providerDemo, providerDemoVersion, "")
	if err != nil {
		t.Fatal(err)
	}
	if !sumDBAsked(p.Requests()) {
		t.Fatal("a first fetch without a lock did not ask the checksum database")
	}
	if len(online.Vendored) != 1 || online.Time.IsZero() {
		t.Fatalf("online fetch: %+v", online)
	}
	before := len(p.Requests())
	for _, wantSum := range []string{online.Sum, ""} {
		m, err := newClient(t, Options{CacheDir: cache, Env: env, Offline: true}).Fetch(ctx, providerDemo, providerDemoVersion, wantSum)
		if err != nil {
			t.Fatalf("offline fetch with lock %q: %v", wantSum, err)
		}
		if m.Sum != online.Sum || !m.Time.Equal(online.Time) || mustFilesHash(t, m) != mustFilesHash(t, online) || len(m.Vendored) != 1 || m.Vendored[0] != online.Vendored[0] {
			t.Errorf("offline fetch with lock %q = %+v, online %+v", wantSum, m, online)
		}
	}
	if reqs := p.Requests()[before:]; len(reqs) != 0 {
		t.Errorf("offline fetches made requests: %v", reqs)
	}
}

func mustFilesHash(t testing.TB, m *Module) string {
	t.Helper()
	h, err := m.Files.Hash()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestLockedFetchSkipsSumDB: with the lock's hash, a cached zip that
// matches it is not checked with the checksum database again, online
// either; a zip that does not match is still refused.
func TestLockedFetchSkipsSumDB(t *testing.T) {
	p := testenv.GoProxy(t, demo+"@"+demoVersion)
	db := testenv.SumDB(t, p)
	p.ServeSumDB(db)
	good := testenv.ModuleSum(t, demo, demoVersion)
	c := newClient(t, Options{Env: envOf(t, "GOPROXY", p.URL, "GOSUMDB", db.VerifierKey)})
	ctx := context.Background()
	if _, err := c.Fetch(ctx, demo, demoVersion, good); err != nil {
		t.Fatal(err)
	}
	if sumDBAsked(p.Requests()) {
		t.Errorf("a locked fetch asked the checksum database: %v", p.Requests())
	}
	const other = "h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	if _, err := c.Fetch(ctx, demo, demoVersion, other); !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), other) || !strings.Contains(err.Error(), good) {
		t.Errorf("fetch with another lock hash: %v, want ErrChecksum naming both", err)
	}
}

// TestOfflineNotCached: an empty cache gives one line per missing thing,
// and no request.
func TestOfflineNotCached(t *testing.T) {
	p := testenv.GoProxy(t, demo+"@"+demoVersion)
	parent := t.TempDir()
	cache := filepath.Join(parent, "mod")
	c := newClient(t, Options{CacheDir: cache, Env: envOf(t, "GOPROXY", p.URL, "GOSUMDB", "off"), Offline: true})
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		call func() error
		want string
	}{
		{"fetch", func() error { _, err := c.Fetch(ctx, demo, demoVersion, "h1:x"); return err },
			demo + "@" + demoVersion + " is not in the cache (offline)"},
		{"resolve", func() error { _, err := c.Resolve(ctx, demo, "latest"); return err },
			demo + "@latest cannot be resolved offline: only the module proxy answers version queries"},
		{"resolve exact", func() error { _, err := c.Resolve(ctx, demo, demoVersion); return err },
			demo + "@" + demoVersion + " cannot be resolved offline: only the module proxy answers version queries"},
		{"versions", func() error { _, err := c.Versions(ctx, demo); return err },
			"the versions of " + demo + " cannot be listed offline: only the module proxy lists them"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); !errors.Is(err, ErrNotCached) || err.Error() != tc.want {
				t.Errorf("err = %v, want ErrNotCached saying %q", err, tc.want)
			}
		})
	}
	if reqs := p.Requests(); len(reqs) != 0 {
		t.Errorf("offline client made requests: %v", reqs)
	}
	if ents, err := os.ReadDir(parent); err != nil || len(ents) != 0 {
		t.Errorf("offline client wrote a cache: %v %v", ents, err)
	}
}

// TestOfflineMissingDependencies: every dependency re-vendoring needs and
// the cache lacks is named, one per line, in one error.
func TestOfflineMissingDependencies(t *testing.T) {
	// Not a plugin, but a real module vendoring several (see
	// TestRevendorMatchesGoModVendor).
	mod, version := "github.com/docker/docker-credential-helpers", "v0.9.3"
	deps := testenv.VendoredModules(t, mod, version)
	skipUnavailable(t, deps...)
	if len(deps) < 2 {
		t.Fatalf("%s@%s vendors %v, the test needs two", mod, version, deps)
	}
	p := testenv.GoProxy(t, append([]string{mod + "@" + version}, deps...)...)
	cache := t.TempDir()
	env := envOf(t, "GOPROXY", p.URL, "GOSUMDB", "off")
	ctx := context.Background()
	online, err := newClient(t, Options{CacheDir: cache, Env: env}).Fetch(ctx, mod, version, "")
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, Options{CacheDir: cache, Env: env, Offline: true})
	// All but the last go: exactly those are named.
	var want []string
	for _, d := range deps[:len(deps)-1] {
		path, v, _ := strings.Cut(d, "@")
		zp, err := c.zipPath(moduleVersion(path, v))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(zp); err != nil {
			t.Fatal(err)
		}
		want = append(want, d+" (vendored by "+mod+"@"+version+") is not in the cache (offline)")
	}
	_, err = c.Fetch(ctx, mod, version, online.Sum)
	if !errors.Is(err, ErrNotCached) || err.Error() != strings.Join(want, "\n") {
		t.Errorf("err = %v, want ErrNotCached saying\n%s", err, strings.Join(want, "\n"))
	}
}

// TestDamagedZip: a cached zip or .info that is damaged is downloaded
// again online, and reported as not cached offline.
func TestDamagedZip(t *testing.T) {
	p := testenv.GoProxy(t, demo+"@"+demoVersion)
	good := testenv.ModuleSum(t, demo, demoVersion)
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, zip string)
		why    string
	}{
		{"not a zip", func(t *testing.T, zp string) { writeFile(t, zp, []byte("garbage")) }, "its cached zip is damaged: invalid module zip: "},
		{"truncated", func(t *testing.T, zp string) {
			b, err := os.ReadFile(zp)
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, zp, b[:len(b)/2])
		}, "its cached zip is damaged: invalid module zip: "},
		{"other content", func(t *testing.T, zp string) {
			editZip(t, zp, demo+"@"+demoVersion+"/demo.go", "package plugindemo\n// changed\n")
		},
			"its cached zip is damaged: checksum mismatch: the zip hashes to h1:"},
		{"no .info", func(t *testing.T, zp string) {
			if err := os.Remove(strings.TrimSuffix(zp, ".zip") + ".info"); err != nil {
				t.Fatal(err)
			}
		}, "its cached .info is missing or damaged"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cache := t.TempDir()
			env := envOf(t, "GOPROXY", p.URL, "GOSUMDB", "off")
			ctx := context.Background()
			c := newClient(t, Options{CacheDir: cache, Env: env})
			first, err := c.Fetch(ctx, demo, demoVersion, good)
			if err != nil {
				t.Fatal(err)
			}
			zp, _ := c.zipPath(moduleVersion(demo, demoVersion))
			tc.damage(t, zp)

			before := len(p.Requests())
			_, err = newClient(t, Options{CacheDir: cache, Env: env, Offline: true}).Fetch(ctx, demo, demoVersion, good)
			prefix := demo + "@" + demoVersion + " is not in the cache (offline): " + tc.why
			if !errors.Is(err, ErrNotCached) || !strings.HasPrefix(err.Error(), prefix) || strings.Contains(err.Error(), "\n") {
				t.Errorf("offline: err = %v, want one line of ErrNotCached starting %q", err, prefix)
			}
			if len(p.Requests()) != before {
				t.Errorf("offline fetch made requests: %v", p.Requests()[before:])
			}

			m, err := newClient(t, Options{CacheDir: cache, Env: env}).Fetch(ctx, demo, demoVersion, good)
			if err != nil {
				t.Fatalf("online fetch over a damaged cache: %v", err)
			}
			if m.Sum != good || !m.Time.Equal(first.Time) || m.Time.IsZero() {
				t.Errorf("refetched %s %v, want %s %v", m.Sum, m.Time, good, first.Time)
			}
			if !zipAsked(p.Requests()[before:]) {
				t.Error("the damaged zip was not downloaded again")
			}
			if _, err := newClient(t, Options{CacheDir: cache, Env: env, Offline: true}).Fetch(ctx, demo, demoVersion, good); err != nil {
				t.Errorf("offline after the repair: %v", err)
			}
		})
	}
}

func writeFile(t testing.TB, name string, b []byte) {
	t.Helper()
	if err := os.WriteFile(name, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// editZip rewrites the zip with name holding content: a well-formed
// module zip of other content.
func editZip(t testing.TB, zp, name, content string) {
	t.Helper()
	zr, err := zip.OpenReader(zp)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range zr.File {
		w, err := zw.Create(f.Name)
		if err != nil {
			t.Fatal(err)
		}
		if f.Name == name {
			io.WriteString(w, content)
			continue
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.Copy(w, rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	writeFile(t, zp, buf.Bytes())
}

// TestOfflineSumDBNotCached: without the lock's hash, an offline fetch
// needs the checksum database's record from the cache; a cache holding
// the zip but not the record says so.
func TestOfflineSumDBNotCached(t *testing.T) {
	p := testenv.GoProxy(t, demo+"@"+demoVersion)
	db := testenv.SumDB(t, p)
	env := envOf(t, "GOPROXY", p.URL, "GOSUMDB", db.GOSUMDB)
	filled := t.TempDir()
	ctx := context.Background()
	m, err := newClient(t, Options{CacheDir: filled, Env: env}).Fetch(ctx, demo, demoVersion, "")
	if err != nil {
		t.Fatal(err)
	}
	// Only the downloads, not the database's records.
	cache := t.TempDir()
	if err := os.CopyFS(filepath.Join(cache, "download"), os.DirFS(filepath.Join(filled, "download"))); err != nil {
		t.Fatal(err)
	}
	before := len(p.Requests())
	c := newClient(t, Options{CacheDir: cache, Env: env, Offline: true})
	_, err = c.Fetch(ctx, demo, demoVersion, "")
	want := demo + "@" + demoVersion + " is not in the cache (offline): checksum database " + db.Name + " has no cached record of it (lock its h1: hash, or fetch it online once)"
	if !errors.Is(err, ErrNotCached) || err.Error() != want {
		t.Errorf("err = %v, want ErrNotCached saying %q", err, want)
	}
	if got, err := c.Fetch(ctx, demo, demoVersion, m.Sum); err != nil || got.Sum != m.Sum {
		t.Errorf("offline fetch with the lock's hash: %v", err)
	}
	if len(p.Requests()) != before {
		t.Errorf("offline fetches made requests: %v", p.Requests()[before:])
	}
}

// TestOfflineDirect: a module fetched from its repository (GOPRIVATE) is
// served offline from the cache without calling the direct source.
func TestOfflineDirect(t *testing.T) {
	cache := t.TempDir()
	d := &moduleDirect{t: t}
	env := envOf(t, "GOPROXY", "off", "GOPRIVATE", demo)
	ctx := context.Background()
	online, err := newClient(t, Options{CacheDir: cache, Env: env, Direct: d.fetch}).Fetch(ctx, demo, demoVersion, "")
	if err != nil {
		t.Fatal(err)
	}
	m, err := newClient(t, Options{CacheDir: cache, Env: env, Direct: d.fetch, Offline: true}).Fetch(ctx, demo, demoVersion, online.Sum)
	if err != nil || m.Sum != online.Sum || mustFilesHash(t, m) != mustFilesHash(t, online) {
		t.Errorf("offline fetch = %v, %v; online sum %s", m, err, online.Sum)
	}
	if len(d.calls) != 1 {
		t.Errorf("direct source called %d times, want once (online)", len(d.calls))
	}
}
