package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/xtraefik/xtraefik/build"
	"github.com/xtraefik/xtraefik/internal/testenv"
	"github.com/xtraefik/xtraefik/recipe"
)

// demoRecipe is a recipe for plugindemo served by the world's git daemon.
func (w *world) demoRecipe(base, extra string) string {
	return fmt.Sprintf("base: %s\nplugins:\n  demo:\n    module: %s\n    git: %s%s\n    ref: %s\n%s", base, demoModule, w.gitURL, w.plugin.Path, demoVersion, extra)
}

// TestBaseForms builds from each base transport: a registry index, an OCI
// layout holding one image with a non-root WORKDIR, and a docker archive; and
// checks the plugin lands under each base's WORKDIR, in every output form.
func TestBaseForms(t *testing.T) {
	w := newWorld(t)
	amd64 := []v1.Platform{{OS: "linux", Architecture: "amd64"}}
	baseLayout := filepath.Join(w.dir, "base-layout")
	testenv.WriteBaseLayout(t, baseLayout, "v3.6", testenv.BaseOptions{OCI: true, Single: true, Platforms: amd64, WorkingDir: "/app"})
	baseArchive := filepath.Join(w.dir, "base.tar")
	testenv.WriteBaseArchive(t, baseArchive, "traefik:v3.6", testenv.BaseOptions{Single: true, Platforms: amd64})

	tests := []struct {
		name, base, workdir string
	}{
		{"registry", "docker://" + w.registry + "/library/traefik:v3.6", "/"},
		{"oci-layout", "oci:" + baseLayout + ":v3.6", "/app"},
		{"docker-archive", "docker-archive:" + baseArchive, "/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rp := w.writeRecipe(tt.name+".yaml", w.demoRecipe(tt.base, ""))
			layoutDir := filepath.Join(w.dir, tt.name+"-out")
			tarPath := filepath.Join(w.dir, tt.name+".tar")
			push := w.registry + "/forms/" + tt.name + ":latest"
			out := w.mustRun("build", "-f", rp, "--oci-layout", layoutDir, "--tarball", tarPath, "--push", push, "--tag", "forms/"+tt.name+":latest")
			digest := digestLine(t, out)

			tool(t, "crane", "validate", "--tarball", tarPath)
			tool(t, "crane", "validate", "--insecure", "--remote", push)
			tool(t, "skopeo", "inspect", "--tls-verify=false", "docker://"+push)
			tool(t, "skopeo", "inspect", "docker-archive:"+tarPath)
			if tt.name == "registry" {
				return // the index case is unpacked in TestExampleRecipeEndToEnd
			}
			insp := tool(t, "skopeo", "inspect", "--raw", "oci:"+layoutDir+":latest")
			if !strings.Contains(insp, "application/vnd.oci.image.manifest.v1+json") && !strings.Contains(insp, "application/vnd.docker.distribution.manifest.v2+json") {
				t.Errorf("layout of a single-image base is not a single manifest:\n%s", insp)
			}
			assertUnpacked(t, layoutDir, "latest", tt.workdir)
			// Docker bases stay Docker, OCI bases stay OCI: one family per
			// manifest in the registry. The OCI layout is always OCI.
			wantLayer := "application/vnd.oci.image.layer.v1.tar+gzip"
			if tt.name == "docker-archive" {
				wantLayer = "application/vnd.docker.image.rootfs.diff.tar.gzip"
			}
			assertLayerTypes(t, tool(t, "skopeo", "inspect", "--tls-verify=false", "--raw", "docker://"+push), wantLayer)
			assertLayerTypes(t, insp, "application/vnd.oci.image.layer.v1.tar+gzip")
			if !strings.HasPrefix(digest, "sha256:") {
				t.Errorf("digest %q", digest)
			}
		})
	}
}

