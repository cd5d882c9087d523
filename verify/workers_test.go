package verify

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xtraefik/xtraefik/internal/plugin"
	"github.com/xtraefik/xtraefik/internal/testenv"
	"github.com/xtraefik/xtraefik/verify/provision"
)

// slowTest runs t only in CI (XTRAEFIK_E2E) or when -run names it: it
// compiles Yaegi, minutes on a busy machine.
func slowTest(t *testing.T) {
	t.Helper()
	if testenv.Strict() {
		return
	}
	if f := flag.Lookup("test.run"); f != nil && f.Value.String() != "" {
		top, _, _ := strings.Cut(t.Name(), "/")
		if ok, _ := regexp.MatchString(strings.SplitN(f.Value.String(), "/", 2)[0], top); ok && f.Value.String() != "." {
			return
		}
	}
	t.Skip("builds Yaegi workers: runs with XTRAEFIK_E2E=1 or -run " + t.Name())
}

// testWorkerKey is the host key test caches seal worker records with.
func testWorkerKey(t *testing.T) []byte {
	t.Helper()
	return bytes.Repeat([]byte{9}, 32)
}

func fixture(t *testing.T, name string) plugin.Plugin {
	t.Helper()
	for _, f := range testenv.Fixtures() {
		if f.Name == name {
			return plugin.Plugin{Alias: f.Name, Module: f.Module, Files: testenv.FixtureFiles(t, f)}
		}
	}
	t.Fatalf("no fixture %s", name)
	return plugin.Plugin{}
}

func corpusPlugin(t *testing.T, module, version string) plugin.Plugin {
	t.Helper()
	for _, c := range testenv.Corpus() {
		if c.Module == module && (version == "" || c.Version == version) {
			return plugin.Plugin{Alias: c.Alias, Module: c.Module, Source: plugin.Source{Commit: c.Version}, Files: testenv.CorpusFiles(t, c)}
		}
	}
	t.Fatalf("%s %s left the corpus", module, version)
	return plugin.Plugin{}
}

