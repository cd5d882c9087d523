package modproxy

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/mod/module"
	modzip "golang.org/x/mod/zip"

	"github.com/xtraefik/xtraefik/internal/fileset"
	"github.com/xtraefik/xtraefik/internal/memstat"
	"github.com/xtraefik/xtraefik/internal/testenv"
)

const (
	demo        = "github.com/traefik/plugindemo"
	demoVersion = "v0.2.2" // the version the other packages' tests use
)

// envOf builds an environment; HOME points at an empty directory unless
// given, so the developer's own .netrc never takes part.
func envOf(t testing.TB, kv ...string) func(string) string {
	t.Helper()
	m := map[string]string{"HOME": t.TempDir()}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func newClient(t testing.TB, o Options) *Client {
	t.Helper()
	if o.CacheDir == "" {
		o.CacheDir = t.TempDir()
	}
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// setContent reads every file of s, by path.
func setContent(t testing.TB, s fileset.Set) map[string][]byte {
	t.Helper()
	m := map[string][]byte{}
	for _, f := range s {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		m[f.Path] = b
	}
	return m
}

// sameFiles compares two trees file for file and byte for byte.
func sameFiles(t testing.TB, got, want fileset.Set) {
	t.Helper()
	g, w := setContent(t, got), setContent(t, want)
	for p, b := range w {
		gb, ok := g[p]
		switch {
		case !ok:
			t.Errorf("missing %s", p)
		case !bytes.Equal(gb, b):
			t.Errorf("%s differs: got %d bytes, want %d", p, len(gb), len(b))
		}
	}
	for p := range g {
		if _, ok := w[p]; !ok {
			t.Errorf("extra %s", p)
		}
	}
	for _, f := range got {
		if f.Kind != fileset.Regular {
			t.Errorf("%s: kind %v, want Regular", f.Path, f.Kind)
		}
	}
}

func TestFetchPlugindemo(t *testing.T) {
	p := testenv.GoProxy(t, demo+"@"+demoVersion)
	db := testenv.SumDB(t, p)
	wantSum := testenv.ModuleSum(t, demo, demoVersion)
	cache := t.TempDir()
	c := newClient(t, Options{CacheDir: cache, Env: envOf(t, "GOPROXY", p.URL, "GOSUMDB", db.GOSUMDB)})
	m, err := c.Fetch(context.Background(), demo, demoVersion, "")
	if err != nil {
		t.Fatal(err)
	}
	if m.Sum != wantSum || !strings.HasPrefix(m.Sum, "h1:") {
		t.Errorf("Sum = %q, want %q", m.Sum, wantSum)
	}
	if m.Time.IsZero() || m.Path != demo || m.Version != demoVersion || len(m.Vendored) != 0 {
		t.Errorf("Module = %+v", m)
	}
	want, err := fileset.FromDir(testenv.ModuleDir(t, demo, demoVersion))
	if err != nil {
		t.Fatal(err)
	}
	sameFiles(t, m.Files, want)
	// The database was asked, and its proof kept for the next run.
	if _, err := os.Stat(filepath.Join(cache, "sumdb", "config", db.Name, "latest")); err != nil {
		t.Errorf("no signed tree head cached: %v", err)
	}

	// Again from the cache, with the lock's hash: no zip download.
	before := len(p.Requests())
	m2, err := c.Fetch(context.Background(), demo, demoVersion, wantSum)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range p.Requests()[before:] {
		if strings.HasSuffix(r, ".zip") {
			t.Errorf("cached zip downloaded again: %s", r)
		}
	}
	if m2.Sum != m.Sum || !m2.Time.Equal(m.Time) {
		t.Errorf("cached fetch = %s %v, first %s %v", m2.Sum, m2.Time, m.Sum, m.Time)
	}
}

// TestRevendorMatchesGoModVendor fetches real plugins whose zips keep only
// vendor/modules.txt and compares the restored tree with what `go mod
// vendor` lays out for the same module.
func TestRevendorMatchesGoModVendor(t *testing.T) {
	for _, tc := range []struct{ mod, version string }{
		// go 1.22; two small dependencies.
		{"github.com/maxlerebourg/crowdsec-bouncer-traefik-plugin", "v1.6.0"},
		// go 1.17: go.mod and go.sum of dependencies are dropped.
		{"github.com/traefik/pluginproviderdemo", "v0.3.0"},
		// Not a plugin, but a real vendored module whose dependencies have
		// OS-specific, cgo and "ignore"-tagged files (golang.org/x/sys/windows).
		{"github.com/docker/docker-credential-helpers", "v0.9.3"},
	} {
		t.Run(tc.mod, func(t *testing.T) {
			deps := testenv.VendoredModules(t, tc.mod, tc.version)
			skipUnavailable(t, deps...)
			p := testenv.GoProxy(t, append([]string{tc.mod + "@" + tc.version}, deps...)...)
			db := testenv.SumDB(t, p)
			c := newClient(t, Options{Env: envOf(t, "GOPROXY", p.URL, "GOSUMDB", db.GOSUMDB)})
			m, err := c.Fetch(context.Background(), tc.mod, tc.version, "")
			if err != nil {
				t.Fatal(err)
			}
			want, err := fileset.FromDir(testenv.Revendor(t, testenv.ModuleDir(t, tc.mod, tc.version)))
			if err != nil {
				t.Fatal(err)
			}
			sameFiles(t, m.Files, want)
			if goSum := testenv.ModuleSum(t, tc.mod, tc.version); m.Sum != goSum {
				t.Errorf("Sum = %s, the go command says %s", m.Sum, goSum)
			}
			if len(m.Vendored) != len(deps) {
				t.Fatalf("Vendored = %+v, want %d modules (%v)", m.Vendored, len(deps), deps)
			}
			goSum := string(setContent(t, m.Files)["go.sum"])
			for _, d := range m.Vendored {
				if line := d.Path + " " + d.Version + " " + d.Sum + "\n"; !strings.Contains(goSum, line) {
					t.Errorf("go.sum lacks %q", line)
				}
			}
		})
	}
}

func TestTamperedZipRefused(t *testing.T) {
	p := testenv.GoProxy(t, demo+"@"+demoVersion)
	good, _, err := p.Sums(demo, demoVersion)
	if err != nil {
		t.Fatal(err)
	}
	db := testenv.SumDB(t, p)
	// The database logs the genuine hash before the proxy goes bad.
	if _, err := newClient(t, Options{Env: envOf(t, "GOPROXY", p.URL, "GOSUMDB", db.GOSUMDB)}).Fetch(context.Background(), demo, demoVersion, ""); err != nil {
		t.Fatal(err)
	}
	p.Tamper(t, demo, demoVersion, "demo.go", "package plugindemo\n// evil\n")
	bad, _, err := p.Sums(demo, demoVersion)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  []string
		want string
	}{
		{"checksum database", []string{"GOSUMDB", db.GOSUMDB}, ""},
		{"lock", []string{"GOSUMDB", "off"}, good},
		{"both", []string{"GOSUMDB", db.GOSUMDB}, good},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, Options{Env: envOf(t, append([]string{"GOPROXY", p.URL}, tc.env...)...)})
			_, err := c.Fetch(context.Background(), demo, demoVersion, tc.want)
			if !errors.Is(err, ErrChecksum) {
				t.Fatalf("err = %v, want ErrChecksum", err)
			}
			for _, s := range []string{good, bad, demo + "@" + demoVersion} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error does not name %s: %v", s, err)
				}
			}
		})
	}
	// Without any reference, the tampered zip is all there is.
	c := newClient(t, Options{Env: envOf(t, "GOPROXY", p.URL, "GOSUMDB", "off")})
	if m, err := c.Fetch(context.Background(), demo, demoVersion, ""); err != nil || m.Sum != bad {
		t.Errorf("unchecked fetch = %v, %v; want sum %s", m, err, bad)
	}
}

