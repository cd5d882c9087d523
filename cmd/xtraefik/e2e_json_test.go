package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/xtraefik/xtraefik/build"
	"github.com/xtraefik/xtraefik/internal/testenv"
)

// decodeReport parses stdout as exactly one JSON document.
func decodeReport(t *testing.T, out string) build.Report {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(out))
	var rep build.Report
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("stdout is not a report: %v\n%s", err, out)
	}
	if dec.More() {
		t.Fatalf("stdout holds more than one document:\n%s", out)
	}
	return rep
}

// TestJSONReports: lock, build, rebase and verify print one JSON document
// on standard output with --output json, on success and on failure alike.
func TestJSONReports(t *testing.T) {
	w := newWorld(t)
	rp := w.exampleRecipe()

	out, _, err := w.run("lock", "-f", rp, "-o", "json")
	lock := decodeReport(t, out)
	if err != nil || !lock.OK || lock.Lock == nil || !lock.Lock.Written || len(lock.Plugins) != 1 || lock.Plugins[0].Commit != w.plugin.ReleaseCommit {
		t.Fatalf("lock: %v\n%+v", err, lock)
	}

	push := w.registry + "/team/traefik:v1"
	out, _, err = w.run("build", "-f", rp, "-o", "json", "--push", push, "--push", w.registry+"/team/traefik:stable")
	rep := decodeReport(t, out)
	if err != nil || !rep.OK || rep.Error != "" {
		t.Fatalf("build: %v\n%s", err, out)
	}
	if rep.Image == nil || !strings.HasPrefix(rep.Image.Digest, "sha256:") || len(rep.Image.Platforms) == 0 ||
		len(rep.Image.Tags) != 2 || len(rep.Image.Pushed) != 1 || !strings.HasSuffix(rep.Image.Pushed[0], "@"+rep.Image.Digest) {
		t.Errorf("image %+v", rep.Image)
	}
	if len(rep.Verify) != 1 || rep.Verify[0].Status != "OK" || rep.Base == nil || rep.Base.Digest == "" || len(rep.Flags) == 0 {
		t.Errorf("report %+v", rep)
	}
	if rep.Timings.Total <= 0 || rep.Timings.Verify <= 0 || rep.Timings.Resolve <= 0 {
		t.Errorf("timings %+v", rep.Timings)
	}

	// A rebuild of the same lock takes the verdict from the cache, unless
	// asked not to.
	for _, tt := range []struct {
		args   []string
		cached bool
	}{{nil, true}, {[]string{"--no-verdict-cache"}, false}} {
		out, _, err = w.run(append([]string{"build", "-f", rp, "-o", "json"}, tt.args...)...)
		again := decodeReport(t, out)
		if err != nil || len(again.Verify) != 1 || again.Image.Digest != rep.Image.Digest {
			t.Fatalf("rebuild %v: %v\n%s", tt.args, err, out)
		}
		if got := strings.Contains(strings.Join(again.Verify[0].Notes, " "), "verdict from the cache"); got != tt.cached || again.Verify[0].Status != "OK" {
			t.Errorf("rebuild %v: cached verdict %v, want %v: %+v", tt.args, got, tt.cached, again.Verify[0])
		}
	}

	// An output that exists: the document says why, nothing else is printed.
	out, _, err = w.run("build", "-f", rp, "-o", "json", "--digest-file", rp)
	rep = decodeReport(t, out)
	if err == nil || rep.OK || !strings.Contains(rep.Error, "--overwrite") || rep.Command != "build" {
		t.Errorf("existing output: %v\n%+v", err, rep)
	}

	// A plugin that fails verification: its verdict is in the document.
	bad := w.customPlugin(t, "example.com/notvendored", func(r *testenv.Repo) {
		r.WriteFile("extra.go", "package notvendored\n\nimport _ \"github.com/pkg/errors\"\n")
	})
	badRecipe := w.writeRecipe("bad.yaml", w.demoRecipe("docker://"+w.registry+"/library/traefik:v3.6", "")+bad)
	for _, cmd := range []string{"build", "verify"} {
		out, _, err = w.run(cmd, "-f", badRecipe, "-o", "json")
		rep = decodeReport(t, out)
		if err == nil || rep.OK || len(rep.Verify) != 2 || !strings.Contains(rep.Error, "not vendored") || rep.Image != nil {
			t.Errorf("%s with a failing plugin: %v\n%+v", cmd, err, rep)
		}
	}

	// A bad flag: still one document.
	out, _, err = w.run("build", "-o", "json", "--bogus")
	if rep = decodeReport(t, out); err == nil || rep.OK || !strings.Contains(rep.Error, "unknown flag: --bogus") {
		t.Errorf("bad flag: %v\n%+v", err, rep)
	}

	// A broken recipe: still one document.
	broken := w.writeRecipe("broken.yaml", "base: [\n")
	for _, cmd := range []string{"lock", "build", "rebase", "verify"} {
		out, _, err = w.run(cmd, "-f", broken, "-o", "json")
		rep = decodeReport(t, out)
		if err == nil || rep.OK || rep.Command != cmd || !strings.Contains(rep.Error, "broken.yaml") {
			t.Errorf("%s with a broken recipe: %v\n%+v", cmd, err, rep)
		}
	}

	// rebase: the lock moves only after the build, and the document says so.
	out, _, err = w.run("rebase", "-f", rp, "-o", "json", "--oci-layout", w.dir+"/rebased")
	rep = decodeReport(t, out)
	if err != nil || !rep.OK || rep.Lock == nil || !rep.Lock.Written || rep.Image == nil {
		t.Errorf("rebase: %v\n%+v", err, rep)
	}
}
