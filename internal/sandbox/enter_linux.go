package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"github.com/landlock-lsm/go-landlock/landlock"
	llsys "github.com/landlock-lsm/go-landlock/landlock/syscall"
	"golang.org/x/sys/unix"
)

// devices are the device nodes the contained process gets; writes to
// /dev/null and /dev/full are harmless.
var devices = []string{"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"}

// zoneinfo is read-only system data plugins may load (time.LoadLocation).
const zoneinfo = "/usr/share/zoneinfo"

// Enter applies the Spec that Configure passed in the environment to this
// process, before it runs any untrusted code, and returns it with the
// protections in force. It fails when the spec cannot be read, when a protection the
// namespaces promised cannot be set up, when the process holds a descriptor
// it was not given and did not open (inherited without close-on-exec), or,
// in ModeRequire, when anything is missing. A process Configure did not
// start is refused.
func Enter() (Spec, Report, error) {
	s, err := specFromEnv()
	if err != nil {
		return Spec{}, Report{}, err
	}
	// First, while every descriptor is still the one the process started
	// with: an inherited directory would lead out of the new root.
	closed, err := closeInherited(s.Files)
	if err != nil {
		return Spec{}, Report{}, err
	}

	// Every step below works on the whole process; locking the thread keeps
	// the per-thread ones (seccomp's no_new_privs check) on one thread.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	var applied, missing []string
	if len(closed) > 0 {
		applied = append(applied, fmt.Sprintf("closed %d descriptor(s) inherited from the parent: %s", len(closed), strings.Join(closed, ", ")))
	}
	if s.Namespaces {
		if os.Getpid() != 1 {
			return Spec{}, Report{}, fmt.Errorf("sandbox: expected to be PID 1 of a new PID namespace, am %d", os.Getpid())
		}
		if err := enterRoot(s); err != nil {
			return Spec{}, Report{}, fmt.Errorf("sandbox: set up the root: %w", err)
		}
		if err := loopbackUp(); err != nil {
			return Spec{}, Report{}, fmt.Errorf("sandbox: bring up loopback: %w", err)
		}
		applied = append(applied, "user, mount, PID, network (loopback only), IPC and UTS namespaces",
			"read-only root holding only the plugin tree, private /tmp")
	} else {
		missing = append(missing, "user, mount, PID and network namespaces (the host refused them)")
	}
	// Orphans of plugin processes come back to the worker, so that their
	// memory is counted and they are killed with it.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return Spec{}, Report{}, fmt.Errorf("sandbox: become a subreaper: %w", err)
	}
	switch {
	case s.HostUID == 0 && s.Namespaces:
		applied = append(applied, "sandbox root mapped to host root (xtraefik or the plugin tree is not reachable by other users)")
	case !s.Namespaces && (unix.Getuid() == 0 || unix.Geteuid() == 0):
		// Without namespaces root keeps its capabilities on the host (device
		// nodes, raw disks, every file): plugin code never runs as root.
		if s.HostUID == 0 {
			return Spec{}, Report{}, fmt.Errorf("sandbox: refusing to run untrusted code as root without namespaces")
		}
		if err := dropPrivileges(s.HostUID); err != nil {
			return Spec{}, Report{}, fmt.Errorf("sandbox: become host user %d: %w", s.HostUID, err)
		}
		applied = append(applied, fmt.Sprintf("runs as host user %d, root's groups and capabilities dropped", s.HostUID))
	default:
		applied = append(applied, fmt.Sprintf("runs as host user %d", s.HostUID))
	}
	if err := setRlimits(s); err != nil {
		return Spec{}, Report{}, fmt.Errorf("sandbox: %w", err)
	}
	applied = append(applied, fmt.Sprintf("rlimits (%d tasks, %d MB per file, no core dumps)", s.MaxProcs, s.ScratchBytes>>20))
	// Inside the namespaces the new root already holds nothing but the tree
	// and seccomp denies every mount call; Landlock matters without them.
	if !s.Namespaces {
		ll, err := applyLandlock(s)
		switch {
		case err != nil:
			return Spec{}, Report{}, fmt.Errorf("sandbox: landlock: %w", err)
		case ll != "":
			applied = append(applied, ll)
		default:
			missing = append(missing, "landlock (the kernel has none): files the caller can read are readable, /proc/self/mem included, so the verdict could be forged")
		}
		if landlockABI() < 6 {
			missing = append(missing, "signal scoping (landlock ABI < 6): other processes of the caller can be signalled")
		}
	}
	// Capabilities are per thread and Go's threads cannot all be reached
	// reliably here; inside the namespaces they are the sandbox's user
	// namespace's only (no host privilege), and seccomp and Landlock deny
	// what they would allow (mounts, namespaces, chroot). no_new_privs, set
	// on every thread with the seccomp filter, keeps execve from gaining any.
	applied = append(applied, "no_new_privs")
	if err := applySeccomp(s); err != nil {
		return Spec{}, Report{}, fmt.Errorf("sandbox: seccomp: %w", err)
	}
	if s.Namespaces {
		applied = append(applied, "seccomp (sockets of the families Go's net package uses only; no limits, priorities or scheduling of other processes; no device nodes; no mount, ptrace, namespace, kernel-keyring or BPF calls)")
	} else {
		applied = append(applied, "seccomp (no sockets, no new sessions or process groups, no limits, priorities or scheduling of other processes, no device nodes, no mount, ptrace, namespace, kernel-keyring or BPF calls)")
	}
	if err := os.Chdir(s.WorkDirInside()); err != nil {
		return Spec{}, Report{}, fmt.Errorf("sandbox: enter the working directory: %w", err)
	}
	for k, v := range map[string]string{"HOME": s.ScratchInside(), "TMPDIR": s.ScratchInside()} {
		_ = os.Setenv(k, v)
	}
	r := newReport(applied, missing)
	if s.Mode == ModeRequire && !r.Full() {
		return s, r, fmt.Errorf("sandbox: full containment required, but missing: %s", strings.Join(r.Missing, "; "))
	}
	return s, r, nil
}

