package interpreters

import (
	"runtime/debug"
	"testing"
)

// TestAttackForkedYaegiNamedExact: a base whose Traefik binary links a fork
// of Yaegi (replace github.com/traefik/yaegi => github.com/acme/yaegi
// v0.16.1) is read as linking yaegi v0.16.1 itself: verification then runs
// with xtraefik's own Yaegi and calls the interpreter exactly known
// (source "binary"), with no UNVERIFIED and no --accept-approximate-verdict.
func TestAttackForkedYaegiNamedExact(t *testing.T) {
	bi := &debug.BuildInfo{Deps: []*debug.Module{{
		Path: YaegiModule, Version: "v0.16.1",
		Replace: &debug.Module{Path: "github.com/acme/yaegi", Version: "v0.16.1"},
	}}}
	in, ok := FromBuildInfo(bi)
	if ok && in.Yaegi == "v0.16.1" {
		t.Fatalf("BROKEN: a binary linking github.com/acme/yaegi v0.16.1 is read as yaegi %s (exact), the fork's path is dropped", in.Yaegi)
	}
}
