package testenv

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// Snapshot maps every path under dir to its mode and content ("<dir>" and
// the mode for directories), to tell whether a run left a tree as it was.
func Snapshot(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			out[rel] = "<dir> " + info.Mode().String()
			return nil
		}
		b, err := os.ReadFile(p)
		out[rel] = info.Mode().String() + " " + string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// SameTree reports every path of before removed or changed in after, and
// every path after has that before had not.
func SameTree(t testing.TB, what string, before, after map[string]string) {
	t.Helper()
	for p, c := range before {
		if got, ok := after[p]; !ok {
			t.Errorf("%s: %s was removed", what, p)
		} else if got != c {
			t.Errorf("%s: %s changed:\n  %.80q\nwas\n  %.80q", what, p, got, c)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("%s: %s was left behind", what, p)
		}
	}
}