func TestSumDBDisagrees(t *testing.T) {
	p := testenv.GoProxy(t, demo+"@"+demoVersion)
	db := testenv.SumDB(t, p)
	const lie = "h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	db.Lie(demo, demoVersion, lie)
	good, _, _ := p.Sums(demo, demoVersion)
	cache := t.TempDir()
	c := newClient(t, Options{CacheDir: cache, Env: envOf(t, "GOPROXY", p.URL, "GOSUMDB", db.GOSUMDB)})
	_, err := c.Fetch(context.Background(), demo, demoVersion, "")
	if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), lie) || !strings.Contains(err.Error(), good) || !strings.Contains(err.Error(), db.Name) {
		t.Fatalf("err = %v, want ErrChecksum naming %s, %s and %s", err, lie, good, db.Name)
	}
	// Nothing unverified stays in the cache.
	zp, _ := c.zipPath(moduleVersion(demo, demoVersion))
	if _, err := os.Stat(zp); !os.IsNotExist(err) {
		t.Errorf("refused zip kept in the cache: %v", err)
	}
	// A database signed with another key than GOSUMDB names is refused too.
	other := testenv.SumDB(t, p)
	c = newClient(t, Options{Env: envOf(t, "GOPROXY", p.URL, "GOSUMDB", db.VerifierKey+" "+other.URL)})
	if _, err := c.Fetch(context.Background(), demo, demoVersion, ""); err == nil {
		t.Error("a database signed with another key was believed")
	}
}

