package cacherepo

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/xtraefik/xtraefik/images"
	"github.com/xtraefik/xtraefik/internal/fileset"
	"github.com/xtraefik/xtraefik/internal/plugin"
	"github.com/xtraefik/xtraefik/internal/testenv"
)

// testStore is a Store on a fresh Debian registry, reached through a proxy
// that records every request.
func testStore(t *testing.T) (*Store, *testenv.RequestLog) {
	t.Helper()
	proxy, log := testenv.RecordingProxy(t, testenv.Registry(t, testenv.RegistryOptions{}))
	return withKeys(t, proxy+"/fleet/cache", Keys{Signer: fleetKey(t)}), log
}

func content(data string) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(data)), nil }
}

// testPlugin is a plugin tree with every kind of entry, nested directories,
// and a marker that makes trees with other markers differ.
func testPlugin(t *testing.T, marker string) plugin.Plugin {
	t.Helper()
	file := func(path string, kind fileset.Kind, data string) fileset.File {
		if kind == fileset.Symlink {
			return fileset.File{Path: path, Kind: kind, Link: data, Size: int64(len(data))}
		}
		return fileset.File{Path: path, Kind: kind, Size: int64(len(data)), Open: content(data)}
	}
	files, err := fileset.New([]fileset.File{
		file(".traefik.yml", fileset.Regular, "displayName: Demo\ntype: middleware\n"),
		file("demo.go", fileset.Regular, "package demo // "+marker+"\n"),
		file("scripts/gen.sh", fileset.Executable, "#!/bin/sh\n"),
		file("vendor/example.com/lib/lib.go", fileset.Regular, "package lib\n"),
		file("vendor/example.com/lib/alias.go", fileset.Symlink, "lib.go"),
		file("docs", fileset.Symlink, "vendor/example.com"),
	})
	if err != nil {
		t.Fatal(err)
	}
	hash, err := files.Hash()
	if err != nil {
		t.Fatal(err)
	}
	return plugin.Plugin{Alias: "demo", Module: "example.com/demo", Files: files, Hash: hash,
		Source: plugin.Source{Git: "https://example.com/demo.git", Commit: "0123456789abcdef0123456789abcdef01234567"}}
}

func readAll(t *testing.T, f fileset.File) string {
	t.Helper()
	if f.Kind == fileset.Symlink {
		return "-> " + f.Link
	}
	rc, err := f.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestCacheTreeRoundTrip: what PutTree stores, GetTree gives back: the same
// paths, kinds, links, contents and so the same hash.
func TestCacheTreeRoundTrip(t *testing.T) {
	ctx := context.Background()
	s, _ := testStore(t)
	p := testPlugin(t, "a")
	if err := s.PutTree(ctx, p); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetTree(ctx, p.Hash)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(p.Files) {
		t.Fatalf("got %d files, put %d", len(got), len(p.Files))
	}
	for i, f := range p.Files {
		g := got[i]
		if g.Path != f.Path || g.Kind != f.Kind || g.Size != f.Size || readAll(t, g) != readAll(t, f) {
			t.Errorf("file %d: got %s %v %d %q, put %s %v %d %q", i, g.Path, g.Kind, g.Size, readAll(t, g), f.Path, f.Kind, f.Size, readAll(t, f))
		}
	}
	if h, _ := got.Hash(); h != p.Hash {
		t.Errorf("read back hash %s, put %s", h, p.Hash)
	}
}

// TestCacheTreePutTwiceUploadsOnce: a tree already there is not uploaded again,
// not even from another revision; a spoiled entry is replaced.
func TestCacheTreePutTwiceUploadsOnce(t *testing.T) {
	ctx := context.Background()
	s, log := testStore(t)
	p := testPlugin(t, "a")
	if err := s.PutTree(ctx, p); err != nil {
		t.Fatal(err)
	}
	if n := uploads(log); n != 2 {
		t.Fatalf("first PutTree: %d blob uploads, want 2 (config and layer)", n)
	}
	log.Reset()
	p.Source = plugin.Source{Version: "v1.2.3"}
	if err := s.PutTree(ctx, p); err != nil {
		t.Fatal(err)
	}
	for _, r := range log.Requests() {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			t.Errorf("second PutTree wrote: %s %s", r.Method, r.Path)
		}
	}

	// Another tree's manifest under p's tag: PutTree replaces it (its
	// blobs are there, so nothing is uploaded), and GetTree works again.
	q := testPlugin(t, "b")
	if err := s.PutTree(ctx, q); err != nil {
		t.Fatal(err)
	}
	retag(t, s, q.Hash, p.Hash)
	if _, err := s.GetTree(ctx, p.Hash); !errors.Is(err, ErrForged) {
		t.Fatalf("spoiled entry: %v", err)
	}
	log.Reset()
	if err := s.PutTree(ctx, p); err != nil {
		t.Fatal(err)
	}
	if n := uploads(log); n != 0 {
		t.Errorf("repairing the entry uploaded %d blobs the registry holds", n)
	}
	if _, err := s.GetTree(ctx, p.Hash); err != nil {
		t.Errorf("after repair: %v", err)
	}
}

