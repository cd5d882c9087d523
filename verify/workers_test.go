package verify

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xtraefik/xtraefik/internal/testenv"
)

// buildWorkerV2 builds the worker of module verify/yaegi015 into a temporary
// directory, as the README tells users to.
func buildWorkerV2(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		if os.Getenv("XTRAEFIK_E2E") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	exe := filepath.Join(t.TempDir(), WorkerV2Name)
	cmd := exec.Command(goBin, "build", "-C", "yaegi015", "-o", exe, "./cmd/"+WorkerV2Name)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build the v2 worker: %v\n%s", err, out)
	}
	return exe
}

func fixture(t *testing.T, name string) Plugin {
	t.Helper()
	for _, f := range testenv.Fixtures() {
		if f.Name == name {
			return Plugin{Alias: f.Name, Module: f.Module, Files: testenv.FixtureFiles(t, f)}
		}
	}
	t.Fatalf("no fixture %s", name)
	return Plugin{}
}

// The v2 worker is another interpreter: it reports yaegi v0.15.1 from its own
// build, and plugins that v0.16.1 loads but v0.15.1 does not fail in it.
func TestWorkerV2(t *testing.T) {
	exe := buildWorkerV2(t)
	demo := testenv.Corpus()[0]
	if demo.Module != "github.com/traefik/plugindemo" {
		t.Fatalf("corpus order changed: %s", demo.Module)
	}
	demoPlugin := Plugin{Alias: demo.Alias, Module: demo.Module, Commit: demo.Version, Files: testenv.CorpusFiles(t, demo)}
	var f2b080 Plugin
	for _, c := range testenv.Corpus() {
		if c.Module == "github.com/tomMoulard/fail2ban" && c.Version == "v0.8.0" {
			f2b080 = Plugin{Alias: c.Alias, Module: c.Module, Commit: c.Version, Files: testenv.CorpusFiles(t, c)}
		}
	}
	if f2b080.Module == "" {
		t.Fatal("fail2ban v0.8.0 left the corpus")
	}

	for _, tc := range []struct {
		name, traefik string
		plugin        Plugin
		wantInterp    string
		wantOK        bool
		wantReason    string
		wantDetail    string
	}{
		{"plugindemo", "v2.11.0", demoPlugin, "yaegi v0.15.1", true, "", ""},
		// The worker is used for v2 only, even when given.
		{"plugindemo", "v3.6.12", demoPlugin, "yaegi v0.16.1", true, "", ""},
		// Interpretation differs: v0.15.1 cannot select an embedded generic type.
		{"generic-embed", "v2.11.0", fixture(t, "yaegi-generic-embed"), "yaegi v0.15.1", false, "undefined selector: Pairs", ""},
		{"generic-embed", "v3.6.12", fixture(t, "yaegi-generic-embed"), "yaegi v0.16.1", true, "", ""},
		// The static walk uses the worker's standard library: v0.15.1 has no slices.
		{"stdlib-slices", "v2.11.0", fixture(t, "stdlib-slices"), "yaegi v0.15.1", false, "not available in Yaegi: slices", "(yaegi v0.15.1)"},
		{"stdlib-slices", "v3.6.12", fixture(t, "stdlib-slices"), "yaegi v0.16.1", true, "", ""},
		{"provider", "v2.11.0", fixture(t, "provider-ok"), "yaegi v0.15.1", true, "", ""},
		// A real plugin Traefik v2.11 cannot load (v3 can: TestCorpus).
		{"fail2ban-v0.8.0", "v2.11.0", f2b080, "yaegi v0.15.1", false, "not available in Yaegi: slices", "(yaegi v0.15.1)"},
	} {
		t.Run(tc.name+"/"+tc.traefik, func(t *testing.T) {
			t.Parallel()
			r := verifyOneFor(t, tc.plugin, Options{TraefikVersion: tc.traefik, WorkerV2: exe})
			checkVerdict(t, r, tc.wantOK, tc.wantReason)
			if r.Interpreter != tc.wantInterp {
				t.Errorf("interpreter %q, want %q", r.Interpreter, tc.wantInterp)
			}
			if !strings.Contains(r.Detail, tc.wantDetail) {
				t.Errorf("detail %q lacks %q", r.Detail, tc.wantDetail)
			}
			if n := strings.Join(r.Notes, "\n"); strings.Contains(n, "verdict from") {
				t.Errorf("interpreter note though the target's interpreter ran: %v", r.Notes)
			}
		})
	}

	t.Run("found in PATH", func(t *testing.T) {
		t.Setenv("PATH", filepath.Dir(exe))
		r := verifyOneFor(t, demoPlugin, Options{TraefikVersion: "v2.11.0"})
		checkVerdict(t, r, true, "")
		if r.Interpreter != "yaegi v0.15.1" {
			t.Errorf("interpreter %q: the worker in $PATH was not used", r.Interpreter)
		}
	})

	t.Run("older v2", func(t *testing.T) {
		r := verifyOneFor(t, demoPlugin, Options{TraefikVersion: "v2.10.7", WorkerV2: exe})
		checkVerdict(t, r, true, "")
		if n := strings.Join(r.Notes, "\n"); !strings.Contains(n, "verdict from yaegi v0.15.1, the interpreter of Traefik v2.11; Traefik v2.10.7 may embed an older Yaegi") {
			t.Errorf("notes %v", r.Notes)
		}
	})

	t.Run("run by hand", func(t *testing.T) {
		out, err := exec.Command(exe).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "verification worker for Traefik v2") {
			t.Fatalf("err %v, output %q", err, out)
		}
	})
}

// A worker that is missing, is not a worker, or speaks another protocol
// stops the verification with an error naming it: never a silent fallback.
func TestWorkerV2Broken(t *testing.T) {
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
		{"missing", filepath.Join(dir, "absent", WorkerV2Name), "worker for Traefik v2 (" + filepath.Join(dir, "absent", WorkerV2Name) + ")"},
		{"not a worker", script("true", "exit 0"), "did not start: EOF"},
		{"old protocol", script("old", `echo '{"result":{"ok":true,"interpreter":"yaegi v0.15.1"}}' >&3`), "speaks protocol 0, this xtraefik speaks 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Verify(context.Background(), []Plugin{p}, Options{TraefikVersion: "v2.11.0", WorkerV2: tc.worker})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
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
		{`{"protocol":1,"describe":true,"key":` + string(keyJSON) + `}`, workerFailed},
		{`{"protocol":3,"describe":true,"key":` + string(keyJSON) + `}`, workerFailed},
		{`{"protocol":2,"describe":true}`, workerFailed},
		{`{"protocol":2,"describe":true,"key":` + string(keyJSON) + `}`, 0},
	} {
		if got := serveJob(strings.NewReader(tc.job), &buf); got != tc.want {
			t.Errorf("%s: exit %d, want %d", tc.job, got, tc.want)
		}
	}
	sealed := buf.String()
	rep := readReport(bufio.NewReader(strings.NewReader(sealed)), bytes.Repeat([]byte{8}, 32), func(string) {})
	if rep.result != nil || rep.forged == 0 {
		t.Fatalf("a report under another key was believed: %+v", rep)
	}
	rep = readReport(bufio.NewReader(strings.NewReader(sealed)), key, func(string) {})
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
