package verify

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/xtraefik/xtraefik/internal/fileset"
	"github.com/xtraefik/xtraefik/internal/plugin"
)

// attackNative is a static program a plugin ships in its tree and starts
// with os.StartProcess; it reports through its exit status.
const attackNative = `package main

import (
	"os"
	"strconv"
	"syscall"
	"unsafe"
)

func code(err syscall.Errno) int {
	switch err {
	case 0:
		return 0
	case syscall.ETIMEDOUT:
		return 30
	case syscall.ENODEV:
		return 31
	case syscall.ECONNRESET:
		return 32
	case syscall.ENETUNREACH:
		return 33
	case syscall.EPERM:
		return 34
	case syscall.EAFNOSUPPORT:
		return 35
	case syscall.ECONNREFUSED:
		return 36
	}
	return 40
}

func main() {
	switch os.Args[1] {
	case "vsock":
		// AF_VSOCK = 40; vsock is not network-namespaced on this kernel.
		fd, _, e := syscall.RawSyscall(syscall.SYS_SOCKET, 40, syscall.SOCK_STREAM, 0)
		if e != 0 {
			os.Exit(10 + code(e))
		}
		cid, _ := strconv.Atoi(os.Args[2])
		var sa [16]byte // struct sockaddr_vm
		*(*uint16)(unsafe.Pointer(&sa[0])) = 40
		*(*uint32)(unsafe.Pointer(&sa[4])) = 47011
		*(*uint32)(unsafe.Pointer(&sa[8])) = uint32(cid)
		_, _, e = syscall.Syscall(syscall.SYS_CONNECT, fd, uintptr(unsafe.Pointer(&sa[0])), 16)
		os.Exit(100 + code(e))
	case "mknod":
		// A root worker without namespaces keeps CAP_MKNOD; Landlock lets
		// it make device nodes in its scratch directory (on a tmpfs
		// without nodev) and read them.
		maj, _ := strconv.Atoi(os.Args[2])
		min, _ := strconv.Atoi(os.Args[3])
		node := os.Getenv("TMPDIR") + "/blk"
		dev := uint64(maj)<<8 | uint64(min)
		if err := syscall.Mknod(node, syscall.S_IFBLK|0o600, int(dev)); err != nil {
			os.Exit(10 + code(err.(syscall.Errno)))
		}
		f, err := os.Open(node)
		if err != nil {
			os.Exit(50 + code(err.(*os.PathError).Err.(syscall.Errno)))
		}
		buf := make([]byte, 2048)
		if _, err := f.ReadAt(buf, 0); err != nil {
			os.Exit(90)
		}
		if buf[1080] == 0x53 && buf[1081] == 0xEF {
			os.Exit(100) // the ext4 superblock of the host's disk
		}
		os.Exit(91)
	case "kmsg":
		// The kernel log, which seccomp's syslog denial means to keep away.
		node := os.Getenv("TMPDIR") + "/kmsg"
		if err := syscall.Mknod(node, syscall.S_IFCHR|0o600, 1<<8|11); err != nil {
			os.Exit(10 + code(err.(syscall.Errno)))
		}
		f, err := os.Open(node)
		if err != nil {
			os.Exit(50 + code(err.(*os.PathError).Err.(syscall.Errno)))
		}
		buf := make([]byte, 8192)
		n, err := f.Read(buf)
		if err != nil || n == 0 {
			os.Exit(92)
		}
		os.Exit(100)
	case "prlimit":
		pid, _ := strconv.Atoi(os.Args[2])
		lim := [2]uint64{123, 4096}
		var old [2]uint64
		_, _, e := syscall.RawSyscall6(syscall.SYS_PRLIMIT64, uintptr(pid), uintptr(syscall.RLIMIT_NOFILE),
			uintptr(unsafe.Pointer(&lim[0])), uintptr(unsafe.Pointer(&old[0])), 0, 0)
		os.Exit(100 + code(e))
	}
	os.Exit(2)
}
`

