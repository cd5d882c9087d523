package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

const childEnv = "XTRAEFIK_SANDBOX_TEST_CHILD"

// TestMain turns the test binary into the contained child when asked.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(child())
	}
	os.Exit(m.Run())
}

// attack3Env hands the child to the raw-call checks (amd64 only), which run
// their own code once contained.
const attack3Env = "XTRAEFIK_ATTACK3"

// probeFDEnv names a descriptor number the child tries to fchdir to once
// contained.
const probeFDEnv = "XTRAEFIK_SANDBOX_TEST_FD"

// child enters the sandbox and prints what it could do, as JSON.
func child() int {
	if mode := os.Getenv(attack3Env); mode != "" {
		return attack3Child(mode)
	}
	spec, r, err := Enter()
	res := map[string]string{"report": r.String(), "applied": strings.Join(r.Applied, "; ")}
	if err != nil {
		// Refused: nothing is contained, so nothing is tried.
		res["enter"] = err.Error()
		json.NewEncoder(os.Stdout).Encode(res)
		return 0
	}
	try := func(k string, err error) {
		res[k] = "ok"
		if err != nil {
			res[k] = err.Error()
		}
	}
	try("write tmp", os.WriteFile(filepath.Join(os.Getenv("TMPDIR"), "x"), []byte("x"), 0o644))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	try("listen", err)
	if l != nil {
		l.Close()
	}
	_, err = os.ReadFile("/etc/passwd")
	try("read /etc/passwd", err)
	if bin := os.Getenv("XTRAEFIK_SANDBOX_TEST_EXEC"); bin != "" {
		err := exec.Command(filepath.Join(spec.TreeInside(), filepath.Base(bin))).Run()
		res["exec"] = "ok"
		if err != nil {
			res["exec"] = err.Error()
		}
	}
	if n, err := strconv.Atoi(os.Getenv(probeFDEnv)); err == nil {
		try("fchdir inherited", unix.Fchdir(n))
	}
	wd, _ := os.Getwd()
	res["cwd"] = wd
	res["uid"] = fmt.Sprint(os.Getuid())
	try("mknod char", unix.Mknod(filepath.Join(os.Getenv("TMPDIR"), "null"), unix.S_IFCHR|0o600, int(unix.Mkdev(1, 3))))
	try("mkfifo", unix.Mkfifo(filepath.Join(os.Getenv("TMPDIR"), "fifo"), 0o600))
	json.NewEncoder(os.Stdout).Encode(res)
	return 0
}

func runChild(t *testing.T, namespaces bool, env ...string) map[string]string {
	t.Helper()
	return runChildWith(t, namespaces, nil, env...)
}

// runChildWith runs the child; beforeStart, when set, gets the configured
// command.
func runChildWith(t *testing.T, namespaces bool, beforeStart func(*exec.Cmd), env ...string) map[string]string {
	t.Helper()
	// Reachable by the sandbox user nobody, as xtraefik's work directory is.
	work := t.TempDir()
	if err := errors.Join(os.Chmod(filepath.Dir(work), 0o755), os.Chmod(work, 0o755)); err != nil {
		t.Fatal(err)
	}
	tree := filepath.Join(work, "plugins-local")
	private := filepath.Join(work, "private")
	for _, d := range []string{tree, private} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range env {
		if bin, ok := strings.CutPrefix(e, "XTRAEFIK_SANDBOX_TEST_EXEC="); ok {
			data, err := os.ReadFile(bin)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(tree, filepath.Base(bin)), data, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append([]string{childEnv + "=1"}, env...)
	if err := Configure(cmd, Spec{Tree: tree, Private: private}, namespaces); err != nil {
		t.Fatal(err)
	}
	if beforeStart != nil {
		beforeStart(cmd)
	}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var res map[string]string
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("child said %q: %v", out, err)
	}
	return res
}

func TestEnter(t *testing.T) {
	for _, ns := range []bool{true, false} {
		res := runChild(t, ns)
		if res["enter"] != "" {
			t.Fatalf("enter: %s", res["enter"])
		}
		if res["write tmp"] != "ok" {
			t.Errorf("namespaces=%v: scratch not writable: %s", ns, res["write tmp"])
		}
		if got := res["listen"]; (got == "ok") != ns || (!ns && !strings.Contains(got, "operation not permitted")) {
			t.Errorf("namespaces=%v: listen: %s", ns, got)
		}
		if res["read /etc/passwd"] == "ok" {
			t.Errorf("namespaces=%v: read /etc/passwd", ns)
		}
		if res["mknod char"] != "operation not permitted" || res["mkfifo"] != "ok" {
			t.Errorf("namespaces=%v: mknod of a character device: %s, mkfifo: %s; want the first refused by seccomp", ns, res["mknod char"], res["mkfifo"])
		}
		if !ns && os.Getuid() == 0 && res["uid"] != "65534" {
			t.Errorf("without namespaces a root caller's child runs as uid %s, want nobody", res["uid"])
		}
	}
}

// Without namespaces a root caller's child runs as nobody, never root:
// a tree nobody cannot reach is refused before the child starts.
func TestConfigureRefusesRootWithoutNamespaces(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("root only")
	}
	work := t.TempDir() // below a directory only root may enter
	if err := os.Chmod(filepath.Dir(work), 0o700); err != nil {
		t.Fatal(err)
	}
	tree := filepath.Join(work, "plugins-local")
	if err := os.Mkdir(tree, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	err := Configure(cmd, Spec{Tree: tree, Private: work}, false)
	if err == nil || !strings.Contains(err.Error(), "never as root") || !strings.Contains(err.Error(), tree) {
		t.Fatalf("Configure = %v, want a refusal naming %s", err, tree)
	}
}

// inheritable opens a host directory without close-on-exec, as a caller of
// xtraefik may hand one down.
func inheritable(t *testing.T) *os.File {
	t.Helper()
	dir, err := os.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dir.Close() })
	if _, err := unix.FcntlInt(dir.Fd(), unix.F_SETFD, 0); err != nil {
		t.Fatal(err)
	}
	return dir
}

