package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

var atFdcwd = uintptr(int(unix.AT_FDCWD) + 0*os.Getpid())

// attack3Child parks threads before Enter (so that they exist when the
// credentials drop), enters, then tries raw system calls as native plugin
// code would, and reports each thread's credentials and protections.
func attack3Child(mode string) int {
	const parked = 8
	type threadState struct{ Tid, R, E, S, G, CapEff, CapPrm, CapInh, NNP, Seccomp int }
	ask := make(chan chan threadState)
	for i := 0; i < parked; i++ {
		go func() {
			runtime.LockOSThread() // this goroutine keeps its OS thread, made before Enter
			for reply := range ask {
				var st threadState
				st.Tid = unix.Gettid()
				var r, e, s, g uintptr
				syscall.RawSyscall(unix.SYS_GETRESUID, uintptr(unsafe.Pointer(&r)), uintptr(unsafe.Pointer(&e)), uintptr(unsafe.Pointer(&s)))
				var gr, ge, gs uintptr
				syscall.RawSyscall(unix.SYS_GETRESGID, uintptr(unsafe.Pointer(&gr)), uintptr(unsafe.Pointer(&ge)), uintptr(unsafe.Pointer(&gs)))
				_ = g
				st.R, st.E, st.S, st.G = int(uint32(r)), int(uint32(e)), int(uint32(s)), int(uint32(gr))
				hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
				var caps [2]unix.CapUserData
				_ = unix.Capget(&hdr, &caps[0]) // pid 0: this thread
				st.CapEff, st.CapPrm, st.CapInh = int(caps[0].Effective|caps[1].Effective), int(caps[0].Permitted|caps[1].Permitted), int(caps[0].Inheritable|caps[1].Inheritable)
				nnp, _ := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)
				sc, _ := unix.PrctlRetInt(unix.PR_GET_SECCOMP, 0, 0, 0, 0)
				st.NNP, st.Seccomp = nnp, sc
				reply <- st
			}
		}()
	}
	ppid := os.Getppid()
	_, r, err := Enter()
	res := map[string]any{"report": r.String()}
	if err != nil {
		res["enter"] = err.Error()
		json.NewEncoder(os.Stdout).Encode(res)
		return 0
	}
	if mode == "x32" {
		// getpid through the x32 ABI: the architecture filter must kill.
		_, _, e := syscall.RawSyscall(0x40000000|unix.SYS_GETPID, 0, 0, 0)
		fmt.Printf("x32 survived: %v\n", e)
		return 0
	}
	var threads []threadState
	for i := 0; i < parked; i++ {
		c := make(chan threadState)
		ask <- c
		threads = append(threads, <-c)
	}
	res["threads"] = threads
	errno := func(_, _ uintptr, e syscall.Errno) string {
		if e == 0 {
			return "ok"
		}
		return e.Error()
	}
	call := func(nr uintptr, a ...uintptr) string {
		var x [6]uintptr
		copy(x[:], a)
		return errno(syscall.RawSyscall6(nr, x[0], x[1], x[2], x[3], x[4], x[5]))
	}
	res["unshare user"] = call(unix.SYS_UNSHARE, unix.CLONE_NEWUSER)
	res["clone3"] = call(unix.SYS_CLONE3, 0, 0)
	res["io_uring_setup"] = call(unix.SYS_IO_URING_SETUP, 1, 0)
	res["bpf"] = call(unix.SYS_BPF, 0, 0, 0)
	res["perf_event_open"] = call(unix.SYS_PERF_EVENT_OPEN, 0, 0, 0, 0, 0)
	res["userfaultfd"] = call(unix.SYS_USERFAULTFD, 0)
	res["keyctl"] = call(unix.SYS_KEYCTL, 0, 0)
	res["setns"] = call(unix.SYS_SETNS, 0, 0)
	res["open_by_handle_at"] = call(unix.SYS_OPEN_BY_HANDLE_AT, 0, 0, 0)
	res["mount"] = call(unix.SYS_MOUNT, 0, 0, 0, 0, 0)
	res["pidfd_getfd"] = call(unix.SYS_PIDFD_GETFD, 0, 0, 0)
	var lim unix.Rlimit
	res["prlimit64 parent upper bits"] = call(unix.SYS_PRLIMIT64, uintptr(ppid)|1<<32, unix.RLIMIT_NOFILE, 0, uintptr(unsafe.Pointer(&lim)))
	res["prlimit64 self"] = call(unix.SYS_PRLIMIT64, 0, unix.RLIMIT_NOFILE, 0, uintptr(unsafe.Pointer(&lim)))
	res["socket vsock upper bits"] = func() string {
		r1, _, e := syscall.RawSyscall(unix.SYS_SOCKET, 40|1<<32, unix.SOCK_STREAM, 0)
		if e == 0 {
			unix.Close(int(r1))
			return "ok"
		}
		return e.Error()
	}()
	res["mknodat chr|fifo"] = call(unix.SYS_MKNODAT, atFdcwd, uintptr(unsafe.Pointer(bytePtr(filepath.Join(os.Getenv("TMPDIR"), "c")))), unix.S_IFCHR|unix.S_IFIFO|0o600, 0)
	// clone with a namespace flag, raw: a child that got through exits at once.
	res["clone newuser"] = func() string {
		r1, _, e := syscall.RawSyscall6(unix.SYS_CLONE, unix.CLONE_NEWUSER|uintptr(unix.SIGCHLD), 0, 0, 0, 0, 0)
		if e != 0 {
			return e.Error()
		}
		if r1 == 0 {
			syscall.RawSyscall(unix.SYS_EXIT_GROUP, 0, 0, 0)
		}
		var ws unix.WaitStatus
		unix.Wait4(int(r1), &ws, 0, nil)
		return "ok"
	}()
	// Every descriptor left open, and what it is (opened as root?).
	var fds []string
	for fd := 0; fd < 256; fd++ {
		var st unix.Stat_t
		if unix.Fstat(fd, &st) == nil {
			fds = append(fds, fmt.Sprintf("%d:mode=%o uid=%d", fd, st.Mode, st.Uid))
		}
	}
	res["fds"] = strings.Join(fds, " ")
	var bset []int
	for c := 0; c <= 40; c++ {
		if v, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(c), 0, 0, 0); err == nil && v == 1 {
			bset = append(bset, c)
		}
	}
	res["bounding"] = fmt.Sprint(bset)
	json.NewEncoder(os.Stdout).Encode(res)
	return 0
}

