package fileset

import (
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func memSet(t *testing.T, files ...File) Set {
	t.Helper()
	for i := range files {
		if files[i].Kind != Symlink {
			c := files[i].Path
			files[i].Size = int64(len(c))
			files[i].Open = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(c)), nil }
		}
	}
	s, err := New(files)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func paths(s Set) []string {
	var out []string
	for _, f := range s {
		out = append(out, f.Path)
	}
	return out
}

func TestSub(t *testing.T) {
	s := memSet(t,
		File{Path: "README.md"},
		File{Path: "plugins/a/.traefik.yml"},
		File{Path: "plugins/a/a.go"},
		File{Path: "plugins/a/up", Kind: Symlink, Link: "../b/b.go"},
		File{Path: "plugins/ab/x.go"},
		File{Path: "plugins/b/b.go"},
	)
	if _, err := s.Sub("plugins/a"); err == nil || !strings.Contains(err.Error(), "outside the plugin") {
		t.Errorf("a link out of the subdirectory: %v", err)
	}
	s = memSet(t, File{Path: "plugins/a/.traefik.yml"}, File{Path: "plugins/a/a.go"}, File{Path: "plugins/ab/x.go"}, File{Path: "x"})
	sub, err := s.Sub("plugins/a")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := paths(sub), []string{".traefik.yml", "a.go"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Sub = %q, want %q (plugins/ab is another directory)", got, want)
	}
	for _, bad := range []string{"../x", "/abs", "missing", "x"} {
		if _, err := s.Sub(bad); err == nil {
			t.Errorf("Sub(%q) accepted", bad)
		}
	}
}

func TestExclude(t *testing.T) {
	s := memSet(t,
		File{Path: ".github/workflows/ci.yml"},
		File{Path: ".traefik.yml"},
		File{Path: "demo.go"},
		File{Path: "demo_test.go"},
		File{Path: "img/logo.png"},
		File{Path: "vendor/x/y_test.go"},
	)
	kept, dropped, err := s.Exclude([]string{".github/**", "**/*_test.go", "*.png", "img/*.png"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := paths(kept), []string{".traefik.yml", "demo.go"}; !reflect.DeepEqual(got, want) {
		t.Errorf("kept %q, want %q", got, want)
	}
	if len(dropped) != 4 {
		t.Errorf("dropped %q", dropped)
	}
	if kept, _, _ := s.Exclude(nil); len(kept) != len(s) {
		t.Error("no patterns dropped files")
	}
	withLink := memSet(t, File{Path: "a.go"}, File{Path: "link", Kind: Symlink, Link: "a.go"})
	if _, _, err := withLink.Exclude([]string{"a.go"}); err == nil || !strings.Contains(err.Error(), "symlink link") {
		t.Errorf("a dangling link after exclude: %v", err)
	}
}

// TestFromDirReadsOnce: what FromDir read is what every later reader gets,
// even when the directory changes afterwards (a file swapped for a symlink
// to a host secret, or for other code).
func TestFromDirReadsOnce(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("TOPSECRET"), 0o644)
	os.WriteFile(filepath.Join(dir, "a.go"), []byte("package a"), 0o644)
	s, err := FromDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, "a.go"))
	os.Symlink(secret, filepath.Join(dir, "a.go"))
	f, _ := s.Lookup("a.go")
	rc, err := f.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, _ := io.ReadAll(rc)
	if string(got) != "package a" {
		t.Errorf("content read after the swap: %q", got)
	}
}
