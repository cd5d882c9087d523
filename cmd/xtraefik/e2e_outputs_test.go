package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/xtraefik/xtraefik/internal/testenv"
)

// TestFailedPushLeavesNothing: a push that fails after the layout, the
// tarball, the values file, the SBOM and the digest file were written takes
// them all back. The user's files at and beside those paths are refused
// without --overwrite (before anything is fetched), and with it are
// byte-identical afterwards; nothing new remains.
func TestFailedPushLeavesNothing(t *testing.T) {
	w := newWorld(t)
	rp := w.writeRecipe("ok.yaml", w.demoRecipe("docker://"+w.registry+"/library/traefik:v3.6", ""))
	outDir := t.TempDir()
	p := func(s string) string { return filepath.Join(outDir, s) }
	for f, content := range map[string]string{
		"sbom/notes.txt":         "the user's notes beside the SBOM",
		"sbom/sbom.spdx.json":    `{"the user's": "SBOM"}`,
		"values.yaml":            "additionalArguments: [the user's]\n",
		"digest":                 "sha256:the-users\n",
		"layout/index.json":      `{"the user's": "layout"}`,
		"layout/blobs/sha256/aa": "the user's blob",
		"tarballs/other.tar":     "the user's other archive",
	} {
		if err := os.MkdirAll(filepath.Dir(p(f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p(f), []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	before := testenv.Snapshot(t, outDir)
	push := "127.0.0.1:1/nowhere/traefik:v1"
	args := []string{"build", "-f", rp, "--push", push,
		"--oci-layout", p("layout"), "--tarball", p("tarballs/new/image.tar"),
		"--values-file", p("values.yaml"), "--sbom-dir", p("sbom"),
		"--digest-file", p("digest"), "--tarball-platform", "linux/amd64"}

	_, _, err := w.run(args...)
	for _, want := range []string{"OCI layout: " + p("layout") + " already exists and is not empty",
		"Helm values file: " + p("values.yaml") + " already exists", "digest file: " + p("digest") + " already exists",
		"SBOM: " + p("sbom/sbom.spdx.json") + " already exists", "pass --overwrite to replace it"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("without --overwrite: %v\nwant %q", err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(w.dir, "cache")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the refused build fetched plugins first (cache: %v)", err)
	}
	testenv.SameTree(t, "refused build", before, testenv.Snapshot(t, outDir))

	_, _, err = w.run(append(args, "--overwrite")...)
	if err == nil || strings.Count(err.Error(), "push 127.0.0.1:1/nowhere/traefik") != 1 {
		t.Fatalf("push to a closed port: %v (want the push named once)", err)
	}
	testenv.SameTree(t, "failed push", before, testenv.Snapshot(t, outDir))
}

// TestOutputsAreCheckedFirst: a bad output fails at once, before the base or
// any plugin is fetched (both are unreachable here), with the flag named.
func TestOutputsAreCheckedFirst(t *testing.T) {
	dir := t.TempDir()
	rp := filepath.Join(dir, "recipe.yaml")
	recipe := "base: 127.0.0.1:1/library/traefik:v3.6\nplugins:\n  demo:\n    module: " + demoModule +
		"\n    git: git://127.0.0.1:1/plugindemo\n    ref: " + demoVersion + "\n"
	if err := os.WriteFile(rp, []byte(recipe), 0o644); err != nil {
		t.Fatal(err)
	}
	full := filepath.Join(dir, "full")
	os.MkdirAll(full, 0o755)
	os.WriteFile(filepath.Join(full, "x"), []byte("x"), 0o644)
	tar := filepath.Join(dir, "image.tar")
	os.WriteFile(tar, []byte("x"), 0o644)
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"existing layout", []string{"--oci-layout", full}, "OCI layout: " + full + " already exists and is not empty (pass --overwrite to replace it)"},
		{"existing tarball", []string{"--tarball", tar}, "docker archive: " + tar + " already exists (pass --overwrite to replace it)"},
		{"existing values file", []string{"--values-file", tar}, "Helm values file: " + tar + " already exists"},
		{"missing digest-file parent", []string{"--digest-file", filepath.Join(dir, "no/digest")}, "digest file " + filepath.Join(dir, "no/digest") + ": stat"},
		{"unparsable push", []string{"--push", "127.0.0.1:5000/Upper/Case:v1"}, "push 127.0.0.1:5000/Upper/Case:v1:"},
		{"push to a layout", []string{"--push", "oci:" + dir}, "not a registry reference"},
		{"bad tarball platform", []string{"--tarball-platform", "linux"}, `--tarball-platform: platform "linux": want os/arch[/variant]`},
		{"platform without architecture", []string{"--platform", "linux"}, `"--platform" flag: platform "linux": want os/arch[/variant]`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := newRoot(func(string) string { return "" })
			root.SetArgs(append([]string{"build", "-f", rp, "--cache-dir", filepath.Join(dir, "cache")}, tt.args...))
			root.SetOut(&strings.Builder{})
			root.SetErr(&strings.Builder{})
			start := time.Now()
			err := root.ExecuteContext(t.Context())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v\nwant %q", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "127.0.0.1:1") {
				t.Errorf("the build started before the outputs were checked: %v", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %s", d)
			}
		})
	}
}

// TestPushSeveralTags: one build, several --push references; every blob goes
// to each repository once, and every tag names the image.
func TestPushSeveralTags(t *testing.T) {
	w := newWorld(t)
	proxy, log := testenv.RecordingProxy(t, w.registry)
	rp := w.writeRecipe("ok.yaml", w.demoRecipe("docker://"+proxy+"/library/traefik:v3.6", ""))
	refs := []string{proxy + "/team/traefik:v1", proxy + "/team/traefik:v1.2", proxy + "/other/traefik:latest"}
	log.Reset()
	out := w.mustRun("build", "-f", rp, "--push", refs[0], "--push", refs[1], "--push", refs[2])
	digest := digestLine(t, out)
	for _, ref := range refs {
		r, _ := name.ParseReference(ref, name.Insecure)
		desc, err := remote.Head(r)
		if err != nil || desc.Digest.String() != digest {
			t.Errorf("%s: %v %v, want %s", ref, desc, err, digest)
		}
	}
	for _, want := range []string{"pushed: " + proxy + "/team/traefik@" + digest, "pushed: " + proxy + "/other/traefik@" + digest} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// Blob uploads per repository and digest: a finishing PUT names its digest.
	uploads := map[string]int{}
	for _, r := range log.Requests() {
		if r.Method == "PUT" && strings.Contains(r.Path, "/blobs/uploads/") {
			repo := strings.TrimPrefix(r.Path[:strings.Index(r.Path, "/blobs/")], "/v2/")
			uploads[repo+" "+r.Query]++
		}
	}
	if len(uploads) == 0 {
		t.Error("no blob uploaded")
	}
	for k, n := range uploads {
		if n > 1 {
			t.Errorf("uploaded %d times: %s", n, k)
		}
	}
}

// TestStalledRegistryCLI: --registry-timeout bounds a registry that accepts
// and never answers, for the base's pull and for the push.
func TestStalledRegistryCLI(t *testing.T) {
	w := newWorld(t)
	silent := testenv.SilentServer(t)
	for _, tt := range []struct {
		name, base, push string
	}{
		{"pull", silent + "/library/traefik:v3.6", ""},
		{"push", w.registry + "/library/traefik:v3.6", silent + "/team/traefik:v1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rp := w.writeRecipe(tt.name+".yaml", w.demoRecipe("docker://"+tt.base, ""))
			args := []string{"build", "-f", rp, "--registry-timeout", "200ms"}
			if tt.push != "" {
				args = append(args, "--push", tt.push)
			}
			start := time.Now()
			_, _, err := w.run(args...)
			if err == nil || !strings.Contains(err.Error(), "registry "+silent+" stalled: no answer for 200ms") {
				t.Errorf("error %v, want a stall", err)
			}
			if d := time.Since(start); d > time.Minute {
				t.Errorf("gave up after %s", d)
			}
		})
	}
}

// TestStaleTemporariesAreRemoved: the temporaries a killed build left beside
// its outputs go at the next build that writes there; one a live build is
// writing (its lock held) stays.
func TestStaleTemporariesAreRemoved(t *testing.T) {
	w := newWorld(t)
	rp := w.writeRecipe("ok.yaml", w.demoRecipe("docker://"+w.registry+"/library/traefik:v3.6", ""))
	out := t.TempDir()
	p := func(s string) string { return filepath.Join(out, s) }
	os.MkdirAll(p(".layout.tmp-4194999-123/blobs/sha256"), 0o755)
	os.WriteFile(p(".layout.tmp-4194999-123/blobs/sha256/aa"), []byte("half a layout"), 0o600)
	os.WriteFile(p(".image.tar.tmp-4194999-456"), []byte("half an archive"), 0o600)
	live := p(".image.tar.tmp-1-789")
	os.WriteFile(live, []byte("being written"), 0o600)
	f, err := os.Open(live)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	w.mustRun("build", "-f", rp, "--oci-layout", p("layout"), "--tarball", p("image.tar"), "--tarball-platform", "linux/amd64")
	entries, _ := os.ReadDir(out)
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if want := ".image.tar.tmp-1-789 image.tar layout"; strings.Join(got, " ") != want {
		t.Errorf("beside the outputs: %v, want %s", got, want)
	}
}
