package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/xtraefik/xtraefik/internal/testenv"
	"github.com/xtraefik/xtraefik/recipe"
	"github.com/xtraefik/xtraefik/verify"
)

func TestMain(m *testing.M) {
	verify.MaybeRunWorker()
	os.Exit(m.Run())
}

const (
	demoModule  = "github.com/traefik/plugindemo"
	demoVersion = "v0.2.2"
	demoGit     = "https://github.com/traefik/plugindemo.git"
	pluginPath  = "plugins-local/src/github.com/traefik/plugindemo"
)

// world is one end-to-end fixture: a real Distribution registry holding a
// three-platform Traefik-like base under the name the bundled example uses, a
// real git daemon serving plugindemo built from its module, and mirrors that
// send the example recipe's public sources to them.
type world struct {
	t        *testing.T
	dir      string
	registry string
	gitRoot  string
	gitURL   string
	plugin   *testenv.Plugin
	base     v1.Hash
	env      map[string]string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{t: t, dir: t.TempDir(), gitRoot: t.TempDir(), env: map[string]string{}}
	w.registry = testenv.Registry(t, testenv.RegistryOptions{})
	w.base = testenv.PushBase(t, w.registry+"/library/traefik:v3.6", testenv.BaseOptions{
		OCI: true, Attestations: true,
		Platforms: []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}, {OS: "linux", Architecture: "arm", Variant: "v7"}},
	})
	w.plugin = testenv.PluginRepo(t, w.gitRoot, demoModule, demoVersion)
	w.gitURL = testenv.GitDaemon(t, w.gitRoot)
	w.env["XTRAEFIK_GIT_MIRRORS"] = demoGit + "=" + w.gitURL + w.plugin.Path
	w.env["XTRAEFIK_REGISTRY_MIRRORS"] = "docker.io=" + w.registry
	w.env["HOME"] = w.dir
	return w
}

// exampleRecipe copies the bundled example into the world, so its lock lands there.
func (w *world) exampleRecipe() string {
	w.t.Helper()
	data, err := os.ReadFile("../../examples/plugindemo/recipe.yaml")
	if err != nil {
		w.t.Fatal(err)
	}
	return w.writeRecipe("example.yaml", string(data))
}

func (w *world) writeRecipe(file, content string) string {
	w.t.Helper()
	p := filepath.Join(w.dir, file)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		w.t.Fatal(err)
	}
	return p
}

// run executes the CLI in-process, as main does, with the world's environment.
func (w *world) run(args ...string) (stdout, stderr string, err error) {
	w.t.Helper()
	return w.runIn(filepath.Join(w.dir, "cache"), args...)
}

// runIn is run with the cache directory cache.
func (w *world) runIn(cache string, args ...string) (stdout, stderr string, err error) {
	w.t.Helper()
	var out, errb bytes.Buffer
	root := newRoot(func(k string) string {
		if k == "GOPROXY" && w.env[k] == "" {
			// Hermetic: a test that wants a module proxy names its loopback
			// one; otherwise nothing asks the public proxy (for Traefik's
			// go.mod, when a base's binary cannot answer).
			return "off"
		}
		return w.env[k]
	})
	root.SetArgs(append(args, "--cache-dir", cache))
	root.SetOut(&out)
	root.SetErr(&errb)
	err = root.ExecuteContext(context.Background())
	return out.String(), errb.String(), err
}