func closeOnExec(t *testing.T, f *os.File) bool {
	t.Helper()
	flags, err := unix.FcntlInt(f.Fd(), unix.F_GETFD, 0)
	if err != nil {
		t.Fatal(err)
	}
	return flags&unix.FD_CLOEXEC != 0
}

// Configure marks every descriptor of the parent close-on-exec, inherited
// ones included, and keeps the command's own files: the child gets no
// other, and says nothing was inherited.
func TestConfigureKeepsDescriptorsFromTheChild(t *testing.T) {
	dir := inheritable(t)
	for _, ns := range []bool{true, false} {
		res := runChildWith(t, ns, nil)
		if res["enter"] != "" {
			t.Fatalf("namespaces=%v: enter: %s", ns, res["enter"])
		}
	}
	if !closeOnExec(t, dir) {
		t.Fatal("Configure left an inherited descriptor without close-on-exec")
	}
	// A command's extra files are still passed.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	res := runChildWith(t, false, func(cmd *exec.Cmd) {
		// Configured with no extra file: the child must close this one.
		cmd.ExtraFiles = []*os.File{w}
	})
	w.Close()
	if !strings.Contains(res["applied"], "closed 1 descriptor(s) inherited from the parent: 3 (pipe") {
		t.Fatalf("an extra file added after Configure: applied = %q, want it closed as fd 3", res["applied"])
	}
}

// A descriptor that reaches the child without close-on-exec despite
// Configure (here: its flag cleared after Configure) is refused by Enter,
// before any untrusted code, naming it: with and without namespaces.
func TestEnterClosesInheritedDescriptors(t *testing.T) {
	for _, ns := range []bool{true, false} {
		dir := inheritable(t)
		res := runChildWith(t, ns, func(*exec.Cmd) {
			if _, err := unix.FcntlInt(dir.Fd(), unix.F_SETFD, 0); err != nil {
				t.Fatal(err)
			}
		}, fmt.Sprintf("%s=%d", probeFDEnv, dir.Fd()))
		want := fmt.Sprintf("%d (directory %s)", dir.Fd(), dir.Name())
		if res["enter"] != "" || !strings.Contains(res["applied"], "closed 1 descriptor(s) inherited from the parent: "+want) {
			t.Fatalf("namespaces=%v: enter = %q, applied %q; want %s closed", ns, res["enter"], res["applied"], want)
		}
		// After Enter the number no longer leads to the directory (it is
		// closed, or reused by the process for a file of its own): fchdir
		// out of the root fails.
		if got := res["fchdir inherited"]; got == "" || got == "ok" {
			t.Fatalf("namespaces=%v: fchdir on the inherited descriptor: %q, want it refused", ns, got)
		}
	}
}
