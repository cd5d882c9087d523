package publish

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/xtraefik/xtraefik/images"
	"github.com/xtraefik/xtraefik/internal/fileset"
	"github.com/xtraefik/xtraefik/internal/plugin"
	"github.com/xtraefik/xtraefik/internal/testenv"
)

func host() v1.Platform { return v1.Platform{OS: "linux", Architecture: runtime.GOARCH} }

// artifact assembles a one-plugin image on a synthetic single-platform base.
func artifact(t *testing.T) *Artifact {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "base")
	testenv.WriteBaseLayout(t, dir, "v3", testenv.BaseOptions{OCI: true, Single: true, Platforms: []v1.Platform{host()}})
	ref, err := images.ParseReference("oci:" + dir + ":v3")
	if err != nil {
		t.Fatal(err)
	}
	base, err := images.Resolve(t.Context(), ref, images.Options{})
	if err != nil {
		t.Fatal(err)
	}
	content := "package demo\n"
	files, err := fileset.New([]fileset.File{{Path: "demo.go", Kind: fileset.Regular, Size: int64(len(content)),
		Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(content)), nil }}})
	if err != nil {
		t.Fatal(err)
	}
	img, err := images.Assemble(t.Context(), base, images.Addition{Plugins: []plugin.Plugin{{Module: "example.com/demo", Files: files}}})
	if err != nil {
		t.Fatal(err)
	}
	return &Artifact{Image: img, SBOM: []byte(`{"spdxVersion":"SPDX-2.3"}`), Values: []byte("additionalArguments: []\n")}
}

// failing is an output that fails, standing for a push refused by a registry.
type failing struct{}

func (failing) Validate(context.Context) error           { return nil }
func (failing) Publish(context.Context, *Artifact) error { return errors.New("registry said no") }
func (failing) Undo() error                              { return nil }
func (failing) Commit() error                            { return nil }

// TestFailureRestoresEverything: a late failure takes back every output of the
// run, with and without overwrite, and whatever the user had is byte-identical.
func TestFailureRestoresEverything(t *testing.T) {
	a := artifact(t)
	for _, overwrite := range []bool{false, true} {
		t.Run(map[bool]string{false: "new paths", true: "overwrite"}[overwrite], func(t *testing.T) {
			dir := t.TempDir()
			p := func(s string) string { return filepath.Join(dir, s) }
			os.MkdirAll(p("sbom"), 0o755)
			os.WriteFile(p("sbom/other.json"), []byte("the user's"), 0o644)
			os.MkdirAll(p("layout"), 0o755) // empty: a layout may go there
			if overwrite {
				os.WriteFile(p("values.yaml"), []byte("the user's values"), 0o644)
				os.WriteFile(p("digest"), []byte("sha256:old\n"), 0o644)
				os.WriteFile(p("image.tar"), []byte("the user's archive"), 0o644)
				os.WriteFile(p("layout/index.json"), []byte("the user's layout"), 0o644)
			}
			before := testenv.Snapshot(t, dir)
			m := Multi{
				SBOMDir(p("sbom"), overwrite),
				ValuesFile(p("values.yaml"), overwrite),
				&Layout{Dir: p("layout"), Tag: "v1", Overwrite: overwrite},
				&Tarball{Path: p("new/dir/image.tar"), Tag: "example.com/x:v1", Overwrite: overwrite},
				&Tarball{Path: p("image.tar"), Tag: "example.com/x:v1", Overwrite: overwrite},
				DigestFile(p("digest"), overwrite),
				failing{},
			}
			err := m.Publish(t.Context(), a)
			if err == nil || !strings.Contains(err.Error(), "registry said no") {
				t.Fatalf("error %v", err)
			}
			testenv.SameTree(t, "publish", before, testenv.Snapshot(t, dir))
		})
	}
}

// TestNothingIsReplacedWithoutOverwrite: every output refuses an existing
// path before any work, and says which.
func TestNothingIsReplacedWithoutOverwrite(t *testing.T) {
	dir := t.TempDir()
	p := func(s string) string { return filepath.Join(dir, s) }
	os.MkdirAll(p("sbom"), 0o755)
	os.MkdirAll(p("layout"), 0o755)
	for _, f := range []string{"sbom/sbom.spdx.json", "values.yaml", "digest", "image.tar", "layout/index.json"} {
		os.WriteFile(p(f), []byte("the user's"), 0o644)
	}
	before := testenv.Snapshot(t, dir)
	for _, tt := range []struct {
		p    Publisher
		want string
	}{
		{SBOMDir(p("sbom"), false), "SBOM: " + p("sbom/sbom.spdx.json") + " already exists"},
		{ValuesFile(p("values.yaml"), false), "Helm values file: " + p("values.yaml") + " already exists"},
		{DigestFile(p("digest"), false), "digest file: " + p("digest") + " already exists"},
		{&Tarball{Path: p("image.tar")}, "docker archive: " + p("image.tar") + " already exists"},
		{&Layout{Dir: p("layout")}, "OCI layout: " + p("layout") + " already exists and is not empty"},
		{DigestFile(p("missing/digest"), true), "digest file " + p("missing/digest") + ": stat " + p("missing")},
		{&Tarball{Path: p("x.tar"), Tag: "Bad Name"}, "docker archive " + p("x.tar") + ": image name"},
		{&Tarball{Path: p("x.tar"), Platform: &v1.Platform{OS: "linux"}}, "docker archive " + p("x.tar") + `: platform "linux": want os/arch`},
		{&Registry{Refs: []string{"oci:/tmp/x"}}, "push oci:/tmp/x: not a registry reference"},
		{&Registry{Refs: []string{"example.com/ok:v1", "UPPER/case"}}, "push UPPER/case:"},
	} {
		err := tt.p.Validate(t.Context())
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("error %v, want %q", err, tt.want)
		}
		if strings.Contains(tt.want, "already exists") && !errors.Is(err, ErrExists) {
			t.Errorf("%v is not ErrExists", err)
		}
	}
	// Two outputs at one path, or one inside the other.
	overlapping := Multi{&Layout{Dir: p("new")}, DigestFile(p("new/digest"), false), ValuesFile(p("v.yaml"), false), DigestFile(p("v.yaml"), false)}
	err := overlapping.Validate(t.Context())
	for _, want := range []string{"outputs " + p("new") + " and " + p("new/digest") + " overlap", "outputs " + p("v.yaml") + " and " + p("v.yaml") + " overlap"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want %q", err, want)
		}
	}
	// Publish validates again: nothing is written.
	m := Multi{ValuesFile(p("values2.yaml"), false), DigestFile(p("digest"), false)}
	if err := m.Publish(t.Context(), artifact(t)); !errors.Is(err, ErrExists) {
		t.Errorf("publish over an existing digest file: %v", err)
	}
	testenv.SameTree(t, "publish", before, testenv.Snapshot(t, dir))
}

// TestLayoutIsPlaced: the layout is complete, readable by others, and nothing
// else is left beside it.
func TestLayoutIsPlaced(t *testing.T) {
	a := artifact(t)
	dir := t.TempDir()
	l := &Layout{Dir: filepath.Join(dir, "out", "layout"), Tag: "v1"}
	if err := (Multi{l}).Publish(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	if _, err := layout.ImageIndexFromPath(l.Dir); err != nil {
		t.Fatal(err)
	}
	if l.Digest != a.Image.Digest {
		t.Errorf("layout digest %s, image %s", l.Digest, a.Image.Digest)
	}
	if es, _ := os.ReadDir(filepath.Dir(l.Dir)); len(es) != 1 {
		t.Errorf("beside the layout: %v", es)
	}
}