func TestGOPROXYList(t *testing.T) {
	good := testenv.GoProxy(t, demo+"@"+demoVersion)
	empty := testenv.GoProxy(t) // answers 404 for every module
	broken := testenv.GoProxy(t, demo+"@"+demoVersion)
	broken.Fail(http.StatusInternalServerError)
	gone := testenv.GoProxy(t)
	gone.Fail(http.StatusGone)
	for _, tc := range []struct {
		name, goproxy string
		ok            bool
		errHas        string
		goodAsked     bool
	}{
		{"404 then next", empty.URL + "," + good.URL, true, "", true},
		{"410 then next", gone.URL + "," + good.URL, true, "", true},
		{"500 stops at ','", broken.URL + "," + good.URL, false, "500", false},
		{"500 falls through '|'", broken.URL + "|" + good.URL, true, "", true},
		{"off", "off", false, "GOPROXY=off", false},
		{"404 then off", empty.URL + ",off", false, "GOPROXY=", false},
		{"404 then direct without a direct source", empty.URL + ",direct", false, "no direct", false},
		{"off ends the list", "off," + good.URL, false, "GOPROXY=off", false},
		{"file tree", "file://" + filepath.ToSlash(good.Dir), true, "", false},
		{"file tree without the module, then next", "file://" + filepath.ToSlash(t.TempDir()) + "," + good.URL, true, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(good.Requests())
			c := newClient(t, Options{Env: envOf(t, "GOPROXY", tc.goproxy, "GOSUMDB", "off")})
			_, err := c.Fetch(context.Background(), demo, demoVersion, "")
			if tc.ok != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.errHas)) {
				t.Fatalf("err = %v, want ok=%v containing %q", err, tc.ok, tc.errHas)
			}
			if asked := len(good.Requests()) > before; asked != tc.goodAsked {
				t.Errorf("good proxy asked = %v, want %v", asked, tc.goodAsked)
			}
		})
	}
}

// moduleDirect is a direct source serving real module versions' files, as
// the git source serves a tag's tree.
type moduleDirect struct {
	t     testing.TB
	mu    sync.Mutex
	calls []DirectRequest
}

func (d *moduleDirect) fetch(ctx context.Context, req DirectRequest) (*DirectModule, error) {
	d.mu.Lock()
	d.calls = append(d.calls, req)
	d.mu.Unlock()
	if req.Module != demo || req.Query != demoVersion {
		return nil, fmt.Errorf("no %s@%s here", req.Module, req.Query)
	}
	s, err := fileset.FromDir(testenv.ModuleDir(d.t, req.Module, req.Query))
	if err != nil {
		return nil, err
	}
	return &DirectModule{Version: req.Query, Files: s}, nil
}

func TestPrivateModules(t *testing.T) {
	p := testenv.GoProxy(t, demo+"@"+demoVersion)
	db := testenv.SumDB(t, p)
	good, _, _ := p.Sums(demo, demoVersion)
	// The database lies: only modules it is asked about fail.
	db.Lie(demo, demoVersion, "h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
	for _, tc := range []struct {
		name       string
		env        []string
		direct     bool // a direct source is configured
		wantDirect bool // ... and must be called
		wantProxy  bool
		errHas     string
		insecure   bool
	}{
		{"GOPRIVATE goes direct, skips sumdb", []string{"GOPRIVATE", "github.com/traefik"}, true, true, false, "", false},
		{"GOPRIVATE glob", []string{"GOPRIVATE", "*.com/traefik/plugin*"}, true, true, false, "", false},
		{"GONOPROXY alone still checks sumdb", []string{"GONOPROXY", "github.com/traefik"}, true, true, false, "checksum mismatch", false},
		{"GONOSUMDB alone uses the proxy", []string{"GONOSUMDB", "github.com/traefik"}, true, false, true, "", false},
		{"GOINSECURE reaches the direct source", []string{"GOPRIVATE", "github.com", "GOINSECURE", "github.com/traefik/*"}, true, true, false, "", true},
		{"GOPRIVATE without a direct source", []string{"GOPRIVATE", "github.com/traefik"}, false, false, false, "GOPRIVATE", false},
		{"GOPRIVATE other module", []string{"GOPRIVATE", "example.com"}, true, false, true, "checksum mismatch", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &moduleDirect{t: t}
			o := Options{Env: envOf(t, append([]string{"GOPROXY", p.URL, "GOSUMDB", db.GOSUMDB}, tc.env...)...)}
			if tc.direct {
				o.Direct = d.fetch
			}
			before := len(p.Requests())
			m, err := newClient(t, o).Fetch(context.Background(), demo, demoVersion, "")
			if tc.errHas == "" && err != nil || tc.errHas != "" && (err == nil || !strings.Contains(err.Error(), tc.errHas)) {
				t.Fatalf("err = %v, want %q", err, tc.errHas)
			}
			if err == nil && m.Sum != good {
				// The zip made from the repository's files hashes as the proxy's.
				t.Errorf("Sum = %s, want %s", m.Sum, good)
			}
			if got := len(d.calls) > 0; got != tc.wantDirect {
				t.Errorf("direct called = %v, want %v", got, tc.wantDirect)
			}
			if got := zipAsked(p.Requests()[before:]); got != tc.wantProxy {
				t.Errorf("proxy asked for the zip = %v, want %v", got, tc.wantProxy)
			}
			for _, c := range d.calls {
				if c.Insecure != tc.insecure {
					t.Errorf("Insecure = %v, want %v", c.Insecure, tc.insecure)
				}
			}
		})
	}
}

