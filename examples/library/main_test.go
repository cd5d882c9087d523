package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/xtraefik/xtraefik/build"
	"github.com/xtraefik/xtraefik/internal/testenv"
)

// fixture is a plugin verification passes: a vendored dependency, an
// internal package.
const fixture = "vendored-ok"

// world is the loopback fixtures: an OCI layout base (an index of two
// platforms), a directory plugin, a registry in the test process, and an
// environment of its own, handed to the library as Config.Env.
type world struct {
	dir, base, plugin, module, registry string
	env                                 map[string]string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{dir: t.TempDir(), module: "example.com/fixtures/" + fixture,
		plugin: filepath.Join(testenv.FixturesDir(t), fixture)}
	layoutDir := filepath.Join(w.dir, "base")
	testenv.WriteBaseLayout(t, layoutDir, "v3.6", testenv.BaseOptions{OCI: true})
	w.base = "oci:" + layoutDir + ":v3.6"
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	w.registry = strings.TrimPrefix(srv.URL, "http://")
	w.env = map[string]string{
		"HOME":    filepath.Join(w.dir, "home"),
		"PATH":    os.Getenv("PATH"),
		"GOPROXY": "off", // nothing asks a public proxy
	}
	return w
}

func (w *world) getenv(k string) string { return w.env[k] }

// TestEmbeddedBuild runs the example as a platform team's tool would:
// verifications beside the build on one Session, an OCI layout, and the
// index pushed by the team's own publisher. The digest is the same in the
// report, the layout, the registry and the CLI's build of the saved recipe.
func TestEmbeddedBuild(t *testing.T) {
	w := newWorld(t)
	c := config{Base: w.base, PluginDir: w.plugin, Module: w.module,
		Layout: filepath.Join(w.dir, "out"), Push: w.registry + "/team/traefik:v1", Save: filepath.Join(w.dir, "team.yaml"),
		CacheDir: filepath.Join(w.dir, "cache"), Verifications: 3, Env: w.getenv, Log: testWriter{t}}
	out, err := run(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	digest := out.Image.Digest
	if out.Verified != 3 {
		t.Errorf("%d of 3 verifications passed", out.Verified)
	}
	if out.Image.Index == nil || out.Image.Image != nil {
		t.Fatalf("an index base gives an index: %+v", out.Image)
	}
	if d, err := out.Image.Index.Digest(); err != nil || d != digest || out.Report.Image.Digest != digest.String() {
		t.Errorf("the index is %s (%v), the result says %s, the report %s", d, err, digest, out.Report.Image.Digest)
	}
	arm, err := out.Image.Platform(v1.Platform{OS: "linux", Architecture: "arm64"})
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := arm.Digest(); d.String() != platformDigest(t, out.Report, "linux/arm64") {
		t.Errorf("the arm64 image is %s, the report says %s", d, platformDigest(t, out.Report, "linux/arm64"))
	}

	// The team's publisher pushed the index the library built.
	want := w.registry + "/team/traefik@" + digest.String()
	if out.Pushed == nil || out.Pushed.String() != want {
		t.Errorf("the publisher answered %v, want %s", out.Pushed, want)
	}
	desc, err := remote.Head(mustRef(t, w.registry+"/team/traefik:v1"))
	if err != nil || desc.Digest != digest {
		t.Errorf("the registry holds %v (%v), want %s", desc, err, digest)
	}
	// The layout holds the same index (an OCI base needs no conversion).
	idx, err := layout.ImageIndexFromPath(c.Layout)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var tagged []v1.Hash
	for _, d := range im.Manifests {
		if d.Annotations["org.opencontainers.image.ref.name"] == "latest" {
			tagged = append(tagged, d.Digest)
		}
	}
	if len(tagged) != 1 || tagged[0] != digest {
		t.Errorf("the layout tags %v latest, want %s", tagged, digest)
	}

	// The CLI builds the saved recipe, frozen to the saved lock, to the
	// same digest.
	cli := buildCLI(t)
	cmd := exec.Command(cli, "build", "-f", c.Save, "--frozen", "--oci-layout", filepath.Join(w.dir, "cli-out"),
		"--cache-dir", filepath.Join(w.dir, "cli-cache"), "--output", "json", "--quiet")
	for k, v := range w.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("xtraefik build: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	var rep build.Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("the CLI's report: %v\n%s", err, stdout.String())
	}
	if rep.Image == nil || rep.Image.Digest != digest.String() {
		t.Errorf("the CLI built %+v, the library %s", rep.Image, digest)
	}
}

// TestOneSessionConcurrently: builds, verifications and locks share one
// Session at once (run with -race: scripts/test does).
func TestOneSessionConcurrently(t *testing.T) {
	w := newWorld(t)
	file := filepath.Join(w.dir, "recipe.yaml")
	yaml := fmt.Sprintf("base: %s\nplugins:\n  team:\n    module: %s\n    path: %s\n", w.base, w.module, w.plugin)
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := build.Open(build.Config{RecipeFile: file, CacheDir: filepath.Join(w.dir, "cache"), Env: w.getenv})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		digests []string
		errs    []error
	)
	do := func(what string, f func() (*build.Report, error)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rep, err := f()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", what, err))
				return
			}
			if rep.Image != nil {
				digests = append(digests, rep.Image.Digest)
			}
		}()
	}
	for i := range 2 {
		do("build", func() (*build.Report, error) {
			res, err := s.Build(ctx, build.BuildRequest{Outputs: build.Outputs{OCILayout: filepath.Join(w.dir, fmt.Sprint("out", i))}})
			return res.Report, err
		})
		do("verify", func() (*build.Report, error) { return s.Verify(ctx, build.VerifyRequest{}) })
		do("lock", func() (*build.Report, error) { return s.Lock(ctx, build.LockRequest{}) })
	}
	wg.Wait()
	for _, err := range errs {
		t.Error(err)
	}
	if len(digests) != 2 || digests[0] != digests[1] {
		t.Errorf("two builds of one recipe gave %q", digests)
	}
	if s.Locked == nil {
		t.Error("no lock after two locks")
	}
}

func platformDigest(t *testing.T, rep *build.Report, platform string) string {
	t.Helper()
	for _, p := range rep.Image.Platforms {
		if p.Platform == platform {
			return p.Digest
		}
	}
	t.Fatalf("the report has no %s: %+v", platform, rep.Image.Platforms)
	return ""
}

func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// buildCLI builds xtraefik from this module into the test's directory.
func buildCLI(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "xtraefik")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/xtraefik")
	cmd.Dir = filepath.Join("..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/xtraefik: %v\n%s", err, out)
	}
	return bin
}

// testWriter sends the library's progress lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