// pluginFromModule writes plugindemo's files into a new repository under the
// world's git root, lets change alter it, commits and tags v1, and returns the
// recipe snippet for it.
func (w *world) customPlugin(t *testing.T, module string, change func(r *testenv.Repo)) string {
	t.Helper()
	dir := filepath.Join(w.gitRoot, module)
	r := testenv.NewRepo(t, dir)
	src := testenv.ModuleDir(t, demoModule, demoVersion)
	for _, f := range []string{"demo.go", "go.mod", "readme.md"} {
		data, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		text := strings.ReplaceAll(string(data), demoModule, module)
		r.WriteFile(f, strings.ReplaceAll(text, "package plugindemo", "package "+path.Base(module)))
	}
	r.WriteFile(".traefik.yml", strings.Join([]string{
		"displayName: Custom", "type: middleware", "import: " + module, "summary: test plugin",
		"testData:", "  Headers:", "    X-Demo: test"}, "\n")+"\n")
	change(r)
	r.Commit("plugin")
	r.Tag("v1")
	return fmt.Sprintf("  bad:\n    module: %s\n    git: %s%s\n    ref: v1\n", module, w.gitURL, module)
}

// TestBadInputs: every bad input gets one clear error, a non-zero exit, and no
// output at all: no layout, no tarball, no digest file, no pushed tag.
func TestBadInputs(t *testing.T) {
	w := newWorld(t)
	base := "docker://" + w.registry + "/library/traefik:v3.6"
	good := w.demoRecipe(base, "")
	plugin := func(snippet string) string { return w.demoRecipe(base, "") + snippet }

	symlink := w.customPlugin(t, "example.com/symlink", func(r *testenv.Repo) { r.Symlink("passwd", "../../../../etc/passwd") })
	manifest := w.customPlugin(t, "example.com/manifest", func(r *testenv.Repo) {
		r.WriteFile(".traefik.yml", "type: middleware\nimport: example.com/manifest\nsummary: s\ntestData: {}\n")
	})
	vendored := w.customPlugin(t, "example.com/notvendored", func(r *testenv.Repo) {
		r.WriteFile("extra.go", "package notvendored\n\nimport _ \"github.com/pkg/errors\"\n")
	})
	unsafeImport := w.customPlugin(t, "example.com/unsafe", func(r *testenv.Repo) {
		r.WriteFile("extra.go", "package unsafe\n\nimport _ \"unsafe\"\n")
	})
	dotdot := w.dotdotPlugin(t)
	submodule := w.customPlugin(t, "example.com/submodule", func(r *testenv.Repo) {
		r.Gitlink("vendor/github.com/pkg/errors", strings.Repeat("ab", 20))
	})
	lfs := w.customPlugin(t, "example.com/lfs", func(r *testenv.Repo) {
		r.WriteFile("data.bin", "version https://git-lfs.github.com/spec/v1\noid sha256:"+strings.Repeat("0", 64)+"\nsize 12\n")
	})

	tests := []struct {
		name, recipe, want string
	}{
		{"unknown field", strings.Replace(good, "    ref:", "    reff:", 1), `.yaml:6: unknown field "reff" (did you mean "ref"?)`},
		{"duplicate module", good + fmt.Sprintf("  again:\n    module: %s\n    ref: v1\n", demoModule), `module github.com/traefik/plugindemo is already used by plugin "again"`},
		{"leading slash", strings.Replace(good, "module: github.com", "module: /github.com", 1), `plugin name "/github.com/traefik/plugindemo" should not start or end with a /`},
		{"trailing slash", strings.Replace(good, "module: "+demoModule, "module: "+demoModule+"/", 1), `should not start or end with a /`},
		{"unreachable remote", strings.Replace(good, w.gitURL, "git://127.0.0.1:1/", 1), "git://127.0.0.1:1/" + w.plugin.Path},
		{"unknown ref", strings.Replace(good, "ref: "+demoVersion, "ref: v9.9.9", 1), "v9.9.9"},
		{"missing base", strings.Replace(good, "library/traefik:v3.6", "library/traefik:nope", 1), "library/traefik:nope"},
		{"symlink escape", plugin(symlink), `symlink "passwd" points to "../../../../etc/passwd", outside the plugin`},
		{"dotdot path", plugin(dotdot), `unsafe path: tree entry ".."`},
		{"submodule", plugin(submodule), "plugin uses git submodules (vendor/github.com/pkg/errors): Traefik would not fetch them either; vendor the code instead"},
		{"lfs pointer", plugin(lfs), "data.bin is a Git LFS pointer, not the file: Traefik would load the pointer; commit the content itself"},
		{"bad manifest", plugin(manifest), "Traefik would refuse its manifest: example.com/manifest: missing displayName in .traefik.yml"},
		{"not vendored", plugin(vendored), "not vendored: github.com/pkg/errors"},
		{"unsafe import", plugin(unsafeImport), "unsafe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rp := w.writeRecipe("bad.yaml", tt.recipe)
			outDir := t.TempDir()
			layoutDir := filepath.Join(outDir, "layout")
			tarPath := filepath.Join(outDir, "image.tar")
			digestFile := filepath.Join(outDir, "digest")
			push := w.registry + "/bad/" + strings.ReplaceAll(tt.name, " ", "-") + ":v1"
			stdout, stderr, err := w.run("build", "-f", rp, "--oci-layout", layoutDir, "--tarball", tarPath, "--push", push, "--digest-file", digestFile)
			if err == nil {
				t.Fatalf("build succeeded, want an error containing %q\n%s", tt.want, stdout)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error:\n  %v\nwant it to contain %q\nstderr:\n%s", err, tt.want, stderr)
			}
			if strings.Contains(stdout, "digest:") {
				t.Errorf("a failed build printed a digest:\n%s", stdout)
			}
			entries, _ := os.ReadDir(outDir)
			if len(entries) != 0 {
				t.Errorf("a failed build left %v in the output directory", entries)
			}
			ref, _ := name.ParseReference(push)
			if _, err := remote.Head(ref); err == nil {
				t.Errorf("a failed build pushed %s", push)
			}
		})
	}
}