func zipAsked(reqs []string) bool {
	for _, r := range reqs {
		if strings.HasSuffix(r, ".zip") {
			return true
		}
	}
	return false
}

func TestNetrc(t *testing.T) {
	p := testenv.NewGoProxy(t, testenv.GoProxyOptions{User: "robot", Password: "s3cret"}, demo+"@"+demoVersion)
	host := strings.TrimPrefix(p.URL, "https://")
	hostname, _, _ := strings.Cut(host, ":")
	for _, tc := range []struct {
		name, netrc string
		viaEnv      bool // NETRC names the file, else $HOME/.netrc
		extraEnv    []string
		ok          bool
	}{
		{"none", "", false, nil, false},
		{"host name", "machine " + hostname + " login robot password s3cret\n", false, nil, true},
		{"host and port, via NETRC", "machine " + host + "\n\tlogin robot\n\tpassword s3cret\n", true, nil, true},
		{"first entry wins", "machine " + hostname + " login robot password s3cret\nmachine " + hostname + " login robot password wrong\n", false, nil, true},
		{"wrong password", "machine " + hostname + " login robot password wrong\n", false, nil, false},
		{"other machine", "machine example.com login robot password s3cret\n", false, nil, false},
		{"GOAUTH=off", "machine " + hostname + " login robot password s3cret\n", false, []string{"GOAUTH", "off"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			home := t.TempDir()
			env := []string{"HOME", home, "GOPROXY", p.URL, "GOSUMDB", "off"}
			if tc.netrc != "" {
				f := filepath.Join(home, ".netrc")
				if tc.viaEnv {
					f = filepath.Join(t.TempDir(), "credentials")
					env = append(env, "NETRC", f)
				}
				if err := os.WriteFile(f, []byte(tc.netrc), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			c := newClient(t, Options{HTTPClient: p.Client, Env: envOf(t, append(env, tc.extraEnv...)...)})
			_, err := c.Fetch(context.Background(), demo, demoVersion, "")
			if tc.ok != (err == nil) {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && (!strings.Contains(err.Error(), "401") || strings.Contains(err.Error(), "s3cret")) {
				t.Errorf("error should say 401 and hide the password: %v", err)
			}
		})
	}
}

// TestResolveRefusesSubstitutes: a proxy answering an exact version with
// another release (a downgrade the checksum database would vouch for) is
// refused, as the go command refuses it.
func TestResolveRefusesSubstitutes(t *testing.T) {
	p := testenv.GoProxy(t, demo+"@v0.2.1")
	p.WriteFile(t, demo, "v0.2.4", "info", []byte(`{"Version":"v0.2.1","Time":"2030-01-01T00:00:00Z"}`))
	c := newClient(t, Options{Env: envOf(t, "GOPROXY", p.URL, "GOSUMDB", "off")})
	if v, err := c.Resolve(context.Background(), demo, "v0.2.4"); err == nil || !strings.Contains(err.Error(), "answered version v0.2.1 for v0.2.4") {
		t.Errorf("Resolve(v0.2.4) = %q, %v", v, err)
	}
}

// TestVersions lists what the proxy lists, and says a directly fetched
// module is not listed.
func TestVersions(t *testing.T) {
	p := testenv.GoProxy(t, demo+"@v0.2.1", demo+"@"+demoVersion)
	c := newClient(t, Options{Env: envOf(t, "GOPROXY", p.URL, "GOSUMDB", "off")})
	vs, err := c.Versions(context.Background(), demo)
	if err != nil || strings.Join(vs, " ") != "v0.2.1 "+demoVersion {
		t.Errorf("Versions = %q, %v", vs, err)
	}
	private := newClient(t, Options{Env: envOf(t, "GOPROXY", p.URL, "GOPRIVATE", demo)})
	if _, err := private.Versions(context.Background(), demo); err == nil {
		t.Error("a GOPRIVATE module was listed")
	}
}

func TestResolve(t *testing.T) {
	p := testenv.GoProxy(t, demo+"@v0.2.1", demo+"@"+demoVersion)
	// A pre-release above the releases, and a newer release that retracts
	// itself in its go.mod (where the go command reads retractions).
	p.WriteFile(t, demo, "v0.3.0-rc.1", "info", []byte(`{"Version":"v0.3.0-rc.1","Time":"2030-01-01T00:00:00Z"}`))
	p.WriteFile(t, demo, "v0.2.3", "info", []byte(`{"Version":"v0.2.3","Time":"2030-01-01T00:00:00Z"}`))
	p.WriteFile(t, demo, "v0.2.3", "mod", []byte("module "+demo+"\n\ngo 1.19\n\nretract v0.2.3 // published by mistake\n"))
	c := newClient(t, Options{Env: envOf(t, "GOPROXY", p.URL, "GOSUMDB", "off")})
	for _, tc := range []struct{ query, want, errHas string }{
		{"latest", demoVersion, ""},
		{"", demoVersion, ""},
		{"v0.2", demoVersion, ""},
		{"v0", demoVersion, ""},
		{"v0.2.1", "v0.2.1", ""},
		{"<v0.2.2", "v0.2.1", ""},
		{">=v0.2.0", "v0.2.1", ""},
		{">v0.2.2", "v0.3.0-rc.1", ""},
		{"v0.2.3", "v0.2.3", ""}, // named exactly, a retracted version is still served
		{"v0.4", "", "no version matches"},
		{"v9.9.9", "", "404"},
	} {
		got, err := c.Resolve(context.Background(), demo, tc.query)
		if got != tc.want || (tc.errHas == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.errHas)) {
			t.Errorf("Resolve(%q) = %q, %v; want %q, error containing %q", tc.query, got, err, tc.want, tc.errHas)
		}
	}
	// Only pre-releases: latest is the highest of them.
	q := testenv.GoProxy(t)
	q.WriteFile(t, demo, "v1.0.0-beta.1", "info", []byte(`{"Version":"v1.0.0-beta.1"}`))
	q.WriteFile(t, demo, "v1.0.0-beta.2", "info", []byte(`{"Version":"v1.0.0-beta.2"}`))
	c = newClient(t, Options{Env: envOf(t, "GOPROXY", q.URL, "GOSUMDB", "off")})
	if got, err := c.Resolve(context.Background(), demo, "latest"); got != "v1.0.0-beta.2" || err != nil {
		t.Errorf("latest among pre-releases = %q, %v", got, err)
	}
	// Direct modules are resolved by the direct source.
	d := &moduleDirect{t: t}
	c = newClient(t, Options{Direct: d.fetch, Env: envOf(t, "GOPROXY", "direct", "GOSUMDB", "off")})
	if got, err := c.Resolve(context.Background(), demo, demoVersion); got != demoVersion || err != nil || len(d.calls) != 1 {
		t.Errorf("direct Resolve = %q, %v after %d calls", got, err, len(d.calls))
	}
}

// TestConcurrentFetch runs several clients (as separate processes would
// be) on one cache directory at once.
func TestConcurrentFetch(t *testing.T) {
	mod, version := "github.com/traefik/pluginproviderdemo", "v0.3.0"
	p := testenv.GoProxy(t, append([]string{mod + "@" + version}, testenv.VendoredModules(t, mod, version)...)...)
	db := testenv.SumDB(t, p)
	cache := t.TempDir()
	const n = 6
	hashes := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := New(Options{CacheDir: cache, Env: envOf(t, "GOPROXY", p.URL, "GOSUMDB", db.GOSUMDB)})
			if err != nil {
				errs[i] = err
				return
			}
			m, err := c.Fetch(context.Background(), mod, version, "")
			if err != nil {
				errs[i] = err
				return
			}
			hashes[i], errs[i] = m.Files.Hash()
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("fetch %d: %v", i, errs[i])
		}
		if hashes[i] != hashes[0] {
			t.Errorf("fetch %d: files hash %s, fetch 0: %s", i, hashes[i], hashes[0])
		}
	}
	// The zip lock lets one client download each zip; the others find it
	// cached.
	if got := zipRequests(p.Requests()); got != 2 {
		t.Errorf("%d zip downloads, want 2 (the module and its dependency): %v", got, p.Requests())
	}
	// No temporary file is left behind.
	filepath.WalkDir(cache, func(path string, d os.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".tmp-") {
			t.Errorf("left over: %s", path)
		}
		return nil
	})
}

