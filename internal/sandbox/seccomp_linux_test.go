package sandbox

import (
	"testing"

	"github.com/elastic/go-seccomp-bpf/arch"
)

// go-seccomp-bpf compares a call that missed a rule's conditions with the
// rules after it by the argument it last loaded, not by its number: a call
// named by two rules could slip past the second. Every call is named by one
// rule (a name may repeat only within one rule's conditions, where the
// library ORs them), and every rule refuses.
func TestPolicyNamesEachCallOnce(t *testing.T) {
	info, err := arch.GetInfo("")
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []bool{true, false} {
		seen := map[string]int{}
		for i, g := range policy(info, ns) {
			if g.Action == 0x7fff0000 { // SECCOMP_RET_ALLOW
				t.Errorf("namespaces=%v: rule %d allows", ns, i)
			}
			names := map[string]bool{}
			for _, n := range g.Names {
				names[n] = true
			}
			for _, n := range g.NamesWithCondtions {
				names[n.Name] = true
			}
			for n := range names {
				if j, ok := seen[n]; ok {
					t.Errorf("namespaces=%v: %s is named by rules %d and %d", ns, n, j, i)
				}
				seen[n] = i
			}
		}
		for _, n := range []string{"socketpair", "prlimit64", "mknodat", "setpriority", "clone"} {
			if _, ok := seen[n]; !ok {
				t.Errorf("namespaces=%v: no rule for %s", ns, n)
			}
		}
	}
}
