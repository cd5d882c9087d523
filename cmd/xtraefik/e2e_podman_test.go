//go:build linux

package main

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/xtraefik/xtraefik/internal/testenv"
	"github.com/xtraefik/xtraefik/internal/traefikcfg"
)

// podmanEnv runs podman with its own storage, run directory and
// registries.conf (the loopback registry insecure), so that a test pulls
// nothing from elsewhere and leaves nothing behind.
type podmanEnv struct {
	t          *testing.T
	bin        string
	root, conf string
}

func newPodman(t *testing.T, registry string) *podmanEnv {
	t.Helper()
	bin := testenv.Tool(t, "podman") // Debian: apt-get install podman
	// podman refuses a run root longer than 50 characters: t.TempDir's
	// names are too long.
	dir, err := os.MkdirTemp("", "xt-podman-")
	if err != nil {
		t.Fatal(err)
	}
	p := &podmanEnv{t: t, bin: bin, root: dir, conf: filepath.Join(dir, "registries.conf")}
	conf := fmt.Sprintf("unqualified-search-registries = []\n\n[[registry]]\nlocation = %q\ninsecure = true\n", registry)
	if err := os.WriteFile(p.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = p.cmd("rm", "--all", "--force", "--time", "0")
		_, _ = p.cmd("volume", "rm", "--all", "--force")
		_, _ = p.cmd("system", "reset", "--force")
		_ = os.RemoveAll(dir)
	})
	return p
}

func (p *podmanEnv) cmd(args ...string) (string, error) {
	all := append([]string{"--root", filepath.Join(p.root, "storage"), "--runroot", filepath.Join(p.root, "run"),
		"--tmpdir", filepath.Join(p.root, "tmp"), "--events-backend", "file"}, args...)
	c := exec.Command(p.bin, all...)
	c.Env = append(os.Environ(), "CONTAINERS_REGISTRIES_CONF="+p.conf)
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	err := c.Run()
	return out.String(), err
}