// From a plain install (no worker anywhere), xtraefik builds the worker of
// the Yaegi each Traefik v2 release embeds into its cache, checks that it
// says so, interprets with it, and reuses it.
func TestProvisionedWorkers(t *testing.T) {
	slowTest(t)
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatal(err)
	}
	demo := corpusPlugin(t, "github.com/traefik/plugindemo", "")
	f2b080 := corpusPlugin(t, "github.com/tomMoulard/fail2ban", "v0.8.0")
	cache := t.TempDir()

	for _, v := range []struct{ traefik, yaegi string }{{"v2.9.9", "v0.15.0"}, {"v2.11.0", "v0.15.1"}} {
		t.Run(v.traefik, func(t *testing.T) {
			opts := Options{TraefikVersion: v.traefik, WorkerCache: cache, WorkerKey: testWorkerKey(t)}
			// Two verifications at once: one builds, the other waits on the lock.
			var wg sync.WaitGroup
			rs := make([]Result, 2)
			errs := make([]error, 2)
			for i := range rs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var res []Result
					res, errs[i] = Verify(context.Background(), []plugin.Plugin{demo}, opts)
					if len(res) == 1 {
						rs[i] = res[0]
					}
				}()
			}
			wg.Wait()
			for i := range rs {
				if errs[i] != nil {
					t.Fatalf("Verify: %v", errs[i])
				}
				checkVerdict(t, rs[i], true, "")
				if rs[i].Interpreter != "yaegi "+v.yaegi || rs[i].Status != StatusOK || rs[i].Approximate {
					t.Fatalf("result %+v: want an exact OK from yaegi %s", rs[i], v.yaegi)
				}
			}
			exe, err := provision.Path(cache, v.yaegi)
			if err != nil {
				t.Fatal(err)
			}
			before, err := os.Stat(exe)
			if err != nil {
				t.Fatalf("worker not cached: %v", err)
			}

			for _, tc := range []struct {
				name       string
				plugin     plugin.Plugin
				wantOK     bool
				wantReason string
			}{
				// Interpretation differs: v0.15.x cannot select an embedded generic type.
				{"generic-embed", fixture(t, "yaegi-generic-embed"), false, "undefined selector: Pairs"},
				{"provider", fixture(t, "provider-ok"), true, ""},
				// A real plugin these releases cannot load (v3 can: TestCorpus).
				{"fail2ban-v0.8.0", f2b080, false, "not available in Yaegi: slices"},
			} {
				start := time.Now()
				r := verifyOneFor(t, tc.plugin, opts)
				checkVerdict(t, r, tc.wantOK, tc.wantReason)
				if r.Interpreter != "yaegi "+v.yaegi {
					t.Errorf("%s: interpreter %q", tc.name, r.Interpreter)
				}
				if d := time.Since(start); d > 30*time.Second {
					t.Errorf("%s: %s: the cached worker was not reused", tc.name, d)
				}
			}
			after, err := os.Stat(exe)
			if err != nil || !after.ModTime().Equal(before.ModTime()) {
				t.Errorf("worker rebuilt: %v", err)
			}

			// Installed by hand: found in $PATH (no toolchain needed then).
			dir := t.TempDir()
			data, err := os.ReadFile(exe)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, provision.WorkerName(v.yaegi)), data, 0o755); err != nil {
				t.Fatal(err)
			}
			t.Setenv("PATH", dir)
			r := verifyOneFor(t, demo, Options{TraefikVersion: v.traefik, WorkerCache: t.TempDir()})
			if r.Status != StatusOK || r.Interpreter != "yaegi "+v.yaegi {
				t.Errorf("worker in $PATH: %+v", r)
			}
		})
	}

	t.Run("explicit worker of another version is not used", func(t *testing.T) {
		exe, err := provision.Path(cache, "v0.15.0")
		if err != nil {
			t.Fatal(err)
		}
		t.Setenv("PATH", t.TempDir())
		r := verifyOneFor(t, demo, Options{TraefikVersion: "v2.11.0", Workers: []string{exe}, WorkerCache: t.TempDir()})
		if r.Status != StatusUnverified {
			t.Errorf("a yaegi v0.15.0 worker gave Traefik v2.11.0 a verdict: %+v", r)
		}
	})

	t.Run("install for a release archive", func(t *testing.T) {
		dir := t.TempDir()
		paths, err := provision.Install(context.Background(), cache, dir, testWorkerKey(t), func(w string) { t.Errorf("warning: %s", w) })
		if err != nil || len(paths) != len(provision.Versions()) {
			t.Fatalf("Install = %v, %v", paths, err)
		}
		for _, v := range provision.Versions() {
			st, err := os.Stat(filepath.Join(dir, provision.WorkerName(v)))
			if err != nil || st.Mode()&0o111 == 0 {
				t.Errorf("worker for %s not installed: %v", v, err)
			}
		}
	})

	t.Run("run by hand", func(t *testing.T) {
		exe, err := provision.Path(cache, "v0.15.1")
		if err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(exe).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "verification worker") {
			t.Fatalf("err %v, output %q", err, out)
		}
	})
}

