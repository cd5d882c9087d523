package testenv

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/xtraefik/xtraefik/internal/fileset"
)

// CorpusPlugin is a real public plugin taken from the Go module proxy at an
// exact version (the proxy here serves only some versions), with the verdict
// verification must give and why. The lead's end-to-end tests share the list.
type CorpusPlugin struct {
	// Alias is the name used in the static configuration.
	Alias   string
	Module  string
	Version string
	// Type and Runtime as the manifest says.
	Type, Runtime string
	// Sum is the module's go.sum hash ("h1:..."), pinned for a version the
	// checksum database reachable here does not list (the proxy serves it):
	// the download then skips that database for this module and checks Sum
	// instead. Empty means the checksum database vouches for the download.
	Sum string
	// Revendor re-creates vendor/ from vendor/modules.txt: module zips drop
	// every vendored package, git checkouts keep them.
	Revendor bool
	// Config replaces the manifest's testData when not nil.
	Config map[string]any
	// WantOK is the expected verdict; WantReason a substring of the reason
	// of a FAIL.
	WantOK     bool
	WantReason string
	// WantStatus is a middleware's answer to the checks' request (probe.Request)
	// in Traefik, when the entry holds it (0: not asserted).
	WantStatus int
	// Why the verdict is what it is.
	Why string
}

