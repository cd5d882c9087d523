package sandbox

import (
	"fmt"

	seccomp "github.com/elastic/go-seccomp-bpf"
	"github.com/elastic/go-seccomp-bpf/arch"
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