// attackPlugin starts the native program with args ("PPID" is the
// worker's parent, the verifying xtraefik) and fails with its exit status.
const attackPlugin = `package spawn

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strconv"
)

type Config struct {
	Args []string
}

func CreateConfig() *Config { return &Config{} }

func New(_ context.Context, _ http.Handler, cfg *Config, _ string) (http.Handler, error) {
	args := []string{"native"}
	for _, a := range cfg.Args {
		if a == "PPID" {
			a = strconv.Itoa(os.Getppid())
		}
		args = append(args, a)
	}
	p, err := os.StartProcess("plugins-local/src/example.com/attack/spawn/native", args, &os.ProcAttr{})
	if err != nil {
		return nil, errors.New("attack: start: " + err.Error())
	}
	st, err := p.Wait()
	if err != nil {
		return nil, errors.New("attack: wait: " + err.Error())
	}
	return nil, errors.New("attack: exit=" + strconv.Itoa(st.ExitCode()))
}
`

func buildAttackNative(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("XTRAEFIK_ATTACK_NATIVE"); bin != "" {
		return bin
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module native\n\ngo 1.22\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(attackNative), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "native")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir, cmd.Env = dir, append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build native: %v\n%s", err, out)
	}
	return bin
}

func attackSpawnPlugin(t *testing.T, bin string, args ...string) plugin.Plugin {
	t.Helper()
	dir := t.TempDir()
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		".traefik.yml": "displayName: spawn\ntype: middleware\nimport: example.com/attack/spawn\nsummary: spawns\ntestData: {}\n",
		"go.mod":       "module example.com/attack/spawn\n\ngo 1.22\n",
		"spawn.go":     attackPlugin,
	}
	for n, c := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "native"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	fs, err := fileset.FromDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := map[string]any{"args": strings.Join(args, ",")}
	return plugin.Plugin{Alias: "spawn", Module: "example.com/attack/spawn", Files: fs, Config: cfg}
}

func attackExit(t *testing.T, r Result) int {
	t.Helper()
	_, s, ok := strings.Cut(r.Reason, "attack: exit=")
	if !ok {
		t.Fatalf("no exit status: %+v", r)
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		t.Fatalf("exit status %q: %v", s, err)
	}
	return n
}

// TestAttackVsock: under FULL containment (new network namespace, loopback
// only) a plugin's native code still opens AF_VSOCK sockets, which the
// network namespace does not cover: its connect behaves exactly as outside
// the sandbox (the request goes to the hypervisor's transport).
func TestAttackVsock(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("linux")
	}
	if _, err := os.Stat("/dev/vsock"); err != nil {
		t.Skip("no vsock on this host")
	}
	bin := buildAttackNative(t)
	outside := exec.Command(bin, "vsock", "1")
	err := outside.Run()
	outCode := 0
	if ee, ok := err.(*exec.ExitError); ok {
		outCode = ee.ExitCode()
	}
	t.Logf("outside the sandbox: exit %d", outCode)
	r := hostileVerify(t, attackSpawnPlugin(t, bin, "vsock", "1"), Options{}, false)
	in := attackExit(t, r)
	t.Logf("inside (containment %s): exit %d", r.Containment, in)
	if !r.Containment.Full() {
		t.Skip("no full containment here")
	}
	if in >= 100 {
		t.Errorf("BROKEN: AF_VSOCK socket created and connect attempted under full containment (exit %d, outside %d): vsock is not network-namespaced", in, outCode)
	}
}

