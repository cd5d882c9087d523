package runcheck_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/xtraefik/xtraefik/internal/plugin"
	"github.com/xtraefik/xtraefik/internal/runcheck"
	"github.com/xtraefik/xtraefik/internal/testenv"
	"github.com/xtraefik/xtraefik/internal/traefikcfg"
)

const demoModule = "github.com/traefik/plugindemo"

// failsModule only fails inside Traefik (see testenv.OnlyInTraefikFiles).
const failsModule = testenv.OnlyInTraefikModule

var failsFiles = testenv.OnlyInTraefikFiles()

// teapotModule answers every request itself, with the status in its config.
const teapotModule = "example.test/teapot"

var teapotFiles = map[string]string{
	".traefik.yml": "displayName: Teapot\ntype: middleware\nimport: example.test/teapot\nsummary: Answers with a fixed status\ntestData:\n  Status: 418\n",
	"go.mod":       "module example.test/teapot\n\ngo 1.22\n",
	"teapot.go": `package teapot

import (
	"context"
	"net/http"
)

type Config struct{ Status int }

func CreateConfig() *Config { return &Config{Status: http.StatusTeapot} }

type teapot struct{ status int }

func New(ctx context.Context, next http.Handler, cfg *Config, name string) (http.Handler, error) {
	return teapot{cfg.Status}, nil
}

func (t teapot) ServeHTTP(w http.ResponseWriter, r *http.Request) { w.WriteHeader(t.status) }
`,
}

// panicsModule loads fine and panics on every request.
const panicsModule = "example.test/panics"

var panicsFiles = map[string]string{
	".traefik.yml": "displayName: Panics\ntype: middleware\nimport: example.test/panics\nsummary: Panics when serving\ntestData: {}\n",
	"go.mod":       "module example.test/panics\n\ngo 1.22\n",
	"panics.go": `package panics

import (
	"context"
	"net/http"
)

type Config struct{}

func CreateConfig() *Config { return &Config{} }

type p struct{}

func New(ctx context.Context, next http.Handler, cfg *Config, name string) (http.Handler, error) {
	return p{}, nil
}

func (p) ServeHTTP(w http.ResponseWriter, r *http.Request) { panic("boom from the panics plugin") }
`,
}

func e2eRequire(t *testing.T, ok bool, what string) {
	t.Helper()
	if ok {
		return
	}
	testenv.Unavailable(t, "%s", what)
}

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

type module struct{ path, dir string }

