package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/mod/semver"

	"github.com/xtraefik/xtraefik/build"
	"github.com/xtraefik/xtraefik/internal/fileset"
	"github.com/xtraefik/xtraefik/internal/testenv"
	"github.com/xtraefik/xtraefik/verify"
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
	rep, errOut, err := w.verifyJSON(rp, "--yaegi-worker", sharedWorker(t, "v0.15.1"))
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

// A hostile base names a Traefik binary of 600 MiB (its layer stops after
// the header): refused at the bound before a byte of it is read, nothing
// written to the temporary directory or the cache.
func TestRegistryBaseBinaryTooLarge(t *testing.T) {
	w := newWorld(t)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	const size = 600 << 20
	if err := tw.WriteHeader(&tar.Header{Name: "usr/local/bin/traefik", Mode: 0o755, Typeflag: tar.TypeReg, Size: size}); err != nil {
		t.Fatal(err)
	}
	if err := tw.Flush(); err == nil {
		t.Fatal("a tar entry without its content flushed")
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, static.NewLayer(buf.Bytes(), types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.Config(img, v1.Config{Entrypoint: []string{"traefik"}, Labels: map[string]string{"org.opencontainers.image.version": "v3.6.12"}})
	if err != nil {
		t.Fatal(err)
	}
	r, _ := name.ParseReference(w.registry+"/library/traefik:huge", name.Insecure)
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	rp := w.writeRecipe("huge.yaml", w.demoRecipe("docker://"+w.registry+"/library/traefik:huge", ""))
	_, _, err = w.run("verify", "-f", rp)
	if err == nil || !strings.Contains(err.Error(), "/usr/local/bin/traefik") || !strings.Contains(err.Error(), "629145600 bytes, larger than allowed (536870912 bytes)") {
		t.Fatalf("verify: %v, want the binary refused at the bound", err)
	}
	var written int64
	for _, dir := range []string{tmp, filepath.Join(w.dir, "cache")} {
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				fi, _ := d.Info()
				written += fi.Size()
			}
			return nil
		})
	}
	if written > 1<<20 {
		t.Fatalf("%d bytes written to the temporary and cache directories", written)
	}
}