func (p *podmanEnv) must(args ...string) string {
	p.t.Helper()
	out, err := p.cmd(args...)
	if err != nil {
		p.t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// containerArgs run a container in the host's network, under the limits
// podman needs on these machines.
func containerArgs(name string) []string {
	return []string{"run", "--name", name, "--network", "host", "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"}
}

// TestPluginsImageOnUnmodifiedTraefik pushes the plugins image alone, then
// runs the unmodified Traefik base (the real v3.6.12 binary) under podman
// in both delivery forms, with the flags xtraefik printed and a file
// provider route through plugindemo, and checks the header plugindemo adds
// reaches the backend:
//   - image volume: --mount type=image of the plugins image at /plugins-local;
//   - init container: xtraefik install-plugins, in a container of the base,
//     fills a volume that Traefik then mounts read-only at /plugins-local.
func TestPluginsImageOnUnmodifiedTraefik(t *testing.T) {
	traefik := testenv.TraefikBinary(t, "v3.6.12")
	w := newWorld(t)
	pm := newPodman(t, w.registry)

	baseRef := w.registry + "/real/traefik:v3.6.12"
	ref, err := name.ParseReference(baseRef, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, testenv.TraefikBase(t, traefik, testenv.TraefikBaseOptions{Version: "v3.6.12", OCI: true})); err != nil {
		t.Fatal(err)
	}
	rp := w.writeRecipe("real.yaml", w.demoRecipe(baseRef, ""))
	rep := w.buildJSON(filepath.Join(w.dir, "cache"), "-f", rp, "--plugins-image", w.registry+"/golden/traefik-plugins:e2e")
	if rep.PluginsImage == nil || len(rep.PluginsImage.Pushed) != 1 || len(rep.Flags) == 0 {
		t.Fatalf("report: plugins image %+v, flags %v", rep.PluginsImage, rep.Flags)
	}
	pinned := rep.PluginsImage.Pushed[0]
	pm.must("pull", "--quiet", baseRef)
	pm.must("pull", "--quiet", pinned)

	var (
		mu   sync.Mutex
		seen []string
	)
	backend := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("X-Demo"))
		mu.Unlock()
		fmt.Fprintln(rw, "backend")
	}))
	t.Cleanup(backend.Close)
	dyn := t.TempDir()
	data, err := traefikcfg.DynamicFile([]traefikcfg.Route{{Name: "demo", Rule: "PathPrefix(`/`)", EntryPoints: []string{"web"},
		Plugin: "demo", Config: map[string]any{"Headers": map[string]any{"X-Demo": "test", "X-URL": "{{URL}}"}}, Backend: backend.URL}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dyn, "dynamic.yml"), data, 0o644); err != nil {
		t.Fatal(err)
	}

	// start starts the unmodified base with mount (podman arguments placing
	// the plugins at /plugins-local) and returns its URL.
	start := func(t *testing.T, name string, mount ...string) string {
		port := freePort(t)
		args := append(containerArgs(name), "--detach")
		args = append(args, mount...)
		args = append(args, "--volume", dyn+":/dyn:ro", baseRef,
			fmt.Sprintf("--entryPoints.web.address=127.0.0.1:%d", port), "--providers.file.filename=/dyn/dynamic.yml", "--log.level=DEBUG")
		args = append(args, rep.Flags...)
		pm.must(args...)
		return fmt.Sprintf("http://127.0.0.1:%d/", port)
	}
	// probe sends one request; through says plugindemo's header reached
	// the backend with it.
	probe := func(url string) (status int, through bool, err error) {
		resp, err := http.Get(url)
		if err != nil {
			return 0, false, err
		}
		resp.Body.Close()
		mu.Lock()
		defer mu.Unlock()
		through = resp.StatusCode == http.StatusOK && len(seen) > 0 && seen[len(seen)-1] == "test"
		seen = nil
		return resp.StatusCode, through, nil
	}
	// serve starts the base and waits for a request through plugindemo.
	serve := func(t *testing.T, name string, mount ...string) {
		url := start(t, name, mount...)
		deadline := time.Now().Add(90 * time.Second)
		for {
			status, through, err := probe(url)
			if through {
				return
			}
			if time.Now().After(deadline) {
				logs, _ := pm.cmd("logs", name)
				t.Fatalf("%s: no answer through plugindemo at %s (last: status %d, %v)\n%s", name, url, status, err, logs)
			}
			time.Sleep(300 * time.Millisecond)
		}
	}

	// The control: the same container without the plugins never gets a
	// request through plugindemo (its router is left out), so the checks
	// below can fail.
	t.Run("control-without-plugins", func(t *testing.T) {
		url := start(t, "traefik-control")
		answered := 0
		for end := time.Now().Add(8 * time.Second); time.Now().Before(end); time.Sleep(300 * time.Millisecond) {
			status, through, err := probe(url)
			if through {
				t.Fatal("a request got through plugindemo without the plugins mounted")
			}
			if err == nil {
				answered++
				if status == http.StatusOK {
					t.Fatalf("the control answered 200 without plugindemo")
				}
			}
		}
		if answered == 0 {
			logs, _ := pm.cmd("logs", "traefik-control")
			t.Fatalf("the control Traefik never answered: it proves nothing\n%s", logs)
		}
	})

	t.Run("image-volume", func(t *testing.T) {
		serve(t, "traefik-image-volume", "--mount", "type=image,source="+pinned+",destination=/plugins-local")
	})

	t.Run("init-container", func(t *testing.T) {
		xt := filepath.Join(t.TempDir(), "xtraefik")
		build := exec.Command("go", "build", "-trimpath", "-o", xt, ".")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build xtraefik: %v\n%s", err, out)
		}
		pm.must("volume", "create", "plugins")
		out := pm.must(append(containerArgs("install-plugins"), "--rm", "--volume", "plugins:/plugins-local", "--volume", xt+":/xtraefik:ro",
			"--entrypoint", "/xtraefik", baseRef, "install-plugins", "--image", pinned, "--to", "/plugins-local")...)
		if !strings.Contains(out, "installed "+rep.PluginsImage.Digest) {
			t.Fatalf("install-plugins said:\n%s", out)
		}
		serve(t, "traefik-init-container", "--volume", "plugins:/plugins-local:ro")
	})
}
