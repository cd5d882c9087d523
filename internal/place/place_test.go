package place

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

func write(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func names(t *testing.T, dir string) string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return strings.Join(out, ",")
}

// newFile writes content through a File target at p.
func newFile(t *testing.T, p string, overwrite bool, content string) (*Target, error) {
	t.Helper()
	tg, err := New(p, File, overwrite, true)
	if err != nil {
		return nil, err
	}
	if _, err := tg.File().WriteString(content); err != nil {
		t.Fatal(err)
	}
	return tg, tg.Place()
}

func TestFileTargets(t *testing.T) {
	for _, tt := range []struct {
		name      string
		existing  string // content at the path before, "" for none
		overwrite bool
		undo      bool
		wantErr   string
		want      string // content after, "" for absent
	}{
		{name: "new", want: "new"},
		{name: "new then undone", undo: true},
		{name: "existing refused", existing: "mine", wantErr: "already exists", want: "mine"},
		{name: "overwrite", existing: "mine", overwrite: true, want: "new"},
		{name: "overwrite undone", existing: "mine", overwrite: true, undo: true, want: "mine"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "out", "f")
			if tt.existing != "" {
				write(t, p, tt.existing)
			}
			tg, err := newFile(t, p, tt.overwrite, "new")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			} else if tt.undo {
				if err := tg.Undo(); err != nil {
					t.Fatal(err)
				}
			} else if err := tg.Commit(); err != nil {
				t.Fatal(err)
			}
			if tt.want == "" {
				if _, err := os.Stat(filepath.Join(dir, "out")); !os.IsNotExist(err) {
					t.Errorf("the parent New created is still there: %v", err)
				}
				return
			}
			if got := read(t, p); got != tt.want {
				t.Errorf("content %q, want %q", got, tt.want)
			}
			if got := names(t, filepath.Dir(p)); got != "f" {
				t.Errorf("beside the target: %s", got)
			}
			if info, _ := os.Stat(p); tt.want == "new" && info.Mode().Perm() != 0o644 {
				t.Errorf("mode %v, want 0644", info.Mode().Perm())
			}
		})
	}
}

func TestDirTargets(t *testing.T) {
	for _, tt := range []struct {
		name      string
		existing  string // "", "empty", "full" or "file"
		overwrite bool
		undo      bool
		wantErr   string
		want      string // names inside the target after; "-" for absent
	}{
		{name: "new", want: "blob"},
		{name: "empty directory", existing: "empty", want: "blob"},
		{name: "empty directory undone", existing: "empty", undo: true, want: ""},
		{name: "full refused", existing: "full", wantErr: "not empty", want: "keep"},
		{name: "file refused", existing: "file", wantErr: "already exists", want: "-"},
		{name: "full overwritten", existing: "full", overwrite: true, want: "blob"},
		{name: "full overwrite undone", existing: "full", overwrite: true, undo: true, want: "keep"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "layout")
			switch tt.existing {
			case "empty":
				os.Mkdir(p, 0o700)
			case "full":
				write(t, filepath.Join(p, "keep"), "mine")
			case "file":
				write(t, p, "mine")
			}
			tg, err := New(p, Dir, tt.overwrite, true)
			if err == nil {
				write(t, filepath.Join(tg.Temp(), "blob"), "x")
				err = tg.Place()
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				err = nil
			} else if err != nil {
				t.Fatal(err)
			} else if tt.undo {
				err = tg.Undo()
			} else {
				err = tg.Commit()
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.want != "-" {
				if got := names(t, p); got != tt.want {
					t.Errorf("target holds %q, want %q", got, tt.want)
				}
			}
			if got := names(t, filepath.Dir(p)); got != "layout" {
				t.Errorf("beside the target: %s", got)
			}
			if info, _ := os.Stat(p); tt.existing == "empty" && tt.undo && info.Mode().Perm() != 0o700 {
				t.Errorf("restored empty directory has mode %v", info.Mode().Perm())
			}
		})
	}
}

// TestCleanStale: a temporary whose writer is alive (its lock held) stays; one
// whose writer died (lock released) goes, and so does a pid-less one from an
// older xtraefik once it is old; content moved aside is never touched.
func TestCleanStale(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "image.tar")
	live, err := New(p, File, false, false)
	if err != nil {
		t.Fatal(err)
	}
	dead, err := New(p, File, false, false)
	if err != nil {
		t.Fatal(err)
	}
	dead.File().Close() // what a killed writer's exit does to its lock
	legacyOld := filepath.Join(dir, ".image.tar.tmp-123456")
	legacyNew := filepath.Join(dir, ".image.tar.tmp-654321")
	aside := filepath.Join(dir, ".image.tar.old-1-2")
	for _, f := range []string{legacyOld, legacyNew, aside} {
		write(t, f, "x")
	}
	old := time.Now().Add(-2 * legacyAge)
	os.Chtimes(legacyOld, old, old)
	os.Chtimes(aside, old, old)

	CleanStale(p)
	kept := []string{filepath.Base(aside), filepath.Base(legacyNew), filepath.Base(live.Temp())}
	slices.Sort(kept)
	want := strings.Join(kept, ",")
	if got := names(t, dir); got != want {
		t.Errorf("after cleaning: %s, want %s", got, want)
	}
	live.Undo()
}

// Parents an output creates are 0755 whatever the umask, so that another
// user (a scanner, a later CI step) can reach what is inside.
func TestParentsIgnoreUmask(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	dir := t.TempDir()
	created, err := mkdirAll(filepath.Join(dir, "a", "b"))
	if err != nil {
		t.Fatal(err)
	}
	if len(created) != 2 {
		t.Fatalf("created %v", created)
	}
	for _, d := range created {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o755 {
			t.Errorf("%s is %v under umask 077", d, fi.Mode().Perm())
		}
	}
}