// dotdotPlugin commits a tree with a ".." directory, which git's porcelain
// refuses but its object model (and a hostile server) allows.
func (w *world) dotdotPlugin(t *testing.T) string {
	t.Helper()
	module := "example.com/dotdot"
	snippet := w.customPlugin(t, module, func(*testenv.Repo) {})
	dir := filepath.Join(w.gitRoot, module)
	git := func(stdin string, args ...string) string {
		cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com",
			"GIT_AUTHOR_DATE=2024-01-01T00:00:00Z", "GIT_COMMITTER_DATE=2024-01-01T00:00:00Z")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("git %v: %v", args, err)
		}
		return strings.TrimSpace(string(out))
	}
	blob := git("escaped\n", "hash-object", "-w", "--stdin")
	inner := git(fmt.Sprintf("100644 blob %s\tevil\n", blob), "mktree")
	root := git("", "rev-parse", "HEAD^{tree}")
	listing := git("", "ls-tree", root)
	tree := git(listing+"\n"+fmt.Sprintf("040000 tree %s\t..\n", inner), "mktree")
	commit := git("dotdot\n", "commit-tree", tree, "-p", "HEAD")
	git("", "tag", "-f", "v1", commit)
	return snippet
}

// TestFrozen: --frozen refuses a tag that moved and a base that moved, naming
// old and new; without it the lock still pins the old commit and base digest.
func TestFrozen(t *testing.T) {
	w := newWorld(t)
	rp := w.exampleRecipe()
	if _, _, err := w.run("build", "-f", rp, "--frozen"); err == nil || !strings.Contains(err.Error(), "no lock file") {
		t.Fatalf("--frozen without a lock: %v", err)
	}
	w.mustRun("lock", "-f", rp)
	first := digestLine(t, w.mustRun("build", "-f", rp, "--frozen"))

	// The tag is re-pointed upstream.
	w.plugin.Repo.MoveTag(demoVersion, w.plugin.HeadCommit)
	_, _, err := w.run("build", "-f", rp, "--frozen")
	want := fmt.Sprintf("tag v0.2.2 now points to %s, the lock has %s", w.plugin.HeadCommit, w.plugin.ReleaseCommit)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("moved tag with --frozen: %v\nwant %q", err, want)
	}
	if d := digestLine(t, w.mustRun("build", "-f", rp)); d != first {
		t.Errorf("without --frozen the lock must still pin the old commit: digest %s, want %s", d, first)
	}
	w.plugin.Repo.MoveTag(demoVersion, w.plugin.ReleaseCommit)

	// The base tag is re-pointed to another image.
	moved := testenv.PushBase(t, w.registry+"/library/traefik:v3.6", testenv.BaseOptions{OCI: true, Version: "v3.6.13"})
	lock, _ := recipe.ReadLock(recipe.LockPath(rp))
	_, _, err = w.run("build", "-f", rp, "--frozen")
	want = fmt.Sprintf("base docker.io/library/traefik:v3.6 moved: the lock has %s, it now resolves to %s", lock.Base.Digest, moved)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("moved base with --frozen: %v\nwant %q", err, want)
	}
	if d := digestLine(t, w.mustRun("build", "-f", rp)); d != first {
		t.Errorf("without --frozen the lock must still pin the old base: digest %s, want %s", d, first)
	}

	// lock keeps what the lock pins; --update prints what moved, then the
	// next build follows.
	if out := w.mustRun("lock", "-f", rp); !strings.Contains(out, "is up to date") {
		t.Errorf("lock without --update re-resolved pinned entries:\n%s", out)
	}
	out := w.mustRun("lock", "-f", rp, "--update")
	if !strings.Contains(out, fmt.Sprintf("base docker.io/library/traefik:v3.6: %s -> %s", lock.Base.Digest, moved)) {
		t.Errorf("lock did not report the moved base:\n%s", out)
	}
	if d := digestLine(t, w.mustRun("build", "-f", rp, "--frozen")); d == first {
		t.Errorf("after re-locking, the image must change")
	}
}

