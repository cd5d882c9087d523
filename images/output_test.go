package images

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/xtraefik/xtraefik/internal/testenv"
)

// hostPlatform is what WriteTarball picks by default.
func hostPlatform() v1.Platform { return v1.Platform{OS: "linux", Architecture: runtime.GOARCH} }

// otherPlatform is a platform that is not the host's.
func otherPlatform() v1.Platform {
	if runtime.GOARCH == "s390x" {
		return v1.Platform{OS: "linux", Architecture: "ppc64le"}
	}
	return v1.Platform{OS: "linux", Architecture: "s390x"}
}

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(h[:])
}

func TestWriteLayoutIsReadableByOthers(t *testing.T) {
	skopeo := needTool(t, "skopeo")
	umoci := needTool(t, "umoci")
	base := resolveSynthetic(t, testenv.BaseOptions{
		OCI: true, Attestations: true, WorkingDir: "/app",
		Platforms: []v1.Platform{hostPlatform(), otherPlatform()},
	}, Options{})
	res, err := Assemble(ctx(t), base, demoAddition(t))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "out")
	if err := WriteLayout(ctx(t), dir, res, LayoutOptions{Tag: "v1"}); err != nil {
		t.Fatal(err)
	}

	// go-containerregistry: every blob present and matching its digest.
	lp, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	ii, _ := lp.ImageIndex()
	im, _ := ii.IndexManifest()
	if im.Manifests[0].Digest != res.Digest || im.Manifests[0].Annotations[annotationRefName] != "v1" {
		t.Fatalf("index.json %+v", im.Manifests)
	}
	idx, _ := ii.ImageIndex(res.Digest)
	if err := validate.Index(idx); err != nil {
		t.Fatalf("layout does not validate: %v", err)
	}
	// Readable by a scanner or CI step running as another user.
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		want := fs.FileMode(0o644)
		if d.IsDir() {
			want = 0o755
		}
		if info, _ := d.Info(); info.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", p, info.Mode().Perm(), want)
		}
		return nil
	})

	// skopeo: the raw index is ours, and each platform inspects.
	raw := run(t, skopeo, "inspect", "--raw", "oci:"+dir+":v1")
	if sha256Hex(raw) != res.Digest.String() {
		t.Errorf("skopeo sees index %s, want %s", sha256Hex(raw), res.Digest)
	}
	var inspected struct {
		Architecture string
		Labels       map[string]string
		Layers       []string
	}
	other := otherPlatform()
	out := run(t, skopeo, "--override-os", "linux", "--override-arch", other.Architecture, "inspect", "oci:"+dir+":v1")
	if err := json.Unmarshal([]byte(out), &inspected); err != nil {
		t.Fatal(err)
	}
	if inspected.Architecture != other.Architecture || inspected.Labels["io.xtraefik.plugins"] == "" ||
		inspected.Layers[len(inspected.Layers)-1] != res.Layers["/app"].String() {
		t.Errorf("skopeo inspect %s: %s", other.Architecture, out)
	}

	// umoci takes one manifest: write the host platform alone and unpack it.
	single := resolveSynthetic(t, testenv.BaseOptions{OCI: true, Single: true, WorkingDir: "/app", Platforms: []v1.Platform{hostPlatform()}}, Options{})
	sres, err := Assemble(ctx(t), single, demoAddition(t))
	if err != nil {
		t.Fatal(err)
	}
	sdir := filepath.Join(t.TempDir(), "single")
	if err := WriteLayout(ctx(t), sdir, sres, LayoutOptions{Tag: "v1"}); err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(t.TempDir(), "bundle")
	run(t, umoci, "unpack", "--rootless", "--image", sdir+":v1", bundle)
	rootfs := filepath.Join(bundle, "rootfs")
	demo := filepath.Join(rootfs, "app/plugins-local/src/github.com/acme/demo")
	for _, c := range []struct {
		path    string
		mode    fs.FileMode
		content string
	}{
		{filepath.Join(demo, "demo.go"), 0o644, "package demo\n"},
		{filepath.Join(demo, "scripts/gen.sh"), 0o755, "#!/bin/sh\ntrue\n"},
		{filepath.Join(rootfs, "etc/traefik/traefik.yml"), 0o644, "experimental: {}\n"},
		{filepath.Join(rootfs, "usr/local/bin/traefik"), 0o755, ""},
	} {
		info, err := os.Stat(c.path)
		if err != nil {
			t.Errorf("unpacked image: %v", err)
			continue
		}
		if info.Mode().Perm() != c.mode {
			t.Errorf("%s: mode %v, want %v", c.path, info.Mode().Perm(), c.mode)
		}
		if c.content != "" {
			if b, _ := os.ReadFile(c.path); string(b) != c.content {
				t.Errorf("%s: content %q", c.path, b)
			}
		}
	}
	if link, err := os.Readlink(filepath.Join(demo, "README")); err != nil || link != "demo.go" {
		t.Errorf("README symlink: %q %v", link, err)
	}
	// The WORKDIR keeps the base's mode: the layer has no entry for it.
	if info, err := os.Stat(filepath.Join(rootfs, "app")); err != nil || info.Mode().Perm() != 0o750 {
		t.Errorf("/app: %v %v, want the base's 0750", info.Mode(), err)
	}
}