// goModOf reads a real Traefik release's go.mod from the Go module proxy
// (`go list -m`, which fetches the .mod alone).
func goModOf(t *testing.T, mod, version string) []byte {
	t.Helper()
	cmd := exec.Command("go", "list", "-m", "-json", mod+"@"+version)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	out, err := cmd.Output()
	var m struct{ GoMod string }
	if err == nil {
		err = json.Unmarshal(out, &m)
	}
	if err != nil || m.GoMod == "" {
		testenv.Unavailable(t, "go list -m %s@%s: %v", mod, version, err)
	}
	data, err := os.ReadFile(m.GoMod)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// When the base's Traefik binary cannot say (here: a shell script), the
// interpreter comes from Traefik's own go.mod for that exact version,
// through GOPROXY and checked against GOSUMDB: for v3.8.1, a release the
// table does not know, and for v3.6.12, which it knows. With no go.mod
// (offline, nothing cached) the table answers for v3.6.12 and v3.8.1 is
// UNVERIFIED.
func TestRegistryBaseGoModFallback(t *testing.T) {
	w := newWorld(t)
	real := goModOf(t, "github.com/traefik/traefik/v3", "v3.6.12")
	if !bytes.Contains(real, []byte("github.com/traefik/yaegi v0.16.1")) {
		t.Fatalf("Traefik v3.6.12's go.mod does not require yaegi v0.16.1:\n%s", real)
	}
	p := testenv.GoProxy(t)
	db := testenv.SumDB(t, p)
	p.ServeSumDB(db)
	// v3.8.1: v3.6.12's go.mod with another Yaegi (one xtraefik has a
	// worker for), as a later release's.
	crafted := bytes.Replace(real, []byte("github.com/traefik/yaegi v0.16.1"), []byte("github.com/traefik/yaegi v0.15.1"), 1)
	worker := sharedWorker(t, "v0.15.1")
	for version, data := range map[string][]byte{"v3.6.12": real, "v3.8.1": crafted} {
		gomod := fileset.File{Path: "go.mod", Size: int64(len(data)), Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }}
		files, err := fileset.New([]fileset.File{gomod})
		if err != nil {
			t.Fatal(err)
		}
		p.AddTree(t, "github.com/traefik/traefik/v3", version, files, time.Date(2026, 7, 24, 0, 0, 0, 0, time.UTC))
	}
	w.env["GOPROXY"], w.env["GOSUMDB"] = p.URL, db.GOSUMDB
	for _, tc := range []struct {
		version, yaegi string
	}{{"v3.8.1", "v0.15.1"}, {"v3.6.12", "v0.16.1"}} {
		tag := "script-" + tc.version
		testenv.PushBase(t, w.registry+"/library/traefik:"+tag, testenv.BaseOptions{OCI: true, Single: true, Version: tc.version,
			Platforms: []v1.Platform{{OS: "linux", Architecture: "amd64"}}})
		rp := w.writeRecipe(tag+".yaml", w.demoRecipe("docker://"+w.registry+"/library/traefik:"+tag, ""))
		rep, errOut, _ := w.verifyJSON(rp, "--yaegi-worker", worker)
		tg := rep.Traefik
		if tg == nil || tg.Version != tc.version || tg.Yaegi != tc.yaegi || tg.InterpreterSource != "go.mod" {
			t.Fatalf("%s: target %+v, want yaegi %s from go.mod\n%s", tc.version, tg, tc.yaegi, errOut)
		}
		if !strings.Contains(strings.Join(tg.Notes, "\n"), "/usr/local/bin/traefik is no Traefik binary") {
			t.Errorf("%s: the notes do not say why the binary did not answer: %q", tc.version, tg.Notes)
		}
		if len(rep.Verify) != 1 || rep.Verify[0].Status != "OK" || rep.Verify[0].InterpreterSource != "go.mod" || rep.Verify[0].Interpreter != "yaegi "+tc.yaegi {
			t.Errorf("%s: verdicts %+v", tc.version, rep.Verify)
		}
		// Offline with a cache that holds the base but no go.mod (locked
		// with GOPROXY=off).
		offline := filepath.Join(w.dir, "offline-"+tag)
		w.env["GOPROXY"] = "off"
		if _, _, err := w.runIn(offline, "lock", "-f", rp); err != nil {
			t.Fatal(err)
		}
		w.env["GOPROXY"] = p.URL
		out, errOut, err := w.runIn(offline, "verify", "-f", rp, "--offline", "--output", "json")
		var orep build.Report
		if jerr := json.Unmarshal([]byte(out), &orep); jerr != nil {
			t.Fatalf("%s offline: %v\n%s\n%s", tc.version, jerr, out, errOut)
		}
		switch tc.version {
		case "v3.6.12":
			if err != nil || orep.Traefik.InterpreterSource != "table" || orep.Traefik.Yaegi != "v0.16.1" {
				t.Errorf("offline v3.6.12: %v, target %+v: want the table's answer", err, orep.Traefik)
			}
		default:
			if err == nil || orep.Traefik.InterpreterSource != "" || len(orep.Verify) != 1 || orep.Verify[0].Status != "UNVERIFIED" {
				t.Errorf("offline v3.8.1: %v, target %+v, verdicts %+v: want UNVERIFIED", err, orep.Traefik, orep.Verify)
			}
		}
	}
}

// The real Traefik v3.6.12 binary as a registry base: its build info names
// yaegi v0.16.1 (as its go.mod does); built with -trimpath, it names no
// version, which the labels give.
func TestRegistryBaseRealTraefik(t *testing.T) {
	bin := testenv.TraefikBinary(t, "v3.6.12")
	w := newWorld(t)
	pushTraefik(t, w.registry+"/library/traefik:real", bin, "v3.6.12")
	rp := w.writeRecipe("real.yaml", w.demoRecipe("docker://"+w.registry+"/library/traefik:real", ""))
	rep, errOut, err := w.verifyJSON(rp)
	if err != nil {
		t.Fatalf("verify: %v\n%s", err, errOut)
	}
	if tg := rep.Traefik; tg.Version != "v3.6.12" || tg.Yaegi != "v0.16.1" || tg.Wazero != "v1.8.0" || tg.InterpreterSource != "binary" {
		t.Fatalf("target %+v", tg)
	}
	if rep.Verify[0].Status != "OK" || rep.Verify[0].InterpreterSource != "binary" {
		t.Fatalf("verdict %+v", rep.Verify[0])
	}
}