// TestAttackPrlimitParent: under partial containment (no namespaces:
// Landlock, seccomp) a plugin's native code changes the resource limits of
// the verifying xtraefik process itself (prlimit64 is neither in seccomp's
// list nor covered by Landlock's scoping).
func TestAttackPrlimitParent(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("linux")
	}
	var before syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &before); err != nil {
		t.Fatal(err)
	}
	defer syscall.Setrlimit(syscall.RLIMIT_NOFILE, &before)
	bin := buildAttackNative(t)
	r := hostileVerify(t, attackSpawnPlugin(t, bin, "prlimit", "PPID"), Options{}, true)
	in := attackExit(t, r)
	var after syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &after); err != nil {
		t.Fatal(err)
	}
	t.Logf("containment %s; native exit %d; xtraefik's RLIMIT_NOFILE before %+v after %+v", r.Containment, in, before, after)
	if after.Cur == 123 {
		t.Errorf("BROKEN: plugin code under partial containment set the verifying process's RLIMIT_NOFILE to %d (it could set RLIMIT_CPU's hard limit and have the kernel SIGKILL xtraefik, or RLIMIT_NOFILE to 0)", after.Cur)
	}
}

// TestAttackPrlimitParentUnprivileged re-runs TestAttackPrlimitParent as
// nobody: no capability, only the same user as the verifying process.
func TestAttackPrlimitParentUnprivileged(t *testing.T) {
	if runtime.GOOS != "linux" || os.Getuid() != 0 || os.Getenv(hostileChildEnv) != "" {
		t.Skip("runs as root, re-running the attack as nobody")
	}
	native := buildAttackNative(t)
	dir, err := os.MkdirTemp("", "xtraefik-attack-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	nat, err := os.ReadFile(native)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "verify.test")
	if err := errors.Join(os.Chmod(dir, 0o777), os.WriteFile(bin, data, 0o755), os.WriteFile(filepath.Join(dir, "native"), nat, 0o755)); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", bin, "-test.run=^TestAttackPrlimitParent$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), hostileChildEnv+"=1", "HOME=/nonexistent", "TMPDIR=/tmp", "XTRAEFIK_ATTACK_NATIVE="+filepath.Join(dir, "native"))
	out, err := cmd.CombinedOutput()
	t.Logf("as nobody: %v\n%s", err, out)
	if strings.Contains(string(out), "BROKEN") {
		t.Error("BROKEN as an unprivileged user too")
	}
}

// TestAttackMknodDisk: a root caller whose executable or work directory
// others cannot reach (xtraefik installed by go install in /root/go/bin)
// gets, without namespaces, a worker running as root with its
// capabilities. Landlock allows making device nodes in the scratch
// directory, seccomp does not deny mknod, and /dev/shm is not nodev: plugin
// code reads the host's disk (every file on it) raw.
func TestAttackMknodDisk(t *testing.T) {
	if runtime.GOOS != "linux" || os.Getuid() != 0 {
		t.Skip("linux, root")
	}
	var st syscall.Stat_t
	if err := syscall.Stat("/", &st); err != nil {
		t.Fatal(err)
	}
	maj, min := (st.Dev>>8)&0xfff, st.Dev&0xff
	bin := buildAttackNative(t)
	r := hostileVerify(t, attackSpawnPlugin(t, bin, "mknod", strconv.Itoa(int(maj)), strconv.Itoa(int(min))), Options{}, true)
	in := attackExit(t, r)
	t.Logf("containment %s; native exit %d (100: read the ext4 superblock of %d:%d)", r.Containment, in, maj, min)
	if in == 84 {
		t.Logf("the block device node was made (mknod succeeded); opening it was refused with EPERM, as this host refuses root itself /dev/vda")
	}
	r = hostileVerify(t, attackSpawnPlugin(t, bin, "kmsg"), Options{}, true)
	kmsg := attackExit(t, r)
	t.Logf("kmsg: native exit %d (100: read the host's kernel log through /dev/kmsg made in scratch)", kmsg)
	if kmsg == 100 {
		t.Errorf("BROKEN: plugin code under partial containment made a device node (c 1:11, /dev/kmsg) in its scratch directory and read the host's kernel log")
	}
	if in == 100 {
		t.Errorf("BROKEN: plugin code under partial containment read the host's root disk %d:%d raw through a device node it made in its scratch directory", maj, min)
	}
}
