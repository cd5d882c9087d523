package testenv

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	"golang.org/x/mod/sumdb"
	"golang.org/x/mod/sumdb/dirhash"
	"golang.org/x/mod/sumdb/note"
	modzip "golang.org/x/mod/zip"

	"github.com/xtraefik/xtraefik/internal/fileset"
	"github.com/xtraefik/xtraefik/internal/modtxt"
)

// GoProxyServer is a GOPROXY-protocol file tree served by net/http on
// 127.0.0.1: <Dir>/<escaped module>/@v/{list,<v>.info,<v>.mod,<v>.zip},
// filled with real module versions from the Go module proxy.
type GoProxyServer struct {
	// URL is the GOPROXY entry for this server (no trailing slash).
	URL string
	// Dir is the served file tree; tests may change it (Tamper does).
	Dir string
	// Client trusts the server's certificate when it serves https; use it
	// as the HTTP client of the code under test.
	Client *http.Client

	mu        sync.Mutex
	user      string
	pass      string
	status    int
	requests  []string
	sumdbName string
	sumdb     http.Handler
}

// GoProxyOptions configure GoProxy.
type GoProxyOptions struct {
	// User and Password make every request need HTTP basic auth (401
	// otherwise). The server then speaks https: the go command sends
	// .netrc credentials over https only.
	User, Password string
	// TLS serves https even without credentials.
	TLS bool
}

// GoProxy starts a plain-http proxy holding modules ("path@version", each
// downloaded with `go mod download`).
func GoProxy(t testing.TB, modules ...string) *GoProxyServer {
	t.Helper()
	return NewGoProxy(t, GoProxyOptions{}, modules...)
}