// Corpus lists the real plugins. Which plugins: the module proxy reachable
// here refuses most plugin versions, so the corpus is what it serves of the
// plugins found: plugindemo, fail2ban (v0.8.0 to v0.9.0), pluginproviderdemo
// and geoblock v0.3.2. Refused at every exact version tried: rewritebody,
// blockpath, simplecache, log4shell, plugindemowasm and
// plugindemowasm-http-call (traefik), crowdsec-bouncer, cloudflarewarp,
// traefikgeoip2, sablier (acouvreur and sablierapp), htransformation,
// coraza-http-wasm(-traefik), traefik-rewritebody-wasm, the
// david-garcia-garcia geoblock (useUnsafe), traefikoidc, traefik-oidc-auth,
// jwt-middleware, ldapAuth and others. So no wasm plugin and no useUnsafe
// plugin is served; handmade fixtures (Fixtures) cover those.
func Corpus() []CorpusPlugin {
	const (
		demo     = "github.com/traefik/plugindemo"
		fail2ban = "github.com/tomMoulard/fail2ban"
		provider = "github.com/traefik/pluginproviderdemo"
		geoblock = "github.com/PascalMinder/geoblock"
		// The hash `go mod download -json` printed for v0.3.2 (zip h1).
		geoblockSum = "h1:nh26j7GJl8hGfPod3/PFUaj3enLmc98csZVNoRTVuEA="
		// The hash `go mod download -json` printed for v0.3.8 (zip h1).
		geoblock038Sum = "h1:JlWfSHVPndmky9/NWgiZ9QiSKnoqaVNGKATcQsxV+N0="
	)
	f2bWhy := "fail2ban: several internal packages, no third-party import outside tests; its go.mod requires testify and x/net, used only by _test.go files, so go.mod alone proves nothing"
	return []CorpusPlugin{
		{Alias: "demo", Module: demo, Version: "v0.2.2", Type: "middleware", Runtime: "yaegi", WantOK: true,
			Why: "the reference Yaegi middleware: no dependencies; its testData holds '{{URL}}', a template trap for file-provider configs, not for the plugin"},
		{Alias: "demo", Module: demo, Version: "v0.2.1", Type: "middleware", Runtime: "yaegi", WantOK: true,
			Why: "previous plugindemo release, same shape"},
		{Alias: "fail2ban", Module: fail2ban, Version: "v0.8.4", Type: "middleware", Runtime: "yaegi", WantOK: true, Why: f2bWhy},
		{Alias: "fail2ban", Module: fail2ban, Version: "v0.8.3", Type: "middleware", Runtime: "yaegi", WantOK: true, Why: f2bWhy},
		{Alias: "fail2ban", Module: fail2ban, Version: "v0.8.1", Type: "middleware", Runtime: "yaegi", WantOK: true, Why: f2bWhy},
		{Alias: "fail2ban", Module: fail2ban, Version: "v0.8.0", Type: "middleware", Runtime: "yaegi", WantOK: true, Why: f2bWhy},
		{Alias: "providerdemo", Module: provider, Version: "v0.3.0", Type: "provider", Runtime: "yaegi", Revendor: true, WantOK: true,
			Why: "provider plugin with vendored dependencies (traefik/genconf), re-vendored from vendor/modules.txt: New, Init, Provide delivers a configuration after pollInterval (5s), Stop"},
		{Alias: "providerdemo", Module: provider, Version: "v0.3.0", Type: "provider", Runtime: "yaegi", WantOK: false,
			WantReason: "not vendored: github.com/traefik/genconf/dynamic, github.com/traefik/genconf/dynamic/tls",
			Why:        "the same provider as the module zip serves it: vendor/ packages are dropped, only vendor/modules.txt is left, so Traefik cannot find genconf"},
		{Alias: "demo", Module: demo, Version: "v0.2.2", Type: "middleware", Runtime: "yaegi", WantOK: false,
			Config:     map[string]any{"Headers": "X-Demo"},
			WantReason: "invalid configuration: failed to decode configuration",
			Why:        "a real plugin with a recipe config CreateConfig cannot take: Headers is a map, a plain string does not decode (mapstructure, weakly typed, as Traefik)"},
		// Appended after the original entries: TestOneTree picks entries by index.
		{Alias: "fail2ban", Module: fail2ban, Version: "v0.8.2", Type: "middleware", Runtime: "yaegi", WantOK: false,
			WantReason: `failed to import plugin code "github.com/tomMoulard/fail2ban": panic: reflect.Set: value of type string is not assignable to type struct { *stdlib.logLogger }`,
			Why: "a real Yaegi failure, the one Traefik v3.6.12 (same Yaegi) gives for this release: pkg/data declares `var l = logger.New(\"data\")`, whose type embeds the binary *log.Logger; " +
				"Yaegi v0.16.1 panics initialising it while importing the package. v0.8.3, released the same evening, dropped pkg/log and loads"},
		{Alias: "fail2ban", Module: fail2ban, Version: "v0.8.9", Type: "middleware", Runtime: "yaegi", WantOK: true, Why: f2bWhy},
		{Alias: "fail2ban", Module: fail2ban, Version: "v0.9.0", Type: "middleware", Runtime: "yaegi", WantOK: true,
			Why: f2bWhy + "; this release adds pkg/logger (JSON logs through encoding/json) and says go 1.25.5 in go.mod, which Yaegi ignores: the code uses nothing newer than it knows"},
		{Alias: "geoblock", Module: geoblock, Version: "v0.3.2", Sum: geoblockSum, Type: "middleware", Runtime: "yaegi", WantOK: true, WantStatus: 403,
			Why: "no third-party dependency, one internal package (lrucache), go 1.22; New accepts its testData without any network access, and the plugin answers 403 itself: " +
				"v0.3.2 takes client addresses from X-Forwarded-For and X-Real-IP, Traefik sets X-Real-Ip to the loopback client, which the plugin finds private and (testData: allowLocalRequests false) denies, " +
				"with no geolocation API call. The checksum database here does not list this version: its go.sum hash is pinned in Sum"},
		{Alias: "geoblock", Module: geoblock, Version: "v0.3.2", Sum: geoblockSum, Type: "middleware", Runtime: "yaegi", WantOK: false,
			Config:     map[string]any{"api": "https://get.geojs.io/v1/ip/country/{ip}", "countries": []any{}},
			WantReason: "New returned an error: no allowed country code provided",
			Why:        "a real plugin refusing a recipe config in New (not in decoding): the API template is valid, the country list is empty"},
		{Alias: "geoblock", Module: geoblock, Version: "v0.3.8", Sum: geoblock038Sum, Type: "middleware", Runtime: "yaegi", WantOK: true, WantStatus: 403,
			Why: "a plugin that answers by itself: v0.3.8 takes the client address from RemoteAddr (and X-Real-Ip, which Traefik sets), finds the loopback client private, " +
				"and its testData (allowLocalRequests: false) denies it with 403 without any network access; Traefik v3.6.12 does the same: loaded, ran, answered itself"},
		{Alias: "geoblock", Module: geoblock, Version: "v0.3.8", Sum: geoblock038Sum, Type: "middleware", Runtime: "yaegi", WantOK: true, WantStatus: 200,
			Config: map[string]any{"allowLocalRequests": true, "api": "https://get.geojs.io/v1/ip/country/{ip}", "countries": []any{"CH"}, "cacheSize": 15},
			Why:    "the same plugin allowing local requests: the loopback client is passed on to the next handler without a geolocation lookup"},
	}
}

