package plugininstall

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/xtraefik/xtraefik/images"
	"github.com/xtraefik/xtraefik/internal/fileset"
	"github.com/xtraefik/xtraefik/internal/plugin"
	"github.com/xtraefik/xtraefik/internal/testenv"
)

func memFile(p string, kind fileset.Kind, content string) fileset.File {
	f := fileset.File{Path: p, Kind: kind, Size: int64(len(content))}
	if kind == fileset.Symlink {
		f.Link = content
		return f
	}
	f.Open = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(content)), nil }
	return f
}

// pluginsLayout builds a real plugins image (images.PluginsImage) of a
// two-platform base and writes it as an OCI layout; it returns its
// reference and digest.
func pluginsLayout(t *testing.T, content string) (string, v1.Hash) {
	t.Helper()
	baseDir := filepath.Join(t.TempDir(), "base")
	testenv.WriteBaseLayout(t, baseDir, "v3", testenv.BaseOptions{OCI: true})
	base, err := images.Resolve(t.Context(), images.Reference{Transport: images.TransportOCI, Path: baseDir, Tag: "v3"}, images.Options{})
	if err != nil {
		t.Fatal(err)
	}
	files, err := fileset.New([]fileset.File{
		memFile(".traefik.yml", fileset.Regular, "displayName: Demo\n"),
		memFile("demo.go", fileset.Regular, content),
		memFile("bin/run.sh", fileset.Executable, "#!/bin/sh\n"),
		memFile("README", fileset.Symlink, "demo.go"),
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := images.PluginsImage(t.Context(), base, images.PluginsSpec{Plugins: []plugin.Plugin{{Alias: "demo", Module: "github.com/acme/demo", Files: files}}})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "plugins")
	if err := images.WriteLayout(t.Context(), dir, res, images.LayoutOptions{Tag: "v1"}); err != nil {
		t.Fatal(err)
	}
	return "oci:" + dir + ":v1", res.Digest
}

// TestInstall: the tree of a real plugins image lands at DIR/src with its
// modes and symlink; a second install replaces it and leaves no staging
// directory.
func TestInstall(t *testing.T) {
	ref, digest := pluginsLayout(t, "package demo\n")
	dir := t.TempDir()
	got, err := Install(context.Background(), ref, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest != digest || got.Files != 3 {
		t.Errorf("installed %+v, want digest %s and 3 files", got, digest)
	}
	mod := filepath.Join(dir, "src", "github.com", "acme", "demo")
	if b, err := os.ReadFile(filepath.Join(mod, "demo.go")); err != nil || string(b) != "package demo\n" {
		t.Errorf("demo.go: %q, %v", b, err)
	}
	if fi, err := os.Stat(filepath.Join(mod, "bin", "run.sh")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("run.sh: %v, %v (want 0755)", fi, err)
	}
	if l, err := os.Readlink(filepath.Join(mod, "README")); err != nil || l != "demo.go" {
		t.Errorf("README link: %q, %v", l, err)
	}

	again, _ := pluginsLayout(t, "package demo // v2\n")
	if _, err := Install(context.Background(), again, dir, Options{}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(mod, "demo.go")); string(b) != "package demo // v2\n" {
		t.Errorf("a second install left %q", b)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "src" {
		t.Errorf("%s holds %v, want src only", dir, entries)
	}
}

type entry struct {
	name, link, content string
	typ                 byte
	mode                int64
}

func dirE(name string) entry { return entry{name: name + "/", typ: tar.TypeDir, mode: 0o755} }
func fileE(name, content string) entry {
	return entry{name: name, typ: tar.TypeReg, mode: 0o644, content: content}
}
func linkE(name, target string) entry {
	return entry{name: name, typ: tar.TypeSymlink, link: target, mode: 0o777}
}

func tarGz(t *testing.T, entries []entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Linkname: e.link, Size: int64(len(e.content)), ModTime: time.Unix(0, 0)}
		if e.typ != tar.TypeReg {
			hdr.Size = 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if hdr.Size > 0 {
			if _, err := tw.Write([]byte(e.content)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// craftedLayout writes an image of the given layers (gzip tars) with the
// plugins-image annotation unless bare, and lets edit change the written
// layout; it returns the reference.
func craftedLayout(t *testing.T, layers [][]byte, bare bool, edit func(dir string, img v1.Image)) string {
	t.Helper()
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	for _, data := range layers {
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }, tarball.WithMediaType(types.OCILayer))
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.Append(img, mutate.Addendum{Layer: l, MediaType: types.OCILayer}); err != nil {
			t.Fatal(err)
		}
	}
	if !bare {
		img = mutate.Annotations(img, map[string]string{images.AnnotationPluginsMount: "/plugins-local"}).(v1.Image)
	}
	dir := filepath.Join(t.TempDir(), "crafted")
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "v1"})); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(dir, img)
	}
	return "oci:" + dir + ":v1"
}