func zipRequests(reqs []string) int {
	n := 0
	for _, r := range reqs {
		if strings.HasSuffix(r, ".zip") {
			n++
		}
	}
	return n
}

func moduleVersion(path, version string) module.Version {
	return module.Version{Path: path, Version: version}
}

// skipUnavailable skips when the module proxy refuses one of modules
// outright (403 "not available": some networks filter proxy.golang.org).
// Any other failure is left to the test.
func skipUnavailable(t *testing.T, modules ...string) {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go not installed")
	}
	for _, m := range modules {
		cmd := exec.Command(goBin, "mod", "download", m)
		cmd.Dir = t.TempDir()
		cmd.Env = append(os.Environ(), "GOWORK=off", "GO111MODULE=on")
		if out, err := cmd.CombinedOutput(); err != nil && strings.Contains(string(out), "403 Forbidden") {
			t.Skipf("the module proxy refuses %s here: %s", m, strings.TrimSpace(string(out)))
		}
	}
}

// TestSumDBThroughProxy: with GOSUMDB naming only the database, the go
// command asks each proxy whether it serves the database
// (<proxy>/sumdb/<name>/supported) before going to https://<name>.
func TestSumDBThroughProxy(t *testing.T) {
	p := testenv.GoProxy(t, demo+"@"+demoVersion)
	db := testenv.SumDB(t, p)
	without := testenv.GoProxy(t, demo+"@"+demoVersion)

	c := newClient(t, Options{Env: envOf(t, "GOPROXY", without.URL, "GOSUMDB", db.VerifierKey)})
	if _, err := c.Fetch(context.Background(), demo, demoVersion, ""); err == nil || !strings.Contains(err.Error(), "https://"+db.Name) {
		t.Errorf("without a proxy serving it, the database is https://%s; err = %v", db.Name, err)
	}

	p.ServeSumDB(db)
	c = newClient(t, Options{Env: envOf(t, "GOPROXY", p.URL, "GOSUMDB", db.VerifierKey)})
	if _, err := c.Fetch(context.Background(), demo, demoVersion, ""); err != nil {
		t.Fatal(err)
	}
	asked := false
	for _, r := range p.Requests() {
		asked = asked || strings.HasPrefix(r, "/sumdb/"+db.Name+"/lookup/")
	}
	if !asked {
		t.Errorf("no lookup through the proxy: %v", p.Requests())
	}
}

