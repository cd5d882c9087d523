package verify

import (
	"strings"
	"testing"
)

// The interpreter plugin code runs in has no reflect.NewAt or SliceAt
// unless the job grants raw memory: the static check is not the only guard.
func TestRawMemoryGuard(t *testing.T) {
	for _, raw := range []bool{false, true} {
		i, err := newInterpreter(&job{GoPath: t.TempDir(), RawMemory: raw}, nil, newTail(1024))
		if err != nil {
			t.Fatal(err)
		}
		_, err = eval(i, "import \"reflect\"\nvar newAt = reflect.NewAt")
		switch {
		case raw && err != nil:
			t.Errorf("raw memory granted, but: %v", err)
		case !raw && (err == nil || !strings.Contains(err.Error(), "NewAt")):
			t.Errorf("reflect.NewAt available without raw memory: %v", err)
		}
	}
}

// "3.6.12" names Traefik v3.6.12, as people often write it.
func TestTraefikVersionWithoutV(t *testing.T) {
	r := verifyOneFor(t, fixture(t, "vendored-ok"), Options{TraefikVersion: "3.6.12"})
	if r.Status != StatusOK || r.Interpreter != "yaegi v0.16.1" {
		t.Fatalf("%s with %s: %q", r.Status, r.Interpreter, r.Reason)
	}
}
