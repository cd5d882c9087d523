package runcheck_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"

	"github.com/xtraefik/xtraefik/internal/fileset"
	"github.com/xtraefik/xtraefik/internal/plugin"
	"github.com/xtraefik/xtraefik/internal/probe"
	"github.com/xtraefik/xtraefik/internal/runcheck"
	"github.com/xtraefik/xtraefik/internal/testenv"
	"github.com/xtraefik/xtraefik/internal/traefikcfg"
	"github.com/xtraefik/xtraefik/verify"
)

func TestMain(m *testing.M) {
	// Static verification runs plugins in workers: this test binary is one.
	verify.MaybeRunWorker()
	os.Exit(m.Run())
}

// TestChecksAgree holds static verification and the runtime check (the real
// Traefik v3.6.12, under runc) to the same verdict and status for every
// corpus middleware plugin: without expectStatus, with the status Traefik
// answers, and with a status it does not answer (both fail).
func TestChecksAgree(t *testing.T) {
	bin := testenv.TraefikBinary(t, "v3.6.12")
	e2eRequire(t, os.Geteuid() == 0, "not root: runc needs root")
	_, err := exec.LookPath("runc")
	e2eRequire(t, err == nil, "runc not installed")
	ctx := context.Background()
	base := testenv.TraefikBase(t, bin, testenv.TraefikBaseOptions{Version: "v3.6.12", WorkingDir: "/srv/traefik", User: "nonroot"})

	// One image holds one version of a module: rounds of distinct modules. A
	// plugin Traefik cannot import disables every plugin (v3.6.12's plugin
	// builder fails as a whole): it gets a round of its own.
	var rounds [][]testenv.CorpusPlugin
	for _, c := range testenv.Corpus() {
		if c.Type != "middleware" {
			continue
		}
		if !c.WantOK && (strings.Contains(c.WantReason, "import") || strings.Contains(c.WantReason, "vendored")) {
			rounds = append(rounds, []testenv.CorpusPlugin{c})
			continue
		}
		placed := false
		for i, r := range rounds {
			clash := false
			for _, o := range r {
				clash = clash || o.Module == c.Module || (!o.WantOK && strings.Contains(o.WantReason, "import"))
			}
			if !clash {
				rounds[i], placed = append(r, c), true
				break
			}
		}
		if !placed {
			rounds = append(rounds, []testenv.CorpusPlugin{c})
		}
	}

	const unanswered = 418 // no corpus plugin answers it
	for i, round := range rounds {
		var mods []module
		for _, c := range round {
			dir := t.TempDir()
			if err := testenv.CorpusFiles(t, c).WriteDir(dir); err != nil {
				t.Fatal(err)
			}
			mods = append(mods, module{c.Module, dir})
		}
		img := withLayer(t, base, imageLayer(t, "/srv/traefik", mods, nil), nil)
		for _, mode := range []string{"no expectStatus", "expectStatus Traefik answers", "expectStatus not answered"} {
			t.Run(fmt.Sprintf("round %d/%s", i, mode), func(t *testing.T) {
				static := make([]verify.Result, len(round))
				var rps []plugin.Plugin
				for k, c := range round {
					expect := 0
					switch mode {
					case "expectStatus Traefik answers":
						expect = c.WantStatus
						if expect == 0 {
							expect = 200
						}
					case "expectStatus not answered":
						expect = unanswered
					}
					res, err := verify.Verify(ctx, []plugin.Plugin{{Alias: c.Alias, Module: c.Module, Files: testenv.CorpusFiles(t, c), Config: c.Config, ExpectStatus: expect}},
						verify.Options{TraefikVersion: "v3.6.12"})
					if err != nil {
						t.Fatalf("static verify %s@%s: %v", c.Module, c.Version, err)
					}
					static[k] = res[0]
					rps = append(rps, plugin.Plugin{Alias: c.Alias, Module: c.Module, Config: c.Config, ExpectStatus: expect})
				}
				rep, err := run(t, ctx, img, runcheck.Options{Mode: traefikcfg.ModeFlags, Plugins: rps, Isolation: runcheck.IsolationRunc})
				if err != nil {
					t.Fatal(err)
				}
				for k, c := range round {
					s, r := static[k], result(t, rep, c.Alias)
					name := c.Module + "@" + c.Version
					if c.Config != nil {
						name += " (recipe config)"
					}
					t.Logf("%s: static OK=%v %d %q %q; runtime OK=%v %d %q", name, s.OK, s.HTTPStatus, s.Reason, s.Notes, r.OK, r.Status, r.Reason)
					if s.OK != r.OK || s.HTTPStatus != r.Status {
						t.Errorf("%s: static verify says OK=%v status %d (%s%q), the runtime check OK=%v status %d (%s)",
							name, s.OK, s.HTTPStatus, s.Reason, s.Notes, r.OK, r.Status, r.Reason)
					}
					wantOK := c.WantOK && mode != "expectStatus not answered"
					if s.OK != wantOK {
						t.Errorf("%s: OK=%v, want %v", name, s.OK, wantOK)
					}
					if c.WantStatus != 0 && c.WantOK && r.Status != c.WantStatus {
						t.Errorf("%s: Traefik answered %d, the corpus says %d", name, r.Status, c.WantStatus)
					}
				}
			})
		}
	}
}

// echoModule passes the request on with what it saw in X-Seen-* headers.
const echoModule = "example.test/echo"