// sharedWorker is the verification worker for yaegi, built once into the
// user's cache (provision.DefaultCacheDir) and shared by every test run:
// minutes the first time.
func sharedWorker(t *testing.T, yaegi string) string {
	t.Helper()
	cache, err := provision.DefaultCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	// Sealed with the user's own host key, as build's tests find it, so
	// that the suites sharing this cache do not rebuild each other's worker.
	keyFile, err := verify.DefaultKeyFile()
	if err != nil {
		t.Fatal(err)
	}
	key, err := verify.LoadKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	worker, _, err := provision.Build(context.Background(), cache, yaegi, false, key, func(w string) { t.Log(w) })
	if err != nil {
		t.Fatalf("worker for yaegi %s: %v", yaegi, err)
	}
	return worker
}

// TestWorldIsHermetic: the world's base holds no Go program, so Traefik's
// go.mod would be asked for; a world that names no module proxy runs with
// GOPROXY=off, so nothing reaches the public proxy, and the table answers
// with a note (no error, no warning).
func TestWorldIsHermetic(t *testing.T) {
	w := newWorld(t)
	rp := w.writeRecipe("hermetic.yaml", w.demoRecipe("docker://"+w.registry+"/library/traefik:v3.6", ""))
	rep, errOut, err := w.verifyJSON(rp)
	if err != nil {
		t.Fatalf("verify: %v\n%s", err, errOut)
	}
	tg := rep.Traefik
	if tg == nil || tg.InterpreterSource != "table" || tg.Yaegi != "v0.16.1" {
		t.Fatalf("target %+v: want the table's yaegi v0.16.1", tg)
	}
	if notes := strings.Join(tg.Notes, "\n"); !strings.Contains(notes, "Traefik's go.mod was not read") || !strings.Contains(notes, "GOPROXY=off") {
		t.Errorf("notes %q: want the go.mod skipped under GOPROXY=off", tg.Notes)
	}
	if len(rep.Warnings) != 0 {
		t.Errorf("warnings %q", rep.Warnings)
	}
}