// TestWriteLayoutPlatformTags: a multi-platform layout tags the index, which
// skopeo picks a platform from, and each platform's manifest on its own
// ("<tag>-<os>-<arch>[-<variant>]"), which umoci 0.4 needs: a tag reaching
// several manifests is "ambiguous" to it. Single-platform and untagged
// layouts keep one entry.
func TestWriteLayoutPlatformTags(t *testing.T) {
	skopeo := needTool(t, "skopeo")
	umoci := needTool(t, "umoci")
	armv7 := v1.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}
	multi, err := Assemble(ctx(t), resolveSynthetic(t, testenv.BaseOptions{
		OCI: true, Attestations: true, WorkingDir: "/app",
		Platforms: []v1.Platform{hostPlatform(), otherPlatform(), armv7},
	}, Options{}), demoAddition(t))
	if err != nil {
		t.Fatal(err)
	}
	single, err := Assemble(ctx(t), resolveSynthetic(t, testenv.BaseOptions{
		OCI: true, Single: true, WorkingDir: "/app", Platforms: []v1.Platform{hostPlatform()},
	}, Options{}), demoAddition(t))
	if err != nil {
		t.Fatal(err)
	}
	platformTag := func(p v1.Platform) string { return "v1-" + strings.ReplaceAll(p.String(), "/", "-") }

	for _, tc := range []struct {
		name string
		res  *Result
		tag  string
		want []string // index.json entries: "digest tag"
	}{
		{"multi-platform", multi, "v1", append([]string{multi.Digest.String() + " v1"},
			multi.Platforms[0].Digest.String()+" "+platformTag(multi.Platforms[0].Platform),
			multi.Platforms[1].Digest.String()+" "+platformTag(multi.Platforms[1].Platform),
			multi.Platforms[2].Digest.String()+" "+platformTag(multi.Platforms[2].Platform))},
		{"multi-platform untagged", multi, "", []string{multi.Digest.String() + " "}},
		{"single platform", single, "v1", []string{single.Digest.String() + " v1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			if err := WriteLayout(ctx(t), dir, tc.res, LayoutOptions{Tag: tc.tag}); err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(filepath.Join(dir, "index.json"))
			if err != nil {
				t.Fatal(err)
			}
			var im v1.IndexManifest
			if err := json.Unmarshal(data, &im); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, d := range im.Manifests {
				got = append(got, d.Digest.String()+" "+d.Annotations[annotationRefName])
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("index.json entries:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			if tc.tag == "" {
				return
			}
			if raw := run(t, skopeo, "inspect", "--raw", "oci:"+dir+":"+tc.tag); sha256Hex(raw) != tc.res.Digest.String() {
				t.Errorf("skopeo oci:%s:%s is %s, want %s", dir, tc.tag, sha256Hex(raw), tc.res.Digest)
			}
			listed := strings.Fields(run(t, umoci, "ls", "--layout", dir))
			var tags []string
			for _, e := range tc.want {
				tags = append(tags, strings.Fields(e)[1])
			}
			if strings.Join(listed, " ") != strings.Join(tags, " ") {
				t.Errorf("umoci ls: %v, want %v", listed, tags)
			}
			unpack := tags[len(tags)-1] // the single image, or the last platform
			bundle := filepath.Join(t.TempDir(), "bundle")
			run(t, umoci, "unpack", "--rootless", "--image", dir+":"+unpack, bundle)
			if _, err := os.Stat(filepath.Join(bundle, "rootfs/app/plugins-local/src/github.com/acme/demo/demo.go")); err != nil {
				t.Errorf("umoci unpack %s: %v", unpack, err)
			}
			if tc.res == multi {
				var inspected struct{ Architecture string }
				out := run(t, skopeo, "inspect", "oci:"+dir+":"+platformTag(armv7))
				if err := json.Unmarshal([]byte(out), &inspected); err != nil || inspected.Architecture != "arm" {
					t.Errorf("skopeo inspect %s: %v\n%s", platformTag(armv7), err, out)
				}
			}
		})
	}
}

