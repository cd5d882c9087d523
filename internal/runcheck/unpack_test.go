package runcheck

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

type entry struct {
	name, body, link string
	typ              byte
	mode             int64
	uid              int
}

func layerOf(t *testing.T, entries []entry) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Linkname: e.link, Uid: e.uid, Gid: e.uid, Format: tar.FormatPAX}
		if e.typ == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestUnpack(t *testing.T) {
	outside := t.TempDir() // what a hostile symlink aims at
	img, err := mutate.AppendLayers(empty.Image,
		layerOf(t, []entry{
			{name: "etc/", typ: tar.TypeDir, mode: 0o755},
			{name: "etc/gone", typ: tar.TypeReg, mode: 0o644, body: "whited out"},
			{name: "etc/opaque/", typ: tar.TypeDir, mode: 0o755},
			{name: "etc/opaque/old", typ: tar.TypeReg, mode: 0o644, body: "hidden by an opaque whiteout"},
			{name: "bin/", typ: tar.TypeDir, mode: 0o755},
			{name: "bin/tool", typ: tar.TypeReg, mode: 0o4755, body: "#!/bin/sh\n", uid: 1000},
			{name: "bin/alias", typ: tar.TypeLink, link: "bin/tool"},
			{name: "abs", typ: tar.TypeSymlink, link: outside},
			{name: "abs/pwned", typ: tar.TypeReg, mode: 0o644, body: "must stay in the root"},
			{name: "hidden", typ: tar.TypeSymlink, link: "/etc"},
			{name: "ro/", typ: tar.TypeDir, mode: 0o555},
			{name: "ro/file", typ: tar.TypeReg, mode: 0o600, body: "in a read-only dir"},
			{name: "dev/null", typ: tar.TypeChar, mode: 0o666},
		}),
		layerOf(t, []entry{
			{name: "etc/.wh.gone", typ: tar.TypeReg},
			{name: "etc/opaque/.wh..wh..opq", typ: tar.TypeReg},
			{name: "etc/opaque/new", typ: tar.TypeReg, mode: 0o644, body: "new"},
			{name: "hidden/x", typ: tar.TypeReg, mode: 0o644, body: "an upper directory hides a lower symlink"},
		}),
	)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := Unpack(context.Background(), img, root); err != nil {
		t.Fatal(err)
	}

	for _, p := range []string{"etc/gone", "etc/opaque/old", "dev/null"} {
		if _, err := os.Lstat(filepath.Join(root, p)); !os.IsNotExist(err) {
			t.Errorf("%s exists after unpacking (err %v)", p, err)
		}
	}
	read := func(p string) string {
		b, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			t.Errorf("reading %s: %v", p, err)
		}
		return string(b)
	}
	if got := read("etc/opaque/new"); got != "new" {
		t.Errorf("etc/opaque/new = %q", got)
	}
	if fi, err := os.Lstat(filepath.Join(root, "hidden")); err != nil || !fi.IsDir() {
		t.Errorf("hidden should be the upper layer's directory: %v %v", fi, err)
	}
	if got := read("hidden/x"); got != "an upper directory hides a lower symlink" {
		t.Errorf("hidden/x = %q", got)
	}
	if got := read("ro/file"); got != "in a read-only dir" {
		t.Errorf("ro/file = %q", got)
	}
	// Symlinks are kept as written; nothing is written through them (Extract
	// drops entries below a non-directory, the unpacker resolves inside the root).
	if l, err := os.Readlink(filepath.Join(root, "abs")); err != nil || l != outside {
		t.Errorf("abs -> %q, %v", l, err)
	}
	if ents, err := os.ReadDir(outside); err != nil || len(ents) != 0 {
		t.Errorf("the unpacker wrote outside the root: %v %v", ents, err)
	}

	tool, err := os.Stat(filepath.Join(root, "bin/tool"))
	if err != nil {
		t.Fatal(err)
	}
	if tool.Mode()&os.ModeSetuid != 0 || tool.Mode().Perm() != 0o755 {
		t.Errorf("bin/tool mode %v, want 0755 without setuid", tool.Mode())
	}
	alias, err := os.Stat(filepath.Join(root, "bin/alias"))
	if err != nil || !os.SameFile(tool, alias) {
		t.Errorf("bin/alias is not a hardlink of bin/tool: %v", err)
	}
	wantRO := os.FileMode(0o555)
	if os.Geteuid() != 0 {
		wantRO = 0o755 // kept removable by its owner
	}
	if ro, err := os.Stat(filepath.Join(root, "ro")); err != nil || ro.Mode().Perm() != wantRO {
		t.Errorf("ro mode %v, %v; want %v", ro.Mode(), err, wantRO)
	}
	if os.Geteuid() == 0 {
		if st := tool.Sys().(*syscall.Stat_t); st.Uid != 1000 || st.Gid != 1000 {
			t.Errorf("bin/tool owned by %d:%d, want 1000:1000", st.Uid, st.Gid)
		}
	}
}

func TestUnpackRefusesUnsafePath(t *testing.T) {
	img, err := mutate.AppendLayers(empty.Image,
		layerOf(t, []entry{{name: "ok", typ: tar.TypeReg, mode: 0o644, body: "x"}}),
		layerOf(t, []entry{{name: "../../dotdot", typ: tar.TypeReg, mode: 0o644, body: "x"}}),
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := Unpack(context.Background(), img, t.TempDir()); err == nil || !strings.Contains(err.Error(), "unsafe") {
		t.Fatalf("Unpack of a path with ..: %v", err)
	}
}

func TestUnpackCancelled(t *testing.T) {
	img, err := mutate.AppendLayers(empty.Image, layerOf(t, []entry{{name: "a", typ: tar.TypeReg, mode: 0o644, body: "x"}}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Unpack(ctx, img, t.TempDir()); err == nil || !strings.Contains(err.Error(), "canceled") {
		t.Fatalf("Unpack with a cancelled context: %v", err)
	}
}

// Without root, every unpacked directory stays writable by its owner, so that
// the work directory can be removed: a read-only directory with files in it
// (0555, as images have) would otherwise make the cleanup fail.
func TestUnpackWithoutRootStaysRemovable(t *testing.T) {
	root := t.TempDir()
	u := unpacker{root: root, chown: false}
	for _, e := range []*tar.Header{
		{Name: "ro/", Typeflag: tar.TypeDir, Mode: 0o555},
		{Name: "ro/file", Typeflag: tar.TypeReg, Mode: 0o444},
	} {
		if err := u.entry(e, strings.NewReader("")); err != nil {
			t.Fatal(err)
		}
	}
	if err := u.finish(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(root, "ro"))
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o755 {
		t.Errorf("ro mode %v, want 0755 (the image's 0555 plus the owner's write)", got)
	}
}
