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

// Interpreted code without unsafe gets an unsafe.Pointer from
// reflect.Value.UnsafePointer (a method, which the guard does not remove)
// and converts it to a typed pointer, which Yaegi's type check allows for
// unsafe.Pointer: raw memory without reflect.NewAt. The conversion fails, at
// compile or at run time; it never reads the memory.
func TestRawMemoryGuardUnsafePointerConversion(t *testing.T) {
	for name, src := range map[string]string{
		"unsafe.Pointer to *T": `
func peek() byte {
	var x = [4]byte{7, 2, 3, 4}
	p := reflect.ValueOf(&x).UnsafePointer()
	b := (*[4]byte)(p)
	return b[0]
}`,
		"uintptr to unsafe.Pointer by inference": `
func conv[T any](u uintptr, _ T) T { return T(u) }
func peek() byte {
	var x = [4]byte{7, 2, 3, 4}
	p := reflect.ValueOf(&x).UnsafePointer()
	q := conv(reflect.ValueOf(&x).Pointer(), p)
	b := (*[4]byte)(q)
	return b[0]
}`,
		"Value.SetPointer into a struct field": `
type box struct{ P *[4]byte }
func peek() byte {
	var x = [4]byte{7, 2, 3, 4}
	var b box
	reflect.ValueOf(&b).Elem().Field(0).Set(reflect.ValueOf(reflect.ValueOf(&x).UnsafePointer()).Convert(reflect.TypeOf(b.P)))
	return b.P[0]
}`,
	} {
		t.Run(name, func(t *testing.T) {
			i, err := newInterpreter(&job{GoPath: t.TempDir()}, nil, newTail(1024))
			if err != nil {
				t.Fatal(err)
			}
			_, err = eval(i, "import \"reflect\"\n"+src)
			if err != nil {
				t.Logf("held (compile): %v", firstLine(err.Error()))
				return
			}
			v, err := eval(i, "peek()")
			if err == nil && v.IsValid() && v.Interface() == byte(7) {
				t.Fatalf("interpreted code without unsafe read memory through an unsafe.Pointer")
			}
			t.Logf("held (run): %v %v", v, err)
		})
	}
}

func firstLine(s string) string { l, _, _ := strings.Cut(s, "\n"); return l }

// "3.6.12" names Traefik v3.6.12, as people often write it.
func TestTraefikVersionWithoutV(t *testing.T) {
	r := verifyOneFor(t, fixture(t, "vendored-ok"), Options{TraefikVersion: "3.6.12"})
	if r.Status != StatusOK || r.Interpreter != "yaegi v0.16.1" {
		t.Fatalf("%s with %s: %q", r.Status, r.Interpreter, r.Reason)
	}
}
