package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/xtraefik/xtraefik/build"
	"github.com/xtraefik/xtraefik/internal/attest"
	"github.com/xtraefik/xtraefik/internal/testenv"
)

// buildJSON runs a build with --output json in cache and decodes the report.
func (w *world) buildJSON(cache string, args ...string) *build.Report {
	w.t.Helper()
	out, errOut, err := w.runIn(cache, append([]string{"build", "--output", "json"}, args...)...)
	if err != nil {
		w.t.Fatalf("build %s: %v\n%s\n%s", strings.Join(args, " "), err, out, errOut)
	}
	var rep build.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		w.t.Fatalf("report: %v\n%s", err, out)
	}
	return &rep
}

// TestPluginsImageCLI: build --plugins-image alone pushes only the plugins
// image (no full image), one manifest per base platform, written also as
// an OCI layout and named in the digest file; its Helm values mount it by
// digest as an image volume with one localPath entry per plugin; a second
// build from another cache gives the same digest, and so does a build that
// also pushes the full image; a file-mode recipe is refused.
func TestPluginsImageCLI(t *testing.T) {
	w := newWorld(t)
	rp := w.exampleRecipe()
	ref := w.registry + "/golden/traefik-plugins:v1"
	layoutDir := filepath.Join(w.dir, "plugins-layout")
	values := filepath.Join(w.dir, "values.yaml")
	digestFile := filepath.Join(w.dir, "digest")
	rep := w.buildJSON(filepath.Join(w.dir, "cache"), "-f", rp, "--plugins-image", ref, "--plugins-layout", layoutDir,
		"--values-file", values, "--digest-file", digestFile)
	if rep.Image != nil {
		t.Errorf("a plugins-only build made a full image: %+v", rep.Image)
	}
	p := rep.PluginsImage
	if p == nil {
		t.Fatal("no plugins image in the report")
	}
	var basePlats, plats []string
	for _, bp := range rep.Base.Platforms {
		basePlats = append(basePlats, bp.Platform)
	}
	for _, pp := range p.Platforms {
		plats = append(plats, pp.Platform)
	}
	if !slices.Equal(plats, basePlats) || len(plats) != 3 {
		t.Errorf("plugins image platforms %v, base platforms %v", plats, basePlats)
	}
	repo := w.registry + "/golden/traefik-plugins"
	if !slices.Equal(p.Pushed, []string{repo + "@" + p.Digest}) || p.Layers["/plugins-local"] == "" {
		t.Errorf("pushed %v, layers %v", p.Pushed, p.Layers)
	}
	if d, _ := os.ReadFile(digestFile); strings.TrimSpace(string(d)) != p.Digest {
		t.Errorf("digest file %q, want %s", d, p.Digest)
	}
	if got := tool(t, "crane", "digest", "--insecure", ref); strings.TrimSpace(got) != p.Digest {
		t.Errorf("registry has %s, want %s", got, p.Digest)
	}
	tool(t, "crane", "validate", "--insecure", "--remote", ref)
	if got := tool(t, "skopeo", "inspect", "--raw", "oci:"+layoutDir+":latest"); !strings.Contains(got, `"xtraefik.dev/plugins":"demo=github.com/traefik/plugindemo@`+w.plugin.ReleaseCommit) {
		t.Errorf("the layout's index does not name the plugin at its commit:\n%s", got)
	}

	var v struct {
		Deployment struct {
			AdditionalVolumes []struct {
				Name  string
				Image struct {
					Reference  string `yaml:"reference"`
					PullPolicy string `yaml:"pullPolicy"`
				}
			} `yaml:"additionalVolumes"`
		}
		Experimental struct {
			LocalPlugins map[string]map[string]string `yaml:"localPlugins"`
		}
	}
	data, err := os.ReadFile(values)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	vol := v.Deployment.AdditionalVolumes
	if len(vol) != 1 || vol[0].Image.Reference != repo+"@"+p.Digest || vol[0].Image.PullPolicy != "IfNotPresent" {
		t.Errorf("values volumes %+v, want the image volume %s@%s", vol, repo, p.Digest)
	}
	want := map[string]string{"type": "localPath", "moduleName": demoModule, "volumeName": vol[0].Name,
		"mountPath": "/plugins-local/src/" + demoModule, "subPath": "src/" + demoModule}
	if got := v.Experimental.LocalPlugins["demo"]; !mapsEqual(got, want) {
		t.Errorf("localPlugins.demo %v, want %v\n%s", got, want, data)
	}

	// The init-container form, in-process: the pushed image by digest.
	dest := t.TempDir()
	var out, errOut bytes.Buffer
	root := newRoot(func(k string) string { return w.env[k] })
	root.SetArgs([]string{"install-plugins", "--image", p.Pushed[0], "--to", dest})
	root.SetOut(&out)
	root.SetErr(&errOut)
	if err := root.ExecuteContext(context.Background()); err != nil || !strings.Contains(out.String(), "installed "+p.Digest) || errOut.Len() > 0 {
		t.Errorf("install-plugins: %v\n%s\n%s", err, &out, &errOut)
	}
	if _, err := os.Stat(filepath.Join(dest, "src", demoModule, ".traefik.yml")); err != nil {
		t.Errorf("install-plugins left no plugin manifest: %v", err)
	}

	again := w.buildJSON(filepath.Join(w.dir, "cache2"), "-f", rp, "--plugins-image", w.registry+"/golden/traefik-plugins:v2", "--check-reproducible")
	if again.PluginsImage == nil || again.PluginsImage.Digest != p.Digest || !again.Reproducible {
		t.Errorf("a second build gave %+v (reproducible %v), want %s", again.PluginsImage, again.Reproducible, p.Digest)
	}
	both := w.buildJSON(filepath.Join(w.dir, "cache"), "-f", rp, "--push", w.registry+"/golden/traefik:v1", "--plugins-image", w.registry+"/golden/traefik:plugins")
	if both.Image == nil || both.PluginsImage == nil || both.PluginsImage.Digest != p.Digest || both.Image.Digest == p.Digest {
		t.Fatalf("with the full image: image %+v, plugins image %+v (want %s)", both.Image, both.PluginsImage, p.Digest)
	}
	if got := tool(t, "crane", "digest", "--insecure", w.registry+"/golden/traefik:plugins"); strings.TrimSpace(got) != p.Digest {
		t.Errorf("plugins tag in the full image's repository is %s", got)
	}
	// Different repositories: pushed side by side.
	apart := w.buildJSON(filepath.Join(w.dir, "cache"), "-f", rp, "--push", w.registry+"/apart/traefik:v1", "--plugins-image", w.registry+"/apart/plugins:v1")
	if apart.Image == nil || apart.PluginsImage == nil || len(apart.Image.Pushed) != 1 || !slices.Equal(apart.PluginsImage.Pushed, []string{w.registry + "/apart/plugins@" + p.Digest}) {
		t.Errorf("pushed apart: image %+v, plugins image %+v", apart.Image, apart.PluginsImage)
	}
	for ref, want := range map[string]string{w.registry + "/apart/traefik:v1": apart.Image.Digest, w.registry + "/apart/plugins:v1": p.Digest} {
		if got := tool(t, "crane", "digest", "--insecure", ref); strings.TrimSpace(got) != want {
			t.Errorf("%s is %s, want %s", ref, got, want)
		}
	}

	fileMode := w.writeRecipe("file-mode.yaml", w.demoRecipe("docker.io/library/traefik:v3.6", "staticConfig:\n  mode: file\n"))
	if _, _, err := w.run("build", "-f", fileMode, "--plugins-image", ref); err == nil || !strings.Contains(err.Error(), "use mode flags") {
		t.Errorf("file mode with --plugins-image: %v", err)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestPluginsImageSigned: with --sign-key, the plugins image built alone is
// signed, and its provenance, verification record and SBOM attached as
// attestations that the real cosign verifies; the SBOM names the plugins
// image, not a Traefik image.
func TestPluginsImageSigned(t *testing.T) {
	cosign := testenv.Cosign(t)
	w := newWorld(t)
	rp := w.exampleRecipe()
	key, pub := testenv.CosignKeyPair(t, cosign, "s3cret")
	ref := w.registry + "/golden/traefik-plugins:signed"
	w.env["COSIGN_PASSWORD"] = "s3cret"
	out := w.mustRun("build", "-f", rp, "--plugins-image", ref, "--sign-key", key, "--sbom-dir", filepath.Join(w.dir, "sbom"))
	if !strings.Contains(out, "plugins image signed: "+w.registry+"/golden/traefik-plugins@sha256:") {
		t.Errorf("output does not say the plugins image was signed:\n%s", out)
	}
	cosignVerifies(t, cosign, pub, ref, map[string]string{"slsaprovenance1": w.plugin.ReleaseCommit, attest.VerificationType: `"status":"OK"`,
		"spdxjson": `"xtraefik-plugins-image"`})
	sbom, err := os.ReadFile(filepath.Join(w.dir, "sbom", "sbom.spdx.json"))
	if err != nil || !strings.Contains(string(sbom), "RUNTIME_DEPENDENCY_OF") {
		t.Errorf("the SBOM file is not the plugins image's (%v)", err)
	}
}
