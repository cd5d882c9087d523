package runcheck_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/xtraefik/xtraefik/internal/testenv"
	"github.com/xtraefik/xtraefik/runcheck"
	"github.com/xtraefik/xtraefik/traefikcfg"
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
				var rps []runcheck.Plugin
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
					res, err := verify.Verify(ctx, []verify.Plugin{{Alias: c.Alias, Module: c.Module, Files: testenv.CorpusFiles(t, c), Config: c.Config, ExpectStatus: expect}},
						verify.Options{TraefikVersion: "v3.6.12"})
					if err != nil {
						t.Fatalf("static verify %s@%s: %v", c.Module, c.Version, err)
					}
					static[k] = res[0]
					rps = append(rps, runcheck.Plugin{Alias: c.Alias, Module: c.Module, Type: c.Type, Config: c.Config, ExpectStatus: expect})
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
					t.Logf("%s: static OK=%v %d %q %q; runtime OK=%v %d %q", name, s.OK, s.Status, s.Reason, s.Notes, r.OK, r.Status, r.Reason)
					if s.OK != r.OK || s.Status != r.Status {
						t.Errorf("%s: static verify says OK=%v status %d (%s%q), the runtime check OK=%v status %d (%s)",
							name, s.OK, s.Status, s.Reason, s.Notes, r.OK, r.Status, r.Reason)
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