// NewGoProxy starts a proxy with options. It is stopped at cleanup.
func NewGoProxy(t testing.TB, o GoProxyOptions, modules ...string) *GoProxyServer {
	t.Helper()
	p := &GoProxyServer{Dir: t.TempDir(), user: o.User, pass: o.Password}
	files := http.FileServer(http.Dir(p.Dir))
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.requests = append(p.requests, r.URL.Path)
		user, pass, status, name, db := p.user, p.pass, p.status, p.sumdbName, p.sumdb
		p.mu.Unlock()
		if user != "" {
			u, pw, ok := r.BasicAuth()
			if !ok || u != user || pw != pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="goproxy"`)
				http.Error(w, "authentication required", http.StatusUnauthorized)
				return
			}
		}
		if status != 0 {
			http.Error(w, "injected failure", status)
			return
		}
		if db != nil {
			if rest, ok := strings.CutPrefix(r.URL.Path, "/sumdb/"+name); ok {
				if rest == "/supported" {
					return
				}
				r2 := r.Clone(r.Context())
				r2.URL.Path = rest
				db.ServeHTTP(w, r2)
				return
			}
		}
		if r.Method != http.MethodGet || strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r) // no directory listings: they are no protocol answer
			return
		}
		files.ServeHTTP(w, r)
	})
	var srv *httptest.Server
	if o.User != "" || o.TLS {
		srv = httptest.NewTLSServer(h)
	} else {
		srv = httptest.NewServer(h)
	}
	t.Cleanup(srv.Close)
	p.URL, p.Client = srv.URL, srv.Client()
	p.Add(t, modules...)
	return p
}

// Add downloads modules ("path@version") and serves them.
func (p *GoProxyServer) Add(t testing.TB, modules ...string) {
	t.Helper()
	for _, mv := range modules {
		path, version, ok := strings.Cut(mv, "@")
		if !ok {
			t.Fatalf("GoProxy: %q is not path@version", mv)
		}
		d := goModDownload(t, path, version)
		for ext, src := range map[string]string{"info": d.Info, "mod": d.GoMod, "zip": d.Zip} {
			b, err := os.ReadFile(src)
			if err != nil {
				t.Fatalf("GoProxy: %v", err)
			}
			p.WriteFile(t, path, d.Version, ext, b)
		}
	}
}

// WriteFile writes <module>/@v/<version>.<ext> and lists the version.
func (p *GoProxyServer) WriteFile(t testing.TB, mod, version, ext string, data []byte) {
	t.Helper()
	dir := p.versionDir(t, mod)
	ev, err := module.EscapeVersion(version)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ev+"."+ext), data, 0o644); err != nil {
		t.Fatal(err)
	}
	p.relist(t, dir)
}

// ZipPath is the served zip of module@version.
func (p *GoProxyServer) ZipPath(t testing.TB, mod, version string) string {
	t.Helper()
	ev, err := module.EscapeVersion(version)
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(p.versionDir(t, mod), ev+".zip")
}

func (p *GoProxyServer) versionDir(t testing.TB, mod string) string {
	t.Helper()
	em, err := module.EscapePath(mod)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(p.Dir, filepath.FromSlash(em), "@v")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// relist rewrites @v/list from the .info files present (the protocol's
// list holds tagged versions only).
func (p *GoProxyServer) relist(t testing.TB, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var vs []string
	for _, e := range ents {
		if ev, ok := strings.CutSuffix(e.Name(), ".info"); ok {
			v, err := module.UnescapeVersion(ev)
			if err == nil && !module.IsPseudoVersion(v) {
				vs = append(vs, v)
			}
		}
	}
	semver.Sort(vs)
	list := strings.Join(vs, "\n")
	if list != "" {
		list += "\n"
	}
	if err := os.WriteFile(filepath.Join(dir, "list"), []byte(list), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Tamper replaces the served zip of module@version with a well-formed zip
// whose file name (slash path in the module) has other content, as a
// compromised proxy would serve.
func (p *GoProxyServer) Tamper(t testing.TB, mod, version, name, content string) {
	t.Helper()
	zp := p.ZipPath(t, mod, version)
	if err := rewriteZip(zp, mod+"@"+version+"/"+name, []byte(content)); err != nil {
		t.Fatalf("tamper with %s: %v", zp, err)
	}
}

// Fail makes every answer the given status (0 restores normal service).
func (p *GoProxyServer) Fail(status int) {
	p.mu.Lock()
	p.status = status
	p.mu.Unlock()
}

// Requests returns the paths asked for so far, in order.
func (p *GoProxyServer) Requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.requests...)
}

// ServeSumDB makes the proxy say it proxies db
// (<URL>/sumdb/<name>/supported) and forward its requests, as
// proxy.golang.org does for sum.golang.org.
func (p *GoProxyServer) ServeSumDB(db *SumDBServer) {
	p.mu.Lock()
	p.sumdbName, p.sumdb = db.Name, db.handler
	p.mu.Unlock()
}

// Sums returns the go.sum lines of module@version as served now: the h1:
// hash of the zip and of the .mod file.
func (p *GoProxyServer) Sums(mod, version string) (zipSum, modSum string, err error) {
	em, err := module.EscapePath(mod)
	if err != nil {
		return "", "", err
	}
	ev, err := module.EscapeVersion(version)
	if err != nil {
		return "", "", err
	}
	base := filepath.Join(p.Dir, filepath.FromSlash(em), "@v", ev)
	if zipSum, err = dirhash.HashZip(base+".zip", dirhash.Hash1); err != nil {
		return "", "", err
	}
	data, err := os.ReadFile(base + ".mod")
	if err != nil {
		return "", "", err
	}
	modSum, err = dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	return zipSum, modSum, err
}

// ModuleSum is the h1: hash the go command computes for module@version's
// zip (`go mod download -json`), as go.sum records it.
func ModuleSum(t testing.TB, mod, version string) string {
	t.Helper()
	return goModDownload(t, mod, version).Sum
}

// downloaded is `go mod download -json` output.
type downloaded struct {
	Path, Version, Info, GoMod, Zip, Dir, Sum, Error string
}

func goModDownload(t testing.TB, mod, version string) downloaded {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		missing(t, "go", err)
	}
	cmd := exec.Command(goBin, "mod", "download", "-json", mod+"@"+version)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "GOWORK=off", "GO111MODULE=on")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var d downloaded
	if err := json.Unmarshal(stdout.Bytes(), &d); err != nil || d.Error != "" || runErr != nil || d.Zip == "" {
		t.Fatalf("go mod download %s@%s: %v %s %s", mod, version, runErr, d.Error, strings.TrimSpace(stderr.String()))
	}
	return d
}

// SumDBServer is a checksum database (golang.org/x/mod/sumdb's server with
// its in-memory tlog) on 127.0.0.1, answering for what a GoProxyServer
// serves, signed with a key made for the test. Every test database is
// named sumdb.test: run the go command against it with a GOPATH of its own,
// or the signed tree head it keeps in $GOPATH/pkg/sumdb/sumdb.test will
// contradict the next database's.
type SumDBServer struct {
	// Name is the database name ("sumdb.test"), VerifierKey its public key.
	Name, VerifierKey string
	URL               string
	// GOSUMDB is the value that points the go command (and modproxy) here.
	GOSUMDB string

	handler http.Handler
	mu      sync.Mutex
	lies    map[string]string
}

// SumDB starts a checksum database for the modules of p.
func SumDB(t testing.TB, p *GoProxyServer) *SumDBServer {
	t.Helper()
	const name = "sumdb.test"
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	s := &SumDBServer{Name: name, VerifierKey: vkey, lies: map[string]string{}}
	ops := sumdb.NewTestServer(skey, func(mod, version string) ([]byte, error) {
		zs, ms, err := p.Sums(mod, version)
		if err != nil {
			return nil, fmt.Errorf("%s@%s: %w", mod, version, err)
		}
		s.mu.Lock()
		if lie, ok := s.lies[mod+"@"+version]; ok {
			zs = lie
		}
		s.mu.Unlock()
		return fmt.Appendf(nil, "%s %s %s\n%s %s/go.mod %s\n", mod, version, zs, mod, version, ms), nil
	})
	s.handler = sumdb.NewServer(ops)
	srv := httptest.NewServer(s.handler)
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	s.GOSUMDB = vkey + " " + srv.URL
	return s
}

// Lie makes the database record sum as module@version's zip hash. It only
// takes effect before the first lookup of that version: records, once
// logged, never change.
func (s *SumDBServer) Lie(mod, version, sum string) {
	s.mu.Lock()
	s.lies[mod+"@"+version] = sum
	s.mu.Unlock()
}

// VendoredModules returns "path@version" for each module of the
// vendor/modules.txt in module@version's zip that lists packages: the
// modules a re-vendoring fetches.
func VendoredModules(t testing.TB, mod, version string) []string {
	t.Helper()
	d := goModDownload(t, mod, version)
	b, err := os.ReadFile(filepath.Join(d.Dir, "vendor", "modules.txt"))
	if err != nil {
		t.Fatalf("%s@%s has no vendor/modules.txt: %v", mod, version, err)
	}
	mods, err := modtxt.Parse(b)
	if err != nil {
		t.Fatalf("%s@%s: %v", mod, version, err)
	}
	var out []string
	for _, m := range mods {
		switch {
		case len(m.Packages) == 0:
		case m.Replace.Version != "":
			out = append(out, m.Replace.Path+"@"+m.Replace.Version)
		case m.Version != "":
			out = append(out, m.Path+"@"+m.Version)
		}
	}
	sort.Strings(out)
	return out
}

// AddTree serves files as module@version: its zip made as the go command
// makes one (golang.org/x/mod/zip), its go.mod and an .info of the given
// time; for plugins no public proxy holds, such as test fixtures.
func (p *GoProxyServer) AddTree(t testing.TB, mod, version string, files fileset.Set, when time.Time) {
	t.Helper()
	var zf []modzip.File
	var gomod []byte
	for _, f := range files {
		zf = append(zf, treeFile{f})
		if f.Path == "go.mod" {
			rc, err := f.Open()
			if err != nil {
				t.Fatal(err)
			}
			gomod, err = io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	var zip bytes.Buffer
	if err := modzip.Create(&zip, module.Version{Path: mod, Version: version}, zf); err != nil {
		t.Fatalf("zip %s@%s: %v", mod, version, err)
	}
	info, err := json.Marshal(map[string]any{"Version": version, "Time": when.UTC()})
	if err != nil {
		t.Fatal(err)
	}
	p.WriteFile(t, mod, version, "mod", gomod)
	p.WriteFile(t, mod, version, "zip", zip.Bytes())
	p.WriteFile(t, mod, version, "info", info)
}

// treeFile is a fileset.File as golang.org/x/mod/zip reads one.
type treeFile struct{ f fileset.File }

func (z treeFile) Path() string                 { return z.f.Path }
func (z treeFile) Lstat() (os.FileInfo, error)  { return treeInfo(z), nil }
func (z treeFile) Open() (io.ReadCloser, error) { return z.f.Open() }

type treeInfo treeFile

func (i treeInfo) Name() string       { return path.Base(i.f.Path) }
func (i treeInfo) Size() int64        { return i.f.Size }
func (i treeInfo) Mode() os.FileMode  { return i.f.Mode() }
func (i treeInfo) ModTime() time.Time { return time.Time{} }
func (i treeInfo) IsDir() bool        { return false }
func (i treeInfo) Sys() any           { return nil }