// TestCredentials: a registry with htpasswd auth read through a Docker config
// file, and a smart-HTTP git server with basic auth from the environment.
func TestCredentials(t *testing.T) {
	w := newWorld(t)
	reg := testenv.Registry(t, testenv.RegistryOptions{User: "ci", Password: "s3cret"})
	cfgDir := t.TempDir()
	auth := fmt.Sprintf(`{"auths":{%q:{"auth":"Y2k6czNjcmV0"}}}`, reg) // ci:s3cret
	if err := os.WriteFile(filepath.Join(cfgDir, "config.json"), []byte(auth), 0o600); err != nil {
		t.Fatal(err)
	}
	// Through the CLI's environment, which the session reads in place of
	// the process's.
	w.env["DOCKER_CONFIG"] = cfgDir
	testenv.PushBase(t, reg+"/library/traefik:v3.6", testenv.BaseOptions{OCI: true, Auth: authFor("ci", "s3cret")})

	gitHTTP := testenv.GitHTTP(t, w.gitRoot, "git", "t0ken")
	rp := w.writeRecipe("auth.yaml", fmt.Sprintf("base: %s/library/traefik:v3.6\nplugins:\n  demo:\n    module: %s\n    git: %s%s\n    ref: %s\n", reg, demoModule, gitHTTP, w.plugin.Path, demoVersion))

	if _, _, err := w.run("build", "-f", rp); err == nil || !strings.Contains(err.Error(), "authentication") {
		t.Errorf("git without credentials: %v", err)
	}
	w.env["XTRAEFIK_GIT_USERNAME"] = "git"
	w.env["XTRAEFIK_GIT_TOKEN"] = "t0ken"
	push := reg + "/out/traefik:auth"
	out := w.mustRun("build", "-f", rp, "--push", push)
	if strings.Contains(out, "t0ken") {
		t.Errorf("output leaks the token:\n%s", out)
	}
	tool(t, "skopeo", "inspect", "--tls-verify=false", "--creds", "ci:s3cret", "docker://"+push)

	// Podman's auth file works the same way (REGISTRY_AUTH_FILE), and without
	// any credentials the registry refuses the build.
	podmanAuth := filepath.Join(t.TempDir(), "auth.json")
	if err := os.WriteFile(podmanAuth, []byte(auth), 0o600); err != nil {
		t.Fatal(err)
	}
	w.env["DOCKER_CONFIG"] = t.TempDir()
	// The refusal says what the registry said and that no credentials were found.
	if _, _, err := w.run("build", "-f", rp); err == nil || !strings.Contains(err.Error(), "UNAUTHORIZED") || !strings.Contains(err.Error(), "(credentials: none") {
		t.Errorf("registry without credentials: %v", err)
	}
	w.env["REGISTRY_AUTH_FILE"] = podmanAuth
	w.mustRun("build", "-f", rp, "--push", reg+"/out/traefik:podman-auth")
}

func authFor(user, pass string) authn.Authenticator {
	return &authn.Basic{Username: user, Password: pass}
}

