package images

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// entry is a layer entry: content "" with dir makes a directory, link a
// symbolic link.
type entry struct {
	name, content string
	dir           bool
	link          string
}

func gzLayer(t *testing.T, entries ...entry) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o755, Typeflag: tar.TypeReg, Size: int64(len(e.content))}
		switch {
		case e.dir:
			h.Typeflag, h.Size = tar.TypeDir, 0
		case e.link != "":
			h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, e.link, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.content)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return static.NewLayer(buf.Bytes(), types.OCILayer)
}

// layered is a base of the layers given bottom first.
func layered(t *testing.T, layers ...v1.Layer) *Base {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	return &Base{Ref: Reference{Transport: TransportOCI, Path: "test"}, images: []v1.Image{img}, Platforms: []PlatformImage{{}}}
}

// ReadTopFile reads the layers from the top down, honours whiteouts,
// opaque directories and files replacing directories, stops with the
// first layer that holds a wanted file, and refuses a file over its bound
// before reading any of it.
func TestReadTopFile(t *testing.T) {
	bottom := gzLayer(t,
		entry{name: "usr/local/sbin/traefik", content: "sbin-bottom"},
		entry{name: "usr/local/bin/traefik", content: "bin-bottom"},
		entry{name: "opt/x/traefik", content: "opt-bottom"},
		entry{name: "srv/traefik", content: "srv-bottom"},
		entry{name: "lib/traefik", content: "lib-bottom"},
	)
	middle := gzLayer(t,
		entry{name: "usr/local/sbin/.wh.traefik"},
		entry{name: "opt/", dir: true},
		entry{name: "opt/.wh..wh..opq"},
		entry{name: "srv", content: "a file where a directory was"},
		entry{name: "lib/traefik", link: "/usr/local/bin/traefik"},
	)
	top := gzLayer(t,
		entry{name: "./usr/local/bin/traefik", content: "bin-top"},
		entry{name: "etc/b/traefik", content: "b-top"},
		entry{name: "etc/a/traefik", content: "a-top"},
	)
	base := layered(t, bottom, middle, top)
	topDigest, _ := top.Digest()
	bottomDigest, _ := bottom.Digest()
	for _, tc := range []struct {
		name  string
		paths []string
		want  string // content; "" for none found
		reads int
		layer v1.Hash
	}{
		// The top layer holds it: the layers below are not read, although
		// the preferred sbin path is only whited out there.
		{"top layer", []string{"/usr/local/sbin/traefik", "/usr/local/bin/traefik"}, "bin-top", 1, topDigest},
		{"whited out", []string{"/usr/local/sbin/traefik"}, "", 0, v1.Hash{}},
		{"opaque directory", []string{"/opt/x/traefik"}, "", 0, v1.Hash{}},
		{"file over directory", []string{"/srv/traefik"}, "", 0, v1.Hash{}},
		{"symbolic link hides", []string{"/lib/traefik"}, "", 0, v1.Hash{}},
		// In one layer, a preferred path met later is read again.
		{"preference in a layer", []string{"/etc/a/traefik", "/etc/b/traefik"}, "a-top", 2, topDigest},
		{"bottom", []string{"/nothing", "/opt/x/traefik", "/srv/traefik", "/usr/local/sbin/traefik"}, "", 0, v1.Hash{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got string
			reads := 0
			layersRead := map[v1.Hash]bool{}
			f, err := base.ReadTopFile(t.Context(), 0, tc.paths, 1<<20, func(l v1.Hash, done, total int64) { layersRead[l] = true }, func(f TopFile, r io.Reader) error {
				reads++
				b, err := io.ReadAll(r)
				got = string(b)
				if int64(len(b)) != f.Size {
					t.Errorf("read %d bytes of %s, size %d", len(b), f.Path, f.Size)
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == "" {
				if f.Path != "" || reads != 0 {
					t.Fatalf("found %+v (%q), want nothing", f, got)
				}
				return
			}
			if got != tc.want || reads != tc.reads || f.Layer != tc.layer {
				t.Fatalf("found %+v: %q after %d read(s), want %q after %d in layer %s", f, got, reads, tc.want, tc.reads, tc.layer)
			}
			if tc.layer == topDigest && (len(layersRead) != 1 || !layersRead[topDigest]) {
				t.Fatalf("layers read: %v, want the top one only", layersRead)
			}
		})
	}
	// A file found in the bottom layer after the upper ones hid nothing.
	f, err := layered(t, bottom, top).ReadTopFile(t.Context(), 0, []string{"/srv/traefik"}, 1<<20, nil, func(TopFile, io.Reader) error { return nil })
	if err != nil || f.Path != "/srv/traefik" || f.Layer != bottomDigest {
		t.Fatalf("bottom: %+v %v", f, err)
	}

	// Over the bound: refused with the size, read never called.
	_, err = base.ReadTopFile(t.Context(), 0, []string{"/usr/local/bin/traefik"}, 3, nil, func(TopFile, io.Reader) error {
		t.Fatal("read called for a file over the bound")
		return nil
	})
	if !errors.Is(err, ErrFileTooLarge) {
		t.Fatalf("over the bound: %v", err)
	}
}
