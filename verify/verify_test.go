package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/modfile"

	"github.com/xtraefik/xtraefik/internal/fileset"
	"github.com/xtraefik/xtraefik/internal/manifest"
	"github.com/xtraefik/xtraefik/internal/plugin"
	"github.com/xtraefik/xtraefik/internal/sandbox"
	"github.com/xtraefik/xtraefik/internal/testenv"
)

func TestMain(m *testing.M) {
	MaybeRunWorker()
	os.Exit(m.Run())
}

func verifyOneFor(t *testing.T, p plugin.Plugin, opts Options) Result {
	t.Helper()
	res, err := Verify(context.Background(), []plugin.Plugin{asResolved(p, opts)}, opts)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if len(res) != 1 {
		t.Fatalf("got %d results", len(res))
	}
	return res[0]
}

// asResolved completes p as resolution does: its manifest, and the
// settings.useUnsafe that the recipe's allowUnsafe grants it.
func asResolved(p plugin.Plugin, opts Options) plugin.Plugin {
	if p.Manifest == nil {
		p.Manifest, _ = manifest.Read(p.Files)
	}
	p.UseUnsafe = plugin.GrantsUnsafe(opts.AllowUnsafe, p.Manifest, opts.TraefikVersion)
	return p
}

func checkVerdict(t *testing.T, r Result, wantOK bool, wantReason string) {
	t.Helper()
	if r.OK != wantOK {
		t.Fatalf("OK = %v, want %v; reason %q\ndetail: %s\nnotes: %v", r.OK, wantOK, r.Reason, r.Detail, r.Notes)
	}
	if wantOK && r.Reason != "" {
		t.Fatalf("OK with a reason %q", r.Reason)
	}
	if !wantOK {
		if !strings.Contains(r.Reason, wantReason) {
			t.Fatalf("reason %q does not contain %q\ndetail: %s", r.Reason, wantReason, r.Detail)
		}
		if strings.Contains(r.Reason, "\n") {
			t.Fatalf("reason is not one line: %q", r.Reason)
		}
	}
	// Without a readable manifest the runtime is unknown; otherwise both are reported.
	if (r.Runtime == "") != strings.HasPrefix(r.Reason, "failed to read manifest") || (r.Runtime != "") != (r.Interpreter != "") {
		t.Fatalf("interpreter %q / runtime %q not reported", r.Interpreter, r.Runtime)
	}
}

func TestFixtures(t *testing.T) {
	for _, f := range testenv.Fixtures() {
		name := f.Name + "/" + f.TraefikVersion + map[bool]string{true: "/unsafe-allowed"}[f.AllowUnsafe]
		if f.ExpectStatus != 0 {
			name += fmt.Sprintf("/expect%d", f.ExpectStatus)
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := plugin.Plugin{Alias: strings.ReplaceAll(f.Name, "-", ""), Module: f.Module, Source: plugin.Source{Commit: "0123456789abcdef"}, Files: testenv.FixtureFiles(t, f), ExpectStatus: f.ExpectStatus}
			r := verifyOneFor(t, p, Options{AllowUnsafe: f.AllowUnsafe, TraefikVersion: f.TraefikVersion,
				Timeout: f.Timeout, MemoryLimit: f.MemoryLimit})
			checkVerdict(t, r, f.WantOK, f.WantReason)
			if w := strings.Join(r.Warnings, "\n"); (f.WantWarning == "") != (w == "") || !strings.Contains(w, f.WantWarning) {
				t.Errorf("warnings %q, want %q", r.Warnings, f.WantWarning)
			}
			if r.Alias != p.Alias || r.Module != p.Module || r.Commit != p.Source.Commit {
				t.Errorf("identity not reported: %+v", r)
			}
			if r.Duration <= 0 {
				t.Errorf("no duration")
			}
		})
	}
}

