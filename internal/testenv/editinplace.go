package testenv

import (
	"os"
	"testing"
)

// EditInPlace overwrites part of the file at p, at off, with text, and hides
// the edit as well as a user can: write access taken and given back, the
// same size, the mtime set back. It fails t if the file does not look
// untouched afterwards (size, mtime and mode as before).
func EditInPlace(t testing.TB, p string, off int64, text string) {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte(text), off); err != nil {
		f.Close()
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, fi.Mode().Perm()); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(p)
	if err != nil || after.Size() != fi.Size() || !after.ModTime().Equal(fi.ModTime()) || after.Mode() != fi.Mode() {
		t.Fatalf("the edit did not keep size, mtime and mode: %v %v", after, err)
	}
}
