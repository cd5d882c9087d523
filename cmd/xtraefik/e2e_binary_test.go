package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/mod/semver"

	"github.com/xtraefik/xtraefik/build"
	"github.com/xtraefik/xtraefik/internal/testenv"
	"github.com/xtraefik/xtraefik/verify/provision"
)

// fakeTraefik builds a stand-in Traefik: a Go program whose main module is
// github.com/traefik/traefik/<major>, with its main under cmd/traefik,
// linking Yaegi yaegi and built with the version link flag Traefik's
// release builds set — what xtraefik reads from a real Traefik binary.
func fakeTraefik(t *testing.T, version, yaegi string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	mod := "github.com/traefik/traefik/" + semver.Major(version)
	src := t.TempDir()
	for name, content := range map[string]string{
		"go.mod":              "module " + mod + "\n\ngo 1.22\n\nrequire github.com/traefik/yaegi " + yaegi + "\n",
		"cmd/traefik/main.go": "package main\n\nimport _ \"github.com/traefik/yaegi/interp\"\n\nfunc main() {}\n",
	} {
		p := filepath.Join(src, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(src, "traefik")
	// Without -trimpath, which would leave the link flags, and so the
	// version, out of the build info.
	cmd := exec.Command(goBin, "build", "-o", bin, "-ldflags", "-s -w -X "+mod+"/pkg/version.Version="+version, "./cmd/traefik")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// pushTraefik pushes a base holding bin as its Traefik, labelled label, to
// ref, and returns the digest of the layer holding the binary.
func pushTraefik(t *testing.T, ref, bin, label string) v1.Hash {
	t.Helper()
	img := testenv.TraefikBase(t, bin, testenv.TraefikBaseOptions{Version: label, OCI: true})
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	d, err := ls[len(ls)-1].Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// verifyJSON runs `verify --output json` and decodes the report.
func (w *world) verifyJSON(rp string, args ...string) (*build.Report, string, error) {
	w.t.Helper()
	out, errOut, err := w.run(append([]string{"verify", "-f", rp, "--output", "json"}, args...)...)
	var rep build.Report
	if jerr := json.Unmarshal([]byte(out), &rep); jerr != nil {
		w.t.Fatalf("verify report: %v\n%s\n%s", jerr, out, errOut)
	}
	return &rep, errOut, err
}

// A registry base whose Traefik release is newer than xtraefik's table
// (v3.8.1) gets an exact verdict: its binary's build info names the Yaegi
// it links. The layer holding the binary is read once: a second run of
// the same base digest asks the registry for no layer at all.
func TestRegistryBaseBinaryDecides(t *testing.T) {
	w := newWorld(t)
	proxy, log := testenv.RecordingProxy(t, w.registry)
	layer := pushTraefik(t, proxy+"/library/traefik:v3.8", fakeTraefik(t, "v3.8.1", "v0.16.1"), "v3.8.1")
	rp := w.writeRecipe("v38.yaml", w.demoRecipe("docker://"+proxy+"/library/traefik:v3.8", ""))
	log.Reset()
	rep, errOut, err := w.verifyJSON(rp)
	if err != nil {
		t.Fatalf("verify: %v\n%s", err, errOut)
	}
	tg := rep.Traefik
	if tg == nil || tg.Version != "v3.8.1" || tg.Yaegi != "v0.16.1" || tg.InterpreterSource != "binary" || tg.Binary != "/usr/local/bin/traefik" {
		t.Fatalf("target %+v: want v3.8.1, yaegi v0.16.1 read from /usr/local/bin/traefik", tg)
	}
	if len(rep.Verify) != 1 || rep.Verify[0].Status != "OK" || rep.Verify[0].Interpreter != "yaegi v0.16.1" || rep.Verify[0].InterpreterSource != "binary" {
		t.Fatalf("verdicts %+v: want an exact OK", rep.Verify)
	}
	blobGets := func() (n int) {
		for _, r := range log.Requests() {
			if r.Method == "GET" && r.Blob() == layer.String() {
				n++
			}
		}
		return n
	}
	if n := blobGets(); n != 1 {
		t.Fatalf("the binary's layer was read %d times, want once", n)
	}

	// Again with the same cache: the record answers, no layer is read.
	log.Reset()
	if rep, errOut, err = w.verifyJSON(rp); err != nil || rep.Traefik.InterpreterSource != "binary" || rep.Traefik.Yaegi != "v0.16.1" {
		t.Fatalf("second verify: %v %+v\n%s", err, rep.Traefik, errOut)
	}
	if n := blobGets(); n != 0 {
		t.Fatalf("the second run read the binary's layer %d times", n)
	}
	// The text report says where the interpreter came from.
	_, errOut, err = w.run("verify", "-f", rp)
	if err != nil || !strings.Contains(errOut, "target: Traefik v3.8.1: yaegi v0.16.1, read from the base's Traefik binary /usr/local/bin/traefik") {
		t.Fatalf("text report: %v\n%s", err, errOut)
	}
}

// A Traefik v2.11 release after the table (v2.11.60) is read from its
// binary too.
func TestRegistryBaseBinaryV2(t *testing.T) {
	w := newWorld(t)
	pushTraefik(t, w.registry+"/library/traefik:v2.11", fakeTraefik(t, "v2.11.60", "v0.16.1"), "v2.11.60")
	rp := w.writeRecipe("v2.yaml", w.demoRecipe("docker://"+w.registry+"/library/traefik:v2.11", ""))
	rep, errOut, err := w.verifyJSON(rp)
	if err != nil {
		t.Fatalf("verify: %v\n%s", err, errOut)
	}
	if tg := rep.Traefik; tg.Version != "v2.11.60" || tg.Yaegi != "v0.16.1" || tg.Wazero != "" || tg.InterpreterSource != "binary" {
		t.Fatalf("target %+v", tg)
	}
	if rep.Verify[0].Status != "OK" || rep.Verify[0].Interpreter != "yaegi v0.16.1" {
		t.Fatalf("verdict %+v", rep.Verify[0])
	}
}

// The labels say v3.6.12 (yaegi v0.16.1 by the table), the binary links
// yaegi v0.15.1: the binary wins, the report says so; a plugin importing
// log/slog (not in v0.15.1) FAILs, plugindemo is OK under v0.15.1.
func TestRegistryBaseBinaryWinsOverLabels(t *testing.T) {
	w := newWorld(t)
	pushTraefik(t, w.registry+"/library/traefik:odd", fakeTraefik(t, "v3.8.2", "v0.15.1"), "v3.6.12")
	slog, err := filepath.Abs("../../verify/testdata/stdlib-slog")
	if err != nil {
		t.Fatal(err)
	}
	rp := w.writeRecipe("odd.yaml", w.demoRecipe("docker://"+w.registry+"/library/traefik:odd",
		"  slog:\n    module: example.com/fixtures/stdlib-slog\n    path: "+slog+"\n"))
	// The v0.15.1 worker is built once into the user's cache and shared
	// by every test run (minutes the first time).
	cache, err := provision.DefaultCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	worker, err := provision.Build(context.Background(), cache, "v0.15.1", false)
	if err != nil {
		t.Fatalf("worker for yaegi v0.15.1: %v", err)
	}
	rep, errOut, err := w.verifyJSON(rp, "--yaegi-worker", worker)
	if err == nil {
		t.Fatalf("verify passed with a log/slog plugin on yaegi v0.15.1\n%s", errOut)
	}
	if tg := rep.Traefik; tg.Version != "v3.8.2" || tg.Yaegi != "v0.15.1" || tg.InterpreterSource != "binary" {
		t.Fatalf("target %+v: the binary should decide", tg)
	}
	warned := false
	for _, w := range rep.Warnings {
		warned = warned || strings.Contains(w, "labels say Traefik v3.6.12") && strings.Contains(w, "the binary decides")
	}
	if !warned {
		t.Errorf("no warning that the labels and the binary disagree: %q", rep.Warnings)
	}
	got := map[string]string{}
	for _, r := range rep.Verify {
		got[r.Alias] = r.Status + " " + r.Interpreter + " " + r.Reason
	}
	if !strings.HasPrefix(got["demo"], "OK yaegi v0.15.1") || !strings.HasPrefix(got["slog"], "FAIL yaegi v0.15.1") || !strings.Contains(got["slog"], "log/slog") {
		t.Fatalf("verdicts %q: want plugindemo OK and the log/slog plugin FAIL under yaegi v0.15.1", got)
	}
}