// dropPrivileges makes every thread of this root process the user and group
// id, with no supplementary group and no capability left (the kernel clears
// them when every uid leaves 0), and checks that it took.
func dropPrivileges(id int) error {
	ppid := os.Getppid()
	// The syscall package applies these to every thread of the process.
	if err := syscall.Setgroups(nil); err != nil {
		return fmt.Errorf("drop supplementary groups: %w", err)
	}
	if err := syscall.Setresgid(id, id, id); err != nil {
		return fmt.Errorf("set group ids: %w", err)
	}
	if err := syscall.Setresuid(id, id, id); err != nil {
		return fmt.Errorf("set user ids: %w", err)
	}
	// The kernel clears the parent-death signal with the credentials.
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
		return fmt.Errorf("restore the parent-death signal: %w", err)
	}
	if os.Getppid() != ppid {
		return errors.New("the verifying process is gone")
	}
	r, e, sv := unix.Getresuid()
	gr, ge, gs := unix.Getresgid()
	if r != id || e != id || sv != id || gr != id || ge != id || gs != id {
		return fmt.Errorf("ids are %d/%d/%d, groups %d/%d/%d", r, e, sv, gr, ge, gs)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var caps [2]unix.CapUserData
	if err := unix.Capget(&hdr, &caps[0]); err != nil {
		return fmt.Errorf("read capabilities: %w", err)
	}
	for _, c := range caps {
		if c.Effective != 0 || c.Permitted != 0 {
			return fmt.Errorf("capabilities left: effective %#x, permitted %#x", c.Effective, c.Permitted)
		}
	}
	return nil
}

// enterRoot builds the new root on a tmpfs mounted on s.Private — the
// plugin tree read-only at /<name>, a private /tmp, a few device nodes —
// pivots into it and makes it read-only. Nothing else of the host's files
// is reachable afterwards.
func enterRoot(s Spec) error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	root := s.Private
	if err := unix.Mount("xtraefik-sandbox", root, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size=1m,mode=0755"); err != nil {
		return fmt.Errorf("mount the new root on %s: %w", root, err)
	}
	tmp := filepath.Join(root, "tmp")
	if err := os.Mkdir(tmp, 0o755); err != nil {
		return err
	}
	if err := unix.Mount("xtraefik-scratch", tmp, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC,
		fmt.Sprintf("size=%d,mode=1777", s.ScratchBytes)); err != nil {
		return fmt.Errorf("mount the private /tmp: %w", err)
	}
	if err := bindReadOnly(s.Tree, filepath.Join(root, s.TreeInside()), true); err != nil {
		return fmt.Errorf("mount the plugin tree: %w", err)
	}
	if fi, err := os.Stat(zoneinfo); err == nil && fi.IsDir() {
		if err := bindReadOnly(zoneinfo, filepath.Join(root, zoneinfo), true); err != nil {
			return fmt.Errorf("mount %s: %w", zoneinfo, err)
		}
	}
	if s.Exec != "" {
		if err := bindReadOnly(s.Exec, filepath.Join(root, s.ExecInside()), false); err != nil {
			return fmt.Errorf("mount the executable %s: %w", s.Exec, err)
		}
	}
	for _, d := range devices {
		if err := bindReadOnly(d, filepath.Join(root, d), false); err != nil {
			return fmt.Errorf("mount %s: %w", d, err)
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(root, "etc/hosts"), []byte("127.0.0.1 localhost\n::1 localhost\n"), 0o644); err != nil {
		return err
	}
	if err := os.Chdir(root); err != nil {
		return err
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach the host's root: %w", err)
	}
	if err := os.Chdir("/"); err != nil {
		return err
	}
	if err := unix.Mount("", "/", "", unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return fmt.Errorf("make the root read-only: %w", err)
	}
	return nil
}