func assertLayerTypes(t *testing.T, rawManifest, want string) {
	t.Helper()
	var m v1.Manifest
	if err := json.Unmarshal([]byte(rawManifest), &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Layers) == 0 {
		t.Fatalf("no layers in %s", rawManifest)
	}
	for _, l := range m.Layers {
		if string(l.MediaType) != want {
			t.Errorf("layer %s is %s, want only %s", l.Digest, l.MediaType, want)
		}
	}
}

// TestRebaseAndUpdate: a new base patch release is picked up by rebase with the
// plugin layer unchanged; lock --update <alias> moves one plugin and says how.
func TestRebaseAndUpdate(t *testing.T) {
	w := newWorld(t)
	rp := w.exampleRecipe()
	w.mustRun("lock", "-f", rp)
	before := w.mustRun("build", "-f", rp)
	layer := lineWith(t, before, "plugin layer: ")

	old, _ := recipe.ReadLock(recipe.LockPath(rp))
	patched := testenv.PushBase(t, w.registry+"/library/traefik:v3.6", testenv.BaseOptions{OCI: true, Version: "v3.6.13",
		Platforms: []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}, {OS: "linux", Architecture: "arm", Variant: "v7"}}})
	// A rebase refused (here: an output it may not overwrite) leaves the lock
	// as it was.
	taken := filepath.Join(w.dir, "taken")
	if err := os.MkdirAll(filepath.Join(taken, "mine"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, _, err := w.run("rebase", "-f", rp, "--oci-layout", taken); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("rebase onto a taken output: %v", err)
	}
	if l, _ := recipe.ReadLock(recipe.LockPath(rp)); l.Base.Digest != old.Base.Digest {
		t.Errorf("a failed rebase moved the lock to %s (was %s)", l.Base.Digest, old.Base.Digest)
	}
	after := w.mustRun("rebase", "-f", rp, "--oci-layout", filepath.Join(w.dir, "rebased"))
	if !strings.Contains(after, fmt.Sprintf("base docker.io/library/traefik:v3.6: %s -> %s", old.Base.Digest, patched)) {
		t.Errorf("rebase did not print the base change:\n%s", after)
	}
	if got := lineWith(t, after, "plugin layer: "); got != layer {
		t.Errorf("rebase changed the plugin layer: %s, before %s", got, layer)
	}
	if digestLine(t, after) == digestLine(t, before) {
		t.Errorf("rebase kept the old image digest")
	}
	l, _ := recipe.ReadLock(recipe.LockPath(rp))
	if l.Base.Digest != patched.String() || l.Plugins[0].Commit != old.Plugins[0].Commit {
		t.Errorf("lock after rebase: base %s (want %s), plugin %s (want %s)", l.Base.Digest, patched, l.Plugins[0].Commit, old.Plugins[0].Commit)
	}

	w.plugin.Repo.MoveTag(demoVersion, w.plugin.HeadCommit)
	if _, _, err := w.run("lock", "-f", rp, "--update", "nope"); err == nil || !strings.Contains(err.Error(), "no plugin with that alias") {
		t.Errorf("--update of an unknown alias: %v", err)
	}
	out := w.mustRun("lock", "-f", rp, "--update", "demo")
	want := fmt.Sprintf("plugin demo (%s %s): commit %s -> %s", demoModule, demoVersion, w.plugin.ReleaseCommit, w.plugin.HeadCommit)
	if !strings.Contains(out, want) || !strings.Contains(out, "content sha256:") {
		t.Errorf("lock --update demo printed:\n%s\nwant %q and the content hash change", out, want)
	}
}

func lineWith(t *testing.T, out, prefix string) string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	t.Fatalf("no %q line in:\n%s", prefix, out)
	return ""
}