func TestWriteLayoutTargets(t *testing.T) {
	res := assembleSingle(t)
	parent := t.TempDir()

	full := filepath.Join(parent, "full")
	os.Mkdir(full, 0o755)
	os.WriteFile(filepath.Join(full, "keep"), []byte("mine"), 0o644)
	if err := WriteLayout(ctx(t), full, res, LayoutOptions{}); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("non-empty target: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(full, "keep")); string(b) != "mine" {
		t.Error("a refused write touched the target")
	}
	file := filepath.Join(parent, "file")
	os.WriteFile(file, []byte("x"), 0o644)
	if err := WriteLayout(ctx(t), file, res, LayoutOptions{}); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("file target: %v", err)
	}

	emptyDir := filepath.Join(parent, "empty")
	os.Mkdir(emptyDir, 0o755)
	if err := WriteLayout(ctx(t), emptyDir, res, LayoutOptions{}); err != nil {
		t.Errorf("empty directory target: %v", err)
	} else if _, err := layout.ImageIndexFromPath(emptyDir); err != nil {
		t.Errorf("empty directory target: no layout: %v", err)
	}

	if err := WriteLayout(ctx(t), full, res, LayoutOptions{Overwrite: true}); err != nil {
		t.Fatalf("overwrite: %v", err)
	}
	if _, err := os.Stat(filepath.Join(full, "keep")); err == nil {
		t.Error("overwrite kept the old content")
	}
	if _, err := layout.ImageIndexFromPath(full); err != nil {
		t.Errorf("overwrite: no layout: %v", err)
	}
	assertNoLeftovers(t, parent, "empty", "file", "full")
}

// TestWritesCreateMissingParents: the README's set-up writes
// --oci-layout out/traefik-demo in a checkout that has no out/ yet.
func TestWritesCreateMissingParents(t *testing.T) {
	res := assembleSingle(t)
	parent := t.TempDir()
	dir := filepath.Join(parent, "out", "nested", "layout")
	if err := WriteLayout(ctx(t), dir, res, LayoutOptions{}); err != nil {
		t.Fatalf("layout under missing parents: %v", err)
	}
	if _, err := layout.ImageIndexFromPath(dir); err != nil {
		t.Errorf("no layout at %s: %v", dir, err)
	}
	file := filepath.Join(parent, "tarballs", "x", "image.tar")
	if err := WriteTarball(ctx(t), file, res, TarballOptions{}); err != nil {
		t.Fatalf("tarball under missing parents: %v", err)
	}
	if _, err := tarball.ImageFromPath(file, nil); err != nil {
		t.Errorf("no tarball at %s: %v", file, err)
	}
	assertNoLeftovers(t, filepath.Join(parent, "out", "nested"), "layout")
	assertNoLeftovers(t, filepath.Join(parent, "tarballs", "x"), "image.tar")
}

// assertNoLeftovers fails if dir holds anything but the names given.
func assertNoLeftovers(t *testing.T, dir string, want ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("%s holds %v, want %v", dir, got, want)
	}
}

