package build

import (
	"io"
	"slices"
	"testing"
	"time"

	"github.com/xtraefik/xtraefik/internal/runcheck"
)

// TestRuntimeCheckOptions: a Go caller's runtime check and serve options
// reach the runtime check as given, and the caller's values are copied, so
// that the build (which settles the isolation under --sandbox=require)
// never writes into them.
func TestRuntimeCheckOptions(t *testing.T) {
	if (*RuntimeCheck)(nil).options() != nil {
		t.Error("no runtime check asked for, but options made")
	}
	args := []string{"--log.level=DEBUG"}
	rc := &RuntimeCheck{Isolation: IsolationChroot, Timeout: time.Minute, ExtraArgs: args, Log: io.Discard, TempDir: "/scratch"}
	o := rc.options()
	if o.Isolation != runcheck.IsolationChroot || o.Timeout != time.Minute || !slices.Equal(o.ExtraArgs, args) || o.Log != io.Discard || o.TempDir != "/scratch" {
		t.Errorf("runtime check options %+v, from %+v", o, rc)
	}
	o.ExtraArgs[0], o.Isolation = "changed", IsolationRunc
	if args[0] != "--log.level=DEBUG" || rc.Isolation != IsolationChroot {
		t.Errorf("the caller's RuntimeCheck changed: %+v", rc)
	}

	so := ServeOptions{Dynamic: "dyn.yml", EntryPoints: []EntryPoint{{Name: "web", Address: "127.0.0.1:8081"}}, Isolation: IsolationNone, Timeout: time.Second}
	s := so.options()
	if s.Dynamic != "dyn.yml" || len(s.EntryPoints) != 1 || s.EntryPoints[0] != (runcheck.EntryPoint{Name: "web", Address: "127.0.0.1:8081"}) ||
		s.Isolation != runcheck.IsolationNone || s.Timeout != time.Second {
		t.Errorf("serve options %+v, from %+v", s, so)
	}
}
