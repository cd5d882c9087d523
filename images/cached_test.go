//go:build linux

package images

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"golang.org/x/sys/unix"

	"github.com/xtraefik/xtraefik/images/blobstore"
	"github.com/xtraefik/xtraefik/internal/testenv"
)

// TestBlobCache resolves a registry base through the blob cache: the first
// resolution and layout fill it, then an offline rebuild reads nothing from
// the registry and writes the same layout with the layers linked; a damaged
// layer is found by its digest and fetched again.
func TestBlobCache(t *testing.T) {
	host := testenv.Registry(t, testenv.RegistryOptions{})
	proxy, log := testenv.RecordingProxy(t, host)
	baseOpts := testenv.BaseOptions{OCI: true, Attestations: true, Platforms: []v1.Platform{hostPlatform(), otherPlatform()}}
	ref := proxy + "/library/traefik:v3"
	testenv.PushBase(t, ref, baseOpts)

	cacheDir := filepath.Join(t.TempDir(), "blobs")
	store, err := blobstore.Open(cacheDir)
	if err != nil {
		t.Fatal(err)
	}
	online := Options{Cache: store}
	offline := Options{Cache: store, Offline: true}

	// Offline with nothing cached: the tag cannot be resolved, nor the digest.
	if _, err := Resolve(ctx(t), mustParse(t, ref), offline); !errors.Is(err, ErrNotCached) || !strings.Contains(err.Error(), "lock the recipe first") {
		t.Fatalf("offline tag with an empty cache: %v", err)
	}

	first := mustResolve(t, ref, online)
	res1, err := Assemble(ctx(t), first, demoAddition(t))
	if err != nil {
		t.Fatal(err)
	}
	out1 := filepath.Join(t.TempDir(), "one")
	if err := WriteLayout(ctx(t), out1, res1, LayoutOptions{Tag: "v1"}); err != nil {
		t.Fatal(err)
	}

	// Offline, by the digest: nothing reaches the registry, the result is
	// the same image, and the layers are linked from the cache.
	if _, err := Resolve(ctx(t), mustParse(t, ref), offline); !errors.Is(err, ErrNotCached) {
		t.Fatalf("offline by tag: %v", err)
	}
	log.Reset()
	second, err := ResolveDigest(ctx(t), mustParse(t, ref), first.Digest, offline)
	if err != nil {
		t.Fatalf("offline by digest: %v", err)
	}
	if missing := second.MissingLayers(); len(missing) != 0 {
		t.Fatalf("the online layout left layers out of the cache: %v", missing)
	}
	res2, err := Assemble(ctx(t), second, demoAddition(t))
	if err != nil {
		t.Fatal(err)
	}
	if res2.Digest != res1.Digest {
		t.Fatalf("offline rebuild is %s, online %s", res2.Digest, res1.Digest)
	}
	out2 := filepath.Join(t.TempDir(), "two")
	if err := WriteLayout(ctx(t), out2, res2, LayoutOptions{Tag: "v1"}); err != nil {
		t.Fatalf("offline layout: %v", err)
	}
	if n := len(log.Requests()); n != 0 {
		t.Fatalf("offline build sent %d registry requests, first %s %s", n, log.Requests()[0].Method, log.Requests()[0].Path)
	}
	if a, b := layoutIndexDigest(t, out1), layoutIndexDigest(t, out2); a != b {
		t.Fatalf("layouts differ: %s and %s", a, b)
	}
	layer := baseLayer(t, second)
	cached := filepath.Join(cacheDir, "sha256", layer.Hex)
	inLayout := filepath.Join(out2, "blobs", "sha256", layer.Hex)
	if !sameOrClone(t, cached, inLayout) {
		t.Errorf("layer %s was copied into the layout, not linked or cloned", layer)
	}
	run(t, needTool(t, "skopeo"), "inspect", "--raw", "oci:"+out2+":v1")

	// Damage the cached layer: the next online build finds it by digest,
	// fetches it again, and the layout is whole.
	if err := os.WriteFile(cached+".tmp", []byte("not the layer"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(cached+".tmp", cached); err != nil {
		t.Fatal(err)
	}
	third, err := ResolveDigest(ctx(t), mustParse(t, ref), first.Digest, offline)
	if err != nil {
		t.Fatal(err)
	}
	missing := third.MissingLayers()
	if len(missing) != 1 || !strings.Contains(missing[0], layer.String()) {
		t.Fatalf("offline, a damaged layer must be listed as missing: %v", missing)
	}
	log.Reset()
	fourth, err := ResolveDigest(ctx(t), mustParse(t, ref), first.Digest, online)
	if err != nil {
		t.Fatal(err)
	}
	res4, err := Assemble(ctx(t), fourth, demoAddition(t))
	if err != nil {
		t.Fatal(err)
	}
	out4 := filepath.Join(t.TempDir(), "four")
	if err := WriteLayout(ctx(t), out4, res4, LayoutOptions{Tag: "v1"}); err != nil {
		t.Fatal(err)
	}
	refetched := false
	for _, r := range log.Requests() {
		if r.Method == "GET" && r.Blob() == layer.String() {
			refetched = true
		} else if r.Method == "GET" && strings.Contains(r.Path, "/blobs/") {
			t.Errorf("an intact cached blob was fetched again: %s", r.Path)
		}
	}
	if !refetched {
		t.Error("the damaged layer was not fetched again")
	}
	if _, err := store.Verify(layer); err != nil {
		t.Errorf("the refetched layer is not back in the cache: %v", err)
	}
	if a, b := layoutIndexDigest(t, out1), layoutIndexDigest(t, out4); a != b {
		t.Fatalf("layouts differ after the refetch: %s and %s", a, b)
	}
}

func layoutIndexDigest(t *testing.T, dir string) v1.Hash {
	t.Helper()
	lp, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	ii, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := ii.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range im.Manifests {
		if d.Annotations[annotationRefName] == "v1" {
			return d.Digest
		}
	}
	t.Fatalf("no v1 in %s", dir)
	return v1.Hash{}
}

// baseLayer is the first layer of the base's first platform.
func baseLayer(t *testing.T, b *Base) v1.Hash {
	t.Helper()
	m, err := b.images[0].Manifest()
	if err != nil {
		t.Fatal(err)
	}
	return m.Layers[0].Digest
}

// sameOrClone reports whether b is a hard link to a or, where the
// filesystem clones, shares a's inode-independent content (then only the
// content can be compared, and is).
func sameOrClone(t *testing.T, a, b string) bool {
	t.Helper()
	fa, err := os.Stat(a)
	if err != nil {
		t.Fatal(err)
	}
	fb, err := os.Stat(b)
	if err != nil {
		t.Fatal(err)
	}
	if os.SameFile(fa, fb) {
		return true
	}
	// A clone is a new inode; a copy too. Tell them apart by what the
	// filesystem supports: a hard link to the cache always works within one
	// filesystem, so a clone can only be why it is not one.
	sa, sb := fa.Sys().(*syscall.Stat_t), fb.Sys().(*syscall.Stat_t)
	if sa == nil || sb == nil || sa.Dev != sb.Dev {
		return true // another filesystem: copying is the documented fallback
	}
	probe := filepath.Join(filepath.Dir(b), ".probe")
	defer os.Remove(probe)
	if err := os.Link(a, probe); err != nil {
		return true // no hard links here
	}
	os.Remove(probe)
	// Link prefers a clone where the filesystem makes them.
	in, err := os.Open(a)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(probe)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	return unix.IoctlFileClone(int(out.Fd()), int(in.Fd())) == nil
}

// TestLayoutBlobEditedInPlace: a base layer edited in place through a
// layout output (the same size, the mtime set back, the mode restored) is
// never handed to a later layout: the cache hashes it at its next use,
// finds it damaged and fetches it again, so the next layout is whole and
// so is the cache. The same holds when the edited layout is the one an
// --overwrite replaces.
func TestLayoutBlobEditedInPlace(t *testing.T) {
	host := testenv.Registry(t, testenv.RegistryOptions{})
	proxy, log := testenv.RecordingProxy(t, host)
	ref := proxy + "/library/traefik:v3"
	testenv.PushBase(t, ref, testenv.BaseOptions{OCI: true})
	cacheDir := filepath.Join(t.TempDir(), "blobs")
	store, err := blobstore.Open(cacheDir)
	if err != nil {
		t.Fatal(err)
	}
	online := Options{Cache: store}
	build := func(out string, overwrite bool) (layer v1.Hash) {
		t.Helper()
		b := mustResolve(t, ref, online)
		res, err := Assemble(ctx(t), b, demoAddition(t))
		if err != nil {
			t.Fatal(err)
		}
		if err := WriteLayout(ctx(t), out, res, LayoutOptions{Tag: "v1", Overwrite: overwrite}); err != nil {
			t.Fatal(err)
		}
		return baseLayer(t, b)
	}
	refetched := func() bool {
		for _, r := range log.Requests() {
			if r.Method == "GET" && strings.Contains(r.Path, "/blobs/") {
				return true
			}
		}
		return false
	}

	// The first build fills the cache; the next ones link from it.
	layer := build(filepath.Join(t.TempDir(), "fill"), false)
	first := filepath.Join(t.TempDir(), "one")
	build(first, false)
	cached := filepath.Join(cacheDir, "sha256", layer.Hex)
	inFirst := filepath.Join(first, "blobs", "sha256", layer.Hex)
	if !sameInode(t, cached, inFirst) {
		t.Skip("the layer was cloned or copied, not hard-linked: no output shares the cache's file here")
	}
	editInPlace(t, inFirst)

	log.Reset()
	second := filepath.Join(t.TempDir(), "two")
	build(second, false)
	if !refetched() {
		t.Error("the layer edited through the first layout was not fetched again")
	}
	checkLayoutBlobs(t, second)
	if sameInode(t, cached, inFirst) {
		t.Error("the edited layout still shares the cache's file")
	}
	if got := hashOf(t, cached); got != layer {
		t.Errorf("the cache holds %s for %s", got, layer)
	}

	// The edited layout is the one an --overwrite replaces: the cache does
	// not take the removal of its link for a sign of an intact file. (The
	// second layout got the refetched layer as a copy; the overwrite links
	// it.)
	build(second, true)
	inSecond := filepath.Join(second, "blobs", "sha256", layer.Hex)
	if !sameInode(t, cached, inSecond) {
		t.Fatal("the overwritten layout does not link the cached layer")
	}
	editInPlace(t, inSecond)
	log.Reset()
	build(second, true)
	if !refetched() {
		t.Error("the layer edited through the layout being overwritten was not fetched again")
	}
	checkLayoutBlobs(t, second)
	if got := hashOf(t, cached); got != layer {
		t.Errorf("the cache holds %s for %s", got, layer)
	}

	// Untouched, an overwrite fetches nothing and hashes nothing new: the
	// cache's stamp still describes its file after the old link is gone.
	log.Reset()
	build(second, true)
	if refetched() {
		t.Error("an intact cached layer was fetched again")
	}
	if !store.Stamped(layer) {
		t.Error("after an overwrite the cache's stamp no longer describes its file: the next build hashes it")
	}
}

// editInPlace overwrites a byte in the middle of the file at p, hidden as
// well as a user can (testenv.EditInPlace), and checks it changed.
func editInPlace(t *testing.T, p string) {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	testenv.EditInPlace(t, p, fi.Size()/2, "X")
	if got := hashOf(t, p); got.Hex == filepath.Base(p) {
		t.Fatal("the edit changed nothing")
	}
}

// checkLayoutBlobs hashes every blob of the layout at dir against its name.
func checkLayoutBlobs(t *testing.T, dir string) {
	t.Helper()
	blobs := filepath.Join(dir, "blobs", "sha256")
	entries, err := os.ReadDir(blobs)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if got := hashOf(t, filepath.Join(blobs, e.Name())); got.Hex != e.Name() {
			t.Errorf("layout %s: blob %s holds %s", dir, e.Name(), got)
		}
	}
}

func hashOf(t *testing.T, p string) v1.Hash {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h, _, err := v1.SHA256(f)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func sameInode(t *testing.T, a, b string) bool {
	t.Helper()
	fa, err := os.Stat(a)
	if err != nil {
		t.Fatal(err)
	}
	fb, err := os.Stat(b)
	if err != nil {
		t.Fatal(err)
	}
	return os.SameFile(fa, fb)
}