// assembleSingle is a single-platform result for the host.
func assembleSingle(t *testing.T) *Result {
	t.Helper()
	base := resolveSynthetic(t, testenv.BaseOptions{Single: true, Platforms: []v1.Platform{hostPlatform()}}, Options{})
	res, err := Assemble(ctx(t), base, demoAddition(t))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestFailedWritesLeaveNothing removes the base's layer blobs after Assemble,
// so that writing fails halfway through, and checks nothing is left.
func TestFailedWritesLeaveNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "base")
	testenv.WriteBaseLayout(t, dir, "v1", testenv.BaseOptions{OCI: true, Single: true, Platforms: []v1.Platform{hostPlatform()}})
	ref, err := ParseReference("oci:" + dir + ":v1")
	if err != nil {
		t.Fatal(err)
	}
	base, err := Resolve(ctx(t), ref, Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := Assemble(ctx(t), base, demoAddition(t))
	if err != nil {
		t.Fatal(err)
	}
	layers, err := base.images[0].Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		d, _ := l.Digest()
		if err := os.Remove(filepath.Join(dir, "blobs", d.Algorithm, d.Hex)); err != nil {
			t.Fatal(err)
		}
	}

	parent := t.TempDir()
	if err := WriteLayout(ctx(t), filepath.Join(parent, "layout"), res, LayoutOptions{}); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("layout: error %v, want the missing blob", err)
	}
	if err := WriteTarball(ctx(t), filepath.Join(parent, "image.tar"), res, TarballOptions{}); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("tarball: error %v, want the missing blob", err)
	}
	assertNoLeftovers(t, parent)
}

func TestWriteTarballIsLoadable(t *testing.T) {
	skopeo := needTool(t, "skopeo")
	crane := needTool(t, "crane")
	base := resolveSynthetic(t, testenv.BaseOptions{OCI: true, Platforms: []v1.Platform{otherPlatform(), hostPlatform()}}, Options{})
	res, err := Assemble(ctx(t), base, demoAddition(t))
	if err != nil {
		t.Fatal(err)
	}
	parent := t.TempDir()
	file := filepath.Join(parent, "image.tar")
	if err := WriteTarball(ctx(t), file, res, TarballOptions{Tag: "example.com/traefik-plugins:v1"}); err != nil {
		t.Fatal(err)
	}
	run(t, crane, "validate", "--tarball", file)
	var inspected struct {
		RepoTags     []string
		Architecture string
		Labels       map[string]string
		Layers       []string
	}
	out := run(t, skopeo, "inspect", "docker-archive:"+file)
	if err := json.Unmarshal([]byte(out), &inspected); err != nil {
		t.Fatal(err)
	}
	// skopeo names docker-archive layers by their uncompressed digest.
	want, _ := res.Image(hostPlatform())
	wantCF, _ := want.ConfigFile()
	pluginDiffID := wantCF.RootFS.DiffIDs[len(wantCF.RootFS.DiffIDs)-1]
	if inspected.Architecture != runtime.GOARCH || inspected.Labels["io.xtraefik.plugins"] == "" ||
		inspected.Layers[len(inspected.Layers)-1] != pluginDiffID.String() {
		t.Errorf("skopeo inspect: %s, want the plugin layer %s last", out, pluginDiffID)
	}
	tag, _ := name.NewTag("example.com/traefik-plugins:v1")
	img, err := tarball.ImageFromPath(file, &tag)
	if err != nil {
		t.Fatalf("the tag is not in the archive: %v", err)
	}
	if got, wantCfg := mustConfigName(t, img), mustConfigName(t, want); got != wantCfg {
		t.Errorf("archive holds config %s, want the host platform's %s", got, wantCfg)
	}

	// An explicit platform, and an untagged archive.
	other := otherPlatform()
	otherFile := filepath.Join(parent, "other.tar")
	if err := WriteTarball(ctx(t), otherFile, res, TarballOptions{Platform: &other}); err != nil {
		t.Fatal(err)
	}
	oimg, err := tarball.ImageFromPath(otherFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cf, _ := oimg.ConfigFile(); cf.Architecture != other.Architecture {
		t.Errorf("archive for %s holds %s", other.Architecture, cf.Architecture)
	}
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(otherFile) })
	if err != nil || len(m) != 1 || len(m[0].RepoTags) != 0 {
		t.Errorf("untagged archive manifest %+v %v", m, err)
	}

	if err := WriteTarball(ctx(t), file, res, TarballOptions{}); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("existing file: %v", err)
	}
	if err := WriteTarball(ctx(t), file, res, TarballOptions{Overwrite: true, Platform: &other}); err != nil {
		t.Errorf("overwrite: %v", err)
	}
	missing := v1.Platform{OS: "linux", Architecture: "mips64le"}
	if err := WriteTarball(ctx(t), filepath.Join(parent, "x.tar"), res, TarballOptions{Platform: &missing}); err == nil || !strings.Contains(err.Error(), "no image for platform linux/mips64le") {
		t.Errorf("missing platform: %v", err)
	}
	assertNoLeftovers(t, parent, "image.tar", "other.tar")
}