func TestCorpus(t *testing.T) {
	for _, c := range testenv.Corpus() {
		name := c.Module + "@" + c.Version
		if c.Revendor {
			name += "/revendored"
		}
		if c.Config != nil {
			name += "/config"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := verifyOneFor(t, plugin.Plugin{Alias: c.Alias, Module: c.Module, Source: plugin.Source{Commit: c.Version}, Files: testenv.CorpusFiles(t, c), Config: c.Config},
				Options{TraefikVersion: "v3.6.12"})
			checkVerdict(t, r, c.WantOK, c.WantReason)
			if r.Type != c.Type || r.Runtime != c.Runtime {
				t.Errorf("type/runtime = %s/%s, want %s/%s", r.Type, r.Runtime, c.Type, c.Runtime)
			}
			if c.WantOK && len(r.Notes) == 0 {
				t.Errorf("an OK plugin reports what was exercised; no notes")
			}
			if c.WantStatus != 0 && r.HTTPStatus != c.WantStatus {
				t.Errorf("status %d, want %d (Traefik's answer)", r.HTTPStatus, c.WantStatus)
			}
		})
	}
}

// All plugins share one plugins-local tree, as in the image.
func TestOneTree(t *testing.T) {
	corpus := testenv.Corpus()
	var plugins []plugin.Plugin
	for _, c := range []testenv.CorpusPlugin{corpus[0], corpus[2], corpus[6]} {
		plugins = append(plugins, plugin.Plugin{Alias: c.Alias, Module: c.Module, Source: plugin.Source{Commit: c.Version}, Files: testenv.CorpusFiles(t, c)})
	}
	for _, f := range testenv.Fixtures() {
		if f.Name == "vendored-ok" || f.Name == "not-vendored" {
			plugins = append(plugins, plugin.Plugin{Alias: f.Name, Module: f.Module, Files: testenv.FixtureFiles(t, f)})
		}
	}
	res, err := Verify(context.Background(), plugins, Options{TraefikVersion: "v3.6.12", Parallel: 2})
	if err != nil {
		t.Fatal(err)
	}
	want := []bool{true, true, true, false, true}
	for i, r := range res {
		if r.Module != plugins[i].Module {
			t.Fatalf("result %d is for %s, want %s (order)", i, r.Module, plugins[i].Module)
		}
		if r.OK != want[i] {
			t.Errorf("%s: OK = %v, want %v (%s)", r.Module, r.OK, want[i], r.Reason)
		}
	}
}

