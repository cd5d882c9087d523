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
}

// deniedOutside are denied too when the host gave no namespaces: sockets
// (no network namespace to keep them local; a Docker socket could be one
// connect away) and leaving the process group (no PID namespace to take
// such processes down with the sandbox).
var deniedOutside = []string{"socket", "setsid", "setpgid"}

// applySeccomp installs the filter on every thread (TSYNC). clone with a
// namespace flag is refused, and clone3 — whose flags a filter cannot read —
// answers ENOSYS so that callers fall back to clone.
func applySeccomp(s Spec) error {
	info, err := arch.GetInfo("")
	if err != nil {
		return err
	}
	names := known(info, denied)
	if !s.Namespaces {
		names = append(names, known(info, deniedOutside)...)
	}
	groups := []seccomp.SyscallGroup{
		{Names: names, Action: seccomp.ActionErrno},
		{
			NamesWithCondtions: []seccomp.NameWithConditions{{
				Name: "clone",
				Conditions: seccomp.ArgumentConditions{{
					Argument: 0, Operation: seccomp.BitsSet, Value: uint64(namespaceFlags | unix.CLONE_NEWTIME),
				}},
			}},
			Action: seccomp.ActionErrno,
		},
	}
	if len(known(info, []string{"clone3"})) == 1 {
		groups = append(groups, seccomp.SyscallGroup{Names: []string{"clone3"}, Action: seccomp.ActionErrno | seccomp.Action(unix.ENOSYS)})
	}
	f := seccomp.Filter{
		NoNewPrivs: true,
		Flag:       seccomp.FilterFlagTSync,
		Policy:     seccomp.Policy{DefaultAction: seccomp.ActionAllow, Syscalls: groups},
	}
	if err := seccomp.LoadFilter(f); err != nil {
		return fmt.Errorf("load filter: %w", err)
	}
	return loadArchFilter(info)
}

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
