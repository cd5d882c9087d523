//go:build linux || darwin

package publish

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/xtraefik/xtraefik/images"
	"github.com/xtraefik/xtraefik/images/blobstore"
	"github.com/xtraefik/xtraefik/internal/fileset"
	"github.com/xtraefik/xtraefik/internal/plugin"
	"github.com/xtraefik/xtraefik/internal/testenv"
)

// TestLayoutOverwriteKeepsCacheVerified: `build --oci-layout DIR
// --overwrite` in a loop. The layout replaced shares the base layer's file
// with the blob cache (a hard link); removing it keeps the layer stamped
// as verified, so rebuilds do not hash it, unless that layout's copy was
// edited in place, which the next rebuild finds (a refetch) and leaves out
// of the new layout.
func TestLayoutOverwriteKeepsCacheVerified(t *testing.T) {
	reg := testenv.Registry(t, testenv.RegistryOptions{})
	proxy, log := testenv.RecordingProxy(t, reg)
	ref := proxy + "/library/traefik:v3"
	testenv.PushBase(t, ref, testenv.BaseOptions{OCI: true, Single: true, Platforms: []v1.Platform{host()}})
	store, err := blobstore.Open(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := images.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	content := "package demo\n"
	files, err := fileset.New([]fileset.File{{Path: "demo.go", Kind: fileset.Regular, Size: int64(len(content)),
		Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(content)), nil }}})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "layout")
	var layer v1.Hash
	build := func() {
		t.Helper()
		base, err := images.Resolve(t.Context(), r, images.Options{Cache: store})
		if err != nil {
			t.Fatal(err)
		}
		img, err := images.Assemble(t.Context(), base, images.Addition{Plugins: []plugin.Plugin{{Module: "example.com/demo", Files: files}}})
		if err != nil {
			t.Fatal(err)
		}
		one, err := img.Image(host())
		if err != nil {
			t.Fatal(err)
		}
		m, err := one.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		layer = m.Layers[0].Digest
		if err := (Multi{&Layout{Dir: dir, Tag: "v1", Overwrite: true}}).Publish(t.Context(), &Artifact{Image: img}); err != nil {
			t.Fatal(err)
		}
	}
	blobGets := func() int {
		n := 0
		for _, q := range log.Requests() {
			if q.Method == "GET" && strings.Contains(q.Path, "/blobs/") {
				n++
			}
		}
		return n
	}
	build() // fills the cache
	build() // links from it
	inLayout := filepath.Join(dir, "blobs", "sha256", layer.Hex)
	a, _ := os.Stat(inLayout)
	b, _ := os.Stat(filepath.Join(store.Dir(), "sha256", layer.Hex))
	if a == nil || b == nil || !os.SameFile(a, b) {
		t.Skip("the layer was cloned or copied: no layout shares the cache's file here")
	}
	log.Reset()
	build()
	if !store.Stamped(layer) {
		t.Error("after an overwrite the cached layer is no longer stamped: every rebuild would hash it")
	}
	if n := blobGets(); n != 0 {
		t.Errorf("an overwrite of an intact layout fetched %d blobs", n)
	}

	// Edited in place through the layout (size, mtime and mode kept).
	fi, err := os.Stat(inLayout)
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(inLayout, 0o644)
	f, err := os.OpenFile(inLayout, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte{'X'}, fi.Size()/2)
	f.Close()
	os.Chmod(inLayout, fi.Mode().Perm())
	os.Chtimes(inLayout, fi.ModTime(), fi.ModTime())
	log.Reset()
	build()
	if n := blobGets(); n != 1 {
		t.Errorf("after an edit through the replaced layout, %d blobs were fetched, want the layer again", n)
	}
	got, err := os.ReadFile(inLayout)
	if err != nil {
		t.Fatal(err)
	}
	if d, _, _ := v1.SHA256(strings.NewReader(string(got))); d != layer {
		t.Errorf("the new layout's layer holds %s, want %s", d, layer)
	}
}