// bindReadOnly bind-mounts src on dst (created as a directory or an empty
// file), read-only, keeping the flags the kernel locks on src's mount.
func bindReadOnly(src, dst string, dir bool) error {
	if dir {
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return err
		}
	} else {
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(dst, nil, 0o644); err != nil {
			return err
		}
	}
	if err := unix.Mount(src, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return err
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dst, &st); err != nil {
		return err
	}
	flags := uintptr(unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY | unix.MS_NOSUID)
	if dir {
		flags |= unix.MS_NODEV
	}
	for _, f := range []struct{ st, ms uintptr }{
		{unix.ST_NODEV, unix.MS_NODEV}, {unix.ST_NOEXEC, unix.MS_NOEXEC},
		{unix.ST_NOATIME, unix.MS_NOATIME}, {unix.ST_NODIRATIME, unix.MS_NODIRATIME}, {unix.ST_RELATIME, unix.MS_RELATIME},
	} {
		if uintptr(st.Flags)&f.st != 0 {
			flags |= f.ms
		}
	}
	return unix.Mount("", dst, "", flags, "")
}

// loopbackUp brings up lo in the new network namespace: the only network
// the contained code gets.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

func setRlimits(s Spec) error {
	set := func(name string, res int, v uint64) error {
		var cur unix.Rlimit
		if err := unix.Getrlimit(res, &cur); err != nil {
			return fmt.Errorf("read rlimit %s: %w", name, err)
		}
		lim := unix.Rlimit{Cur: min(v, cur.Max), Max: min(v, cur.Max)}
		if err := unix.Setrlimit(res, &lim); err != nil {
			return fmt.Errorf("set rlimit %s: %w", name, err)
		}
		return nil
	}
	if err := set("core", unix.RLIMIT_CORE, 0); err != nil {
		return err
	}
	if err := set("fsize", unix.RLIMIT_FSIZE, uint64(s.ScratchBytes)); err != nil {
		return err
	}
	if err := set("nofile", unix.RLIMIT_NOFILE, 4096); err != nil {
		return err
	}
	// In a user namespace of its own the task count is the sandbox's alone;
	// without one it would be the caller's whole user, so it is left alone.
	if s.Namespaces {
		return set("nproc", unix.RLIMIT_NPROC, uint64(s.MaxProcs))
	}
	return nil
}

// scratchAccess is what landlock.RWDirs grants less making device and
// socket nodes: the scratch directory is on the host (/dev/shm, $TMPDIR),
// not mounted nodev, and a device node there would open the device.
const scratchAccess = landlock.AccessFSSet(llsys.AccessFSExecute | llsys.AccessFSReadFile | llsys.AccessFSReadDir |
	llsys.AccessFSWriteFile | llsys.AccessFSTruncate | llsys.AccessFSRemoveDir | llsys.AccessFSRemoveFile |
	llsys.AccessFSMakeDir | llsys.AccessFSMakeReg | llsys.AccessFSMakeFifo | llsys.AccessFSMakeSym)

func landlockABI() int {
	v, err := llsys.LandlockGetABIVersion()
	if err != nil {
		return 0
	}
	return v
}

// applyLandlock allows reading and executing the tree (and Exec), writing
// the scratch directory and the device nodes, and nothing else — /proc
// included, so /proc/self/mem and the parent's /proc entries are out of reach; it denies TCP and scopes
// signals and abstract sockets to the sandbox. It returns what it applied,
// "" when the kernel has no Landlock.
func applyLandlock(s Spec) (string, error) {
	abi := landlockABI()
	if abi < 1 {
		return "", nil
	}
	rules := []landlock.Rule{
		landlock.RODirs(s.TreeInside()),
		landlock.PathAccess(scratchAccess, s.ScratchInside()),
		landlock.RODirs(zoneinfo).IgnoreIfMissing(),
		landlock.RWFiles("/dev/null", "/dev/full").IgnoreIfMissing(),
		landlock.ROFiles("/dev/zero", "/dev/random", "/dev/urandom").IgnoreIfMissing(),
	}
	if s.Exec != "" {
		// Read and execute: the one program Exec names, nothing beside it.
		rules = append(rules, landlock.ROFiles(s.Exec))
	}
	if err := landlock.V7.BestEffort().Restrict(rules...); err != nil {
		return "", err
	}
	return fmt.Sprintf("landlock ABI v%d (files, TCP, signals)", abi), nil
}