// A Traefik whose Yaegi is in no table of this xtraefik (its binary's build
// info names it) gets a worker built on first use the same way, checksums
// from the checksum database; the static walk takes that Yaegi's standard
// library from the worker's own describe answer. A Yaegi the worker source
// does not compile with leaves its plugins UNVERIFIED, with the compiler's
// line: no crash, no OK.
func TestUnknownYaegiWorkers(t *testing.T) {
	slowTest(t)
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatal(err)
	}
	demo := corpusPlugin(t, "github.com/traefik/plugindemo", "")
	slog := fixture(t, "stdlib-slog")
	oidc := fixture(t, "upstream-unreachable")
	cache := t.TempDir() // shared by the subtests: one build per version

	// Yaegi v0.14.3 (Traefik v2.9.0–v2.9.6, outside the table) compiles with
	// the worker source; it has no log/slog, which this binary's v0.16.1 has.
	t.Run("v0.14.3 builds", func(t *testing.T) {
		var log bytes.Buffer
		opts := Options{TraefikVersion: "v2.9.6", Yaegi: "v0.14.3", WorkerCache: cache, Log: &log}
		r := verifyOneFor(t, demo, opts)
		if r.Status != StatusOK || r.Interpreter != "yaegi v0.14.3" || r.Approximate {
			t.Fatalf("result %+v: want an exact OK from yaegi v0.14.3", r)
		}
		if l := log.String(); !strings.Contains(l, "building the verification worker for yaegi v0.14.3") || !strings.Contains(l, "checks them against the checksum database (GOSUMDB)") {
			t.Errorf("log %q does not say what it builds and how it is trusted", l)
		}
		exe, err := provision.Path(cache, "v0.14.3")
		if err != nil {
			t.Fatal(err)
		}
		before, err := os.Stat(exe)
		if err != nil {
			t.Fatalf("worker not cached: %v", err)
		}
		// The walk used the worker's standard library, not this binary's:
		// an exact FAIL, not UNVERIFIED.
		s := verifyOneFor(t, slog, opts)
		checkVerdict(t, s, false, "not available in Yaegi: log/slog")
		if s.Status != StatusFail || s.Interpreter != "yaegi v0.14.3" {
			t.Errorf("slog: %+v", s)
		}
		// Judged in that worker as in this one.
		o := verifyOneFor(t, oidc, opts)
		if o.Status != StatusOK || o.Interpreter != "yaegi v0.14.3" || len(o.Warnings) != 1 || !strings.Contains(o.Warnings[0], "answered 503 itself") {
			t.Errorf("upstream-unreachable: %+v", o)
		}
		after, err := os.Stat(exe)
		if err != nil || !after.ModTime().Equal(before.ModTime()) {
			t.Errorf("worker rebuilt: %v", err)
		}
	})

	// Yaegi v0.9.23 (Traefik v2.3) predates interp.Options.Env.
	t.Run("v0.9.23 does not compile", func(t *testing.T) {
		r := verifyOneFor(t, demo, Options{TraefikVersion: "v2.3.0", Yaegi: "v0.9.23", WorkerCache: cache})
		if r.Status != StatusUnverified || r.OK {
			t.Fatalf("result %+v: want UNVERIFIED", r)
		}
		for _, want := range []string{
			"the base's Traefik binary embeds yaegi v0.9.23",
			"its worker source does not compile with yaegi v0.9.23 (xtraefik/verify/yaegi.go:",
			"unknown field Env in struct literal",
		} {
			if !strings.Contains(r.Reason, want) {
				t.Errorf("reason %q lacks %q", r.Reason, want)
			}
		}
		if strings.Contains(r.Reason, "\n") {
			t.Errorf("reason is not one line: %q", r.Reason)
		}
		if exe, _ := provision.Path(cache, "v0.9.23"); fileExists(exe) {
			t.Error("a worker was left for yaegi v0.9.23")
		}
	})
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// Without the target's worker and without a Go toolchain to build it, a
// plugin has no verdict: UNVERIFIED with the fix, unless approximate verdicts
// are accepted, loudly. A FAIL the static walk finds with the target's
// standard library needs no worker.
func TestUnverified(t *testing.T) {
	demo := corpusPlugin(t, "github.com/traefik/plugindemo", "") // needs the go tool: before PATH is emptied
	slog := fixture(t, "stdlib-slog")
	wasm := plugin.Plugin{}
	for _, f := range testenv.Fixtures() {
		if f.Name == "wasm-ok" && f.TraefikVersion == "v3.6.12" {
			wasm = plugin.Plugin{Alias: f.Name, Module: f.Module, Files: testenv.FixtureFiles(t, f)}
		}
	}
	// No worker to find (the test binary's directory holds none either), no go.
	t.Setenv("PATH", t.TempDir())
	for _, tc := range []struct {
		name       string
		plugin     plugin.Plugin
		opts       Options
		wantStatus string
		wantInterp string
		wantReason []string
	}{
		{"v3 exact", demo, Options{TraefikVersion: "v3.6.12"}, StatusOK, "yaegi v0.16.1", nil},
		{"v2.11.1 exact", demo, Options{TraefikVersion: "v2.11.1"}, StatusOK, "yaegi v0.16.1", nil},
		{"v2.11.0 no worker", demo, Options{TraefikVersion: "v2.11.0"}, StatusUnverified, "yaegi v0.16.1",
			[]string{"Traefik v2.11.0 embeds yaegi v0.15.1", "no xtraefik-yaegi-v0.15.1 is installed and there is no Go toolchain", "install Go (https://go.dev/dl/)", "--yaegi-worker"}},
		{"v2.9.9 no worker", demo, Options{TraefikVersion: "v2.9.9"}, StatusUnverified, "yaegi v0.16.1",
			[]string{"Traefik v2.9.9 embeds yaegi v0.15.0", "xtraefik-yaegi-v0.15.0"}},
		{"build info wins", demo, Options{TraefikVersion: "v3.6.12", Yaegi: "v0.15.1"}, StatusUnverified, "yaegi v0.16.1",
			[]string{"the base's Traefik binary embeds yaegi v0.15.1"}},
		// A fork of Yaegi is no Yaegi xtraefik knows, whatever its version.
		{"forked yaegi", demo, Options{TraefikVersion: "v3.6.12", Yaegi: "github.com/acme/yaegi@v0.16.1"}, StatusUnverified, "yaegi v0.16.1",
			[]string{"the base's Traefik binary embeds a fork of Yaegi, github.com/acme/yaegi@v0.16.1, in place of github.com/traefik/yaegi"}},
		{"forked yaegi (go.mod)", demo, Options{TraefikVersion: "v3.6.12", Yaegi: "github.com/acme/yaegi@v0.16.1", InterpreterSource: "go.mod"}, StatusUnverified, "yaegi v0.16.1",
			[]string{"Traefik v3.6.12 (its go.mod) embeds a fork of Yaegi, github.com/acme/yaegi@v0.16.1"}},
		{"version unknown", demo, Options{}, StatusUnverified, "yaegi v0.16.1", []string{"Traefik version unknown", "--traefik-version"}},
		{"version not in table", demo, Options{TraefikVersion: "v3.99.0"}, StatusUnverified, "yaegi v0.16.1", []string{"Traefik v3.99.0 is not in xtraefik's interpreter table"}},
		// A Yaegi outside the table is built like the others, given a toolchain.
		{"v0.14 no worker", demo, Options{TraefikVersion: "v3.6.12", Yaegi: "v0.14.3"}, StatusUnverified, "yaegi v0.16.1",
			[]string{"the base's Traefik binary embeds yaegi v0.14.3", "no xtraefik-yaegi-v0.14.3 is installed and there is no Go toolchain"}},
		{"no worker for v0.8", demo, Options{TraefikVersion: "v3.6.12", Yaegi: "v0.8.14"}, StatusUnverified, "yaegi v0.16.1", []string{"cannot build one", `"v0.8.14" is not a Yaegi version from v0.9.0 on`}},
		// The target's standard library is known: a FAIL without any worker.
		{"slog v2.11.0", slog, Options{TraefikVersion: "v2.11.0"}, StatusFail, "yaegi v0.15.1", []string{"not available in Yaegi: log/slog"}},
		{"slog v2.9.9", slog, Options{TraefikVersion: "v2.9.9"}, StatusFail, "yaegi v0.15.0", []string{"not available in Yaegi: log/slog"}},
		{"slog v3.6.12", slog, Options{TraefikVersion: "v3.6.12"}, StatusOK, "yaegi v0.16.1", nil},
		{"wasm v3.0.4", wasm, Options{TraefikVersion: "v3.0.4"}, StatusUnverified, "wazero v1.8.0, http-wasm-host-go v0.7.0", []string{"Traefik v3.0.4 runs wasm plugins with wazero v1.5.0"}},
		{"wasm v3.6.12", wasm, Options{TraefikVersion: "v3.6.12"}, StatusOK, "wazero v1.8.0, http-wasm-host-go v0.7.0", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.WorkerCache, tc.opts.WorkerKey = t.TempDir(), testWorkerKey(t)
			r := verifyOneFor(t, tc.plugin, tc.opts)
			if r.Status != tc.wantStatus || r.OK != (tc.wantStatus == StatusOK) || r.Interpreter != tc.wantInterp || r.Approximate {
				t.Fatalf("status %s OK %v interpreter %q approximate %v; want %s from %s\nreason: %s\nnotes: %v",
					r.Status, r.OK, r.Interpreter, r.Approximate, tc.wantStatus, tc.wantInterp, r.Reason, r.Notes)
			}
			for _, w := range tc.wantReason {
				if !strings.Contains(r.Reason, w) {
					t.Errorf("reason %q lacks %q", r.Reason, w)
				}
			}
			if tc.wantStatus == StatusUnverified {
				if n := strings.Join(r.Notes, "\n"); !strings.Contains(n, "approximate verdict from "+tc.wantInterp+": OK") || !strings.Contains(n, "--accept-approximate-verdict") {
					t.Errorf("notes %v do not give the approximate verdict", r.Notes)
				}
				// Accepted explicitly: the verdict stands, marked.
				tc.opts.AcceptApproximate = true
				a := verifyOneFor(t, tc.plugin, tc.opts)
				if a.Status != StatusOK || !a.OK || !a.Approximate || a.Reason != "" ||
					!strings.Contains(strings.Join(a.Notes, "\n"), "APPROXIMATE VERDICT, accepted with --accept-approximate-verdict") {
					t.Errorf("accepted approximate verdict: %+v", a)
				}
			}
		})
	}
}

