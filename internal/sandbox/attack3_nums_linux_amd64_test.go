package sandbox

import (
	"testing"

	"github.com/elastic/go-seccomp-bpf/arch"
	"golang.org/x/sys/unix"
)

// TestAttack3Numbers: the library's x86_64 numbers are the kernel's.
func TestAttack3Numbers(t *testing.T) {
	info, err := arch.GetInfo("x86_64")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{
		"mount": unix.SYS_MOUNT, "unshare": unix.SYS_UNSHARE, "setns": unix.SYS_SETNS, "clone": unix.SYS_CLONE, "clone3": unix.SYS_CLONE3,
		"open_tree": unix.SYS_OPEN_TREE, "move_mount": unix.SYS_MOVE_MOUNT, "fsopen": unix.SYS_FSOPEN, "fsconfig": unix.SYS_FSCONFIG,
		"fsmount": unix.SYS_FSMOUNT, "fspick": unix.SYS_FSPICK, "mount_setattr": unix.SYS_MOUNT_SETATTR, "ptrace": unix.SYS_PTRACE,
		"process_vm_readv": unix.SYS_PROCESS_VM_READV, "process_vm_writev": unix.SYS_PROCESS_VM_WRITEV, "process_madvise": unix.SYS_PROCESS_MADVISE,
		"pidfd_getfd": unix.SYS_PIDFD_GETFD, "kcmp": unix.SYS_KCMP, "keyctl": unix.SYS_KEYCTL, "bpf": unix.SYS_BPF,
		"perf_event_open": unix.SYS_PERF_EVENT_OPEN, "userfaultfd": unix.SYS_USERFAULTFD, "io_uring_setup": unix.SYS_IO_URING_SETUP,
		"io_uring_enter": unix.SYS_IO_URING_ENTER, "io_uring_register": unix.SYS_IO_URING_REGISTER, "open_by_handle_at": unix.SYS_OPEN_BY_HANDLE_AT,
		"name_to_handle_at": unix.SYS_NAME_TO_HANDLE_AT, "prlimit64": unix.SYS_PRLIMIT64, "sched_setattr": unix.SYS_SCHED_SETATTR,
		"socket": unix.SYS_SOCKET, "socketpair": unix.SYS_SOCKETPAIR, "mknodat": unix.SYS_MKNODAT, "mknod": unix.SYS_MKNOD,
		"setpriority": unix.SYS_SETPRIORITY, "ioprio_set": unix.SYS_IOPRIO_SET, "kexec_file_load": unix.SYS_KEXEC_FILE_LOAD,
		"setsid": unix.SYS_SETSID, "setpgid": unix.SYS_SETPGID, "get_robust_list": unix.SYS_GET_ROBUST_LIST, "move_pages": unix.SYS_MOVE_PAGES,
	}
	for n, nr := range want {
		if got, ok := info.SyscallNames[n]; !ok || got != nr {
			t.Errorf("%s: library %d (known %v), kernel %d", n, got, ok, nr)
		}
	}
}