// CorpusFiles downloads p and returns its files as the image will hold them:
// the module as served, re-vendored when p.Revendor.
func CorpusFiles(t testing.TB, p CorpusPlugin) fileset.Set {
	t.Helper()
	var dir string
	if p.Sum == "" {
		dir = ModuleDir(t, p.Module, p.Version)
	} else {
		var err error
		if dir, err = downloadPinned(t.TempDir(), p.Module, p.Version, p.Sum); err != nil {
			t.Fatal(err)
		}
	}
	if p.Revendor {
		dir = Revendor(t, dir)
	}
	s, err := fileset.FromDir(dir)
	if err != nil {
		t.Fatalf("read %s@%s: %v", p.Module, p.Version, err)
	}
	return s
}

// downloadPinned downloads module@version with `go mod download` run in
// workDir, without consulting the checksum database for module, and returns
// its directory in the module cache once the hash of what was downloaded (or
// is already cached) equals sum.
func downloadPinned(workDir, module, version, sum string) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("download %s@%s: %w", module, version, err)
	}
	cmd := exec.Command(goBin, "mod", "download", "-json", module+"@"+version)
	cmd.Dir = workDir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GO111MODULE=on", "GONOSUMDB="+module)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var info struct{ Dir, Sum, Error string }
	if err := json.Unmarshal(stdout.Bytes(), &info); err != nil || info.Error != "" || runErr != nil || info.Dir == "" {
		return "", fmt.Errorf("go mod download %s@%s: %v %s %s", module, version, runErr, info.Error, strings.TrimSpace(stderr.String()))
	}
	if info.Sum != sum {
		return "", fmt.Errorf("go mod download %s@%s: checksum mismatch: downloaded %s, pinned %s", module, version, info.Sum, sum)
	}
	return info.Dir, nil
}