func TestParseEnv(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     []string
		proxies string // url/fallBackOnError pairs
		sumdb   string // name, "" for off
		errHas  string
	}{
		{"defaults", nil, "https://proxy.golang.org false direct false", "sum.golang.org", ""},
		{"separators", []string{"GOPROXY", "https://a.example|https://b.example/,direct"}, "https://a.example true https://b.example false direct false", "sum.golang.org", ""},
		{"bare host", []string{"GOPROXY", "proxy.example.com"}, "https://proxy.example.com false", "sum.golang.org", ""},
		{"empty entries", []string{"GOPROXY", ",,off,https://ignored.example"}, "off false", "sum.golang.org", ""},
		{"GOSUMDB off", []string{"GOSUMDB", "off"}, "https://proxy.golang.org false direct false", "", ""},
		{"GOSUMDB China mirror", []string{"GOSUMDB", "sum.golang.google.cn"}, "https://proxy.golang.org false direct false", "sum.golang.org", ""},
		{"bad scheme", []string{"GOPROXY", "ftp://x.example"}, "", "", "ftp://x.example"},
		{"nothing", []string{"GOPROXY", ","}, "", "", "no entries"},
		{"GOSUMDB unknown name", []string{"GOSUMDB", "sum.example.com"}, "", "", "GOSUMDB"},
		{"GOSUMDB too many fields", []string{"GOSUMDB", "sum.golang.org https://a https://b"}, "", "", "too many"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := parseEnv(envOf(t, tc.env...))
			if tc.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("err = %v, want %q", err, tc.errHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range e.proxies {
				got = append(got, fmt.Sprint(p.url, " ", p.fallBackOnError))
			}
			if strings.Join(got, " ") != tc.proxies {
				t.Errorf("proxies = %q, want %q", strings.Join(got, " "), tc.proxies)
			}
			name := ""
			if e.sumDB != nil {
				name = e.sumDB.name
			}
			if name != tc.sumdb {
				t.Errorf("sumdb = %q, want %q", name, tc.sumdb)
			}
		})
	}
}