func uploads(log *testenv.RequestLog) int {
	n := 0
	for _, r := range log.Requests() {
		if r.Upload() && r.Method == http.MethodPut {
			n++ // the PUT that completes a blob's upload
		}
	}
	return n
}

// retag puts the manifest tagged for tree from under the tag of tree to.
func retag(t *testing.T, s *Store, from, to string) {
	t.Helper()
	src, _ := s.treeTag(from)
	dst, _ := s.treeTag(to)
	desc, err := remote.Get(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Tag(dst, desc); err != nil {
		t.Fatal(err)
	}
}

// TestCacheTreeMismatchAndNotFound: another tree moved under a tree's tag
// is ErrForged (its signature names the other tag); another tree signed for
// the tag (a trusted writer's mistake) is ErrMismatch naming both hashes;
// an absent tree, in an empty repository or not, is ErrNotFound.
func TestCacheTreeMismatchAndNotFound(t *testing.T) {
	ctx := context.Background()
	s, _ := testStore(t)
	a, b := testPlugin(t, "a"), testPlugin(t, "b")
	if _, err := s.GetTree(ctx, a.Hash); !errors.Is(err, ErrNotFound) {
		t.Errorf("empty repository: %v, want ErrNotFound", err)
	}
	if err := s.PutTree(ctx, b); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetTree(ctx, a.Hash); !errors.Is(err, ErrNotFound) {
		t.Errorf("absent tree: %v, want ErrNotFound", err)
	}
	retag(t, s, b.Hash, a.Hash)
	_, err := s.GetTree(ctx, a.Hash)
	if !errors.Is(err, ErrForged) || !strings.Contains(err.Error(), "record moved between tags") {
		t.Errorf("another tree moved under a's tag: %v; want ErrForged, moved between tags", err)
	}
	tag, _ := s.treeTag(a.Hash)
	layer, err := images.TreeLayer(b.Files)
	if err != nil {
		t.Fatal(err)
	}
	pushSignedTree(t, s, tag, a.Hash, TreeArtifactType, layer)
	_, err = s.GetTree(ctx, a.Hash)
	if !errors.Is(err, ErrMismatch) || errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), a.Hash) || !strings.Contains(err.Error(), b.Hash) {
		t.Errorf("another tree signed for a's tag: %v; want ErrMismatch naming %s and %s", err, a.Hash, b.Hash)
	}
	if _, err := s.GetTree(ctx, "sha256:ABC"); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("a malformed content hash: %v", err)
	}
}