func runAttack3(t *testing.T, namespaces bool, mode string) ([]byte, error) {
	t.Helper()
	work := t.TempDir()
	if err := errors.Join(os.Chmod(filepath.Dir(work), 0o755), os.Chmod(work, 0o755)); err != nil {
		t.Fatal(err)
	}
	tree, private := filepath.Join(work, "plugins-local"), filepath.Join(work, "private")
	for _, d := range []string{tree, private} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = []string{childEnv + "=1", attack3Env + "=" + mode}
	if err := Configure(cmd, Spec{Tree: tree, Private: private}, namespaces); err != nil {
		t.Fatal(err)
	}
	return cmd.Output()
}

func TestAttack3RawCalls(t *testing.T) {
	for _, ns := range []bool{true, false} {
		out, err := runAttack3(t, ns, "calls")
		if err != nil {
			t.Fatalf("ns=%v: %v %s", ns, err, out)
		}
		var res map[string]any
		if err := json.Unmarshal(out, &res); err != nil {
			t.Fatalf("%s: %v", out, err)
		}
		t.Logf("ns=%v: %s", ns, out)
		if e, ok := res["enter"]; ok {
			t.Fatalf("enter: %v", e)
		}
		for _, k := range []string{"unshare user", "clone3", "io_uring_setup", "bpf", "perf_event_open", "userfaultfd", "keyctl",
			"setns", "open_by_handle_at", "mount", "pidfd_getfd", "prlimit64 parent upper bits", "socket vsock upper bits",
			"mknodat chr|fifo", "clone newuser"} {
			if res[k] == "ok" {
				t.Errorf("ns=%v: %s succeeded", ns, k)
			}
		}
		for _, th := range res["threads"].([]any) {
			m := th.(map[string]any)
			if m["NNP"].(float64) != 1 || m["Seccomp"].(float64) != 2 {
				t.Errorf("ns=%v: thread %v without no_new_privs or seccomp: %v", ns, m["Tid"], m)
			}
			if !ns && os.Getuid() == 0 && (m["R"].(float64) != nobody || m["E"].(float64) != nobody || m["S"].(float64) != nobody ||
				m["G"].(float64) != nobody || m["CapEff"].(float64) != 0 || m["CapPrm"].(float64) != 0) {
				t.Errorf("ns=%v: thread %v kept root's ids or capabilities: %v", ns, m["Tid"], m)
			}
		}
	}
}

func TestAttack3X32(t *testing.T) {
	for _, ns := range []bool{true, false} {
		out, err := runAttack3(t, ns, "x32")
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGSYS {
			t.Errorf("ns=%v: x32 call: %v, output %s; want death by SIGSYS", ns, err, out)
		}
	}
}

func bytePtr(s string) *byte { p, _ := unix.BytePtrFromString(s); return p }