var echoFiles = map[string]string{
	".traefik.yml": "displayName: Echo\ntype: middleware\nimport: example.test/echo\nsummary: Shows the request it gets\ntestData: {}\n",
	"go.mod":       "module example.test/echo\n\ngo 1.22\n",
	"echo.go": `package echo

import (
	"context"
	"net"
	"net/http"
	"sort"
	"strings"
)

type Config struct{}

func CreateConfig() *Config { return &Config{} }

type echo struct{ next http.Handler }

func New(ctx context.Context, next http.Handler, cfg *Config, name string) (http.Handler, error) {
	return echo{next}, nil
}

func (e echo) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var names []string
	for k := range r.Header {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		r.Header.Set("X-Seen-"+k, strings.Join(r.Header.Values(k), ","))
	}
	r.Header.Set("X-Seen-Names", strings.Join(names, ","))
	ip, _, _ := net.SplitHostPort(r.RemoteAddr)
	r.Header.Set("X-Seen-Remote-Ip", ip)
	r.Header.Set("X-Seen-Host", r.Host)
	r.Header.Set("X-Seen-Method", r.Method)
	r.Header.Set("X-Seen-Request-Uri", r.RequestURI)
	e.next.ServeHTTP(w, r)
}
`,
}

// TestRequestModelIsTraefiks holds probe.Request, the request static
// verification hands a plugin, to the request the real Traefik v3.6.12 hands
// a plugin for the runtime check's client: same client address, host,
// method, URI, header names and values.
func TestRequestModelIsTraefiks(t *testing.T) {
	bin := testenv.TraefikBinary(t, "v3.6.12")
	e2eRequire(t, os.Geteuid() == 0, "not root: runc needs root")
	_, err := exec.LookPath("runc")
	e2eRequire(t, err == nil, "runc not installed")
	base := testenv.TraefikBase(t, bin, testenv.TraefikBaseOptions{Version: "v3.6.12"})
	img := withLayer(t, base, imageLayer(t, "/", []module{{echoModule, writeTree(t, echoFiles)}}, nil), nil)
	rep, err := run(t, context.Background(), img, runcheck.Options{Mode: traefikcfg.ModeFlags, Isolation: runcheck.IsolationRunc,
		Plugins: []plugin.Plugin{{Alias: "echo", Module: echoModule}}})
	if err != nil {
		t.Fatal(err)
	}
	e := result(t, rep, "echo")
	if !e.OK {
		t.Fatalf("echo: %s\n%s", e.Reason, rep.TraefikLog)
	}
	seen := e.BackendHeaders
	model := probe.Request(context.Background(), "echo", probe.RemoteAddr(40000), probe.ServerHostname)
	var names []string
	for k := range model.Header {
		names = append(names, k)
	}
	sort.Strings(names)
	want := map[string]string{
		"X-Seen-Names":       strings.Join(names, ","),
		"X-Seen-Remote-Ip":   probe.ClientIP,
		"X-Seen-Host":        model.Host,
		"X-Seen-Method":      model.Method,
		"X-Seen-Request-Uri": model.RequestURI,
	}
	for _, k := range names {
		want["X-Seen-"+k] = strings.Join(model.Header.Values(k), ",")
	}
	for k, v := range want {
		if got := seen.Get(k); got != v {
			t.Errorf("Traefik handed the plugin %s %q; static verification hands it %q", strings.TrimPrefix(k, "X-Seen-"), got, v)
		}
	}
}

// TestOwn404IsAnAnswer: a plugin that answers 404 itself loaded and ran; the
// canary router tells its 404 from Traefik's for a router it has not switched
// in yet or has disabled. Both checks pass it.
func TestOwn404IsAnAnswer(t *testing.T) {
	bin := testenv.TraefikBinary(t, "v3.6.12")
	e2eRequire(t, os.Geteuid() == 0, "not root: runc needs root")
	_, err := exec.LookPath("runc")
	e2eRequire(t, err == nil, "runc not installed")
	dir := writeTree(t, teapotFiles)
	cfg := map[string]any{"Status": 404}
	files, err := fileset.FromDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	res, err := verify.Verify(context.Background(), []plugin.Plugin{{Alias: "teapot", Module: teapotModule, Files: files, Config: cfg}}, verify.Options{TraefikVersion: "v3.6.12"})
	if err != nil {
		t.Fatal(err)
	}
	if s := res[0]; !s.OK || s.HTTPStatus != 404 {
		t.Errorf("static verify: OK=%v status %d reason %q", s.OK, s.HTTPStatus, s.Reason)
	}
	base := testenv.TraefikBase(t, bin, testenv.TraefikBaseOptions{Version: "v3.6.12"})
	img := withLayer(t, base, imageLayer(t, "/", []module{{teapotModule, dir}}, nil), nil)
	rep, err := run(t, context.Background(), img, runcheck.Options{Mode: traefikcfg.ModeFlags, Isolation: runcheck.IsolationRunc,
		Plugins: []plugin.Plugin{{Alias: "teapot", Module: teapotModule, Config: cfg}}})
	if err != nil {
		t.Fatal(err)
	}
	if r := result(t, rep, "teapot"); !r.OK || r.Status != 404 || !strings.Contains(r.Reason, "answered 404 itself") {
		t.Errorf("runtime check: OK=%v status %d reason %q", r.OK, r.Status, r.Reason)
	}
}
