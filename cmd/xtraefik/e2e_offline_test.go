package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/xtraefik/xtraefik/build"
	"github.com/xtraefik/xtraefik/internal/cacherepo"
	"github.com/xtraefik/xtraefik/internal/sign"
	"github.com/xtraefik/xtraefik/internal/testenv"
	"github.com/xtraefik/xtraefik/recipe"
)

// offlineWorld is the example recipe's world with a registry and a git
// server that can be stopped.
type offlineWorld struct {
	*world
	stopRegistry func()
	git          *testenv.GitServer
	// log records every request to the registry.
	log *testenv.RequestLog
}

func newOfflineWorld(t *testing.T) *offlineWorld {
	t.Helper()
	w := &world{t: t, dir: t.TempDir(), gitRoot: t.TempDir(), env: map[string]string{}}
	upstream := testenv.Registry(t, testenv.RegistryOptions{})
	proxy, log, stop := testenv.StoppableProxy(t, upstream)
	w.registry = proxy
	w.base = testenv.PushBase(t, w.registry+"/library/traefik:v3.6", testenv.BaseOptions{
		OCI: true, Attestations: true,
		Platforms: []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}},
	})
	w.plugin = testenv.PluginRepo(t, w.gitRoot, demoModule, demoVersion)
	git := testenv.StartGitDaemon(t, w.gitRoot)
	w.gitURL = git.URL
	w.env["XTRAEFIK_GIT_MIRRORS"] = demoGit + "=" + w.gitURL + w.plugin.Path
	w.env["XTRAEFIK_REGISTRY_MIRRORS"] = "docker.io=" + w.registry
	w.env["HOME"] = w.dir
	return &offlineWorld{world: w, stopRegistry: stop, git: git, log: log}
}

