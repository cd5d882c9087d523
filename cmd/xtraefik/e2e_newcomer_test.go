package main

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
)

// TestFirstCommandWithoutNetwork: the README's first command on a machine
// that reaches neither Docker Hub nor GitHub fails with a sentence that
// says so and names every way out: the mirrors and what --offline needs.
func TestFirstCommandWithoutNetwork(t *testing.T) {
	w := newWorld(t)
	rp := w.exampleRecipe()
	out := filepath.Join(w.dir, "out", "traefik-demo")

	// No Docker Hub: its name does not resolve (.invalid never does).
	w.env["XTRAEFIK_REGISTRY_MIRRORS"] = "docker.io=registry.invalid"
	_, _, err := w.run("build", "-f", rp, "--oci-layout", out)
	if err == nil {
		t.Fatal("built without a registry")
	}
	// The first failure names every way out: the registry mirror, the git
	// mirror the plugin will need next, and what --offline needs.
	for _, want := range []string{"The registry could not be reached over the network (the name registry.invalid does not resolve)",
		"--registry-mirror docker.io=MIRROR", "mirrors: registries:", "--git-mirror", "mirrors: git:",
		"--offline builds from a lock and a cache directory alone"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}

	// The registry answers, GitHub does not (a refused loopback port).
	w.env["XTRAEFIK_REGISTRY_MIRRORS"] = "docker.io=" + w.registry
	l, lerr := net.Listen("tcp", "127.0.0.1:0")
	if lerr != nil {
		t.Fatal(lerr)
	}
	refused := l.Addr().String()
	l.Close()
	w.env["XTRAEFIK_GIT_MIRRORS"] = demoGit + "=git://" + refused + "/plugindemo"
	_, _, err = w.run("build", "-f", rp, "--oci-layout", out)
	if err == nil {
		t.Fatal("built without a git server")
	}
	for _, want := range []string{"plugin demo", "The git server could not be reached over the network (connection to " + refused + " refused)",
		"--git-mirror ORIGINAL_PREFIX=MIRROR_PREFIX", "mirrors: git:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "--registry-mirror") {
		t.Errorf("a git failure names --registry-mirror:\n%v", err)
	}
}

// TestOfflineWithoutMirrors: the git cache is keyed by the recipe's URL.
// After a build through mirrors, --offline without them builds the same
// digest; after a build from the recipe's own URL, --offline with a mirror
// that does not exist does too.
func TestOfflineWithoutMirrors(t *testing.T) {
	w := newOfflineWorld(t)
	rp := w.exampleRecipe()
	w.mustRun("lock", "-f", rp)
	online := digestLine(t, w.mustRun("build", "-f", rp, "--oci-layout", filepath.Join(w.dir, "online")))
	w.stopRegistry()
	w.git.Stop()
	delete(w.env, "XTRAEFIK_GIT_MIRRORS")
	delete(w.env, "XTRAEFIK_REGISTRY_MIRRORS")
	if offline := digestLine(t, w.mustRun("build", "-f", rp, "--offline")); offline != online {
		t.Fatalf("offline without mirrors gave %s, through mirrors %s", offline, online)
	}

	// The reverse: the recipe names the git server itself.
	v := newOfflineWorld(t)
	direct := v.writeRecipe("direct.yaml", "base: docker.io/library/traefik:v3.6\nplugins:\n  demo:\n    module: "+demoModule+
		"\n    git: "+v.gitURL+v.plugin.Path+"\n    ref: "+demoVersion+"\n")
	delete(v.env, "XTRAEFIK_GIT_MIRRORS")
	v.mustRun("lock", "-f", direct)
	first := digestLine(t, v.mustRun("build", "-f", direct))
	v.stopRegistry()
	v.git.Stop()
	if again := digestLine(t, v.mustRun("build", "-f", direct, "--offline", "--git-mirror", v.gitURL+"=git://mirror.invalid/")); again != first {
		t.Fatalf("offline through a mirror gave %s, from the remote %s", again, first)
	}
}