func TestLayoutConflicts(t *testing.T) {
	f := testenv.Fixtures()[4] // vendored-ok
	if f.Name != "vendored-ok" {
		t.Fatalf("fixture order changed: %s", f.Name)
	}
	files := testenv.FixtureFiles(t, f)
	res, err := Verify(context.Background(), []plugin.Plugin{
		{Alias: "a", Module: "example.com/fixtures/vendored-ok", Files: files},
		{Alias: "b", Module: "example.com/fixtures/vendored-ok", Files: files},
		{Alias: "c", Module: "example.com/x", Files: files},
		{Alias: "d", Module: "example.com/x/y", Files: files},
		{Alias: "e", Module: "/bad/", Files: files},
	}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{
		"only one version of a plugin is allowed, there is a duplicate of example.com/fixtures/vendored-ok",
		"only one version of a plugin is allowed",
		"contains module example.com/x/y",
		"lies inside module example.com/x",
		"invalid module name: plugin name \"/bad/\" should not start or end with a /",
	} {
		if res[i].OK || !strings.Contains(res[i].Reason, want) {
			t.Errorf("%s: OK=%v reason %q, want %q", res[i].Alias, res[i].OK, res[i].Reason, want)
		}
	}
}

func TestNestedModuleNote(t *testing.T) {
	for _, f := range testenv.Fixtures() {
		if f.Name != "nested-module" {
			continue
		}
		r := verifyOneFor(t, plugin.Plugin{Module: f.Module, Files: testenv.FixtureFiles(t, f)}, Options{TraefikVersion: "v3.6.12"})
		checkVerdict(t, r, true, "")
		if !strings.Contains(strings.Join(r.Notes, "\n"), "nested module example.com/fixtures/nested-module/plugin (own go.mod)") {
			t.Fatalf("no nested-module note: %v", r.Notes)
		}
		return
	}
	t.Fatal("no nested-module fixture")
}

func TestCancelled(t *testing.T) {
	// A cancelled build must not wait for a runaway plugin (timeout 1 minute).
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var hang testenv.Fixture
	for _, g := range testenv.Fixtures() {
		if g.Name == "hang-init" {
			hang = g
		}
	}
	_, err := Verify(ctx, []plugin.Plugin{{Module: hang.Module, Files: testenv.FixtureFiles(t, hang)}}, Options{Timeout: time.Minute})
	if err == nil || !strings.Contains(err.Error(), context.Canceled.Error()) {
		t.Fatalf("err = %v, want context canceled", err)
	}
}

func TestWriteReport(t *testing.T) {
	results := []Result{
		{Alias: "demo", Module: "github.com/traefik/plugindemo", Commit: "0123456789abcdef0123", Type: "middleware", Runtime: "yaegi",
			Interpreter: "yaegi v0.16.1", OK: true, Duration: 1234 * time.Millisecond, Notes: []string{"request: GET / -> 200"},
			Containment: &sandbox.Report{Level: sandbox.LevelFull, Applied: []string{"namespaces"}}},
		{Alias: "bad", Module: "example.com/bad", Type: "middleware", Runtime: "yaegi", Interpreter: "yaegi v0.16.1",
			Reason: "not vendored: github.com/a/b", Detail: "line one\nline two", Duration: 15 * time.Millisecond},
		{Alias: "old", Module: "example.com/old", Type: "middleware", Runtime: "yaegi", Interpreter: "yaegi v0.16.1", Status: StatusUnverified,
			Reason: "Traefik v2.11.0 embeds yaegi v0.15.1; no worker", Duration: 15 * time.Millisecond},
		{Alias: "approx", Module: "example.com/approx", Type: "middleware", Runtime: "yaegi", Interpreter: "yaegi v0.16.1", Status: StatusOK, OK: true,
			Approximate: true, Duration: 15 * time.Millisecond,
			Containment: &sandbox.Report{Level: sandbox.LevelPartial, Applied: []string{"landlock"}, Missing: []string{"namespaces"}}},
	}
	var text bytes.Buffer
	if err := WriteReport(&text, results); err != nil {
		t.Fatal(err)
	}
	out := text.String()
	for _, want := range []string{
		"ALIAS   MODULE", "demo    github.com/traefik/plugindemo  0123456789ab  yaegi    yaegi v0.16.1  full       OK                1.23s  -\n",
		"bad     example.com/bad                -             yaegi    yaegi v0.16.1  -          FAIL              15ms   not vendored: github.com/a/b\n",
		"bad (example.com/bad): FAIL\n  reason: not vendored: github.com/a/b\n  detail:\n    line one\n    line two\n",
		"  note: request: GET / -> 200",
		"old     example.com/old                -             yaegi    yaegi v0.16.1  -          UNVERIFIED        15ms   Traefik v2.11.0 embeds yaegi v0.15.1; no worker\n",
		"approx  example.com/approx             -             yaegi    yaegi v0.16.1  partial    OK (APPROXIMATE)  15ms   -\n",
		"  containment: partial (missing: namespaces)\n",
		"old (example.com/old): UNVERIFIED\n  reason: Traefik v2.11.0 embeds yaegi v0.15.1; no worker\n",
		"4 plugin(s): 2 OK, 1 FAIL, 1 UNVERIFIED",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text report lacks %q:\n%s", want, out)
		}
	}

	// In JSON (build.Report's verify list), a duration is in milliseconds
	// only, the reports' one unit.
	js, err := json.Marshal(results)
	if err != nil {
		t.Fatal(err)
	}
	var plugins []map[string]any
	if err := json.Unmarshal(js, &plugins); err != nil {
		t.Fatalf("%v\n%s", err, js)
	}
	if len(plugins) != 4 || plugins[2]["status"] != StatusUnverified || plugins[3]["approximate"] != true || plugins[0]["durationMs"] != 1234.0 ||
		plugins[1]["reason"] != "not vendored: github.com/a/b" || plugins[0]["notes"].([]any)[0] != "request: GET / -> 200" {
		t.Fatalf("json: %s", js)
	}
	if _, ok := plugins[0]["duration"]; ok {
		t.Errorf("a duration in a second unit: %s", js)
	}
}

