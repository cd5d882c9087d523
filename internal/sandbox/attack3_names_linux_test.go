package sandbox

import (
	"testing"

	"github.com/elastic/go-seccomp-bpf/arch"
)

// TestAttack3KnownNames: known() silently drops names the library's table
// lacks; every name the policy lists must exist on the released arches
// (less those the architecture does not have).
func TestAttack3KnownNames(t *testing.T) {
	absent := map[string]map[string]bool{
		// The multiplexed socketcall and ipc belong to 386, s390x and ppc64le.
		"x86_64":  {"socketcall": true, "ipc": true},
		"aarch64": {"iopl": true, "ioperm": true, "uselib": true, "socketcall": true, "ipc": true},
	}
	for _, a := range []string{"x86_64", "aarch64"} {
		info, err := arch.GetInfo(a)
		if err != nil {
			t.Fatal(err)
		}
		all := append(append(append([]string{}, denied...), deniedOutside...), selfOnly...)
		all = append(all, "clone", "clone3", "socket", "socketpair", "setpriority", "ioprio_set", "mknodat")
		for _, n := range all {
			if _, ok := info.SyscallNames[n]; !ok && !absent[a][n] {
				t.Errorf("%s: %s unknown to go-seccomp-bpf: silently not filtered", a, n)
			}
		}
	}
}
