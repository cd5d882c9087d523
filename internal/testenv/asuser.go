package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// CopyTestBinary copies the running test binary, as name, into a new
// directory below the system's temporary directory made mode perm, so that
// another user can run it (the go command leaves it where only its owner can
// reach). The directory is removed at the end of t.
func CopyTestBinary(t testing.TB, name string, perm os.FileMode) (dir, bin string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "xtraefik-"+name+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	bin = filepath.Join(dir, name)
	if err := errors.Join(os.Chmod(dir, perm), os.WriteFile(bin, data, 0o755)); err != nil {
		t.Fatal(err)
	}
	return dir, bin
}

// AsUser is the command that runs bin with args as user and group uid, with
// no supplementary groups (setpriv, of util-linux; a missing one is
// Unavailable). The caller needs root.
func AsUser(t testing.TB, uid int, bin string, args ...string) *exec.Cmd {
	t.Helper()
	setpriv := Tool(t, "setpriv")
	return exec.Command(setpriv, append([]string{fmt.Sprintf("--reuid=%d", uid), fmt.Sprintf("--regid=%d", uid), "--clear-groups", "--", bin}, args...)...)
}
