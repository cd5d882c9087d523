package sandbox

import (
	"encoding/binary"
	"math/rand"
	"testing"

	seccomp "github.com/elastic/go-seccomp-bpf"
	"github.com/elastic/go-seccomp-bpf/arch"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// TestAttack3FilterModel runs the assembled policy in a BPF interpreter for
// every x86_64 call number with boundary and random arguments and compares
// each answer with what the policy means: no refused call may be allowed.
// (x/net/bpf loads words big-endian; each native word is stored so.)
func TestAttack3FilterModel(t *testing.T) {
	info, err := arch.GetInfo("")
	if err != nil {
		t.Fatal(err)
	}
	const (
		allow = unix.SECCOMP_RET_ALLOW
		eperm = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
	)
	for _, ns := range []bool{true, false} {
		p := seccomp.Policy{DefaultAction: seccomp.ActionAllow, Syscalls: policy(info, ns)}
		prog, err := p.Assemble()
		if err != nil {
			t.Fatal(err)
		}
		vm, err := bpf.NewVM(prog)
		if err != nil {
			t.Fatal(err)
		}
		deny := map[int]bool{}
		for _, n := range known(info, denied) {
			deny[info.SyscallNames[n]] = true
		}
		if !ns {
			for _, n := range deniedOutside {
				deny[info.SyscallNames[n]] = true
			}
		}
		self := map[int]bool{}
		for _, n := range selfOnly {
			self[info.SyscallNames[n]] = true
		}
		nsFlags := uint64(namespaceFlags | unix.CLONE_NEWTIME)
		want := func(nr int, a [6]uint64) (refused bool) {
			switch {
			case deny[nr], nr == unix.SYS_CLONE3:
				return true
			case nr == unix.SYS_CLONE:
				return a[0]&nsFlags != 0
			case self[nr]:
				return a[0] != 0
			case nr == unix.SYS_SETPRIORITY:
				return a[0] != unix.PRIO_PROCESS || a[1] != 0
			case nr == unix.SYS_IOPRIO_SET:
				return a[0] != 1 || a[1] != 0
			case nr == unix.SYS_MKNODAT:
				return a[2]&unix.S_IFCHR != 0
			case nr == unix.SYS_MKNOD:
				return a[1]&unix.S_IFCHR != 0
			case nr == unix.SYS_SOCKETPAIR:
				return a[0] != unix.AF_UNIX
			case nr == unix.SYS_SOCKET && ns:
				ok := a[0] == unix.AF_UNIX || a[0] == unix.AF_INET || a[0] == unix.AF_INET6 || a[0] == unix.AF_NETLINK
				return !ok || (a[0] == unix.AF_NETLINK && a[2] != unix.NETLINK_ROUTE)
			}
			return false
		}
		vals := []uint64{0, 1, 2, 3, 10, 16, 38, 40, 17, 9, unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO, unix.S_IFREG,
			1 << 32, 1<<32 | 1, 1<<32 | 16, 40 | 1<<32, 0xffffffff, 0xffffffff00000000, ^uint64(0),
			unix.CLONE_NEWUSER, unix.CLONE_NEWNS, unix.CLONE_VM | unix.CLONE_THREAD, unix.CLONE_NEWNET | 1<<32, 1 << 63}
		rnd := rand.New(rand.NewSource(1))
		pkt := make([]byte, 64)
		put := func(off int, v uint32) { binary.BigEndian.PutUint32(pkt[off:], v) }
		run := func(nr uint32, a [6]uint64) uint32 {
			put(0, nr)
			put(4, uint32(info.ID))
			for i, v := range a {
				put(16+8*i, uint32(v))       // low word first on little-endian
				put(16+8*i+4, uint32(v>>32)) // then the high word
			}
			r, err := vm.Run(pkt)
			if err != nil {
				t.Fatal(err)
			}
			return uint32(r)
		}
		bad, falseRefusals := 0, 0
		for nr := 0; nr < 470; nr++ {
			for k := 0; k < 400; k++ {
				var a [6]uint64
				for i := range a {
					if rnd.Intn(3) == 0 {
						a[i] = rnd.Uint64() >> uint(rnd.Intn(64))
					} else {
						a[i] = vals[rnd.Intn(len(vals))]
					}
				}
				if k < 3*len(vals) {
					a[k%3] = vals[k/3]
				}
				got := run(uint32(nr), a)
				refuse := want(nr, a)
				switch {
				case refuse && got == allow:
					bad++
					if bad < 20 {
						t.Errorf("ns=%v nr=%d args=%#x: refused by the policy, allowed by the filter", ns, nr, a)
					}
				case !refuse && got != allow:
					falseRefusals++
					if falseRefusals < 5 {
						t.Logf("ns=%v nr=%d args=%#x: allowed by the policy, filter answers %#x", ns, nr, a, got)
					}
				}
			}
		}
		// x32 numbers are refused by the library's prefix too.
		if got := run(0x40000000|unix.SYS_MOUNT, [6]uint64{}); got == allow {
			t.Errorf("x32 mount allowed by the policy filter")
		}
		// A stray comparison (the library keeps an argument in A after a
		// rule's conditions miss): clone whose flags equal prlimit64's number
		// is compared with prlimit64's rule. It may only refuse.
		stray := run(unix.SYS_CLONE, [6]uint64{unix.SYS_PRLIMIT64})
		t.Logf("ns=%v: clone(flags=%d) answers %#x (policy: allow; eperm=%#x)", ns, unix.SYS_PRLIMIT64, stray, eperm)
		t.Logf("ns=%v: %d refusals of calls the policy allows (stray comparisons)", ns, falseRefusals)
	}
}