// Revendor copies a module directory (read-only, from the module cache) to a
// temporary directory and runs `go mod vendor` there, so that vendor/ holds
// the packages that vendor/modules.txt lists. It fails the test when the
// result lists other versions than the original modules.txt.
func Revendor(t testing.TB, src string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		missing(t, "go", err)
	}
	dst := filepath.Join(t.TempDir(), "module")
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatalf("copy %s: %v", src, err)
	}
	// The module cache is read-only; CopyFS keeps the modes.
	err = filepath.WalkDir(dst, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if d.IsDir() {
			mode = 0o755
		}
		return os.Chmod(p, mode)
	})
	if err != nil {
		t.Fatalf("make %s writable: %v", dst, err)
	}
	before, _ := os.ReadFile(filepath.Join(dst, "vendor", "modules.txt"))
	cmd := exec.Command(goBin, "mod", "vendor")
	cmd.Dir = dst
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod", "GO111MODULE=on")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("go mod vendor in %s: %v\n%s", dst, err, out.String())
	}
	after, err := os.ReadFile(filepath.Join(dst, "vendor", "modules.txt"))
	if err != nil {
		t.Fatalf("go mod vendor wrote no modules.txt: %v", err)
	}
	if len(before) > 0 && !bytes.Equal(before, after) {
		t.Fatalf("re-vendoring changed vendor/modules.txt:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	return dst
}

// Fixture is a handmade plugin under verify/testdata/<Name>, with the options
// to verify it with and the expected verdict.
type Fixture struct {
	Name string
	// Module is example.com/fixtures/<Name>.
	Module         string
	AllowUnsafe    bool
	TraefikVersion string
	Timeout        time.Duration
	MemoryLimit    int64
	// WasmFrom names a test binary of github.com/http-wasm/http-wasm-host-go
	// (a dependency) to add as plugin.wasm.
	WasmFrom string
	// ExpectStatus is the recipe's expectStatus for it (0: none).
	ExpectStatus int
	WantOK       bool
	WantReason   string
	// WantWarning is in the OK verdict's warning ("": no warning).
	WantWarning string
	Why         string
}

// HTTPWasmHostVersion is the http-wasm-host-go version whose test binaries
// the wasm fixtures use (go.mod pins the same).
const HTTPWasmHostVersion = "v0.7.0"

// Fixtures lists the handmade fixtures: one per FAIL reason, plus passing
// ones that prove the checks do not over-reach.
func Fixtures() []Fixture {
	fx := func(name string, ok bool, reason, why string) Fixture {
		return Fixture{Name: name, Module: "example.com/fixtures/" + name, TraefikVersion: "v3.6.12",
			WantOK: ok, WantReason: reason, Why: why}
	}
	with := func(f Fixture, edit func(*Fixture)) Fixture { edit(&f); return f }
	return []Fixture{
		fx("no-manifest", false, "failed to read manifest: no .traefik.yml", "no manifest at the plugin root"),
		fx("manifest-yaml", false, "failed to read manifest: decode .traefik.yml: yaml: line 3:", "manifest YAML syntax error, reported with the line yaml.v3 gives (as Traefik prints it)"),
		fx("bad-manifest", false, `invalid manifest: example.com/fixtures/bad-manifest: unsupported type "router"`, "unknown type, no summary, no testData: Traefik's rules, all reported"),
		fx("not-vendored", false, "not vendored: github.com/example/headerlib", "imports a third-party package that go.mod requires but vendor/ does not hold"),
		fx("vendored-ok", true, "", "dependency under vendor/, internal package, a test-only import and a windows-only file that are not vendored: OK"),
		fx("unsafe-undeclared", false, "which Traefik only provides with useUnsafe: true", "imports unsafe without useUnsafe in the manifest"),
		fx("unsafe-declared", false, "this plugin uses restricted imports. If you want to use it, you need to allow useUnsafe in the settings", "manifest says useUnsafe, the recipe does not allow it: Traefik's own refusal"),
		with(fx("unsafe-declared", true, "", "manifest says useUnsafe and the recipe allows it: unsafe symbols loaded"), func(f *Fixture) { f.AllowUnsafe = true }),
		with(fx("unsafe-declared", false, "Traefik v2 never provides unsafe", "Traefik v2 has no unsafe symbols at all"), func(f *Fixture) { f.AllowUnsafe = true; f.TraefikVersion = "v2.11.0" }),
		fx("cgo", false, "not available in Yaegi: C (cgo)", "cgo cannot be interpreted"),
		fx("stdlib-unavailable", false, "not available in Yaegi: iter", "a standard library package newer than Yaegi's symbols"),
		fx("yaegi-range-int", false, `failed to import plugin code "example.com/fixtures/yaegi-range-int"`, "valid Go 1.22 (range over int) that Yaegi v0.16.1 cannot interpret (it panics)"),
		fx("yaegi-max-builtin", false, "undefined: max", "valid Go 1.21 (max builtin) that Yaegi v0.16.1 does not know"),
		// OK for v3; verify's v2 worker test holds that yaegi v0.15.1 refuses them.
		fx("yaegi-generic-embed", true, "", "an embedded generic type selected by name: yaegi v0.16.1 interprets it, v0.15.1 (Traefik v2.11) does not"),
		fx("stdlib-slices", true, "", "imports slices (Go 1.21): in yaegi v0.16.1's standard library, not v0.15.1's (Traefik v2.11)"),
		// The walk knows each Yaegi's standard library: no worker needed for these FAILs.
		with(fx("stdlib-slices", false, "not available in Yaegi: slices", "Traefik v2.11.0 embeds yaegi v0.15.1, without slices"), func(f *Fixture) { f.TraefikVersion = "v2.11.0" }),
		fx("stdlib-slog", true, "", "a structured access log with log/slog: Traefik v3.6.12's yaegi v0.16.1 has it"),
		with(fx("stdlib-slog", true, "", "Traefik v2.11.1 moved to yaegi v0.16.1, which has log/slog"), func(f *Fixture) { f.TraefikVersion = "v2.11.1" }),
		with(fx("stdlib-slog", false, "not available in Yaegi: log/slog", "Traefik v2.11.0 embeds yaegi v0.15.1, without log/slog"), func(f *Fixture) { f.TraefikVersion = "v2.11.0" }),
		with(fx("stdlib-slog", false, "not available in Yaegi: log/slog", "Traefik v2.9.9 embeds yaegi v0.15.0, without log/slog"), func(f *Fixture) { f.TraefikVersion = "v2.9.9" }),
		fx("config-decode", false, "invalid configuration: failed to decode configuration", "testData Count is not a number: CreateConfig's struct cannot take it"),
		fx("new-error", false, "New returned an error: headers must not be empty", "New refuses the configuration"),
		fx("new-panic", false, "New failed: panic: assignment to entry in nil map", "New panics"),
		fx("serve-panic", false, "panic serving a request: serving exploded", "the handler panics on the first request"),
		// Traefik serves a plugin's own server error: OK, with a warning.
		with(fx("upstream-unreachable", true, "", "an OIDC-like middleware whose identity provider (testData issuerURL, a loopback port that refuses) is unreachable answers 503 with its own page: it loaded and ran"),
			func(f *Fixture) { f.WantWarning = "the plugin answered 503 itself: a server error (HTTP 503)" }),
		with(fx("upstream-unreachable", false, "expected status 200, but the plugin answered 503 itself", "expectStatus stays strict: the 503 is not the 200 the recipe asks for"),
			func(f *Fixture) { f.ExpectStatus = 200 }),
		fx("non-handler", false, "invalid handler type: string", "New returns something that is not an http.Handler"),
		with(fx("hang-init", false, "timed out after 5s during import", "endless loop in init: the worker is killed"), func(f *Fixture) { f.Timeout = 5 * time.Second }),
		with(fx("hang-serve", false, "timed out after 5s during request", "the handler never returns"), func(f *Fixture) { f.Timeout = 5 * time.Second }),
		with(fx("memory-blowup", false, "interpretation exceeded 256 MB during import", "init allocates without end: the worker is killed at the memory limit"), func(f *Fixture) { f.MemoryLimit = 256 << 20 }),
		fx("crash-goroutine", false, "interpretation crashed the process during New: panic: background goroutine died", "a goroutine started by New panics: in Traefik that kills the proxy"),
		fx("missing-import-pkg", false, `failed to import plugin code "example.com/fixtures/missing-import-pkg/middleware": no Go files`, "the manifest's import package is not in the plugin (as when it is a nested module missing from a module zip)"),
		fx("nested-module", true, "", "import points into a nested module present in the tree: OK, with a note that a module zip would lack it"),
		fx("provider-ok", true, "", "provider: New, Init, Provide delivers a configuration, Stop"),
		with(fx("provider-no-config", false, "Provide delivered no configuration within", "provider that never sends a configuration"), func(f *Fixture) { f.Timeout = 4 * time.Second }),
		fx("provider-provide-error", false, "Provide returned an error: cannot watch the backend", "provider whose Provide fails"),
		fx("provider-init-error", false, "Init failed: init refused: no backend reachable", "provider whose Init fails"),
		with(fx("wasm-ok", true, "", "wasm middleware (http-wasm-host-go's log example guest): compiles and serves a request"), func(f *Fixture) { f.WasmFrom = "examples/log.wasm" }),
		with(fx("wasm-panic", false, "wasm guest failed handling a request (HTTP 500): wasm error: unreachable", "wasm guest that traps on handle_request (http-wasm answers 500)"), func(f *Fixture) { f.WasmFrom = "internal/test/testdata/error/panic_on_handle_request.wasm" }),
		fx("wasm-missing", false, `loading Wasm binary: wasmPath "plugin.wasm" is not in the plugin`, "runtime wasm without the .wasm file (module zips of wasm plugins rarely hold it)"),
		fx("wasm-invalid", false, "compiling guest module", "plugin.wasm is not a wasm module"),
		fx("wasm-abs-path", false, `wasmPath "/plugin.wasm" must be a local path`, "wasmPath outside the plugin"),
		with(fx("wasm-ok", false, "Traefik v2.11.0 has no \"wasm\" runtime", "wasm plugins need Traefik v3"), func(f *Fixture) { f.WasmFrom = "examples/log.wasm"; f.TraefikVersion = "v2.11.0" }),
	}
}

// FixturesDir is verify/testdata in this repository.
func FixturesDir(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the testenv source file")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "verify", "testdata")
}

// FixtureFiles returns the files of fixture f, with its wasm binary added.
func FixtureFiles(t testing.TB, f Fixture) fileset.Set {
	t.Helper()
	s, err := fileset.FromDir(filepath.Join(FixturesDir(t), f.Name))
	if err != nil {
		t.Fatalf("fixture %s: %v", f.Name, err)
	}
	if f.WasmFrom == "" {
		return s
	}
	src := filepath.Join(ModuleDir(t, "github.com/http-wasm/http-wasm-host-go", HTTPWasmHostVersion), filepath.FromSlash(f.WasmFrom))
	info, err := os.Stat(src)
	if err != nil {
		t.Fatalf("fixture %s: %v", f.Name, err)
	}
	files := append([]fileset.File(nil), s...)
	files = append(files, fileset.File{Path: "plugin.wasm", Size: info.Size(),
		Open: func() (io.ReadCloser, error) { return os.Open(src) }})
	out, err := fileset.New(files)
	if err != nil {
		t.Fatalf("fixture %s: %v", f.Name, err)
	}
	return out
}