func (w *world) mustRun(args ...string) string {
	w.t.Helper()
	out, errOut, err := w.run(args...)
	if err != nil {
		w.t.Fatalf("xtraefik %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

func tool(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(testenv.Tool(t, name), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func digestLine(t *testing.T, out string) string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if d, ok := strings.CutPrefix(l, "digest: "); ok {
			return d
		}
	}
	t.Fatalf("no digest in output:\n%s", out)
	return ""
}

// TestExampleRecipeEndToEnd runs the bundled example recipe, unchanged, through
// mirrors: lock, then build to all three outputs, then checks every output with
// skopeo, crane and umoci, and that a rebuild from the lock gives the same digest.
func TestExampleRecipeEndToEnd(t *testing.T) {
	w := newWorld(t)
	rp := w.exampleRecipe()

	w.mustRun("lock", "-f", rp)
	lock, err := recipe.ReadLock(recipe.LockPath(rp))
	if err != nil || lock == nil {
		t.Fatalf("lock: %v %v", lock, err)
	}
	if lock.Base.Digest != w.base.String() || lock.Base.Ref != "docker.io/library/traefik:v3.6" {
		t.Errorf("lock base = %+v, want digest %s under the logical name", lock.Base, w.base)
	}
	if len(lock.Base.Platforms) != 3 {
		t.Errorf("lock platforms = %+v", lock.Base.Platforms)
	}
	if len(lock.Plugins) != 1 || lock.Plugins[0].Commit != w.plugin.ReleaseCommit || lock.Plugins[0].Git != demoGit {
		t.Errorf("lock plugins = %+v, want commit %s and the logical git URL", lock.Plugins, w.plugin.ReleaseCommit)
	}

	layoutDir := filepath.Join(w.dir, "layout")
	tarPath := filepath.Join(w.dir, "image.tar")
	digestFile := filepath.Join(w.dir, "digest")
	pushRef := w.registry + "/out/traefik:demo"
	sbomDir := filepath.Join(w.dir, "sbom")
	out := w.mustRun("build", "-f", rp, "--oci-layout", layoutDir, "--tarball", tarPath, "--tag", "example.test/traefik:demo",
		"--push", pushRef, "--digest-file", digestFile, "--tarball-platform", "linux/amd64", "--sbom-dir", sbomDir)
	digest := digestLine(t, out)
	if !strings.Contains(out, "--experimental.localPlugins.demo.moduleName="+demoModule) {
		t.Errorf("build did not print the flag that enables the plugin:\n%s", out)
	}
	if got, _ := os.ReadFile(digestFile); strings.TrimSpace(string(got)) != digest {
		t.Errorf("digest file = %q, want %s", got, digest)
	}

	// The registry output: an index with the three platforms plus the kept
	// attestations, valid for crane and skopeo.
	tool(t, "crane", "validate", "--insecure", "--remote", pushRef)
	idx, platforms := imagePlatforms(t, tool(t, "skopeo", "inspect", "--tls-verify=false", "--raw", "docker://"+pushRef))
	if strings.Join(platforms, " ") != "linux/amd64 linux/arm64 linux/arm/v7" {
		t.Errorf("pushed index platforms = %v", platforms)
	}
	// Each platform's manifest (crane manifest) ends with the one plugin layer.
	repo := pushRef[:strings.LastIndex(pushRef, ":")]
	var pluginLayers []string
	for _, m := range idx.Manifests {
		if m.Platform == nil || m.Platform.OS == "unknown" {
			continue
		}
		var man v1.Manifest
		if err := json.Unmarshal([]byte(tool(t, "crane", "manifest", "--insecure", repo+"@"+m.Digest.String())), &man); err != nil {
			t.Fatal(err)
		}
		pluginLayers = append(pluginLayers, man.Layers[len(man.Layers)-1].Digest.String())
	}
	if want := lineWith(t, out, "plugin layer: "); len(pluginLayers) != 3 || !strings.Contains(want, pluginLayers[0]) || pluginLayers[0] != pluginLayers[1] || pluginLayers[1] != pluginLayers[2] {
		t.Errorf("plugin layers per platform %v, build reported %q", pluginLayers, want)
	}
	wantAnn := map[string]string{
		"org.opencontainers.image.base.digest": w.base.String(),
		"org.opencontainers.image.base.name":   "docker.io/library/traefik:v3.6",
		"org.opencontainers.image.version":     "v3.6.12",
		"org.opencontainers.image.created":     lock.Plugins[0].Time.Format(time.RFC3339),
	}
	for k, v := range wantAnn {
		if idx.Annotations[k] != v {
			t.Errorf("index annotation %s = %q, want %q", k, idx.Annotations[k], v)
		}
	}

	// The SBOM: written to --sbom-dir, and attached to the pushed index as a
	// referrer that registry clients discover.
	doc, err := os.ReadFile(filepath.Join(sbomDir, "sbom.spdx.json"))
	if err != nil {
		t.Fatal(err)
	}
	var spdx struct {
		SPDXVersion string `json:"spdxVersion"`
		Packages    []struct {
			Name        string `json:"name"`
			VersionInfo string `json:"versionInfo"`
			Download    string `json:"downloadLocation"`
		} `json:"packages"`
	}
	if err := json.Unmarshal(doc, &spdx); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range spdx.Packages {
		found = found || (p.Name == demoModule && p.VersionInfo == demoVersion && strings.HasSuffix(p.Download, "@"+w.plugin.ReleaseCommit))
	}
	if spdx.SPDXVersion != "SPDX-2.3" || !found {
		t.Errorf("SBOM lacks plugindemo at its commit:\n%s", doc)
	}
	subject, _ := name.NewDigest(repo + "@" + digest)
	refs, err := remote.Referrers(subject)
	if err != nil {
		t.Fatal(err)
	}
	refIdx, _ := refs.IndexManifest()
	if len(refIdx.Manifests) != 1 || refIdx.Manifests[0].ArtifactType != "application/spdx+json" {
		t.Errorf("referrers of %s = %+v", subject, refIdx.Manifests)
	}
	cfg := tool(t, "skopeo", "inspect", "--tls-verify=false", "--override-arch", "arm64", "docker://"+pushRef)
	for _, want := range []string{`"io.github.xtraefik.plugin.demo.commit": "` + w.plugin.ReleaseCommit, `"io.github.xtraefik.plugin.demo.module": "` + demoModule} {
		if !strings.Contains(cfg, want) {
			t.Errorf("skopeo inspect lacks %s:\n%s", want, cfg)
		}
	}

	// The tarball: one platform, docker-load-able.
	tool(t, "crane", "validate", "--tarball", tarPath)
	tool(t, "skopeo", "inspect", "docker-archive:"+tarPath)

	// The layout: skopeo reads it, umoci unpacks each platform by its own
	// tag (umoci 0.4 cannot choose among the platforms of an index), and
	// the plugin is where Traefik looks, without .git.
	tool(t, "skopeo", "inspect", "--raw", "oci:"+layoutDir+":demo")
	tool(t, "umoci", "ls", "--layout", layoutDir)
	for _, arch := range []string{"amd64", "arm64", "arm-v7"} {
		assertUnpacked(t, layoutDir, "demo-linux-"+arch, "/")
	}

	// Same recipe + lock, another output: the same digest.
	again := digestLine(t, w.mustRun("build", "-f", rp, "--oci-layout", filepath.Join(w.dir, "layout2")))
	if again != digest {
		t.Errorf("rebuild digest %s, first build %s", again, digest)
	}
	// The same mirrors given in the recipe instead of the environment, and as
	// flags: mirrors change where bytes come from, never the image.
	data, _ := os.ReadFile(rp)
	inRecipe := w.writeRecipe("mirrored.yaml", string(data)+fmt.Sprintf(
		"mirrors:\n  git:\n    - url: %s\n      insteadOf: %s\n  registries:\n    - prefix: docker.io\n      location: %s\n",
		w.gitURL+w.plugin.Path, demoGit, w.registry))
	gitMirror, regMirror := w.env["XTRAEFIK_GIT_MIRRORS"], w.env["XTRAEFIK_REGISTRY_MIRRORS"]
	delete(w.env, "XTRAEFIK_GIT_MIRRORS")
	delete(w.env, "XTRAEFIK_REGISTRY_MIRRORS")
	w.mustRun("lock", "-f", inRecipe)
	if d := digestLine(t, w.mustRun("build", "-f", inRecipe)); d != digest {
		t.Errorf("recipe mirrors gave %s, environment mirrors %s", d, digest)
	}
	flagged := w.writeRecipe("flagged.yaml", string(data))
	if d := digestLine(t, w.mustRun("build", "-f", flagged, "--git-mirror", gitMirror, "--registry-mirror", regMirror)); d != digest {
		t.Errorf("flag mirrors gave %s, environment mirrors %s", d, digest)
	}
	w.env["XTRAEFIK_GIT_MIRRORS"], w.env["XTRAEFIK_REGISTRY_MIRRORS"] = gitMirror, regMirror

	// The pushed manifest is the one reported.
	ref, _ := name.ParseReference(pushRef)
	desc, err := remote.Head(ref, remote.WithAuthFromKeychain(authn.DefaultKeychain))
	if err != nil || desc.Digest.String() != digest {
		t.Errorf("registry has %v (%v), build reported %s", desc, err, digest)
	}
}

// assertUnpacked unpacks layout:tag with umoci and checks the plugin tree.
func assertUnpacked(t *testing.T, layoutDir, tag, workdir string) {
	t.Helper()
	bundle := filepath.Join(t.TempDir(), "bundle")
	tool(t, "umoci", "unpack", "--rootless", "--image", layoutDir+":"+tag, bundle)
	root := filepath.Join(bundle, "rootfs", workdir, pluginPath)
	for _, f := range []string{".traefik.yml", "demo.go", "go.mod"} {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			t.Errorf("unpacked image lacks %s: %v", f, err)
		}
	}
	filepath.Walk(filepath.Join(bundle, "rootfs"), func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Name() == ".git" {
			t.Errorf("unpacked image holds %s", p)
		}
		return nil
	})
}

// imagePlatforms parses an index and lists the platforms of its runnable images
// (attestation manifests, platform unknown/unknown, left out).
func imagePlatforms(t *testing.T, raw string) (*v1.IndexManifest, []string) {
	t.Helper()
	var idx v1.IndexManifest
	if err := json.Unmarshal([]byte(raw), &idx); err != nil {
		t.Fatalf("not an index: %v\n%s", err, raw)
	}
	var platforms []string
	for _, m := range idx.Manifests {
		if m.Platform != nil && m.Platform.OS != "unknown" {
			platforms = append(platforms, m.Platform.String())
		}
	}
	return &idx, platforms
}
