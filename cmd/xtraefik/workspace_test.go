package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/xtraefik/xtraefik/internal/testenv"
)

const workspaceHintText = `Run the container as your user: docker run --user "$(id -u):$(id -g)" …`

// TestWorkspaceHint: a path refused for lack of permission gets the --user
// hint when this process is a non-root user in a container (or the image's
// user 65532), and only then; starting a program refused is no workspace
// problem.
func TestWorkspaceHint(t *testing.T) {
	mkdir := fmt.Errorf("blob cache /src/.cache/blobs: %w", &fs.PathError{Op: "mkdir", Path: "/src/.cache", Err: syscall.EACCES})
	rename := fmt.Errorf("write the lock: %w", &os.LinkError{Op: "rename", Old: "/src/.recipe.lock.tmp", New: "/src/recipe.lock", Err: syscall.EPERM})
	exec := fmt.Errorf("start worker: %w", &fs.PathError{Op: "fork/exec", Path: "/proc/self/exe", Err: syscall.EPERM})
	missing := &fs.PathError{Op: "open", Path: "/src/recipe.yaml", Err: syscall.ENOENT}
	yes, no := func() bool { return true }, func() bool { return false }
	for _, tc := range []struct {
		name      string
		err       error
		uid       int
		container func() bool
		hint      bool
	}{
		{"image user, no container marker", mkdir, imageUID, no, true},
		{"another user in a container", mkdir, 1000, yes, true},
		{"rename refused in a container", rename, 1000, yes, true},
		{"a user outside a container", mkdir, 1000, no, false},
		{"root in a container", mkdir, 0, yes, false},
		{"a program refused", exec, imageUID, yes, false},
		{"no such file", missing, imageUID, yes, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := workspaceHint(tc.err, tc.uid, tc.container)
			if has := strings.Contains(got.Error(), workspaceHintText); has != tc.hint {
				t.Fatalf("hint %v, want %v:\n%v", has, tc.hint, got)
			}
			if !errors.Is(got, tc.err) {
				t.Error("the hint lost the error")
			}
			if again := workspaceHint(got, tc.uid, tc.container); again.Error() != got.Error() {
				t.Errorf("the hint was added twice:\n%v", again)
			}
			if tc.hint && !strings.Contains(got.Error(), fmt.Sprintf("runs as user %d", tc.uid)) {
				t.Errorf("the hint does not name the user:\n%v", got)
			}
		})
	}
}

const workspaceChildEnv = "XTRAEFIK_TEST_WORKSPACE_ARGS"

// TestWorkspaceHintChild runs main with the arguments its parent gives
// (TestWorkspaceHintAsImageUser); it is no test of its own.
func TestWorkspaceHintChild(t *testing.T) {
	args := os.Getenv(workspaceChildEnv)
	if args == "" {
		t.Skip("run by TestWorkspaceHintAsImageUser")
	}
	os.Args = append([]string{"xtraefik"}, strings.Split(args, "\n")...)
	main()
}

// TestWorkspaceHintAsImageUser: the release image's user (65532) running
// xtraefik in a workspace owned by root (mode 0555) is told to run the
// container as its own user — the real binary's main, a real EACCES.
func TestWorkspaceHintAsImageUser(t *testing.T) {
	if os.Getuid() != 0 || os.Getenv(workspaceChildEnv) != "" {
		t.Skip("needs root, to run as the image's user")
	}
	dir, bin := testenv.CopyTestBinary(t, "xtraefik.test", 0o755)
	ws := filepath.Join(dir, "src")
	if err := errors.Join(os.Mkdir(ws, 0o555), os.Chmod(ws, 0o555)); err != nil {
		t.Fatal(err)
	}
	args := []string{"build", "--base", "oci:" + filepath.Join(ws, "base"), "--with", "example.com/demo=./demo",
		"--cache-dir", filepath.Join(ws, ".cache"), "--oci-layout", filepath.Join(ws, "out")}
	cmd := testenv.AsUser(t, imageUID, bin, "-test.run=^TestWorkspaceHintChild$", "-test.count=1")
	cmd.Dir = ws
	cmd.Env = []string{workspaceChildEnv + "=" + strings.Join(args, "\n"), "HOME=/nonexistent", "TMPDIR=/tmp", "PATH=" + os.Getenv("PATH")}
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err == nil {
		t.Fatalf("wrote into a workspace it may not write:\n%s", out)
	}
	for _, want := range []string{"permission denied", "runs as user 65532 in this container", workspaceHintText} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q (%v):\n%s", want, err, out)
		}
	}
}
