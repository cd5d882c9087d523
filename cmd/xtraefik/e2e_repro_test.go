package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// goldenDigest is the index digest of the bundled example built over the
// harness's fixed inputs (a synthetic three-platform base with fixed timestamps,
// plugindemo v0.2.2 committed at fixed dates). Any machine that runs the suite
// must get exactly this: change it only for an intended change of the image.
const goldenDigest = "sha256:6d2db8e373242c043ebc62b126913a56ebb3b4990c5b5c819777aafdaa5b0253"

// TestReproducible builds the example from its lock with the real binary under
// different directories, time zones, umasks, cache states and users, and asserts
// one golden digest.
func TestReproducible(t *testing.T) {
	w := newWorld(t)
	// A directory every user can read, for the run as nobody.
	shared, err := os.MkdirTemp("", "xtraefik-repro-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(shared) })
	if err := os.Chmod(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(shared, "xtraefik")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	data, _ := os.ReadFile("../../examples/plugindemo/recipe.yaml")
	rp := filepath.Join(shared, "recipe.yaml")
	if err := os.WriteFile(rp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	w.mustRun("lock", "-f", rp)
	os.Chmod(filepath.Join(shared, "recipe.lock"), 0o644)
	inProcess := digestLine(t, w.mustRun("build", "-f", rp))

	type variant struct {
		name, tz, umask, user string
		extra                 []string
	}
	variants := []variant{
		{name: "utc", tz: "UTC", umask: "022"},
		{name: "chatham-umask077", tz: "Pacific/Chatham", umask: "077", extra: []string{"--check-reproducible"}},
		{name: "kolkata-umask002", tz: "Asia/Kolkata", umask: "002"},
	}
	if os.Geteuid() == 0 {
		variants = append(variants, variant{name: "nobody", tz: "America/St_Johns", umask: "027", user: "65534"})
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			dir := filepath.Join(shared, v.name)
			if err := os.MkdirAll(dir, 0o777); err != nil {
				t.Fatal(err)
			}
			os.Chmod(dir, 0o777)
			digestFile := filepath.Join(dir, "digest")
			args := append([]string{"build", "-f", rp, "--cache-dir", filepath.Join(dir, "cache"),
				"--oci-layout", filepath.Join(dir, "layout"), "--digest-file", digestFile}, v.extra...)
			script := fmt.Sprintf("umask %s && exec %q \"$@\"", v.umask, bin)
			argv := append([]string{"-c", script, "sh"}, args...)
			name := "sh"
			if v.user != "" {
				if _, err := exec.LookPath("setpriv"); err != nil {
					t.Skip("setpriv not installed")
				}
				argv = append([]string{"--reuid=" + v.user, "--regid=" + v.user, "--clear-groups", "sh"}, argv...)
				name = "setpriv"
			}
			cmd := exec.Command(name, argv...)
			cmd.Dir = dir
			cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "TZ=" + v.tz, "HOME=" + dir,
				"XTRAEFIK_GIT_MIRRORS=" + w.env["XTRAEFIK_GIT_MIRRORS"], "XTRAEFIK_REGISTRY_MIRRORS=" + w.env["XTRAEFIK_REGISTRY_MIRRORS"]}
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%v: %v\n%s", argv, err, out)
			}
			got, _ := os.ReadFile(digestFile)
			if d := strings.TrimSpace(string(got)); d != inProcess {
				t.Errorf("digest %s, in-process build %s", d, inProcess)
			}
		})
	}
	if inProcess != goldenDigest {
		t.Errorf("golden digest: got %s, want %s (same inputs must give the same image on every machine)", inProcess, goldenDigest)
	}

	// Every platform carries the same plugin layer, computed once.
	raw := tool(t, "skopeo", "inspect", "--raw", "oci:"+filepath.Join(shared, "utc", "layout")+":latest")
	var idx v1.IndexManifest
	if err := json.Unmarshal([]byte(raw), &idx); err != nil {
		t.Fatal(err)
	}
	var last []string
	for _, d := range idx.Manifests {
		if d.Platform == nil || d.Platform.OS == "unknown" {
			continue
		}
		m, err := os.ReadFile(filepath.Join(shared, "utc", "layout", "blobs", "sha256", d.Digest.Hex))
		if err != nil {
			t.Fatal(err)
		}
		var man v1.Manifest
		if err := json.Unmarshal(m, &man); err != nil {
			t.Fatal(err)
		}
		last = append(last, man.Layers[len(man.Layers)-1].Digest.String())
	}
	if len(last) != 3 || last[0] != last[1] || last[1] != last[2] {
		t.Errorf("plugin layers per platform = %v, want one digest on three platforms", last)
	}

	// The binary's contract for bad input: exit status 1 and one line on stderr.
	bad := filepath.Join(shared, "bad.yaml")
	os.WriteFile(bad, []byte("base: x\nplugins:\n  demo:\n    module: github.com/traefik/plugindemo\n    reff: v1\n"), 0o644)
	var stderr strings.Builder
	cmd := exec.Command(bin, "build", "-f", bad, "--oci-layout", filepath.Join(shared, "bad-out"))
	cmd.Stderr = &stderr
	err = cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Errorf("bad recipe: %v, want exit status 1", err)
	}
	if got := stderr.String(); got != "xtraefik: "+bad+":5: unknown field \"reff\" (did you mean \"ref\"?)\n" {
		t.Errorf("bad recipe stderr = %q", got)
	}

	// SOURCE_DATE_EPOCH takes over every timestamp, so it changes the digest.
	w.env["SOURCE_DATE_EPOCH"] = "0"
	if d := digestLine(t, w.mustRun("build", "-f", rp)); d == inProcess {
		t.Errorf("SOURCE_DATE_EPOCH=0 gave the same digest as the commit-time default")
	}
}
