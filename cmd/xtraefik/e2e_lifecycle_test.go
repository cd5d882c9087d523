package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/xtraefik/xtraefik/internal/testenv"
	"github.com/xtraefik/xtraefik/recipe"
	"github.com/xtraefik/xtraefik/verify"
)

// slogPlugin is a git plugin of the world that logs with log/slog: yaegi
// v0.16.1 has it, v0.15.1 has not, so its verdict depends on the
// interpreter alone. The recipe snippet names it "bad" (customPlugin's
// alias).
func (w *world) slogPlugin(t *testing.T) string {
	t.Helper()
	return w.customPlugin(t, "example.com/slogdemo", func(r *testenv.Repo) {
		r.WriteFile("slog.go", "package slogdemo\n\nimport \"log/slog\"\n\nvar logger = slog.Default()\n")
	})
}

// tagInLayout points tag of the OCI layout at dir to img, as a registry
// tag moves to a new release; the image the tag left stays in the layout
// (its digest still resolves).
func tagInLayout(t *testing.T, dir, tag string, img v1.Image) v1.Hash {
	t.Helper()
	lp, err := layout.FromPath(dir)
	if err != nil {
		if lp, err = layout.Write(dir, empty.Index); err != nil {
			t.Fatal(err)
		}
	}
	const refName = "org.opencontainers.image.ref.name"
	if err := lp.ReplaceImage(img, match.Annotation(refName, tag), layout.WithAnnotations(map[string]string{refName: tag})); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// fakeTraefikBase is a base whose Traefik binary's build info names
// version and the Yaegi it links, labelled version.
func fakeTraefikBase(t *testing.T, version, yaegi string) v1.Image {
	t.Helper()
	return testenv.TraefikBase(t, testenv.FakeTraefik(t, version, yaegi), testenv.TraefikBaseOptions{Version: version, OCI: true})
}

func readLockFile(t *testing.T, rp string) []byte {
	t.Helper()
	b, err := os.ReadFile(recipe.LockPath(rp))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRebaseFollowsTheInterpreter: behind a moving tag, a base moves from
// Traefik v3.6.12 (in the release table) to v3.8.1 (in no table; its
// binary links the same yaegi v0.16.1). rebase keeps every verdict (from
// the cache: no worker runs) and the plugin layer's digest. Then the tag
// moves to a release whose Traefik links yaegi v0.15.1: rebase verifies
// again with that interpreter, the plugin FAILs, and neither the lock nor
// the output moves.
func TestRebaseFollowsTheInterpreter(t *testing.T) {
	w := newWorld(t)
	baseDir := filepath.Join(w.dir, "bases")
	tagInLayout(t, baseDir, "v3", fakeTraefikBase(t, "v3.6.12", "v0.16.1"))
	rp := w.writeRecipe("rebase.yaml", "base: oci:"+baseDir+":v3\nplugins:\n"+w.slogPlugin(t))

	w.mustRun("lock", "-f", rp)
	rep := decodeReport(t, w.mustRun("build", "-f", rp, "-o", "json", "--oci-layout", filepath.Join(w.dir, "first")))
	if len(rep.Verify) != 1 || !rep.Verify[0].OK || rep.Verify[0].Cached || rep.Traefik == nil || rep.Traefik.Version != "v3.6.12" {
		t.Fatalf("first build: traefik %+v, verdicts %+v", rep.Traefik, rep.Verify)
	}
	layer := rep.Image.Layers["/"]

	// A patch release xtraefik's table does not know, same interpreter.
	b := tagInLayout(t, baseDir, "v3", fakeTraefikBase(t, "v3.8.1", "v0.16.1"))
	rep = decodeReport(t, w.mustRun("rebase", "-f", rp, "-o", "json", "--oci-layout", filepath.Join(w.dir, "second")))
	if rep.Traefik == nil || rep.Traefik.Version != "v3.8.1" || rep.Traefik.Yaegi != "v0.16.1" {
		t.Errorf("rebase onto v3.8.1: target %+v", rep.Traefik)
	}
	if v := rep.Verify; len(v) != 1 || !v[0].OK || !v[0].Cached || v[0].Interpreter != "yaegi v0.16.1" {
		t.Errorf("rebase onto the same interpreter verified again: %+v", v)
	}
	if got := rep.Image.Layers["/"]; got != layer || layer == "" {
		t.Errorf("plugin layer %s after the rebase, %s before", got, layer)
	}
	if l, _ := recipe.ReadLock(recipe.LockPath(rp)); l.Base.Digest != b.String() {
		t.Errorf("lock base %s, want %s", l.Base.Digest, b)
	}

	// Another interpreter: verified again before anything is written.
	lockBefore := readLockFile(t, rp)
	tagInLayout(t, baseDir, "v3", fakeTraefikBase(t, "v3.8.2", "v0.15.1"))
	third := filepath.Join(w.dir, "third")
	out, _, err := w.run("rebase", "-f", rp, "-o", "json", "--oci-layout", third)
	rep = decodeReport(t, out)
	if err == nil || rep.OK {
		t.Fatalf("rebase onto yaegi v0.15.1 succeeded: %+v", rep)
	}
	if v := rep.Verify; len(v) != 1 || v[0].Status != verify.StatusFail || v[0].Cached || v[0].Interpreter != "yaegi v0.15.1" || !strings.Contains(v[0].Reason, "log/slog") {
		t.Errorf("rebase onto yaegi v0.15.1: verdicts %+v, want a fresh FAIL naming log/slog", v)
	}
	if !bytes.Equal(readLockFile(t, rp), lockBefore) {
		t.Error("a failed rebase changed the lock")
	}
	if _, err := os.Stat(third); !os.IsNotExist(err) {
		t.Errorf("a failed rebase wrote its output: %v", err)
	}
}

// TestRebaseRegistryPatchKeepsVerdicts: a registry tag moves from Traefik
// v3.6.12 to v3.6.13 (same Yaegi in the release table): the rebase takes
// the verdict from the cache and keeps the plugin layer.
func TestRebaseRegistryPatchKeepsVerdicts(t *testing.T) {
	w := newWorld(t)
	ref := w.registry + "/library/traefik:v3.6"
	plats := []v1.Platform{{OS: "linux", Architecture: "amd64"}}
	testenv.PushBase(t, ref, testenv.BaseOptions{OCI: true, Platforms: plats, Version: "v3.6.12"})
	rp := w.writeRecipe("registry.yaml", "base: docker://"+ref+"\nplugins:\n"+w.slogPlugin(t))
	w.mustRun("lock", "-f", rp)
	rep := decodeReport(t, w.mustRun("build", "-f", rp, "-o", "json"))
	if len(rep.Verify) != 1 || !rep.Verify[0].OK || rep.Verify[0].Cached {
		t.Fatalf("first build: %+v", rep.Verify)
	}
	layer := rep.Image.Layers["/"]
	patched := testenv.PushBase(t, ref, testenv.BaseOptions{OCI: true, Platforms: plats, Version: "v3.6.13"})
	rep = decodeReport(t, w.mustRun("rebase", "-f", rp, "-o", "json"))
	if rep.Traefik == nil || rep.Traefik.Version != "v3.6.13" || rep.Base == nil || rep.Base.Digest != patched.String() {
		t.Fatalf("rebase: traefik %+v, base %+v", rep.Traefik, rep.Base)
	}
	if v := rep.Verify; len(v) != 1 || !v[0].OK || !v[0].Cached {
		t.Errorf("rebase onto a patch with the same interpreter verified again: %+v", v)
	}
	if got := rep.Image.Layers["/"]; got != layer || layer == "" {
		t.Errorf("plugin layer %s after the rebase, %s before", got, layer)
	}
}

// TestVerifyAgainstAnotherBase: verify --base checks the plugins the lock
// pins against another base, by tag or digest, with its Traefik's
// interpreter, and writes nothing: the lock stays byte for byte.
func TestVerifyAgainstAnotherBase(t *testing.T) {
	w := newWorld(t)
	baseDir := filepath.Join(w.dir, "bases")
	current := tagInLayout(t, baseDir, "v3.6", fakeTraefikBase(t, "v3.6.12", "v0.16.1"))
	older := tagInLayout(t, baseDir, "v2.11", fakeTraefikBase(t, "v3.8.2", "v0.15.1"))
	rp := w.writeRecipe("verify-base.yaml", "base: oci:"+baseDir+":v3.6\nplugins:\n"+w.slogPlugin(t))

	// Without a lock there are no pins to check.
	if _, _, err := w.run("verify", "-f", rp, "--base", "oci:"+baseDir+":v2.11"); err == nil || !strings.Contains(err.Error(), "no lock") {
		t.Errorf("verify --base without a lock: %v", err)
	}
	w.mustRun("lock", "-f", rp)
	lock := readLockFile(t, rp)

	// By tag: another interpreter, a FAIL.
	out, _, err := w.run("verify", "-f", rp, "-o", "json", "--base", "oci:"+baseDir+":v2.11")
	rep := decodeReport(t, out)
	if err == nil || rep.OK || rep.Base == nil || rep.Base.Digest != older.String() || rep.Traefik == nil || rep.Traefik.Yaegi != "v0.15.1" {
		t.Fatalf("verify --base (yaegi v0.15.1): %v\n%+v", err, rep)
	}
	if v := rep.Verify; len(v) != 1 || v[0].Status != verify.StatusFail || !strings.Contains(v[0].Reason, "log/slog") {
		t.Errorf("verdicts %+v, want a FAIL naming log/slog", v)
	}
	if rep.Lock != nil {
		t.Errorf("verify --base reported a lock change: %+v", rep.Lock)
	}
	// By digest: the recipe's own interpreter, OK.
	rep = decodeReport(t, w.mustRun("verify", "-f", rp, "-o", "json", "--base", "oci:"+baseDir+"@"+current.String()))
	if rep.Base == nil || rep.Base.Digest != current.String() || len(rep.Verify) != 1 || !rep.Verify[0].OK || rep.Verify[0].Interpreter != "yaegi v0.16.1" {
		t.Errorf("verify --base by digest: base %+v, verdicts %+v", rep.Base, rep.Verify)
	}
	if !bytes.Equal(readLockFile(t, rp), lock) {
		t.Error("verify --base changed the lock")
	}
	// --base is for recipes.
	if _, _, err := w.run("verify", "--dir", w.dir, "--base", "oci:"+baseDir+":v3.6"); err == nil || !strings.Contains(err.Error(), "--base is for a recipe") {
		t.Errorf("verify --dir --base: %v", err)
	}
}

// TestRebaseRegistryUnknownRelease is TestRebaseFollowsTheInterpreter with
// the base in a registry behind a moving tag, traefik:v3: first Traefik
// v3.6.12 (in the release table), then v3.8.1 (in no table; its binary
// links the same yaegi v0.16.1): rebase keeps the verdict (from the cache:
// no worker runs) and the plugin layer, pushes, and the lock records the
// new digest. Then the tag moves to v3.8.2, whose binary links yaegi
// v0.15.1: rebase verifies again with it before writing anything, the
// log/slog plugin FAILs, and neither the lock nor the pushed tags move.
func TestRebaseRegistryUnknownRelease(t *testing.T) {
	w := newWorld(t)
	ref := w.registry + "/library/traefik:v3"
	move := func(version, yaegi string) v1.Hash {
		t.Helper()
		img := fakeTraefikBase(t, version, yaegi)
		r, err := name.ParseReference(ref, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(r, img); err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	pushed := func(tag string) (v1.Hash, error) {
		r, err := name.ParseReference(w.registry+"/out/traefik:"+tag, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		desc, err := remote.Head(r)
		if err != nil {
			return v1.Hash{}, err
		}
		return desc.Digest, nil
	}
	move("v3.6.12", "v0.16.1")
	rp := w.writeRecipe("rebase.yaml", "base: docker://"+ref+"\nplugins:\n"+w.slogPlugin(t))
	w.mustRun("lock", "-f", rp)
	rep := decodeReport(t, w.mustRun("build", "-f", rp, "-o", "json", "--push", w.registry+"/out/traefik:first"))
	if len(rep.Verify) != 1 || !rep.Verify[0].OK || rep.Verify[0].Cached || rep.Traefik == nil || rep.Traefik.Version != "v3.6.12" || rep.Traefik.InterpreterSource != "binary" {
		t.Fatalf("first build: traefik %+v, verdicts %+v", rep.Traefik, rep.Verify)
	}
	layer := rep.Image.Layers["/"]

	// An unknown release, same interpreter.
	b := move("v3.8.1", "v0.16.1")
	rep = decodeReport(t, w.mustRun("rebase", "-f", rp, "-o", "json", "--push", w.registry+"/out/traefik:second"))
	if tg := rep.Traefik; tg == nil || tg.Version != "v3.8.1" || tg.Yaegi != "v0.16.1" || tg.InterpreterSource != "binary" || rep.Base == nil || rep.Base.Digest != b.String() {
		t.Fatalf("rebase onto v3.8.1: target %+v, base %+v", rep.Traefik, rep.Base)
	}
	if v := rep.Verify; len(v) != 1 || !v[0].OK || !v[0].Cached || v[0].Interpreter != "yaegi v0.16.1" {
		t.Errorf("rebase onto the same interpreter verified again: %+v", v)
	}
	if got := rep.Image.Layers["/"]; got != layer || layer == "" {
		t.Errorf("plugin layer %s after the rebase, %s before", got, layer)
	}
	if l, _ := recipe.ReadLock(recipe.LockPath(rp)); l == nil || l.Base.Digest != b.String() {
		t.Errorf("lock base %+v, want %s", l, b)
	}
	second, err := pushed("second")
	if err != nil || second.String() != rep.Image.Digest {
		t.Fatalf("pushed %s (%v), the rebase reported %s", second, err, rep.Image.Digest)
	}

	// Another interpreter: verified again before anything is written.
	lockBefore := readLockFile(t, rp)
	move("v3.8.2", "v0.15.1")
	out, _, err := w.run("rebase", "-f", rp, "-o", "json", "--yaegi-worker", sharedWorker(t, "v0.15.1"),
		"--push", w.registry+"/out/traefik:second", "--push", w.registry+"/out/traefik:third")
	rep = decodeReport(t, out)
	if err == nil || rep.OK {
		t.Fatalf("rebase onto yaegi v0.15.1 succeeded: %+v", rep)
	}
	if tg := rep.Traefik; tg == nil || tg.Version != "v3.8.2" || tg.Yaegi != "v0.15.1" || tg.InterpreterSource != "binary" {
		t.Errorf("rebase onto v3.8.2: target %+v", tg)
	}
	if v := rep.Verify; len(v) != 1 || v[0].Status != verify.StatusFail || v[0].Cached || v[0].Interpreter != "yaegi v0.15.1" || !strings.Contains(v[0].Reason, "log/slog") {
		t.Errorf("rebase onto yaegi v0.15.1: verdicts %+v, want a fresh FAIL naming log/slog", v)
	}
	if !bytes.Equal(readLockFile(t, rp), lockBefore) {
		t.Error("a failed rebase changed the lock")
	}
	if d, err := pushed("second"); err != nil || d != second {
		t.Errorf("a failed rebase moved a pushed tag: %s (%v), was %s", d, err, second)
	}
	if d, err := pushed("third"); err == nil {
		t.Errorf("a failed rebase pushed %s", d)
	}
}