// Child processes of TestConcurrentFetchProcesses get their work here.
const (
	childProxy   = "XTRAEFIK_MODPROXY_TEST_CHILD_GOPROXY"
	childSumDB   = "XTRAEFIK_MODPROXY_TEST_CHILD_GOSUMDB"
	childCache   = "XTRAEFIK_MODPROXY_TEST_CHILD_CACHE"
	childModule  = "XTRAEFIK_MODPROXY_TEST_CHILD_MODULE"
	childOffline = "XTRAEFIK_MODPROXY_TEST_CHILD_OFFLINE"
)

func TestMain(m *testing.M) {
	if p := os.Getenv(childProxy); p != "" {
		os.Exit(fetchChild(p, os.Getenv(childSumDB), os.Getenv(childCache), os.Getenv(childModule), os.Getenv(childOffline) != ""))
	}
	os.Exit(m.Run())
}

// fetchChild fetches module@version and prints its sum and files hash.
func fetchChild(goproxy, gosumdb, cache, mv string, offline bool) int {
	err := func() error {
		env := map[string]string{"GOPROXY": goproxy, "GOSUMDB": gosumdb, "HOME": cache}
		c, err := New(Options{CacheDir: cache, Env: func(k string) string { return env[k] }, Offline: offline})
		if err != nil {
			return err
		}
		mod, version, _ := strings.Cut(mv, "@")
		m, err := c.Fetch(context.Background(), mod, version, "")
		if err != nil {
			return err
		}
		h, err := m.Files.Hash()
		if err != nil {
			return err
		}
		fmt.Println(m.Sum, h)
		return nil
	}()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// TestConcurrentFetchProcesses runs separate processes on one cache: the
// zips, .info files and the checksum database's signed tree head are each
// written by several at once; then offline processes read it at once.
func TestConcurrentFetchProcesses(t *testing.T) {
	mod, version := "github.com/traefik/pluginproviderdemo", "v0.3.0"
	p := testenv.GoProxy(t, append([]string{mod + "@" + version}, testenv.VendoredModules(t, mod, version)...)...)
	db := testenv.SumDB(t, p)
	cache := t.TempDir()
	first := runFetchChildren(t, p.URL, db.GOSUMDB, cache, mod+"@"+version, false)
	if got := zipRequests(p.Requests()); got != 2 {
		t.Errorf("%d zip downloads, want 2 (the module and its dependency): %v", got, p.Requests())
	}
	before := len(p.Requests())
	if offline := runFetchChildren(t, p.URL, db.GOSUMDB, cache, mod+"@"+version, true); offline != first {
		t.Errorf("offline children printed %q, online %q", offline, first)
	}
	if len(p.Requests()) != before {
		t.Errorf("offline children made requests: %v", p.Requests()[before:])
	}
}

// runFetchChildren runs four fetchChild processes at once and returns what
// they all printed.
func runFetchChildren(t *testing.T, goproxy, gosumdb, cache, mv string, offline bool) string {
	t.Helper()
	env := []string{childProxy + "=" + goproxy, childSumDB + "=" + gosumdb, childCache + "=" + cache, childModule + "=" + mv}
	if offline {
		env = append(env, childOffline+"=1")
	}
	got := testenv.Children(t, 4, env...)
	for i := range got {
		if got[i] != got[0] || !strings.HasPrefix(got[i], "h1:") {
			t.Errorf("child %d printed %q, child 0 %q", i, got[i], got[0])
		}
	}
	return got[0]
}

// TestInvalidZipRefused serves zips that break the module zip rules: a
// path climbing out of the module, files of another module, a case
// collision.
func TestInvalidZipRefused(t *testing.T) {
	prefix := demo + "@" + demoVersion + "/"
	for _, tc := range []struct {
		name  string
		files []string
	}{
		{"path escape", []string{prefix + "go.mod", prefix + "../../../etc/evil"}},
		{"absolute path", []string{prefix + "go.mod", "/etc/evil"}},
		{"other module", []string{"example.com/other@v1.0.0/go.mod"}},
		{"case collision", []string{prefix + "go.mod", prefix + "README.md", prefix + "readme.md"}},
		{"go.mod below the root", []string{prefix + "go.mod", prefix + "sub/go.mod"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := testenv.GoProxy(t)
			var buf bytes.Buffer
			zw := zip.NewWriter(&buf)
			for _, name := range tc.files {
				w, err := zw.Create(name)
				if err != nil {
					t.Fatal(err)
				}
				io.WriteString(w, "module "+demo+"\n")
			}
			if err := zw.Close(); err != nil {
				t.Fatal(err)
			}
			p.WriteFile(t, demo, demoVersion, "zip", buf.Bytes())
			p.WriteFile(t, demo, demoVersion, "info", []byte(`{"Version":"`+demoVersion+`"}`))
			cache := t.TempDir()
			c := newClient(t, Options{CacheDir: cache, Env: envOf(t, "GOPROXY", p.URL, "GOSUMDB", "off")})
			_, err := c.Fetch(context.Background(), demo, demoVersion, "")
			if err == nil || !strings.Contains(err.Error(), "invalid module zip") {
				t.Fatalf("err = %v, want an invalid module zip", err)
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(cache), "etc", "evil")); err == nil {
				t.Error("a file escaped the cache")
			}
		})
	}
}