// TestCacheTreeIsPlainArtifact: the registry holds an OCI image manifest with
// artifactType, the empty config, one gzip tar layer of the files at the
// tar's root with normalised modes and owners, and the annotations.
func TestCacheTreeIsPlainArtifact(t *testing.T) {
	ctx := context.Background()
	s, _ := testStore(t)
	p := testPlugin(t, "a")
	if err := s.PutTree(ctx, p); err != nil {
		t.Fatal(err)
	}
	tag, _ := s.treeTag(p.Hash)
	desc, err := remote.Get(tag)
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		SchemaVersion int               `json:"schemaVersion"`
		MediaType     string            `json:"mediaType"`
		ArtifactType  string            `json:"artifactType"`
		Config        map[string]any    `json:"config"`
		Layers        []map[string]any  `json:"layers"`
		Annotations   map[string]string `json:"annotations"`
		Subject       any               `json:"subject"`
	}
	if err := json.Unmarshal(desc.Manifest, &m); err != nil {
		t.Fatal(err)
	}
	if m.SchemaVersion != 2 || m.MediaType != "application/vnd.oci.image.manifest.v1+json" || m.ArtifactType != TreeArtifactType || m.Subject != nil {
		t.Errorf("manifest: %s", desc.Manifest)
	}
	if m.Config["mediaType"] != "application/vnd.oci.empty.v1+json" || m.Config["size"] != 2.0 ||
		m.Config["digest"] != "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a" {
		t.Errorf("config: %v", m.Config)
	}
	if len(m.Layers) != 1 || m.Layers[0]["mediaType"] != "application/vnd.oci.image.layer.v1.tar+gzip" {
		t.Fatalf("layers: %v", m.Layers)
	}
	want := map[string]string{AnnotationModule: p.Module, AnnotationHash: p.Hash, AnnotationRevision: p.Source.Commit}
	for k, v := range want {
		if m.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, m.Annotations[k], v)
		}
	}

	layer, err := remote.Layer(tag.Context().Digest(m.Layers[0]["digest"].(string)))
	if err != nil {
		t.Fatal(err)
	}
	rc, err := layer.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var entries []string
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.ModTime.Unix() != 0 {
			t.Errorf("%s: owner %d:%d %q, mtime %v", h.Name, h.Uid, h.Gid, h.Uname, h.ModTime)
		}
		entries = append(entries, h.Name+" "+modeString(h))
	}
	wantEntries := ".traefik.yml 644|demo.go 644|docs 777|scripts/ 755|scripts/gen.sh 755|vendor/ 755|vendor/example.com/ 755|vendor/example.com/lib/ 755|vendor/example.com/lib/alias.go 777|vendor/example.com/lib/lib.go 644"
	if got := strings.Join(entries, "|"); got != wantEntries {
		t.Errorf("layer entries:\n%s\nwant\n%s", got, wantEntries)
	}
}

func modeString(h *tar.Header) string { return fmt.Sprintf("%o", h.Mode) }