// TestVerifyCommand: the verification stage alone, as CI and plugin authors run
// it, in both report formats.
func TestVerifyCommand(t *testing.T) {
	w := newWorld(t)
	base := "docker://" + w.registry + "/library/traefik:v3.6"
	vendored := w.customPlugin(t, "example.com/notvendored", func(r *testenv.Repo) {
		r.WriteFile("extra.go", "package notvendored\n\nimport _ \"github.com/pkg/errors\"\n")
	})
	rp := w.writeRecipe("verify.yaml", w.demoRecipe(base, "")+vendored)
	out, _, err := w.run("verify", "-f", rp, "--output", "json")
	var se *build.StageError
	if err == nil || !strings.Contains(err.Error(), "verification failed: bad (example.com/notvendored): not vendored: github.com/pkg/errors") ||
		!errors.Is(err, build.ErrVerificationFailed) || !errors.As(err, &se) || se.Stage != build.StageVerify || se.Plugin != "bad" {
		t.Errorf("verify error = %v, want ErrVerificationFailed, a StageError naming verify and bad", err)
	}
	var rep build.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--output json is not JSON: %v\n%s", err, out)
	}
	if rep.OK || len(rep.Verify) != 2 || len(rep.Plugins) != 2 || !strings.Contains(rep.Error, "not vendored") {
		t.Errorf("report = %+v", rep)
	}
	for _, r := range rep.Verify {
		if (r.Alias == "demo") != r.OK || r.Commit == "" || r.Interpreter == "" {
			t.Errorf("result %+v", r)
		}
	}

	// A plugin author's working copy, module name from its go.mod.
	src := testenv.ModuleDir(t, demoModule, demoVersion)
	dir := filepath.Join(t.TempDir(), "plugindemo")
	if out, err := exec.Command("cp", "-r", src, dir).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	text := w.mustRun("verify", "--dir", dir)
	if !strings.Contains(text, demoModule) || !strings.Contains(text, "1 plugin(s): 1 OK, 0 FAIL") {
		t.Errorf("verify --dir:\n%s", text)
	}
	// --expect-status holds the plugin's answer to the recipe's expectStatus rule.
	if text := w.mustRun("verify", "--dir", dir, "--expect-status", "200"); !strings.Contains(text, "passed the request on (200), as expected") {
		t.Errorf("verify --dir --expect-status 200:\n%s", text)
	}
	if out, stderr, err := w.run("verify", "--dir", dir, "--expect-status", "403"); err == nil ||
		!strings.Contains(out+stderr, "expected status 403, but the plugin passed the request on (200)") {
		t.Errorf("verify --dir --expect-status 403 on plugindemo, which passes the request on: err %v\n%s%s", err, out, stderr)
	}
	// A Traefik v2.11.0 target is checked with yaegi v0.15.1: a worker xtraefik
	// builds on first use with the Go toolchain the tests run with.
	text = w.mustRun("verify", "--dir", dir, "--traefik-version", "v2.11.0")
	if !strings.Contains(text, "yaegi v0.15.1") || !strings.Contains(text, "1 plugin(s): 1 OK, 0 FAIL") {
		t.Errorf("verify --traefik-version v2.11.0 does not say which interpreter Traefik v2.11 uses:\n%s", text)
	}
}

// TestPlatformsAndOrder: --platform narrows the index; plugin order in the recipe
// does not change the image; --values-file writes the Helm snippet.
func TestPlatformsAndOrder(t *testing.T) {
	w := newWorld(t)
	other := w.customPlugin(t, "example.com/other", func(*testenv.Repo) {})
	base := "docker://" + w.registry + "/library/traefik:v3.6"
	ab := w.writeRecipe("ab.yaml", w.demoRecipe(base, other))
	// The same plugins, the other way round.
	ba := w.writeRecipe("ba.yaml", fmt.Sprintf("base: %s\nplugins:\n%s  demo:\n    module: %s\n    git: %s%s\n    ref: %s\n", base, other, demoModule, w.gitURL, w.plugin.Path, demoVersion))
	values := filepath.Join(w.dir, "values.yaml")
	d1 := digestLine(t, w.mustRun("build", "-f", ab, "--values-file", values))
	d2 := digestLine(t, w.mustRun("build", "-f", ba))
	if d1 != d2 {
		t.Errorf("plugin order changed the image: %s vs %s", d1, d2)
	}
	v, err := os.ReadFile(values)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"additionalArguments:", "--experimental.localPlugins.bad.moduleName=example.com/other", "--experimental.localPlugins.demo.moduleName=" + demoModule} {
		if !strings.Contains(string(v), want) {
			t.Errorf("values file lacks %q:\n%s", want, v)
		}
	}

	push := w.registry + "/narrow/traefik:arm64"
	w.mustRun("build", "-f", ab, "--platform", "linux/arm64", "--push", push)
	_, got := imagePlatforms(t, tool(t, "crane", "manifest", "--insecure", push))
	if strings.Join(got, " ") != "linux/arm64" {
		t.Errorf("--platform linux/arm64 gave platforms %v", got)
	}
}