// TestReportRowsCarryTheReason: every FAIL and UNVERIFIED row ends with its
// reason, on one line and cut to the column's width (the whole reason
// follows the table); a FAIL the verifier left without one says so.
func TestReportRowsCarryTheReason(t *testing.T) {
	long := "full containment required (sandbox require), but the host refused new namespaces: operation not permitted;\nallow unprivileged user namespaces"
	results := []Result{
		{Alias: "contained", Module: "example.com/c", Reason: long},
		{Alias: "silent", Module: "example.com/s"},
	}
	var text bytes.Buffer
	if err := WriteReport(&text, results); err != nil {
		t.Fatal(err)
	}
	rows := strings.Split(text.String(), "\n")
	flat := strings.Join(strings.Fields(long), " ")
	cut := string([]rune(flat)[:reasonWidth-1]) + "…"
	if !strings.Contains(rows[1], " FAIL ") || !strings.HasSuffix(rows[1], " 0s    "+cut) {
		t.Errorf("row %q does not end with the reason cut to %d characters", rows[1], reasonWidth)
	}
	if !strings.Contains(rows[2], " FAIL ") || !strings.HasSuffix(rows[2], " 0s    none given (the verifier stopped without one)") {
		t.Errorf("row %q does not say the reason is missing", rows[2])
	}
	if !strings.Contains(text.String(), "contained (example.com/c): FAIL\n  reason: "+long+"\n") {
		t.Errorf("the whole reason does not follow the table:\n%s", text.String())
	}
}

// TestNoVerdictCarriesTheVerifierError: when the verifier itself stops (here:
// the worker named for the target's Yaegi does not exist), each plugin it
// gave no verdict is a FAIL that says why, not a FAIL without a reason.
func TestNoVerdictCarriesTheVerifierError(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "absent", "xtraefik-yaegi-v0.15.1")
	results, err := Verify(context.Background(), []plugin.Plugin{fixture(t, "vendored-ok")},
		Options{TraefikVersion: "v2.11.0", Workers: []string{missing}, WorkerCache: t.TempDir()})
	if err == nil {
		t.Fatal("verified without its worker")
	}
	if len(results) != 1 || results[0].OK || results[0].Status != StatusFail ||
		!strings.HasPrefix(results[0].Reason, "no verdict: ") || !strings.Contains(results[0].Reason, "verification worker "+missing) {
		t.Fatalf("results %+v, want a FAIL naming the missing worker", results)
	}
	var text bytes.Buffer
	if err := WriteReport(&text, results); err != nil {
		t.Fatal(err)
	}
	if row := strings.Split(text.String(), "\n")[1]; !strings.Contains(row, "FAIL") || !strings.Contains(row, "no verdict: verify: verification worker") {
		t.Errorf("row %q does not carry the reason", row)
	}
}