// TestZipChangedInCache: a module's files are read from its cached zip when
// opened; a zip rewritten in place since it was hashed gives an error,
// never the other content.
func TestZipChangedInCache(t *testing.T) {
	p := testenv.GoProxy(t, demo+"@"+demoVersion)
	c := newClient(t, Options{Env: envOf(t, "GOPROXY", p.URL, "GOSUMDB", "off")})
	m, err := c.Fetch(context.Background(), demo, demoVersion, "")
	if err != nil {
		t.Fatal(err)
	}
	f, ok := m.Files.Lookup("demo.go")
	if !ok {
		t.Fatal("no demo.go")
	}
	p.Tamper(t, demo, demoVersion, "demo.go", "package plugindemo\n// evil\n")
	evil, err := os.ReadFile(p.ZipPath(t, demo, demoVersion))
	if err != nil {
		t.Fatal(err)
	}
	zp, err := c.zipPath(moduleVersion(demo, demoVersion))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(zp, evil, 0o644); err != nil { // same inode
		t.Fatal(err)
	}
	rc, err := f.Open()
	if err == nil {
		var got []byte
		got, err = io.ReadAll(rc)
		rc.Close()
		if strings.Contains(string(got), "evil") {
			t.Fatalf("read the rewritten content: %q (%v)", got, err)
		}
	}
	if err == nil || !strings.Contains(err.Error(), "demo.go: ") {
		t.Errorf("err = %v, want an error naming demo.go", err)
	}

	// A zip whose entry passes the zip's own checks (CRC) but is not what
	// was hashed: the hash check catches it.
	if err := os.WriteFile(zp, evil, 0o644); err != nil {
		t.Fatal(err)
	}
	sum, sums, err := hashZip(moduleVersion(demo, demoVersion), zp)
	if err != nil {
		t.Fatal(err)
	}
	sums[demo+"@"+demoVersion+"/demo.go"] = [32]byte{1}
	_ = sum
	files, err := readZip(zp, sums, moduleVersion(demo, demoVersion))
	if err != nil {
		t.Fatal(err)
	}
	s, _ := fileset.New(files)
	if _, err := s.Hash(); err == nil || !strings.Contains(err.Error(), "demo.go: changed in the module cache since it was hashed") {
		t.Errorf("err = %v, want demo.go changed in the module cache", err)
	}
}

// TestZipEntriesStream: a 64 MiB file of a module zip is hashed without
// being held in memory.
func TestZipEntriesStream(t *testing.T) {
	const size = 64 << 20
	mv := module.Version{Path: "example.com/big", Version: "v1.0.0"}
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "go.mod"), []byte("module example.com/big\n"), 0o644)
	data, err := os.Create(filepath.Join(src, "data.bin"))
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for i := range size / len(chunk) {
		for j := range chunk {
			chunk[j] = byte(j*7 + i*13 + j>>9)
		}
		data.Write(chunk)
	}
	data.Close()
	zp := filepath.Join(t.TempDir(), "big.zip")
	zf, err := os.Create(zp)
	if err != nil {
		t.Fatal(err)
	}
	if err := modzip.CreateFromDir(zf, mv, src); err != nil {
		t.Fatal(err)
	}
	zf.Close()
	sum, sums, err := hashZip(mv, zp)
	if err != nil {
		t.Fatal(err)
	}
	_ = sum
	files, err := readZip(zp, sums, mv)
	if err != nil {
		t.Fatal(err)
	}
	s, err := fileset.New(files)
	if err != nil {
		t.Fatal(err)
	}
	n := memstat.Allocated(func() { _, err = s.Hash() })
	if err != nil {
		t.Fatal(err)
	}
	if n > 8<<20 {
		t.Errorf("hashing a module with a %d-byte file allocated %d bytes", size, n)
	}
	if f, ok := s.Lookup("data.bin"); !ok || f.Size != size {
		t.Errorf("data.bin: %+v", f)
	}
}