// TestOffline builds online, then with the registry and the git server down
// builds the same digest --offline from the cache; an empty cache offline
// fails naming everything it lacks, and writes nothing.
func TestOffline(t *testing.T) {
	w := newOfflineWorld(t)
	rp := w.exampleRecipe()
	w.mustRun("lock", "-f", rp)
	lock, err := os.ReadFile(filepath.Join(w.dir, "example.lock"))
	if err != nil {
		t.Fatal(err)
	}
	online := digestLine(t, w.mustRun("build", "-f", rp, "--oci-layout", filepath.Join(w.dir, "online")))

	w.stopRegistry()
	w.git.Stop()

	// Pushing cannot be offline; refused before anything happens.
	_, _, err = w.run("build", "-f", rp, "--offline", "--push", w.registry+"/team/traefik:v1")
	if err == nil || !strings.Contains(err.Error(), "offline: pushing") {
		t.Fatalf("offline push: %v", err)
	}

	out := filepath.Join(w.dir, "offline")
	offline := digestLine(t, w.mustRun("build", "-f", rp, "--offline", "--oci-layout", out, "--tarball", filepath.Join(w.dir, "offline.tar")))
	if offline != online {
		t.Fatalf("offline build gave %s, online %s", offline, online)
	}
	tool(t, "skopeo", "inspect", "--raw", "oci:"+out+":latest")

	// The plugin layer was rendered once and kept, sealed. A record
	// planted by a restored cache (here: the real one, pointed at a base
	// layer without the key) is not used: the layer is rendered again.
	refs, _ := filepath.Glob(filepath.Join(w.dir, "cache", "blobs", "refs", "*"))
	layers, _ := filepath.Glob(filepath.Join(w.dir, "cache", "blobs", "sha256", "*.ok"))
	if len(refs) == 0 || len(layers) == 0 {
		t.Fatalf("no rendered layer kept (%d records, %d blobs)", len(refs), len(layers))
	}
	for _, r := range refs {
		raw, _ := os.ReadFile(r)
		mac, data, _ := strings.Cut(string(raw), "\n")
		var rec struct {
			Digest v1.Hash `json:"digest"`
		}
		if err := json.Unmarshal([]byte(data), &rec); err != nil {
			t.Fatalf("record %s: %v", r, err)
		}
		planted := strings.Replace(data, rec.Digest.Hex, strings.TrimSuffix(filepath.Base(layers[0]), ".ok"), 1)
		if err := os.WriteFile(r, []byte(mac+"\n"+planted), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if again := digestLine(t, w.mustRun("build", "-f", rp, "--offline")); again != online {
		t.Fatalf("with a planted layer record the build gave %s, want %s", again, online)
	}

	// A fresh cache offline: one error lists the base and the plugin, and
	// nothing is written (no layout, the lock as it was).
	empty := filepath.Join(w.dir, "empty-cache")
	missingOut := filepath.Join(w.dir, "missing")
	_, _, err = w.runIn(empty, "build", "-f", rp, "--offline", "--oci-layout", missingOut)
	if !errors.Is(err, build.ErrNotCached) {
		t.Fatalf("offline with an empty cache: %v", err)
	}
	for _, want := range []string{"2 things are not in the cache directory", w.base.String(), "plugindemo", "not in the cache"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not name %q:\n%v", want, err)
		}
	}
	if _, err := os.Stat(missingOut); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed offline build wrote its layout: %v", err)
	}
	if entries, err := os.ReadDir(empty); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed offline build made its cache directory: %v %v", err, entries)
	}
	if now, _ := os.ReadFile(filepath.Join(w.dir, "example.lock")); string(now) != string(lock) {
		t.Error("a failed offline build changed the lock")
	}
	// The JSON report lists the same items, for CI.
	jout, _, _ := w.runIn(empty, "build", "-f", rp, "--offline", "-o", "json")
	var rep build.Report
	if err := json.Unmarshal([]byte(jout), &rep); err != nil || rep.OK || len(rep.Missing) != 2 {
		t.Errorf("offline JSON report: %v, missing %q", err, rep.Missing)
	}
	// Without a lock, offline says so first.
	unlocked := w.writeRecipe("unlocked.yaml", "base: docker.io/library/traefik:v3.6\nplugins:\n  demo:\n    module: "+demoModule+"\n    git: "+demoGit+"\n    ref: "+demoVersion+"\n")
	if _, _, err := w.run("build", "-f", unlocked, "--offline"); !errors.Is(err, build.ErrNotCached) || !strings.Contains(err.Error(), "lock the recipe online first") {
		t.Errorf("offline without a lock: %v", err)
	}

	// Only the layers are missing: the list says which.
	blobs := filepath.Join(w.dir, "cache", "blobs", "sha256")
	layers, _ = filepath.Glob(filepath.Join(blobs, "*.ok"))
	if len(layers) == 0 {
		t.Fatal("no verified layer in the cache after two layout builds")
	}
	victim := strings.TrimSuffix(layers[0], ".ok")
	if err := os.WriteFile(victim, []byte("damaged"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err = w.run("build", "-f", rp, "--offline", "--oci-layout", missingOut)
	if !errors.Is(err, build.ErrNotCached) || !strings.Contains(err.Error(), "1 thing is not") || !strings.Contains(err.Error(), filepath.Base(victim)) {
		t.Fatalf("offline with a damaged layer: %v", err)
	}
}

// TestConcurrentBuildsShareACache runs four xtraefik processes at once on
// one empty cache directory: each builds the same digest, and the cache
// they filled then serves an offline build.
func TestConcurrentBuildsShareACache(t *testing.T) {
	w := newOfflineWorld(t)
	rp := w.exampleRecipe()
	w.mustRun("lock", "-f", rp)
	exe := filepath.Join(t.TempDir(), "xtraefik")
	if out, err := exec.Command("go", "build", "-o", exe, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cache := filepath.Join(w.dir, "shared-cache")
	env := os.Environ()
	for k, v := range w.env {
		env = append(env, k+"="+v)
	}
	digests := make([]string, 4)
	var wg sync.WaitGroup
	for i := range digests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(exe, "build", "-f", rp, "--cache-dir", cache, "--oci-layout", filepath.Join(w.dir, fmt.Sprintf("out%d", i)))
			cmd.Env = env
			out, err := cmd.Output()
			if err != nil {
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					t.Errorf("build %d: %v\n%s", i, err, ee.Stderr)
				} else {
					t.Errorf("build %d: %v", i, err)
				}
				return
			}
			for _, l := range strings.Split(string(out), "\n") {
				if d, ok := strings.CutPrefix(l, "digest: "); ok {
					digests[i] = d
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for i, d := range digests {
		if d == "" || d != digests[0] {
			t.Fatalf("build %d gave %q, build 0 %q", i, d, digests[0])
		}
	}
	if left, _ := filepath.Glob(filepath.Join(cache, "blobs", "sha256", ".tmp-*")); len(left) != 0 {
		t.Errorf("temporary files left in the shared cache: %v", left)
	}
	w.stopRegistry()
	w.git.Stop()
	_, _, err := w.runIn(cache, "build", "-f", rp, "--offline", "--oci-layout", filepath.Join(w.dir, "after"))
	if err != nil {
		t.Fatalf("offline build from the shared cache: %v", err)
	}
}

// TestCacheRepo runs a fleet whose writers sign and readers verify:
// runner A signs what it writes to a cache repository (trees and
// verdicts); a stale entry there is ignored and reported (and replaced);
// runner C, trusting another key only, ignores A's entries with warnings
// naming A's key, and verifies again; runner B, with A's public key only,
// an empty cache and the git server down, builds the same digest from the
// repository, takes A's verdict, says it only reads, and leaves the
// repository as it was (no write request at all). The fleet secret of old
// is refused with the commands that replace it.
func TestCacheRepo(t *testing.T) {
	w := newOfflineWorld(t)
	rp := w.exampleRecipe()
	w.mustRun("lock", "-f", rp)
	repo := w.registry + "/fleet/xtraefik-cache"
	keyA, pubA := testenv.OpenSSLKeyPair(t, testenv.KeyEd25519)
	_, pubOther := testenv.OpenSSLKeyPair(t, testenv.KeyEd25519)
	idA := fingerprint(t, pubA)

	report := func(cache string, args ...string) build.Report {
		t.Helper()
		out, errOut, err := w.runIn(cache, append(args, "-o", "json")...)
		var rep build.Report
		if jerr := json.Unmarshal([]byte(out), &rep); jerr != nil {
			t.Fatalf("xtraefik %s: %v / %v\n%s\n%s", strings.Join(args, " "), err, jerr, out, errOut)
		}
		if err != nil {
			t.Fatalf("xtraefik %s: %v\n%s", strings.Join(args, " "), err, errOut)
		}
		return rep
	}
	a := report(filepath.Join(w.dir, "cache-a"), "build", "-f", rp, "--cache-repo", repo, "--cache-key", keyA, "--oci-layout", filepath.Join(w.dir, "a"))
	if len(a.Warnings) != 0 {
		t.Fatalf("runner A: %v", a.Warnings)
	}
	if c := a.CacheRepo; c == nil || c.ReadOnly || c.Signer != idA {
		t.Fatalf("runner A's cache repository: %+v; want signing as %s", a.CacheRepo, idA)
	}
	lock, err := recipe.ReadLock(recipe.LockPath(rp))
	if err != nil {
		t.Fatal(err)
	}
	tag := repo + ":tree-" + strings.TrimPrefix(lock.Plugins[0].ContentHash, "sha256:")

	// A stale entry (here: not a tree at all) is ignored, said, replaced.
	stale, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(mustTag(t, tag), stale); err != nil {
		t.Fatal(err)
	}
	d := report(filepath.Join(w.dir, "cache-d"), "build", "-f", rp, "--cache-repo", repo, "--cache-key", keyA, "--oci-layout", filepath.Join(w.dir, "d"))
	if d.Image.Digest != a.Image.Digest {
		t.Fatalf("runner D built %s, A %s", d.Image.Digest, a.Image.Digest)
	}
	if !strings.Contains(strings.Join(d.Warnings, "\n"), "is not what the lock pins, ignored") {
		t.Fatalf("a stale cache entry was not reported: %v", d.Warnings)
	}

	// Another key: A's tree and verdict are ignored, naming A's key; the
	// plugin is fetched and verified again (the worker runs).
	c := report(filepath.Join(w.dir, "cache-c"), "build", "-f", rp, "--cache-repo", repo, "--cache-trust", pubOther, "--oci-layout", filepath.Join(w.dir, "c"))
	if c.Image.Digest != a.Image.Digest || len(c.Verify) != 1 || c.Verify[0].Cached || !c.Verify[0].OK {
		t.Fatalf("runner C (another key): digest %s, verdicts %+v", c.Image.Digest, c.Verify)
	}
	var treeWarned, verdictWarned bool
	for _, w := range c.Warnings {
		if !strings.Contains(w, "not signed by a key this runner trusts: signed by key \""+idA+"\"") {
			t.Errorf("runner C: unexpected warning %q", w)
		}
		treeWarned = treeWarned || strings.Contains(w, "fetched from the source")
		verdictWarned = verdictWarned || strings.Contains(w, "the plugin is verified here again")
	}
	if !treeWarned || !verdictWarned {
		t.Fatalf("runner C: the tree and the verdict signed by A were not both reported: %v", c.Warnings)
	}

	// The sources are gone: B, a reader, builds from the cache repository
	// alone and writes nothing there.
	w.git.Stop()
	before := repoState(t, repo)
	w.log.Reset()
	b := report(filepath.Join(w.dir, "cache-b"), "build", "-f", rp, "--cache-repo", repo, "--cache-trust", pubA, "--oci-layout", filepath.Join(w.dir, "b"))
	if b.Image.Digest != a.Image.Digest {
		t.Fatalf("runner B built %s from the cache repository, A %s", b.Image.Digest, a.Image.Digest)
	}
	if len(b.Warnings) != 0 {
		t.Fatalf("runner B: %v", b.Warnings)
	}
	if len(b.Verify) != 1 || !b.Verify[0].Cached || !b.Verify[0].OK {
		t.Fatalf("runner B did not take A's verdict: %+v", b.Verify)
	}
	if cr := b.CacheRepo; cr == nil || !cr.ReadOnly || cr.Signer != "" || len(cr.Trusted) != 1 || cr.Trusted[0] != idA {
		t.Fatalf("runner B's cache repository: %+v; want read only, trusting %s", b.CacheRepo, idA)
	}
	for _, r := range w.log.Requests() {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			t.Errorf("runner B, a reader, wrote to the registry: %s %s", r.Method, r.Path)
		}
	}
	if after := repoState(t, repo); !maps.Equal(before, after) {
		t.Errorf("runner B changed the cache repository:\nbefore %v\nafter  %v", before, after)
	}
	// In text, B says it only reads.
	_, errOut, err := w.runIn(filepath.Join(w.dir, "cache-b"), "build", "-f", rp, "--cache-repo", repo, "--cache-trust", pubA, "--oci-layout", filepath.Join(w.dir, "b2"))
	if err != nil || !strings.Contains(errOut, "cache repository "+repo+": read only (no --cache-key)") {
		t.Errorf("runner B in text: %v\n%s", err, errOut)
	}

	// The fleet secret of old: refused, saying what replaces it.
	w.env["XTRAEFIK_VERDICT_KEY"] = strings.Repeat("ab", 32)
	_, _, err = w.runIn(filepath.Join(w.dir, "cache-b"), "build", "-f", rp, "--cache-repo", repo, "--cache-trust", pubA, "--oci-layout", filepath.Join(w.dir, "b3"))
	if err == nil || !strings.Contains(err.Error(), "openssl genpkey -algorithm ed25519") || !strings.Contains(err.Error(), "--cache-trust") {
		t.Errorf("with $XTRAEFIK_VERDICT_KEY: %v", err)
	}
	delete(w.env, "XTRAEFIK_VERDICT_KEY")

	// Without the cache repository, an empty cache needs the git server.
	if _, _, err := w.runIn(filepath.Join(w.dir, "cache-e"), "build", "-f", rp, "--oci-layout", filepath.Join(w.dir, "e")); err == nil {
		t.Fatal("built with the git server down, no cache and no cache repository")
	}
}

// fingerprint is the fingerprint of the public key in file.
func fingerprint(t *testing.T, file string) string {
	t.Helper()
	v, err := sign.LoadPublicKey(file)
	if err != nil {
		t.Fatal(err)
	}
	id, err := cacherepo.Fingerprint(v)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// repoState maps each tag of repo to its manifest's digest.
func repoState(t *testing.T, repo string) map[string]string {
	t.Helper()
	r, err := name.NewRepository(repo)
	if err != nil {
		t.Fatal(err)
	}
	tags, err := remote.List(r)
	if err != nil {
		t.Fatal(err)
	}
	state := map[string]string{}
	for _, tag := range tags {
		desc, err := remote.Head(r.Tag(tag))
		if err != nil {
			t.Fatal(err)
		}
		state[tag] = desc.Digest.String()
	}
	if len(state) == 0 {
		t.Fatal("the cache repository is empty")
	}
	return state
}

func mustTag(t *testing.T, ref string) name.Tag {
	t.Helper()
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	return tag
}
