package verify

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestAttackUnsafePointerWithoutUnsafe: interpreted code without unsafe
// gets an unsafe.Pointer from reflect.Value.UnsafePointer (a method, which
// the guard does not remove) and converts it to a typed pointer, which
// Yaegi's type check allows for unsafe.Pointer: raw memory without
// reflect.NewAt. The conversion must fail at run time.
func TestAttackUnsafePointerWithoutUnsafe(t *testing.T) {
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
				t.Fatalf("BROKEN: interpreted code without unsafe read memory through an unsafe.Pointer")
			}
			t.Logf("held (run): %v %v", v, err)
		})
	}
}

func firstLine(s string) string { l, _, _ := strings.Cut(s, "\n"); return l }

// TestAttackInheritedDescriptors: plugin code lists every descriptor the
// worker holds (a leaked host directory would let it out of the new root;
// a leaked pipe could reach another worker) and walks by reflection the
// objects New receives, looking for byte slices that could be the key.
func TestAttackInheritedDescriptors(t *testing.T) {
	// xtraefik's caller (a CI agent, a shell) may hand it descriptors
	// without close-on-exec: here a host directory holding a secret.
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "secret.txt"), []byte("host-secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir, err := os.Open(host)
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	if _, _, errno := syscall.Syscall(syscall.SYS_FCNTL, dir.Fd(), syscall.F_SETFD, 0); errno != 0 {
		t.Fatal(errno)
	}
	for _, fallback := range []bool{false, true} {
		r := hostileVerify(t, hostilePlugin(t, "fdprobe", nil, nil), Options{}, fallback)
		_, js, ok := strings.Cut(r.Reason, "fdprobe:")
		if r.OK || !ok {
			t.Fatalf("fdprobe did not report: %+v", r)
		}
		var rep struct {
			FDs   []string `json:"fds"`
			Bytes []string `json:"bytes"`
			Env   []string `json:"env"`
		}
		if err := json.Unmarshal([]byte(js), &rep); err != nil {
			t.Fatalf("fdprobe report %q: %v", js, err)
		}
		t.Logf("fallback=%v containment=%s\nfds: %v\nbyte slices: %v\nenv: %v", fallback, r.Containment, rep.FDs, rep.Bytes, rep.Env)
		// The worker's own descriptors (the Go runtime's cgroup files,
		// epoll) are logged only; a directory is a way out of the new root.
		for _, fd := range rep.FDs {
			var n int
			fmt.Sscanf(fd, "%d:", &n)
			if n > 3 && strings.Contains(fd, ":d") {
				t.Errorf("plugin code holds an inherited directory descriptor %s", fd)
			}
		}
		for _, fd := range rep.FDs {
			if strings.Contains(fd, `secret="host-secret"`) {
				t.Errorf("BROKEN (fallback=%v): plugin code read a host file through an inherited directory descriptor: %s", fallback, fd)
			}
		}
		if len(rep.Bytes) > 0 {
			t.Errorf("byte slices of 16+ bytes reachable by reflection: %v", rep.Bytes)
		}
		for _, kv := range rep.Env {
			if strings.HasPrefix(kv, "XTRAEFIK_SANDBOX=") {
				t.Errorf("the sandbox spec stays in the environment: %s", kv)
			}
		}
	}
}