// The versions reported must be the ones linked.
func TestLinkedVersionsMatchGoMod(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	mf, err := modfile.Parse("go.mod", data, nil)
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, r := range mf.Require {
		switch r.Mod.Path {
		case "github.com/traefik/yaegi", "github.com/tetratelabs/wazero", "github.com/http-wasm/http-wasm-host-go":
			seen++
			if got := linkedVersion(r.Mod.Path); got != r.Mod.Version {
				t.Errorf("%s: reported %s, go.mod has %s", r.Mod.Path, got, r.Mod.Version)
			}
		}
	}
	if seen != 3 {
		t.Fatalf("found %d of 3 interpreter modules in go.mod", seen)
	}
	if testenv.HTTPWasmHostVersion != linkedVersion("github.com/http-wasm/http-wasm-host-go") {
		t.Errorf("wasm fixtures use http-wasm-host-go %s", testenv.HTTPWasmHostVersion)
	}
}

// TestImportFromAnotherPlugin: Yaegi's GOPATH lookup finds a package that
// another plugin of the same image provides, so that is no "not vendored" —
// but alone, the same plugin is.
func TestImportFromAnotherPlugin(t *testing.T) {
	demo := testenv.Corpus()[0]
	demoFiles := testenv.CorpusFiles(t, demo)
	text := func(s string) func() (io.ReadCloser, error) {
		return func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(s)), nil }
	}
	src := map[string]string{
		".traefik.yml": "displayName: Uses demo\ntype: middleware\nimport: example.com/usesdemo\nsummary: s\ntestData:\n  Headers:\n    X-Via: demo\n",
		"go.mod":       "module example.com/usesdemo\n\ngo 1.22\n",
		"usesdemo.go": `package usesdemo

import (
	"context"
	"net/http"

	"` + demo.Module + `"
)

type Config = plugindemo.Config

func CreateConfig() *Config { return plugindemo.CreateConfig() }

func New(ctx context.Context, next http.Handler, cfg *Config, name string) (http.Handler, error) {
	return plugindemo.New(ctx, next, cfg, name)
}
`,
	}
	var files []fileset.File
	for name, content := range src {
		files = append(files, fileset.File{Path: name, Size: int64(len(content)), Open: text(content)})
	}
	uses, err := fileset.New(files)
	if err != nil {
		t.Fatal(err)
	}
	user := plugin.Plugin{Alias: "uses", Module: "example.com/usesdemo", Files: uses}

	res, err := Verify(t.Context(), []plugin.Plugin{{Alias: "demo", Module: demo.Module, Files: demoFiles}, user}, Options{TraefikVersion: "v3.6.12"})
	if err != nil {
		t.Fatal(err)
	}
	checkVerdict(t, res[1], true, "")
	if !strings.Contains(strings.Join(res[1].Notes, "\n"), "imports "+demo.Module+" from another plugin of the image") {
		t.Errorf("notes %q do not say where the import comes from", res[1].Notes)
	}

	alone := verifyOneFor(t, user, Options{TraefikVersion: "v3.6.12"})
	checkVerdict(t, alone, false, "not vendored: "+demo.Module)
}

