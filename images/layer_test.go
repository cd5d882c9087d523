package images

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xtraefik/xtraefik/images/blobstore"
	"github.com/xtraefik/xtraefik/internal/fileset"
	"github.com/xtraefik/xtraefik/internal/memstat"
	"github.com/xtraefik/xtraefik/internal/plugin"
)

// goldenLayer is the digest of the demo plugin layer for WORKDIR "/". If this
// changes, images built from the same recipe change digest: only update it for
// an intended change of the layer format.
const goldenLayer = "sha256:a90c6847acfa281ef7a322bef82b56235e77883546abae80d5cf980d3dbcaf20"

func TestPluginLayerIsDeterministic(t *testing.T) {
	add := demoAddition(t)
	a, err := newPluginLayer("/", add.Plugins, add.Files, add.Epoch, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := newPluginLayer("", demoAddition(t).Plugins, add.Files, add.Epoch, nil)
	if err != nil {
		t.Fatal(err)
	}
	da, _ := a.Digest()
	db, _ := b.Digest()
	if da != db {
		t.Fatalf("same inputs, digests %s and %s", da, db)
	}
	if da.String() != goldenLayer {
		t.Errorf("plugin layer digest %s, want %s", da, goldenLayer)
	}
	later, err := newPluginLayer("/", add.Plugins, add.Files, add.Epoch.Add(time.Second), nil)
	if err != nil {
		t.Fatal(err)
	}
	if dl, _ := later.Digest(); dl == da {
		t.Error("another epoch gave the same digest: mtimes are not taken from Epoch")
	}
}

func TestPluginLayerGzipHeader(t *testing.T) {
	add := demoAddition(t)
	l, err := newPluginLayer("/", add.Plugins, add.Files, add.Epoch, nil)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := l.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	hdr := make([]byte, 10)
	if _, err := io.ReadFull(rc, hdr); err != nil {
		t.Fatal(err)
	}
	// RFC 1952: ID1 ID2 CM FLG MTIME(4) XFL OS.
	if hdr[0] != 0x1f || hdr[1] != 0x8b || hdr[2] != 8 {
		t.Fatalf("not gzip/deflate: % x", hdr)
	}
	if hdr[3] != 0 {
		t.Errorf("FLG %#x: want no name, comment or extra field", hdr[3])
	}
	if string(hdr[4:8]) != "\x00\x00\x00\x00" {
		t.Errorf("MTIME % x: want zero", hdr[4:8])
	}
	if hdr[9] != 255 {
		t.Errorf("OS %d: want 255 (unknown)", hdr[9])
	}
}

func TestPluginLayerEntries(t *testing.T) {
	add := demoAddition(t)
	for _, tc := range []struct {
		workdir string
		root    string
	}{
		{"", "plugins-local"},
		{"/", "plugins-local"},
		{"/app", "app/plugins-local"},
		{"/srv/traefik/", "srv/traefik/plugins-local"},
		{"relative", "relative/plugins-local"},
	} {
		t.Run(tc.workdir, func(t *testing.T) {
			l, err := newPluginLayer(tc.workdir, add.Plugins, add.Files, add.Epoch, nil)
			if err != nil {
				t.Fatal(err)
			}
			src := tc.root + "/src/github.com/acme/"
			want := []string{
				"d 755 " + tc.root + "/",
				"d 755 " + tc.root + "/src/",
				"d 755 " + tc.root + "/src/github.com/",
				"d 755 " + src,
				"d 755 " + src + "demo/",
				"f 644 " + src + "demo/.traefik.yml",
				"l 777 " + src + "demo/README -> demo.go",
				"f 644 " + src + "demo/demo.go",
				"f 644 " + src + "demo/go.mod",
				"d 755 " + src + "demo/scripts/",
				"f 755 " + src + "demo/scripts/gen.sh",
				"d 755 " + src + "demo/vendor/",
				"d 755 " + src + "demo/vendor/example.com/",
				"d 755 " + src + "demo/vendor/example.com/lib/",
				"f 644 " + src + "demo/vendor/example.com/lib/lib.go",
				"d 755 " + src + "other/",
				"f 644 " + src + "other/.traefik.yml",
				"f 644 " + src + "other/other.go",
			}
			// The extra file sorts among the others by path; no entry for
			// /etc or /etc/traefik, which belong to the base.
			want = insertSorted(want, "f 644 etc/traefik/traefik.yml")
			var got []string
			for _, e := range readLayer(t, l) {
				h := e.hdr
				if h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" {
					t.Errorf("%s: owner %d:%d %q:%q", h.Name, h.Uid, h.Gid, h.Uname, h.Gname)
				}
				if !h.ModTime.Equal(testEpoch()) {
					t.Errorf("%s: mtime %s", h.Name, h.ModTime)
				}
				if !h.AccessTime.IsZero() || !h.ChangeTime.IsZero() || len(h.PAXRecords) > 0 {
					t.Errorf("%s: extra metadata %+v", h.Name, h)
				}
				if h.Format != tar.FormatUSTAR {
					t.Errorf("%s: format %v, want USTAR", h.Name, h.Format)
				}
				got = append(got, describeEntry(h))
				if h.Name == src+"demo/scripts/gen.sh" && e.content != "#!/bin/sh\ntrue\n" {
					t.Errorf("gen.sh content %q", e.content)
				}
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("entries:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

func insertSorted(list []string, e string) []string {
	name := func(s string) string { return strings.SplitN(s, " ", 3)[2] }
	for i, x := range list {
		if name(e) < name(x) {
			return append(list[:i], append([]string{e}, list[i:]...)...)
		}
	}
	return append(list, e)
}

func describeEntry(h *tar.Header) string {
	switch h.Typeflag {
	case tar.TypeDir:
		return fmt.Sprintf("d %o %s", h.Mode, h.Name)
	case tar.TypeSymlink:
		return fmt.Sprintf("l %o %s -> %s", h.Mode, h.Name, h.Linkname)
	case tar.TypeReg:
		return fmt.Sprintf("f %o %s", h.Mode, h.Name)
	}
	return fmt.Sprintf("? %c %s", h.Typeflag, h.Name)
}

func TestPluginLayerLongNamesUseGNUNotPAX(t *testing.T) {
	long := strings.Repeat("a", 120) + "/" + strings.Repeat("b", 120) + ".go"
	plugins := []plugin.Plugin{{Module: "example.com/long", Files: mustSet(t, memFile(long, fileset.Regular, "package b\n"))}}
	l, err := newPluginLayer("/", plugins, nil, testEpoch(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, e := range readLayer(t, l) {
		if len(e.hdr.PAXRecords) > 0 || e.hdr.Format == tar.FormatPAX {
			t.Errorf("%s: PAX header", e.hdr.Name)
		}
		if e.hdr.Name == "plugins-local/src/example.com/long/"+long {
			found = true
			if e.hdr.Format != tar.FormatGNU || e.content != "package b\n" {
				t.Errorf("long entry: format %v content %q", e.hdr.Format, e.content)
			}
		}
	}
	if !found {
		t.Error("long file missing from the layer")
	}
}

func TestPluginLayerStreamsFromTheFileset(t *testing.T) {
	var calls atomic.Int32
	f := countingOpen(memFile("demo.go", fileset.Regular, "package demo\n"), &calls, 0)
	plugins := []plugin.Plugin{{Module: "example.com/demo", Files: mustSet(t, f)}}
	l, err := newPluginLayer("/", plugins, nil, testEpoch(), nil)
	if err != nil {
		t.Fatal(err)
	}
	before := calls.Load()
	if before == 0 {
		t.Fatal("computing the digest read no file")
	}
	for i := 0; i < 2; i++ {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, rc); err != nil {
			t.Fatal(err)
		}
		rc.Close()
	}
	// The layer is rendered once: reads (digest, uploads, every platform)
	// come from the spool, never from the plugin files again.
	if got := calls.Load(); got != before || before != 1 {
		t.Errorf("the plugin file was opened %d times before and %d times during two reads, want once and never", before, got-before)
	}
}

func TestPluginLayerRefusesBadInput(t *testing.T) {
	demo := func() fileset.Set { return mustSet(t, memFile("demo.go", fileset.Regular, "package demo\n")) }
	for _, tc := range []struct {
		name    string
		plugins []plugin.Plugin
		extra   []ExtraFile
		want    string
	}{
		{"absolute module", []plugin.Plugin{{Module: "/github.com/a", Files: demo()}}, nil, "module name"},
		{"trailing slash", []plugin.Plugin{{Module: "github.com/a/", Files: demo()}}, nil, "module name"},
		{"dotdot module", []plugin.Plugin{{Module: "../etc", Files: demo()}}, nil, "module name"},
		{"empty module", []plugin.Plugin{{Module: "", Files: demo()}}, nil, "module name"},
		{"twice", []plugin.Plugin{{Module: "github.com/a", Files: demo()}, {Module: "github.com/a", Files: demo()}}, nil, "twice"},
		{"relative extra", nil, []ExtraFile{{Path: "etc/traefik.yml"}}, "absolute"},
		{"unclean extra", nil, []ExtraFile{{Path: "/etc/../traefik.yml"}}, "absolute"},
		{"setuid extra", nil, []ExtraFile{{Path: "/bin/x", Mode: 0o4755}}, "permission"},
		{"extra twice", nil, []ExtraFile{{Path: "/a"}, {Path: "/a"}}, "twice"},
		{"extra over plugin", []plugin.Plugin{{Module: "github.com/a", Files: demo()}}, []ExtraFile{{Path: "/plugins-local/src/github.com/a/demo.go"}}, "twice"},
		{"extra file as plugin dir", []plugin.Plugin{{Module: "github.com/a", Files: demo()}}, []ExtraFile{{Path: "/plugins-local/src/github.com"}}, "twice"},
		{"file where a dir is needed", []plugin.Plugin{{Module: "github.com/a", Files: demo()}}, []ExtraFile{{Path: "/plugins-local"}}, "twice"},
		{"nested module file collision", []plugin.Plugin{
			{Module: "github.com/a", Files: mustSet(t, memFile("b", fileset.Regular, "x"))},
			{Module: "github.com/a/b", Files: demo()},
		}, nil, "given twice"},
		{"no content", []plugin.Plugin{{Module: "github.com/a", Files: fileset.Set{{Path: "x.go"}}}}, nil, "no content"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newPluginLayer("/", tc.plugins, tc.extra, testEpoch(), nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestPluginLayerChecksSizes(t *testing.T) {
	for _, size := range []int64{3, 100} {
		f := memFile("demo.go", fileset.Regular, "package demo\n")
		f.Size = size
		_, err := newPluginLayer("/", []plugin.Plugin{{Module: "example.com/demo", Files: fileset.Set{f}}}, nil, testEpoch(), nil)
		if err == nil || !strings.Contains(err.Error(), "demo.go") {
			t.Errorf("recorded size %d for 13 bytes: error %v, want one naming the file", size, err)
		}
	}
}

func TestFileAboveDirIsRefused(t *testing.T) {
	// A file that another entry needs as a directory: /x is a file, /x/y too.
	_, err := newPluginLayer("/", nil, []ExtraFile{{Path: "/x"}, {Path: "/x/y"}}, testEpoch(), nil)
	if err == nil || !strings.Contains(err.Error(), "needs it to be a directory") {
		t.Fatalf("error %v", err)
	}
}

func TestLayerWhiteout(t *testing.T) {
	extra := []ExtraFile{
		{Path: "/etc/traefik/traefik.toml", Whiteout: true},
		{Path: "/etc/traefik/traefik.yml", Content: []byte("log: {}\n")},
	}
	l, err := newPluginLayer("/", nil, extra, testEpoch(), nil)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	got := map[string]int64{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got[h.Name] = h.Size
	}
	want := map[string]int64{"etc/traefik/.wh.traefik.toml": 0, "etc/traefik/traefik.yml": 8}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("entries = %v, want %v", got, want)
	}
}

// TestTreeLayer: one plugin's files at the tar's root, with the plugin
// layer's normalisation and a fixed mtime, the same digest for the same
// files every time.
func TestTreeLayer(t *testing.T) {
	files := demoPlugins(t)[0].Files
	a, err := TreeLayer(files)
	if err != nil {
		t.Fatal(err)
	}
	b, err := TreeLayer(demoPlugins(t)[0].Files)
	if err != nil {
		t.Fatal(err)
	}
	da, _ := a.Digest()
	if db, _ := b.Digest(); da != db {
		t.Errorf("same files, digests %s and %s", da, db)
	}
	var names []string
	for _, e := range readLayer(t, a) {
		if e.hdr.ModTime.Unix() != 0 || e.hdr.Uid != 0 || e.hdr.Format == tar.FormatPAX {
			t.Errorf("%s: mtime %v, uid %d, format %v", e.hdr.Name, e.hdr.ModTime, e.hdr.Uid, e.hdr.Format)
		}
		names = append(names, e.hdr.Name)
	}
	var want []string
	dirs := map[string]bool{}
	for _, f := range files {
		for d := path.Dir(f.Path); d != "." && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
			want = append(want, d+"/")
		}
		want = append(want, f.Path)
	}
	sort.Strings(want)
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("entries %v, want %v", names, want)
	}
	if _, err := TreeLayer(fileset.Set{{Path: "../x", Open: files[0].Open}}); err == nil {
		t.Error("a path out of the tree was written")
	}
}

// patternReader yields n bytes of a fixed, incompressible sequence
// (xorshift64).
type patternReader struct {
	off, n int64
	x      uint64
}

func (r *patternReader) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	if r.x == 0 {
		r.x = 88172645463325252
	}
	p = p[:min(int64(len(p)), r.n-r.off)]
	for i := range p {
		r.x ^= r.x << 13
		r.x ^= r.x >> 7
		r.x ^= r.x << 17
		p[i] = byte(r.x)
	}
	r.off += int64(len(p))
	return len(p), nil
}

// TestPluginLayerMemoryStaysFlat: rendering and reading back a layer with
// a 64 MiB file allocates a few MiB, not the file or the compressed layer.
func TestPluginLayerMemoryStaysFlat(t *testing.T) {
	const size = 64 << 20
	big := fileset.File{Path: "data.bin", Kind: fileset.Regular, Size: size,
		Open: func() (io.ReadCloser, error) { return io.NopCloser(&patternReader{n: size}), nil }}
	plugins := []plugin.Plugin{{Module: "example.com/demo", Files: mustSet(t, big)}}
	var n int64
	var err error
	got := memstat.Allocated(func() {
		l, lerr := newPluginLayer("/", plugins, nil, testEpoch(), nil)
		if err = lerr; err != nil {
			return
		}
		rc, cerr := l.Compressed()
		if err = cerr; err != nil {
			return
		}
		n, err = io.Copy(io.Discard, rc)
		rc.Close()
	})
	if err != nil || n < size/2 {
		t.Fatalf("read %d compressed bytes: %v", n, err)
	}
	if got > 8<<20 {
		t.Errorf("a layer with a %d-byte file allocated %d bytes", size, got)
	}
}

// TestRenderedLayerCache: with a blob cache, a layer rendered once is read
// back for the same inputs without opening a plugin file; other inputs, or
// a damaged cached blob, render again, to the same bytes.
func TestRenderedLayerCache(t *testing.T) {
	plain, err := blobstore.Open(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	store := plain.WithSecret(bytes.Repeat([]byte{7}, 32))
	add := demoAddition(t)
	for i := range add.Plugins { // as package build resolves a git tree
		add.Plugins[i].Files = withSums(t, add.Plugins[i].Files)
		if add.Plugins[i].Hash, err = add.Plugins[i].Files.Hash(); err != nil {
			t.Fatal(err)
		}
	}
	first, err := newPluginLayer("/", add.Plugins, add.Files, add.Epoch, store)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := first.Digest()

	// Every plugin file now fails to open: only the cache can answer.
	var calls atomic.Int32
	failing := func() []plugin.Plugin {
		ps := append([]plugin.Plugin(nil), add.Plugins...)
		for i := range ps {
			files := append(fileset.Set(nil), ps[i].Files...)
			for j := range files {
				if files[j].Kind != fileset.Symlink {
					files[j] = countingOpen(files[j], &calls, 1)
				}
			}
			ps[i].Files = files
		}
		return ps
	}
	again, err := newPluginLayer("/", failing(), add.Files, add.Epoch, store)
	if err != nil {
		t.Fatalf("the cached render was not used: %v", err)
	}
	if got, _ := again.Digest(); got != want || calls.Load() != 0 {
		t.Fatalf("cached layer %s (want %s), %d file opens", got, want, calls.Load())
	}
	if a, b := readLayer(t, first), readLayer(t, again); !reflect.DeepEqual(a, b) {
		t.Fatal("the cached layer reads back differently")
	}
	// The record is sealed: a store with another secret (a cache restored
	// from elsewhere) does not take it, and renders.
	if _, err := newPluginLayer("/", failing(), add.Files, add.Epoch, plain.WithSecret(bytes.Repeat([]byte{8}, 32))); err == nil {
		t.Fatal("a record sealed with another secret was used")
	}
	// Another epoch is another layer: rendered, so the files are read.
	if _, err := newPluginLayer("/", failing(), add.Files, add.Epoch.Add(time.Hour), store); err == nil {
		t.Fatal("a layer for another epoch came from the cache")
	}
	// A plugin whose Hash is not its files' is never taken from the
	// cache: the key is the files' hash, not the one claimed.
	unhashed := failing()
	unhashed[0].Hash = ""
	if _, err := newPluginLayer("/", unhashed, add.Files, add.Epoch, store); err == nil {
		t.Fatal("a plugin without a content hash was taken from the cache")
	}
	other := withSums(t, mustSet(t, memFile(".traefik.yml", fileset.Regular, "displayName: Evil\n"), memFile("main.go", fileset.Regular, "package evil\n")))
	claims := append([]plugin.Plugin(nil), add.Plugins...)
	claims[0].Files = other // and still the honest plugin's Hash
	evil, err := newPluginLayer("/", claims, add.Files, add.Epoch, store)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := evil.Digest(); d == want {
		t.Fatal("other files claiming the cached layer's hash got the cached layer")
	}
	// A damaged cached layer is not used: rendered again, same digest.
	p := filepath.Join(store.Dir(), "sha256", want.Hex)
	if err := os.WriteFile(p, []byte("damaged"), 0o644); err != nil {
		t.Fatal(err)
	}
	fresh, err := newPluginLayer("/", add.Plugins, add.Files, add.Epoch, store)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := fresh.Digest(); got != want {
		t.Fatalf("re-rendered %s, want %s", got, want)
	}
	if _, err := store.Verify(want); err != nil {
		t.Errorf("the re-rendered layer is not back in the cache: %v", err)
	}
}

// withSums gives a set's files the hash of their content, as a git tree's
// have (fileset.File.Sum).
func withSums(t *testing.T, s fileset.Set) fileset.Set {
	t.Helper()
	files := append([]fileset.File(nil), s...)
	for i, f := range files {
		if f.Kind == fileset.Symlink {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		io.Copy(h, rc)
		rc.Close()
		files[i].Sum = hex.EncodeToString(h.Sum(nil))
	}
	out, err := fileset.New(files)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