// tarGz is a gzip tar of hdrs, a regular file holding Size (default 1)
// bytes "x".
func tarGz(t *testing.T, hdrs ...*tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, h := range hdrs {
		if h.Typeflag == tar.TypeReg && h.Size == 0 {
			h.Size = 1
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write(bytes.Repeat([]byte("x"), int(h.Size)))
		}
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

// TestCacheTreeRefusesWhatIsNoTree: entries that would leave the tree, entry
// types a tree has not, oversized layers and other artifacts are
// ErrMismatch, whatever their hash.
func TestCacheTreeRefusesWhatIsNoTree(t *testing.T) {
	ctx := context.Background()
	s, _ := testStore(t)
	s.maxTree = 4096
	reg := func(name string) *tar.Header { return &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644} }
	for name, c := range map[string]struct {
		layer        []byte
		mediaType    types.MediaType
		artifactType string
	}{
		"symlink out":      {layer: tarGz(t, reg("a.go"), &tar.Header{Name: "out", Typeflag: tar.TypeSymlink, Linkname: "../../etc/passwd"})},
		"absolute symlink": {layer: tarGz(t, &tar.Header{Name: "out", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"})},
		"dot-dot path":     {layer: tarGz(t, reg("../x.go"))},
		"absolute path":    {layer: tarGz(t, reg("/etc/x.go"))},
		"below a file":     {layer: tarGz(t, reg("a"), reg("a/b"))},
		"twice":            {layer: tarGz(t, reg("a"), reg("a"))},
		"hard link":        {layer: tarGz(t, reg("a"), &tar.Header{Name: "b", Typeflag: tar.TypeLink, Linkname: "a"})},
		"device":           {layer: tarGz(t, &tar.Header{Name: "null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3})},
		"not gzip":         {layer: []byte("plain text")},
		"too large":        {layer: bytes.Repeat([]byte{0}, 5000)},
		"files too large":  {layer: tarGz(t, &tar.Header{Name: "big", Typeflag: tar.TypeReg, Size: 5000})},
		"names too large": {layer: tarGz(t, reg("a"),
			&tar.Header{Name: strings.Repeat("n", 2100), Typeflag: tar.TypeSymlink, Linkname: "a"},
			&tar.Header{Name: strings.Repeat("m", 2100), Typeflag: tar.TypeSymlink, Linkname: "a"})},
		"newline in a name":  {layer: tarGz(t, reg("a.go\nb.go"))},
		"another artifact":   {layer: tarGz(t, reg("a.go")), artifactType: VerdictArtifactType},
		"another layer type": {layer: tarGz(t, reg("a.go")), mediaType: types.DockerLayer},
	} {
		t.Run(name, func(t *testing.T) {
			// Under the hash its files would have, if they are files at
			// all: only the checks of the entries can refuse them.
			hash := "sha256:" + strings.Repeat("ab", 32)
			if files, err := readTree(bytes.NewReader(c.layer), MaxTreeBytes); err == nil {
				hash = rawHash(t, files)
			}
			tag, _ := s.treeTag(hash)
			if c.mediaType == "" {
				c.mediaType = types.OCILayer
			}
			if c.artifactType == "" {
				c.artifactType = TreeArtifactType
			}
			// Signed by the trusted key: the checks of the content
			// must refuse it on their own.
			pushSignedTree(t, s, tag, hash, c.artifactType, static.NewLayer(c.layer, c.mediaType))
			_, err := s.GetTree(ctx, hash)
			if !errors.Is(err, ErrMismatch) {
				t.Errorf("%v, want ErrMismatch", err)
			}
		})
	}
}

// TestCacheNewWantsRepository: a registry repository is taken; a tag, a
// digest or another transport is refused.
func TestCacheNewWantsRepository(t *testing.T) {
	keys := Keys{Trust: []signature.Verifier{newKey(t, testenv.KeyEd25519).pub}}
	for ref, want := range map[string]string{
		"127.0.0.1:5000/fleet/cache":                           "127.0.0.1:5000/fleet/cache",
		"ghcr.io/acme/xtraefik-cache":                          "ghcr.io/acme/xtraefik-cache",
		"docker://ghcr.io/acme/cache":                          "ghcr.io/acme/cache",
		"127.0.0.1:5000/fleet/cache:latest":                    "",
		"ghcr.io/acme/cache@sha256:" + strings.Repeat("0", 64): "",
		"oci:/tmp/cache":                                       "",
		"":                                                     "",
		"ghcr.io/Acme/cache":                                   "",
	} {
		s, err := New(ref, images.Options{}, keys)
		switch {
		case want == "" && err == nil:
			t.Errorf("New(%q) = %s, want an error", ref, s)
		case want != "" && err != nil:
			t.Errorf("New(%q): %v", ref, err)
		case want != "" && s.String() != want:
			t.Errorf("New(%q) = %s, want %s", ref, s, want)
		}
	}
}

// TestCacheTreeRefusesForgedPaths: one entry whose name holds a line break
// and b.go's hash line hashes, without the path checks, exactly like the
// two entries a.go and b.go. Stored under their hash, it is refused: a
// writer of the repository cannot serve files the lock does not pin.
func TestCacheTreeRefusesForgedPaths(t *testing.T) {
	ctx := context.Background()
	s, _ := testStore(t)
	const a, b = "package a\n", "package b\n"
	honest, err := fileset.New([]fileset.File{
		{Path: "a.go", Size: int64(len(a)), Open: content(a)},
		{Path: "b.go", Size: int64(len(b)), Open: content(b)},
	})
	if err != nil {
		t.Fatal(err)
	}
	hash, err := honest.Hash()
	if err != nil {
		t.Fatal(err)
	}
	sumB := sha256.Sum256([]byte(b))
	forged := "a.go\n" + hex.EncodeToString(sumB[:]) + " 644 b.go"
	// The premise: unchecked, the forged entry hashes like the honest two.
	if h := rawHash(t, []fileset.File{{Path: forged, Size: int64(len(a)), Open: content(a)}}); h != hash {
		t.Fatalf("the forged entry hashes to %s, the honest set to %s", h, hash)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	if err := tw.WriteHeader(&tar.Header{Name: forged, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(a))}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte(a))
	tw.Close()
	zw.Close()
	tag, _ := s.treeTag(hash)
	pushSignedTree(t, s, tag, hash, TreeArtifactType, static.NewLayer(buf.Bytes(), types.OCILayer))
	got, err := s.GetTree(ctx, hash)
	if !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "control character") {
		t.Errorf("GetTree of the forged tree = %d files, %v; want ErrMismatch for the control character", len(got), err)
	}
}

// rawHash is fileset.Set.Hash without its path checks: the hash files
// would have if only the content hash guarded the cache.
func rawHash(t *testing.T, files []fileset.File) string {
	t.Helper()
	files = append([]fileset.File(nil), files...)
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	h := sha256.New()
	for _, f := range files {
		c := sha256.New()
		if f.Kind == fileset.Symlink {
			io.WriteString(c, f.Link)
		} else {
			io.WriteString(c, readAll(t, f))
		}
		fmt.Fprintf(h, "%x %o %s\n", c.Sum(nil), f.Mode(), f.Path)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// gzipOf compresses raw as one gzip stream.
func gzipOf(raw []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(raw)
	zw.Close()
	return buf.Bytes()
}

// tarOf is an uncompressed tar of hdrs; a regular file holds Size bytes
// "x".
func tarOf(t *testing.T, hdrs ...*tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write(bytes.Repeat([]byte("x"), int(h.Size)))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestReadTreeBounds: what a layer costs beyond its files' content is
// bounded too: names and link targets count against max and are at most
// 4096 bytes each, the unpacked stream is bounded (PAX records are read
// whole but belong to no file), and so is the data after the tar's end.
// Each layer is accepted by readTree without these bounds.
func TestReadTreeBounds(t *testing.T) {
	reg := func(name string, size int64) *tar.Header {
		return &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: size}
	}
	link := func(name, target string) *tar.Header {
		return &tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target}
	}
	var longNames []*tar.Header
	for i := range 5 {
		longNames = append(longNames, link(fmt.Sprintf("%04d", i)+strings.Repeat("n", 996), "a"))
	}
	longNames = append(longNames, reg("a", 1))
	// Each entry carries a PAX record of 900 KiB that no check sees.
	var pax []*tar.Header
	for i := range 4 {
		h := reg(fmt.Sprintf("f%d", i), 1)
		h.PAXRecords = map[string]string{"comment": strings.Repeat("c", 900<<10)}
		pax = append(pax, h)
	}
	valid := tarOf(t, reg("a.go", 10))
	for _, tc := range []struct {
		name  string
		layer []byte
		max   int64
		want  string // "" = accepted
	}{
		{"long names", gzipOf(tarOf(t, longNames...)), 4096, "more than 4096 bytes of files"},
		{"long names within max", gzipOf(tarOf(t, longNames...)), 8192, ""},
		{"long path", gzipOf(tarOf(t, reg(strings.Repeat("d/", 2100)+"f", 1))), MaxTreeBytes, "longer than 4096 bytes"},
		{"long link", gzipOf(tarOf(t, reg("a", 1), link("l", strings.Repeat("./", 2100)+"a"))), MaxTreeBytes, "longer than 4096 bytes"},
		{"path of 4096 bytes", gzipOf(tarOf(t, reg(strings.Repeat("d/", 2047)+"ff", 1))), MaxTreeBytes, ""},
		{"unpacks too large", gzipOf(tarOf(t, pax...)), 4096, fmt.Sprintf("unpacks to more than %d bytes", 4096+1024+treeSlack)},
		{"trailing data", gzipOf(append(valid, make([]byte, 2<<20)...)), MaxTreeBytes, "more than 1048576 bytes after the end of the tar"},
		{"a record of padding", gzipOf(append(valid, make([]byte, 10240)...)), MaxTreeBytes, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files, err := readTree(bytes.NewReader(tc.layer), tc.max)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("readTree = %d files, %v; want an error saying %q", len(files), err, tc.want)
			}
		})
	}
}

// TestCacheNewRedactsCredentials: a cache-repository value with credentials
// is refused without echoing them.
func TestCacheNewRedactsCredentials(t *testing.T) {
	keys := Keys{Trust: []signature.Verifier{newKey(t, testenv.KeyEd25519).pub}}
	for _, ref := range []string{
		"https://user:s3cret@reg.example/x",
		"docker://user:s3cret@reg.example/x",
		"http://s3cret@reg.example/x",
		"https://reg.example/x?token=s3cret",
	} {
		_, err := New(ref, images.Options{}, keys)
		if err == nil {
			t.Errorf("New(%q) accepted", ref)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "reg.example/x") {
			t.Errorf("New(%q): %v; want the repository named without its secret", ref, err)
		}
	}
}

// TestCacheStorePingsOnce: a Store reuses its connections' authorisation,
// so a build asking for many trees pings the registry once per direction
// (pull, push), not once per request.
func TestCacheStorePingsOnce(t *testing.T) {
	s, log := testStore(t)
	for i := range 5 {
		p := testPlugin(t, fmt.Sprint("marker", i))
		if _, err := s.GetTree(t.Context(), p.Hash); !errors.Is(err, ErrNotFound) {
			t.Fatalf("empty repository: %v", err)
		}
		if err := s.PutTree(t.Context(), p); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetTree(t.Context(), p.Hash); err != nil {
			t.Fatal(err)
		}
	}
	pings := 0
	for _, r := range log.Requests() {
		if r.Path == "/v2/" {
			pings++
		}
	}
	if pings > 2 {
		t.Errorf("%d pings for 15 operations, want at most 2", pings)
	}
}
