package sandbox

import (
	"fmt"
	"runtime"
	"unsafe"

	seccomp "github.com/elastic/go-seccomp-bpf"
	"github.com/elastic/go-seccomp-bpf/arch"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// denied are the calls no plugin needs and a sandbox escape would: mounts and
// namespaces (to undo the sandbox), ptrace and cross-process memory access
// (to read the parent's secrets), kernel keyrings, BPF, modules, clocks.
var denied = []string{
	"mount", "umount2", "pivot_root", "chroot", "unshare", "setns",
	"open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
	"ptrace", "process_vm_readv", "process_vm_writev", "process_madvise", "pidfd_getfd", "kcmp",
	"keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd",
	"kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
	"swapon", "swapoff", "reboot", "acct", "quotactl", "syslog", "vhangup",
	"settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
	"iopl", "ioperm", "name_to_handle_at", "open_by_handle_at", "lookup_dcookie", "uselib",
	// io_uring performs socket, open and connect operations without the
	// system calls the filter sees.
	"io_uring_setup", "io_uring_enter", "io_uring_register",
	// The multiplexed socket and System V IPC calls of 386, s390x and
	// ppc64le hide their arguments in memory, out of the filter's reach:
	// socketcall would get around the socket-family rule. amd64 and arm64,
	// the released targets, have neither (known drops them there).
	"socketcall", "ipc",
}

// deniedOutside are denied too when the host gave no namespaces: sockets
// (no network namespace to keep them local; a Docker socket could be one
// connect away) and leaving the process group (no PID namespace to take
// such processes down with the sandbox).
var deniedOutside = []string{"socket", "setsid", "setpgid"}

// socketFamilies are the socket families contained code may create inside
// the namespaces: those Go's net package uses (AF_NETLINK for
// net.Interfaces, with NETLINK_ROUTE only). The network namespace confines
// these; others (AF_VSOCK reaches the hypervisor, AF_PACKET, AF_ALG, …) it
// does not confine or plugins have no use for.
var socketFamilies = []uint64{unix.AF_UNIX, unix.AF_INET, unix.AF_INET6, unix.AF_NETLINK}

// selfOnly are the calls that act on a process or thread named by their
// first argument, 0 for the caller: another process — the verifying
// xtraefik, when no PID namespace hides it — is refused, so that plugin code
// cannot lower its limits (RLIMIT_CPU ends it), or change its priorities,
// CPUs or scheduling, or move its memory.
var selfOnly = []string{
	"prlimit64", "sched_setaffinity", "sched_setscheduler", "sched_setparam", "sched_setattr",
	"migrate_pages", "move_pages", "get_robust_list",
}

// applySeccomp installs the filter on every thread (TSYNC), and the
// architecture filter after it.
func applySeccomp(s Spec) error {
	info, err := arch.GetInfo("")
	if err != nil {
		return err
	}
	f := seccomp.Filter{
		NoNewPrivs: true,
		Flag:       seccomp.FilterFlagTSync,
		Policy:     seccomp.Policy{DefaultAction: seccomp.ActionAllow, Syscalls: policy(info, s.Namespaces)},
	}
	if err := seccomp.LoadFilter(f); err != nil {
		return fmt.Errorf("load filter: %w", err)
	}
	return loadArchFilter(info)
}

// policy is the filter's rules. clone with a namespace flag is refused, and
// clone3 — whose flags a filter cannot read — answers ENOSYS so that
// callers fall back to clone.
//
// Two properties of the rules keep go-seccomp-bpf's program sound:
//   - It does not reload the system call number after comparing an
//     argument, so a call that reaches a rule with conditions and does not
//     meet them is compared with the rules after it by that argument: every
//     call appears in one rule only (TestPolicyNamesEachCallOnce), the
//     unconditional rules come first, and every rule refuses, so that a
//     stray comparison can only refuse, never allow.
//   - Conditions compare all 64 bits of an argument while the kernel reads
//     an int: each allows an exact value only (0, a listed family), so that
//     an upper half set by the caller gets a call refused, never through.
func policy(info *arch.Info, namespaces bool) []seccomp.SyscallGroup {
	names := known(info, denied)
	if !namespaces {
		names = append(names, known(info, deniedOutside)...)
	}
	errno := func(e unix.Errno) seccomp.Action { return seccomp.ActionErrno | seccomp.Action(e) }
	rule := func(name string, conds ...seccomp.Condition) seccomp.NameWithConditions {
		return seccomp.NameWithConditions{Name: name, Conditions: conds}
	}
	not := func(arg uint32, v uint64) seccomp.Condition {
		return seccomp.Condition{Argument: arg, Operation: seccomp.NotEqual, Value: v}
	}
	bits := func(arg uint32, v uint64) seccomp.Condition {
		return seccomp.Condition{Argument: arg, Operation: seccomp.BitsSet, Value: v}
	}

	refused := []seccomp.NameWithConditions{rule("clone", bits(0, uint64(namespaceFlags|unix.CLONE_NEWTIME)))}
	for _, n := range known(info, selfOnly) {
		refused = append(refused, rule(n, not(0, 0)))
	}
	// (which, who): the calling process only.
	refused = append(refused,
		rule("setpriority", not(0, unix.PRIO_PROCESS)), rule("setpriority", not(1, 0)),
		rule("ioprio_set", not(0, ioprioWhoProcess)), rule("ioprio_set", not(1, 0)))
	// Device nodes: S_IFCHR's bit is set in S_IFCHR and S_IFBLK (and in
	// S_IFLNK, which mknod refuses anyway), in no other file type.
	refused = append(refused, rule("mknodat", bits(2, unix.S_IFCHR)))
	if len(known(info, []string{"mknod"})) == 1 {
		refused = append(refused, rule("mknod", bits(1, unix.S_IFCHR)))
	}

	// socketpair makes a connected pair and nothing else: AF_UNIX only.
	families := []seccomp.NameWithConditions{rule("socketpair", not(0, unix.AF_UNIX))}
	if namespaces {
		// Without namespaces socket is refused outright (deniedOutside).
		var other []seccomp.Condition
		for _, f := range socketFamilies {
			other = append(other, not(0, f))
		}
		families = append(families, rule("socket", other...),
			rule("socket", seccomp.Condition{Argument: 0, Operation: seccomp.Equal, Value: unix.AF_NETLINK}, not(2, unix.NETLINK_ROUTE)))
	}

	groups := []seccomp.SyscallGroup{{Names: names, Action: seccomp.ActionErrno}}
	if len(known(info, []string{"clone3"})) == 1 {
		groups = append(groups, seccomp.SyscallGroup{Names: []string{"clone3"}, Action: errno(unix.ENOSYS)})
	}
	return append(groups,
		seccomp.SyscallGroup{NamesWithCondtions: refused, Action: seccomp.ActionErrno},
		seccomp.SyscallGroup{NamesWithCondtions: families, Action: errno(unix.EAFNOSUPPORT)})
}

// ioprioWhoProcess is IOPRIO_WHO_PROCESS: ioprio_set's who is a thread.
const ioprioWhoProcess = 1

// loadArchFilter kills the process on any system call made through another
// ABI than the native one (int $0x80 on x86_64, x32): the policy above is
// written for native numbers only, and the library lets other architectures
// through. Filters stack; the stricter answer wins.
func loadArchFilter(info *arch.Info) error {
	prog := []bpf.Instruction{
		bpf.LoadAbsolute{Off: 4, Size: 4}, // seccomp_data.arch
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(info.ID), SkipTrue: 1},
		bpf.RetConstant{Val: unix.SECCOMP_RET_KILL_PROCESS},
	}
	if runtime.GOARCH == "amd64" {
		// x32 calls share x86_64's audit arch and set __X32_SYSCALL_BIT.
		prog = append(prog,
			bpf.LoadAbsolute{Off: 0, Size: 4}, // seccomp_data.nr
			bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: 0x40000000, SkipFalse: 1},
			bpf.RetConstant{Val: unix.SECCOMP_RET_KILL_PROCESS},
		)
	}
	prog = append(prog, bpf.RetConstant{Val: unix.SECCOMP_RET_ALLOW})
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return fmt.Errorf("assemble the architecture filter: %w", err)
	}
	filters := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		filters[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	fprog := unix.SockFprog{Len: uint16(len(filters)), Filter: &filters[0]}
	r, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&fprog)))
	switch {
	case errno != 0:
		return fmt.Errorf("load the architecture filter: %w", errno)
	case r != 0:
		return fmt.Errorf("load the architecture filter: thread %d could not be synchronised", r)
	}
	return nil
}

// known keeps the names the architecture has (iopl is x86 only, …).
func known(info *arch.Info, names []string) []string {
	var out []string
	for _, n := range names {
		if _, ok := info.SyscallNames[n]; ok {
			out = append(out, n)
		}
	}
	return out
}