// TestOnVerdict: every plugin's verdict is told once, as Verify returns
// it, whether verified, refused before running, or failing.
func TestOnVerdict(t *testing.T) {
	var plugins []plugin.Plugin
	for _, f := range testenv.Fixtures() {
		if f.Name == "vendored-ok" || f.Name == "not-vendored" {
			plugins = append(plugins, plugin.Plugin{Alias: f.Name, Module: f.Module, Files: testenv.FixtureFiles(t, f)})
		}
	}
	plugins = append(plugins, plugin.Plugin{Alias: "dup", Module: plugins[0].Module, Files: plugins[0].Files})
	v, err := NewVerifier(Options{TraefikVersion: "v3.6.12", Parallel: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	var mu sync.Mutex
	told := map[int][]Result{}
	v.OnVerdict(func(i int, r Result) {
		mu.Lock()
		defer mu.Unlock()
		told[i] = append(told[i], r)
	})
	res, err := v.Verify(context.Background(), plugins)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		got := told[i]
		if len(got) != 1 {
			t.Errorf("%s: told %d times", r.Alias, len(got))
			continue
		}
		if got[0].Status != r.Status || got[0].OK != r.OK || got[0].Reason != r.Reason || r.Status == "" {
			t.Errorf("%s: told %s %q, returned %s %q", r.Alias, got[0].Status, got[0].Reason, r.Status, r.Reason)
		}
	}
	if res[0].OK == res[1].OK {
		t.Fatalf("fixtures changed: %v %v", res[0].OK, res[1].OK)
	}
}

// A plugin that loaded, was built and answered a server error by itself is
// what Traefik serves: OK with a warning naming the status, in both reports.
// A panic stays a FAIL even though Traefik would answer 500 for it too, and
// expectStatus stays strict.
func TestOwnServerError(t *testing.T) {
	var oidc, panics testenv.Fixture
	for _, f := range testenv.Fixtures() {
		switch {
		case f.Name == "upstream-unreachable" && f.ExpectStatus == 0:
			oidc = f
		case f.Name == "serve-panic":
			panics = f
		}
	}
	mk := func(alias string, f testenv.Fixture, config map[string]any, expect int) plugin.Plugin {
		return plugin.Plugin{Alias: alias, Module: f.Module, Files: testenv.FixtureFiles(t, f), Config: config, ExpectStatus: expect}
	}
	unreachable := "http://127.0.0.1:1/realms/demo"
	opts := Options{TraefikVersion: "v3.6.12"}
	for _, tc := range []struct {
		name           string
		p              plugin.Plugin
		wantOK         bool
		wantStatus     int
		wantReason     string
		wantWarning    string
		wantNoWarnings bool
	}{
		{"503 itself", mk("oidc", oidc, nil, 0), true, 503, "", "the plugin answered 503 itself: a server error (HTTP 503)", false},
		{"500 written itself", mk("oidc", oidc, map[string]any{"issuerURL": unreachable, "status": 500}, 0), true, 500, "", "the plugin answered 500 itself: a server error (HTTP 500)", false},
		{"500 from a panic", mk("panics", panics, nil, 0), false, 0, "panic serving a request: serving exploded", "", true},
		{"503 expected", mk("oidc", oidc, nil, 503), true, 503, "", "", true},
		{"200 expected", mk("oidc", oidc, nil, 200), false, 503, "expected status 200, but the plugin answered 503 itself", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := verifyOneFor(t, tc.p, opts)
			checkVerdict(t, r, tc.wantOK, tc.wantReason)
			if r.HTTPStatus != tc.wantStatus {
				t.Errorf("status %d, want %d", r.HTTPStatus, tc.wantStatus)
			}
			w := strings.Join(r.Warnings, "\n")
			if tc.wantNoWarnings && w != "" || !strings.Contains(w, tc.wantWarning) {
				t.Fatalf("warnings %q, want %q", r.Warnings, tc.wantWarning)
			}
			if tc.wantWarning == "" {
				return
			}
			var text bytes.Buffer
			if err := WriteReport(&text, []Result{r}); err != nil {
				t.Fatal(err)
			}
			js, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			if s := text.String(); !strings.Contains(s, "\n  warning: "+tc.wantWarning) || !strings.Contains(s, "1 plugin(s): 1 OK (1 with a warning), 0 FAIL") {
				t.Errorf("text report does not show the warning:\n%s", s)
			}
			var got struct {
				OK       bool     `json:"ok"`
				Status   string   `json:"status"`
				Warnings []string `json:"warnings"`
			}
			if err := json.Unmarshal(js, &got); err != nil {
				t.Fatal(err)
			}
			if !got.OK || got.Status != StatusOK || len(got.Warnings) != 1 || !strings.Contains(got.Warnings[0], tc.wantWarning) {
				t.Errorf("JSON: %s", js)
			}
		})
	}
}