// imageLayer lays plugins into <workdir>/plugins-local/src/<module> and adds
// extra files (absolute path -> content), as one layer.
func imageLayer(t *testing.T, workdir string, mods []module, extra map[string]string) v1.Layer {
	t.Helper()
	files := map[string][]byte{}
	modes := map[string]int64{}
	for _, m := range mods {
		root := path.Join(strings.TrimPrefix(workdir, "/"), "plugins-local/src", m.path)
		err := filepath.WalkDir(m.dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(m.dir, p)
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			name := path.Join(root, filepath.ToSlash(rel))
			files[name], modes[name] = b, 0o644
			if info.Mode()&0o111 != 0 {
				modes[name] = 0o755
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range extra {
		n := strings.TrimPrefix(name, "/")
		files[n], modes[n] = []byte(content), 0o644
	}
	dirs := map[string]bool{}
	for name := range files {
		for d := path.Dir(name); d != "."; d = path.Dir(d) {
			dirs[d+"/"] = true
		}
	}
	var names []string
	for n := range files {
		names = append(names, n)
	}
	for d := range dirs {
		names = append(names, d)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		hdr := &tar.Header{Name: n, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: time.Unix(0, 0)}
		if !strings.HasSuffix(n, "/") {
			hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeReg, modes[n], int64(len(files[n]))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(files[n]); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func withLayer(t *testing.T, base v1.Image, l v1.Layer, env []string) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(base, l)
	if err != nil {
		t.Fatal(err)
	}
	if len(env) > 0 {
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		cfg := cf.Config
		cfg.Env = append(append([]string(nil), cfg.Env...), env...)
		if img, err = mutate.Config(img, cfg); err != nil {
			t.Fatal(err)
		}
	}
	return img
}

// tlog sends progress to the test log.
type tlog struct {
	t      *testing.T
	mu     sync.Mutex
	onLine func(string)
}

func (w *tlog) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		w.t.Log(line)
		if w.onLine != nil {
			w.onLine(line)
		}
	}
	return len(p), nil
}

// run runs the check and asserts it left nothing behind: no work directory and
// no process still serving the check's API address.
func run(t *testing.T, ctx context.Context, img v1.Image, opts runcheck.Options) (*runcheck.Report, error) {
	t.Helper()
	tmp := t.TempDir()
	opts.TempDir = tmp
	if opts.Log == nil {
		opts.Log = &tlog{t: t}
	}
	if opts.Timeout == 0 {
		opts.Timeout = time.Minute
	}
	rep, err := runcheck.Run(ctx, img, opts)
	if ents, rerr := os.ReadDir(tmp); rerr != nil || len(ents) != 0 {
		t.Errorf("work directory left behind: %v %v", ents, rerr)
	}
	if rep != nil && rep.APIAddress != "" {
		if pids := processesWith(t, rep.APIAddress); len(pids) > 0 {
			t.Errorf("Traefik still running after Run: pids %v", pids)
		}
	}
	if rep != nil {
		t.Logf("isolation %s, source %s, notes %q, missing %q\n%s", rep.Isolation, rep.ConfigSource, rep.Notes, rep.Missing, rep.Summary())
	}
	return rep, err
}

// processesWith lists processes whose command line or environment mentions s.
func processesWith(t *testing.T, s string) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []string
	for _, e := range ents {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		for _, f := range []string{"cmdline", "environ"} {
			b, err := os.ReadFile(filepath.Join("/proc", e.Name(), f))
			if err == nil && bytes.Contains(b, []byte(s)) && e.Name() != "self" {
				pids = append(pids, e.Name())
				break
			}
		}
	}
	return pids
}

func result(t *testing.T, rep *runcheck.Report, alias string) runcheck.PluginResult {
	t.Helper()
	for _, p := range rep.Plugins {
		if p.Alias == alias {
			return p
		}
	}
	t.Fatalf("no result for %s in %+v", alias, rep.Plugins)
	return runcheck.PluginResult{}
}

// assertDemoPassed checks plugindemo's testData headers reached the backend,
// '{{URL}}' unchanged: the file provider's template rendering was escaped.
func assertDemoPassed(t *testing.T, rep *runcheck.Report) {
	t.Helper()
	demo := result(t, rep, "demo")
	if !demo.OK {
		t.Fatalf("demo failed: %s\nTraefik log:\n%s", demo.Reason, rep.TraefikLog)
	}
	if got := demo.BackendHeaders.Get("X-Demo"); got != "test" {
		t.Errorf("backend got X-Demo %q, want test", got)
	}
	if got := demo.BackendHeaders.Get("X-URL"); got != "{{URL}}" {
		t.Errorf("backend got X-URL %q, want {{URL}}", got)
	}
}

// TestRunEndToEnd runs the check with real Traefik binaries: v3.6.12, or the
// versions listed in XTRAEFIK_RUNCHECK_TRAEFIK (e.g. "v3.6.12 v2.11.0"; each
// one not in the cache costs a ten-minute build).
func TestRunEndToEnd(t *testing.T) {
	versions := strings.Fields(os.Getenv("XTRAEFIK_RUNCHECK_TRAEFIK"))
	if len(versions) == 0 {
		versions = []string{"v3.6.12"}
	}
	for _, v := range versions {
		t.Run(v, func(t *testing.T) { endToEnd(t, v) })
	}
}

func endToEnd(t *testing.T, version string) {
	bin := testenv.TraefikBinary(t, version)
	e2eRequire(t, os.Geteuid() == 0, "not root: runc and chroot need root")
	demoDir := testenv.ModuleDir(t, demoModule, "v0.2.2")
	demo := module{demoModule, demoDir}
	fails := module{failsModule, writeTree(t, failsFiles)}
	teapot := module{teapotModule, writeTree(t, teapotFiles)}
	panics := module{panicsModule, writeTree(t, panicsFiles)}
	// Answers 503 with its own page: its identity provider is unreachable.
	const oidcModule = "example.com/fixtures/upstream-unreachable"
	oidc := module{oidcModule, filepath.Join(testenv.FixturesDir(t), "upstream-unreachable")}
	ctx := context.Background()

	// Flags mode: a non-root user and a WORKDIR, as many hardened bases have.
	flagsBase := testenv.TraefikBase(t, bin, testenv.TraefikBaseOptions{Version: version, WorkingDir: "/srv/traefik", User: "nonroot"})
	flagsImg := withLayer(t, flagsBase, imageLayer(t, "/srv/traefik", []module{demo, fails, teapot, panics, oidc}, nil), nil)
	flagsPlugins := []plugin.Plugin{
		{Alias: "demo", Module: demoModule},
		{Alias: "fails", Module: failsModule},
		{Alias: "teapot", Module: teapotModule, ExpectStatus: 418},
		{Alias: "panics", Module: panicsModule},
		{Alias: "oidc", Module: oidcModule},
	}

	// Env mode on the official image's layout (/entrypoint.sh, CMD traefik).
	envLocal := []plugin.Plugin{{Alias: "demo", Module: demoModule}}
	envBase := testenv.TraefikBase(t, bin, testenv.TraefikBaseOptions{Version: version, EntrypointScript: true})
	envImg := withLayer(t, envBase, imageLayer(t, "/", []module{demo}, nil), traefikcfg.EnvVars(envLocal))

	// File mode: the static configuration baked at /etc/traefik/traefik.yml.
	static, err := traefikcfg.StaticFile(traefikcfg.Static{Mode: traefikcfg.ModeFile, Config: map[string]any{"log": map[string]any{"level": "WARN"}}}, envLocal)
	if err != nil {
		t.Fatal(err)
	}
	fileBase := testenv.TraefikBase(t, bin, testenv.TraefikBaseOptions{Version: version, WorkingDir: "/srv/traefik"})
	fileImg := withLayer(t, fileBase, imageLayer(t, "/srv/traefik", []module{demo}, map[string]string{traefikcfg.StaticFilePath: string(static)}), nil)

	t.Run("flags mode under runc", func(t *testing.T) {
		_, err := exec.LookPath("runc")
		e2eRequire(t, err == nil, "runc not installed")
		rep, err := run(t, ctx, flagsImg, runcheck.Options{Mode: traefikcfg.ModeFlags, Plugins: flagsPlugins, Isolation: runcheck.IsolationRunc})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Isolation != "runc" || rep.ConfigSource != "flags" || len(rep.Missing) != 0 {
			t.Errorf("isolation %q, source %q, missing %q", rep.Isolation, rep.ConfigSource, rep.Missing)
		}
		assertDemoPassed(t, rep)
		if f := result(t, rep, "fails"); f.OK || !strings.Contains(f.Reason, `Traefik: "`) || !strings.Contains(f.Reason, "onlyintraefik refuses middleware xtraefik-check-fails@file") {
			t.Errorf("fails: OK=%v, reason %q; want a FAIL quoting Traefik", f.OK, f.Reason)
		}
		if tp := result(t, rep, "teapot"); !tp.OK || tp.Status != 418 {
			t.Errorf("teapot: OK=%v status %d reason %q", tp.OK, tp.Status, tp.Reason)
		}
		if p := result(t, rep, "panics"); p.OK || p.Status != 500 || p.Warning != "" || !strings.Contains(p.Reason, "the plugin panicked serving the request; Traefik's recovery answered 500") ||
			!strings.Contains(p.Reason, "boom from the panics plugin") {
			t.Errorf("panics: OK=%v status %d reason %q warning %q; want a FAIL quoting Traefik's log", p.OK, p.Status, p.Reason, p.Warning)
		}
		// The plugin's own 503 is what Traefik serves: a PASS with a warning.
		if o := result(t, rep, "oidc"); !o.OK || o.Status != 503 || !strings.Contains(o.Warning, "the plugin answered 503 itself: a server error") ||
			!strings.Contains(o.Warning, "Sign-in unavailable") {
			t.Errorf("oidc: OK=%v status %d reason %q warning %q; want a PASS with a warning", o.OK, o.Status, o.Reason, o.Warning)
		}
		if rep.OK() {
			t.Error("report is OK with a failing plugin")
		}
		if rep.LoadedPlugins["demo"] != demoModule || rep.LoadedPlugins["fails"] != failsModule {
			t.Errorf("Traefik loaded %v", rep.LoadedPlugins)
		}
	})

	t.Run("env mode under chroot", func(t *testing.T) {
		rep, err := run(t, ctx, envImg, runcheck.Options{Mode: traefikcfg.ModeEnv, Plugins: []plugin.Plugin{{Alias: "demo", Module: demoModule}}, Isolation: runcheck.IsolationChroot})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Isolation != "chroot" || rep.ConfigSource != "env" || strings.Join(rep.Args, " ") != "/entrypoint.sh traefik" {
			t.Errorf("isolation %q, source %q, args %q", rep.Isolation, rep.ConfigSource, rep.Args)
		}
		// chroot says what it does not contain.
		if m := strings.Join(rep.Missing, "\n"); !strings.Contains(m, "host's network") || !strings.Contains(m, "outlive the check") || strings.Contains(m, "no chroot") {
			t.Errorf("missing protections under chroot: %q", rep.Missing)
		}
		assertDemoPassed(t, rep)
		if !rep.OK() || rep.LoadedPlugins["demo"] != demoModule {
			t.Errorf("OK %v, Traefik loaded %v", rep.OK(), rep.LoadedPlugins)
		}
	})

	t.Run("trap: env mode started with one flag", func(t *testing.T) {
		if w := traefikcfg.Warnings(traefikcfg.ModeEnv); len(w) == 0 || !strings.Contains(w[0], "one command-line flag") {
			t.Errorf("the build does not warn about env mode: %q", w)
		}
		rep, err := run(t, ctx, envImg, runcheck.Options{
			Mode: traefikcfg.ModeEnv, Plugins: []plugin.Plugin{{Alias: "demo", Module: demoModule}},
			ExtraArgs: []string{"--entryPoints.extra.address=127.0.0.1:0"},
		})
		if err != nil {
			t.Fatal(err)
		}
		// Traefik took its configuration from the flags: the baked variables,
		// and with them the plugin, are gone; the flag itself was honoured.
		if rep.ConfigSource != "flags" {
			t.Errorf("source %q", rep.ConfigSource)
		}
		if d := result(t, rep, "demo"); d.OK || !strings.Contains(d.Reason, "unknown plugin type: demo") {
			t.Errorf("demo: OK=%v reason %q; want Traefik's unknown plugin type", d.OK, d.Reason)
		}
		if rep.LoadedPlugins == nil || len(rep.LoadedPlugins) != 0 {
			t.Errorf("Traefik loaded %v, want no local plugins", rep.LoadedPlugins)
		}
		if !contains(rep.EntryPoints, "extra") {
			t.Errorf("entry points %q lack the flag's extra", rep.EntryPoints)
		}
	})

	t.Run("file mode unconfined", func(t *testing.T) {
		rep, err := run(t, ctx, fileImg, runcheck.Options{Mode: traefikcfg.ModeFile, Plugins: []plugin.Plugin{{Alias: "demo", Module: demoModule}}, Isolation: runcheck.IsolationNone})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Isolation != "none" || rep.ConfigSource != "file:"+traefikcfg.StaticFilePath {
			t.Errorf("isolation %q, source %q", rep.Isolation, rep.ConfigSource)
		}
		if m := strings.Join(rep.Missing, "\n"); !strings.Contains(m, "no chroot") || !strings.Contains(m, "host's network") {
			t.Errorf("missing protections unconfined: %q", rep.Missing)
		}
		assertDemoPassed(t, rep)
		if !rep.OK() {
			t.Error("report not OK")
		}
	})

	t.Run("trap: file mode started with flags", func(t *testing.T) {
		if w := traefikcfg.Warnings(traefikcfg.ModeFile); len(w) == 0 || !strings.Contains(w[0], "ignores every command-line flag") {
			t.Errorf("the build does not warn about file mode: %q", w)
		}
		rep, err := run(t, ctx, fileImg, runcheck.Options{
			Mode: traefikcfg.ModeFile, Plugins: []plugin.Plugin{{Alias: "demo", Module: demoModule}},
			ExtraArgs: []string{"--entryPoints.extra.address=127.0.0.1:0", "--experimental.localPlugins.fails.moduleName=" + failsModule},
		})
		if err != nil {
			t.Fatal(err)
		}
		// The file wins: the plugin it enables works, the flags are ignored.
		if rep.ConfigSource != "file:"+traefikcfg.StaticFilePath {
			t.Errorf("source %q", rep.ConfigSource)
		}
		assertDemoPassed(t, rep)
		if contains(rep.EntryPoints, "extra") || len(rep.EntryPoints) == 0 {
			t.Errorf("entry points %q: the flag's extra entry point should be ignored", rep.EntryPoints)
		}
		if _, ok := rep.LoadedPlugins["fails"]; ok || rep.LoadedPlugins["demo"] != demoModule {
			t.Errorf("Traefik loaded %v, want only the file's demo", rep.LoadedPlugins)
		}
	})

	t.Run("plugin missing from the image", func(t *testing.T) {
		rep, err := run(t, ctx, envImg, runcheck.Options{Mode: traefikcfg.ModeFlags, Isolation: runcheck.IsolationChroot, Plugins: []plugin.Plugin{
			{Alias: "demo", Module: demoModule},
			{Alias: "ghost", Module: "example.test/ghost"},
		}})
		if err != nil {
			t.Fatal(err)
		}
		if g := result(t, rep, "ghost"); g.OK || !strings.Contains(g.Reason, "/plugins-local/src/example.test/ghost/.traefik.yml") {
			t.Errorf("ghost: OK=%v reason %q", g.OK, g.Reason)
		}
		// Traefik itself refuses the whole set when one local plugin is missing.
		if d := result(t, rep, "demo"); d.OK || !strings.Contains(d.Reason, "Traefik disabled all plugins") {
			t.Errorf("demo: OK=%v reason %q", d.OK, d.Reason)
		}
	})

	t.Run("index: the host's platform is picked", func(t *testing.T) {
		other := "arm64"
		if runtime.GOARCH == "arm64" {
			other = "amd64"
		}
		otherImg, err := mutate.ConfigFile(envImg, &v1.ConfigFile{OS: "linux", Architecture: other})
		if err != nil {
			t.Fatal(err)
		}
		idx := mutate.AppendManifests(empty.Index,
			mutate.IndexAddendum{Add: otherImg, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: other}}},
			mutate.IndexAddendum{Add: envImg, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: runtime.GOARCH}}},
		)
		tmp := t.TempDir()
		rep, err := runcheck.RunIndex(ctx, idx, runcheck.Options{Mode: traefikcfg.ModeEnv, Plugins: []plugin.Plugin{{Alias: "demo", Module: demoModule}}, TempDir: tmp, Log: &tlog{t: t}, Timeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Platform != "linux/"+runtime.GOARCH {
			t.Errorf("ran the %s image", rep.Platform)
		}
		assertDemoPassed(t, rep)
	})

	t.Run("auto without runc falls back to chroot", func(t *testing.T) {
		t.Setenv("PATH", t.TempDir()) // no runc to be found
		rep, err := run(t, ctx, envImg, runcheck.Options{Mode: traefikcfg.ModeEnv, Plugins: []plugin.Plugin{{Alias: "demo", Module: demoModule}}})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Isolation != "chroot" || len(rep.Notes) == 0 || !strings.Contains(rep.Notes[0], "runc not used") {
			t.Errorf("isolation %q, notes %q", rep.Isolation, rep.Notes)
		}
		assertDemoPassed(t, rep)
	})

	t.Run("cancelled while Traefik runs", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		// Traefik's first warning proves it is running; cancel then, as Ctrl-C would.
		log := &tlog{t: t, onLine: func(line string) {
			if strings.HasPrefix(line, "traefik| ") {
				cancel()
			}
		}}
		rep, err := run(t, ctx, flagsImg, runcheck.Options{Plugins: flagsPlugins[:1], Isolation: runcheck.IsolationChroot, Log: log})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if rep == nil || rep.APIAddress == "" || rep.TraefikLog == "" {
			t.Fatalf("Traefik did not start before the cancel: %+v", rep)
		}
	})
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