func TestWriteTarballNeedsAPlatformWhenTheHostsIsMissing(t *testing.T) {
	base := resolveSynthetic(t, testenv.BaseOptions{Platforms: []v1.Platform{otherPlatform()}}, Options{})
	res, err := Assemble(ctx(t), base, demoAddition(t))
	if err != nil {
		t.Fatal(err)
	}
	err = WriteTarball(ctx(t), filepath.Join(t.TempDir(), "x.tar"), res, TarballOptions{})
	if err == nil || !strings.Contains(err.Error(), "choose a platform") || !strings.Contains(err.Error(), otherPlatform().String()) {
		t.Errorf("error %v, want a request to choose among %s", err, otherPlatform())
	}
}

func mustConfigName(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	h, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestPushInProcess(t *testing.T) {
	host := memRegistry(t)
	testenv.PushBase(t, host+"/library/traefik:v3", testenv.BaseOptions{OCI: true, Attestations: true})
	res, err := Assemble(ctx(t), mustResolve(t, host+"/library/traefik:v3", Options{}), demoAddition(t))
	if err != nil {
		t.Fatal(err)
	}
	got, err := Push(ctx(t), "docker://"+host+"/team/traefik:v1", res, Options{})
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(mustName(t, host+"/team/traefik:v1"))
	if err != nil {
		t.Fatal(err)
	}
	if got != res.Digest || desc.Digest != res.Digest {
		t.Errorf("pushed %s, registry has %s, result is %s", got, desc.Digest, res.Digest)
	}
	idx, err := desc.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(idx); err != nil {
		t.Errorf("pushed index does not validate: %v", err)
	}
	if _, err := Push(ctx(t), host+"/team/traefik@"+res.Digest.String(), res, Options{}); err != nil {
		t.Errorf("push by the result's digest: %v", err)
	}
	if _, err := Push(ctx(t), host+"/team/traefik@"+res.Platforms[0].Digest.String(), res, Options{}); err == nil {
		t.Error("push by another digest succeeded")
	}
	if _, err := Push(ctx(t), "oci:/tmp/x", res, Options{}); err == nil || !strings.Contains(err.Error(), "not a registry") {
		t.Errorf("push to a layout: %v", err)
	}
}

// TestRealRegistry runs against Distribution with htpasswd auth: credentials
// come from a temporary DOCKER_CONFIG through the default keychain, and a push
// of an image whose base is in the same registry moves only the new blobs.
func TestRealRegistry(t *testing.T) {
	skopeo := needTool(t, "skopeo")
	crane := needTool(t, "crane")
	const user, pass = "alice", "s3cret"
	host := testenv.Registry(t, testenv.RegistryOptions{User: user, Password: pass})
	proxy, log := testenv.RecordingProxy(t, host)

	cfgDir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	cfg := fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, proxy, auth)
	if err := os.WriteFile(filepath.Join(cfgDir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", cfgDir)

	baseOpts := testenv.BaseOptions{
		OCI: true, Attestations: true,
		Platforms:   []v1.Platform{hostPlatform(), otherPlatform()},
		WorkingDirs: map[string]string{otherPlatform().String(): "/app"},
		Auth:        &authn.Basic{Username: user, Password: pass},
	}
	baseRef := proxy + "/library/traefik:v3"
	testenv.PushBase(t, baseRef, baseOpts)

	if _, err := Resolve(ctx(t), mustParse(t, baseRef), Options{Keychain: authn.NewMultiKeychain()}); err == nil {
		t.Fatal("resolved without credentials")
	}

	log.Reset()
	base := mustResolve(t, baseRef, Options{})
	res, err := Assemble(ctx(t), base, demoAddition(t))
	if err != nil {
		t.Fatal(err)
	}
	target := proxy + "/team/traefik-plugins:v1"
	if _, err := Push(ctx(t), target, res, Options{}); err != nil {
		t.Fatal(err)
	}

	// What moved: no base layer read or written, only mounted; exactly the
	// plugin layers and the new configs uploaded.
	baseLayers := map[string]bool{}
	bidx := testenv.BaseIndex(t, baseOpts)
	bim, _ := bidx.IndexManifest()
	for _, d := range bim.Manifests {
		img, _ := bidx.Image(d.Digest)
		m, _ := img.Manifest()
		for _, l := range m.Layers {
			baseLayers[l.Digest.String()] = true
		}
	}
	wantUploads := map[string]bool{}
	for _, l := range res.Layers {
		wantUploads[l.String()] = true
	}
	for _, p := range res.Platforms {
		img, _ := res.Image(p.Platform)
		wantUploads[mustConfigName(t, img).String()] = true
	}
	uploaded := map[string]bool{}
	var mounts int
	for _, r := range log.Requests() {
		if d := r.Blob(); baseLayers[d] && r.Method != "HEAD" {
			t.Errorf("base layer touched: %s %s", r.Method, r.Path)
		}
		if r.Method == "PUT" && strings.Contains(r.Path, "/blobs/uploads/") {
			for _, kv := range strings.Split(r.Query, "&") {
				if d, ok := strings.CutPrefix(kv, "digest="); ok {
					uploaded[strings.Replace(d, "%3A", ":", 1)] = true
				}
			}
		}
		if r.Method == "POST" && strings.Contains(r.Query, "mount=") && r.Status == 201 {
			mounts++
		}
	}
	for d := range uploaded {
		if !wantUploads[d] {
			t.Errorf("uploaded %s, which is neither a plugin layer nor a new config", d)
		}
	}
	for d := range wantUploads {
		if !uploaded[d] {
			t.Errorf("%s was not uploaded", d)
		}
	}
	if mounts == 0 {
		t.Error("no base blob was mounted from the base repository")
	}

	// A second push finds everything there and uploads nothing.
	log.Reset()
	if _, err := Push(ctx(t), target, res, Options{}); err != nil {
		t.Fatal(err)
	}
	for _, r := range log.Requests() {
		if r.Upload() {
			t.Errorf("second push uploaded: %s %s?%s", r.Method, r.Path, r.Query)
		}
	}

	desc, err := remote.Get(mustName(t, target), remote.WithAuthFromKeychain(authn.DefaultKeychain))
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest != res.Digest {
		t.Errorf("registry has %s, result is %s", desc.Digest, res.Digest)
	}
	raw := run(t, skopeo, "inspect", "--raw", "--tls-verify=false", "--creds", user+":"+pass, "docker://"+target)
	if sha256Hex(raw) != res.Digest.String() {
		t.Errorf("skopeo sees %s, want %s", sha256Hex(raw), res.Digest)
	}
	out := run(t, skopeo, "inspect", "--tls-verify=false", "--creds", user+":"+pass, "docker://"+target)
	if !strings.Contains(out, res.Layers["/"].String()) {
		t.Errorf("skopeo inspect of the host platform lacks the plugin layer: %s", out)
	}
	run(t, crane, "validate", "--remote", target)

	// And back: the pushed result resolves as a base.
	again := mustResolve(t, target, Options{})
	if again.Digest != res.Digest || len(again.Platforms) != 2 {
		t.Errorf("re-resolved %s with %d platforms", again.Digest, len(again.Platforms))
	}
}