// binaryTags lists the Traefik binary records in the cache repository repo.
func binaryTags(t *testing.T, repo string) []string {
	t.Helper()
	r, err := name.NewRepository(repo, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	tags, err := remote.List(r)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, tag := range tags {
		if strings.HasPrefix(tag, "binary-") {
			out = append(out, tag)
		}
	}
	return out
}

// TestFleetKeepsTheBinaryRecord: runner A, the fleet's writer, builds a
// registry base and streams the layer of its Traefik binary once, then
// keeps what the binary says in the cache repository, signed. Runner B, a
// fresh machine trusting A's key, builds the same base without a single
// GET of that layer. Runner C, trusting another key, ignores A's record
// (a warning names A's key) and streams the layer. A record A signed for
// another base, moved under this base's tag, is refused as forged: the
// reader streams the layer and takes the binary's own word.
func TestFleetKeepsTheBinaryRecord(t *testing.T) {
	w := newWorld(t)
	registry, log := testenv.RecordingProxy(t, w.registry)
	layer := pushTraefik(t, registry+"/library/traefik:fleet", testenv.FakeTraefik(t, "v3.8.1", "v0.16.1"), "v3.8.1")
	rp := w.writeRecipe("fleet.yaml", w.demoRecipe("docker://"+registry+"/library/traefik:fleet", ""))
	repo := registry + "/fleet/cache"
	keyA, pubA := testenv.OpenSSLKeyPair(t, testenv.KeyEd25519)
	_, pubOther := testenv.OpenSSLKeyPair(t, testenv.KeyEd25519)
	idA := fingerprint(t, pubA)

	layerGets := func(d v1.Hash) (n int) {
		for _, r := range log.Requests() {
			if r.Method == "GET" && r.Blob() == d.String() {
				n++
			}
		}
		return n
	}
	runner := func(cache string, args ...string) build.Report {
		t.Helper()
		out, errOut, err := w.runIn(filepath.Join(w.dir, cache), append(args, "-o", "json")...)
		var rep build.Report
		if jerr := json.Unmarshal([]byte(out), &rep); jerr != nil || err != nil {
			t.Fatalf("runner %s: xtraefik %s: %v / %v\n%s\n%s", cache, strings.Join(args, " "), err, jerr, out, errOut)
		}
		return rep
	}
	wantTarget := func(who string, rep build.Report, version string) {
		t.Helper()
		if tg := rep.Traefik; tg == nil || tg.Version != version || tg.Yaegi != "v0.16.1" || tg.InterpreterSource != "binary" || tg.Binary != "/usr/local/bin/traefik" {
			t.Fatalf("runner %s: target %+v, want Traefik %s, yaegi v0.16.1 read from its binary", who, rep.Traefik, version)
		}
	}

	log.Reset()
	a := runner("a", "build", "-f", rp, "--cache-repo", repo, "--cache-key", keyA, "--push", registry+"/out/traefik:a")
	wantTarget("A", a, "v3.8.1")
	if len(a.Warnings) != 0 {
		t.Fatalf("runner A: %q", a.Warnings)
	}
	if n := layerGets(layer); n != 1 {
		t.Fatalf("runner A read the binary's layer %d times, want once", n)
	}
	records := binaryTags(t, repo)
	if len(records) != 1 {
		t.Fatalf("the cache repository holds %d Traefik binary records, want 1: %q", len(records), records)
	}

	// B: a fresh cache directory, A's public key only.
	log.Reset()
	b := runner("b", "build", "-f", rp, "--cache-repo", repo, "--cache-trust", pubA, "--push", registry+"/out/traefik:b")
	wantTarget("B", b, "v3.8.1")
	if len(b.Warnings) != 0 {
		t.Fatalf("runner B: %q", b.Warnings)
	}
	if n := layerGets(layer); n != 0 {
		t.Fatalf("runner B read the binary's layer %d times; the cache repository holds its record", n)
	}
	if b.Image.Digest != a.Image.Digest {
		t.Errorf("runner B built %s, A %s", b.Image.Digest, a.Image.Digest)
	}

	// C: trusts another key, so not A's record.
	log.Reset()
	c := runner("c", "build", "-f", rp, "--cache-repo", repo, "--cache-trust", pubOther, "--push", registry+"/out/traefik:c")
	wantTarget("C", c, "v3.8.1")
	if n := layerGets(layer); n != 1 {
		t.Fatalf("runner C read the binary's layer %d times, want once (A's record is not trusted)", n)
	}
	warned := false
	for _, w := range c.Warnings {
		warned = warned || strings.Contains(w, "record of the Traefik binary") && strings.Contains(w, "not signed by a key this runner trusts: signed by key \""+idA+"\"")
	}
	if !warned {
		t.Errorf("runner C: no warning naming A's key for the binary record: %q", c.Warnings)
	}

	// A second base, whose record A writes; then the first base's record
	// is put under its tag.
	layer2 := pushTraefik(t, registry+"/library/traefik:fleet2", testenv.FakeTraefik(t, "v3.8.2", "v0.16.1"), "v3.8.2")
	rp2 := w.writeRecipe("fleet2.yaml", w.demoRecipe("docker://"+registry+"/library/traefik:fleet2", ""))
	wantTarget("A", runner("a", "verify", "-f", rp2, "--cache-repo", repo, "--cache-key", keyA), "v3.8.2")
	var second string
	for _, tag := range binaryTags(t, repo) {
		if tag != records[0] {
			second = tag
		}
	}
	if second == "" {
		t.Fatalf("no record for the second base: %q", binaryTags(t, repo))
	}
	r, err := name.NewRepository(repo, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(r.Tag(records[0]))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Tag(r.Tag(second), desc); err != nil {
		t.Fatal(err)
	}
	log.Reset()
	d := runner("d", "verify", "-f", rp2, "--cache-repo", repo, "--cache-trust", pubA)
	wantTarget("D", d, "v3.8.2")
	if n := layerGets(layer2); n != 1 {
		t.Fatalf("runner D read the second base's binary layer %d times, want once (the record there is forged)", n)
	}
	forged := false
	for _, w := range d.Warnings {
		forged = forged || strings.Contains(w, "record of the Traefik binary") && strings.Contains(w, "record moved between tags")
	}
	if !forged {
		t.Errorf("runner D: no warning that the record was moved: %q", d.Warnings)
	}
}