// TestInstallRefusesHostileImages: each hostile image is refused with the
// defence that applies, nothing is written outside DIR, and the src/ of an
// earlier install is left as it was.
func TestInstallRefusesHostileImages(t *testing.T) {
	good := []entry{dirE("src"), dirE("src/m")}
	tests := []struct {
		name    string
		ref     func(t *testing.T) string
		opts    Options
		wantErr string
	}{
		{"dot-dot", layers(append(good, fileE("../escape", "x"))), Options{}, `has a ".." element`},
		{"outside-src", layers(append(good, dirE("etc"), fileE("etc/passwd", "x"))), Options{}, "outside src/"},
		{"absolute", layers(append(good, fileE("/src/m/x", "x"))), Options{}, "not a clean relative path"},
		{"link-out", layers(append(good, linkE("src/m/l", "../../etc"))), Options{}, `symlink to "../../etc" leaves src/`},
		{"link-absolute", layers(append(good, linkE("src/m/l", "/etc/passwd"))), Options{}, "only relative targets inside src/"},
		{"link-chain", layers(append(good, dirE("src/m/d"), linkE("src/m/d/up", ".."), linkE("src/m/d/out", "up/../../.."))), Options{},
			"passes through the symlink src/m/d/up"},
		{"write-through-link", layers(append(good, dirE("src/m/sub"), linkE("src/m/l", "sub"), fileE("src/m/l/evil", "x"))), Options{},
			"its directory src/m/l is not a directory given before it"},
		{"hardlink", layers(append(good, fileE("src/m/a", "x"), entry{name: "src/m/b", typ: tar.TypeLink, link: "src/m/a"})), Options{}, "directories, regular files and symlinks only"},
		{"device", layers(append(good, entry{name: "src/m/null", typ: tar.TypeChar})), Options{}, "directories, regular files and symlinks only"},
		{"whiteout", layers(append(good, fileE("src/m/.wh.x", ""))), Options{}, "a whiteout"},
		{"twice", layers(append(good, fileE("src/m/a", "x"), fileE("src/m/a", "y"))), Options{}, "given twice"},
		{"orphan", layers(append(good, fileE("src/n/a", "x"))), Options{}, "its directory src/n is not a directory given before it"},
		{"too-big", layers(append(good, fileE("src/m/a", strings.Repeat("x", 100)))), Options{MaxBytes: 50}, "would exceed 50 bytes"},
		{"too-many", layers(append(good, fileE("src/m/a", "x"), fileE("src/m/b", "x"))), Options{MaxEntries: 3}, "more than 3 entries"},
		{"no-annotation", func(t *testing.T) string { return craftedLayout(t, [][]byte{tarGz(t, good)}, true, nil) }, Options{}, "no xtraefik.dev/mount-path annotation"},
		{"two-layers", func(t *testing.T) string {
			return craftedLayout(t, [][]byte{tarGz(t, good), tarGz(t, good)}, false, nil)
		}, Options{}, "it has 2 layers"},
		{"blob-swapped", func(t *testing.T) string {
			return craftedLayout(t, [][]byte{tarGz(t, append(good, fileE("src/m/a", "good")))}, false, func(dir string, img v1.Image) {
				ls, _ := img.Layers()
				d, _ := ls[0].Digest()
				// Same length, other bytes: what a tampered cache or registry serves.
				evil := tarGz(t, append(good, fileE("src/m/a", "evil")))
				if err := os.WriteFile(filepath.Join(dir, "blobs", "sha256", d.Hex), evil, 0o644); err != nil {
					t.Fatal(err)
				}
			})
		}, Options{}, "the manifest says"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			outer := t.TempDir()
			dir := filepath.Join(outer, "plugins-local")
			if err := os.MkdirAll(filepath.Join(dir, "src", "earlier"), 0o755); err != nil {
				t.Fatal(err)
			}
			_, err := Install(context.Background(), tt.ref(t), dir, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 1 || entries[0].Name() != "src" {
				t.Errorf("%s holds %v after a refused install, want the earlier src only", dir, entries)
			}
			if _, err := os.Stat(filepath.Join(dir, "src", "earlier")); err != nil {
				t.Errorf("the earlier install is gone: %v", err)
			}
			outside, _ := os.ReadDir(outer)
			if len(outside) != 1 {
				t.Errorf("%s holds %v: something was written outside DIR", outer, outside)
			}
		})
	}
}

func layers(entries []entry) func(t *testing.T) string {
	return func(t *testing.T) string { return craftedLayout(t, [][]byte{tarGz(t, entries)}, false, nil) }
}

// TestInstallStripsModes: setuid, setgid and group/other write bits never
// reach the directory.
func TestInstallStripsModes(t *testing.T) {
	ref := layers([]entry{dirE("src"), dirE("src/m"), {name: "src/m/x", typ: tar.TypeReg, mode: 0o6777, content: "x"}})(t)
	dir := t.TempDir()
	if _, err := Install(context.Background(), ref, dir, Options{}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "src", "m", "x"))
	if err != nil || fi.Mode() != 0o755 {
		t.Errorf("mode %v (%v), want -rwxr-xr-x", fi.Mode(), err)
	}
}