// A worker that is missing, is not a worker, or speaks another protocol
// stops the verification with an error naming it: never a silent fallback.
func TestWorkerBroken(t *testing.T) {
	dir := t.TempDir()
	script := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := fixture(t, "vendored-ok")
	for _, tc := range []struct {
		name, worker, want string
	}{
		{"missing", filepath.Join(dir, "absent", "xtraefik-yaegi-v0.15.1"), "verification worker " + filepath.Join(dir, "absent", "xtraefik-yaegi-v0.15.1")},
		{"not a worker", script("true", "exit 0"), "not a static executable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Verify(context.Background(), []plugin.Plugin{p}, Options{TraefikVersion: "v2.11.0", Workers: []string{tc.worker}, WorkerCache: t.TempDir()})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	t.Run("old protocol", func(t *testing.T) {
		old := plantedWorker(t, "PROTO=0", "MARKER=\"/nonexistent\"")
		_, err := Verify(context.Background(), []plugin.Plugin{p}, Options{TraefikVersion: "v2.11.0", Workers: []string{old}, WorkerCache: t.TempDir()})
		if err == nil || !strings.Contains(err.Error(), "speaks protocol 0, this xtraefik speaks 4") {
			t.Fatalf("err = %v", err)
		}
	})
	// One in $PATH that describes another interpreter than its name says: a
	// genuine worker (this test binary) of yaegi v0.16.1 under v0.15.1's name
	// — unless, linked dynamically as test binaries with cgo are, it cannot
	// start inside the sandbox at all.
	liar := filepath.Join(t.TempDir(), "xtraefik-yaegi-v0.15.1")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(liar, data, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", filepath.Dir(liar))
	_, err = Verify(context.Background(), []plugin.Plugin{p}, Options{TraefikVersion: "v2.11.0", WorkerCache: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "interprets with yaegi v0.16.1, not yaegi v0.15.1") && !strings.Contains(err.Error(), "dynamically linked") {
		t.Fatalf("err = %v", err)
	}
}

// The worker refuses a job of another protocol (a parent from another
// xtraefik source) or without a key instead of misreading it, and seals
// what it reports with the job's key.
func TestServeJobProtocol(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	keyJSON, _ := json.Marshal(key)
	var buf bytes.Buffer
	for _, tc := range []struct {
		job  string
		want int
	}{
		{`{"protocol":3,"describe":true,"key":` + string(keyJSON) + `}`, workerFailed},
		{`{"protocol":5,"describe":true,"key":` + string(keyJSON) + `}`, workerFailed},
		{`{"protocol":4,"describe":true}`, workerFailed},
		{`{"protocol":4,"describe":true,"key":` + string(keyJSON) + `}`, 0},
	} {
		if got := serveJob(strings.NewReader(tc.job), &buf, nil); got != tc.want {
			t.Errorf("%s: exit %d, want %d", tc.job, got, tc.want)
		}
	}
	sealed := buf.String()
	rep := readReport(bufio.NewReader(strings.NewReader(sealed)), bytes.Repeat([]byte{8}, 32), func(string) {}, nil)
	if rep.result != nil || rep.forged == 0 {
		t.Fatalf("a report under another key was believed: %+v", rep)
	}
	rep = readReport(bufio.NewReader(strings.NewReader(sealed)), key, func(string) {}, nil)
	res := rep.result
	if res == nil || rep.forged != 0 {
		t.Fatalf("report %+v", rep)
	}
	if res.Interpreter != "yaegi v0.16.1" || !res.OK {
		t.Fatalf("describe answered %+v", res)
	}
	std := map[string]bool{}
	for _, p := range res.Std {
		std[p] = true
	}
	if !std["net/http"] || !std["slices"] || std["unsafe"] || len(res.Restricted) == 0 {
		t.Fatalf("describe lists std %v, restricted %v", res.Std, res.Restricted)
	}
}

// Even with the job's key (plugin code that lifted it), a compile failure
// the worker sealed stays the verdict, and a Yaegi plugin's OK without a
// sealed compiled OK before it is not believed.
func TestSealedCompileIsFinal(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	lines := func(msgs ...message) *bufio.Reader {
		var b bytes.Buffer
		for i, m := range msgs {
			body, _ := json.Marshal(m)
			line, err := seal(key, int64(i+1), body)
			if err != nil {
				t.Fatal(err)
			}
			b.Write(append(line, '\n'))
		}
		return bufio.NewReader(&b)
	}
	ok := &outcome{OK: true, Interpreter: "yaegi v0.16.1"}
	yaegiJob := &job{Runtime: "yaegi"}
	rep := readReport(lines(message{Compiled: &compiled{Reason: "failed to import plugin code: undefined: x"}},
		message{Compiled: &compiled{OK: true}}, message{Result: ok}), key, func(string) {}, nil)
	if out := sealedOutcome(rep, yaegiJob); out.OK || out.Reason != "failed to import plugin code: undefined: x" {
		t.Fatalf("an OK after a compile failure: %+v", out)
	}
	rep = readReport(lines(message{Result: ok}), key, func(string) {}, nil)
	if out := sealedOutcome(rep, yaegiJob); out.OK || !strings.Contains(out.Reason, "without reporting that the plugin compiled") {
		t.Fatalf("an OK without a compile report: %+v", out)
	}
	rep = readReport(lines(message{Compiled: &compiled{OK: true}}, message{Result: ok}), key, func(string) {}, nil)
	if out := sealedOutcome(rep, yaegiJob); !out.OK {
		t.Fatalf("a compiled plugin's OK was refused: %+v", out)
	}
	if out := sealedOutcome(readReport(lines(message{Result: ok}), key, func(string) {}, nil), &job{Describe: true}); !out.OK {
		t.Fatalf("a describe answer was refused: %+v", out)
	}
}
