package runcheck

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestRuncNetwork runs a server (busybox httpd) under the runc isolation and
// asserts that the check reaches it through the container's own network
// namespace — both its client and a backend it serves there — while the
// host's loopback does not reach it: the container has a loopback of its own.
func TestRuncNetwork(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("runc needs root")
	}
	if _, err := exec.LookPath("runc"); err != nil {
		t.Skip("runc not installed")
	}
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("no busybox (Debian package busybox-static)")
	}
	rootfs := t.TempDir()
	for _, d := range []string{"bin", "www", "tmp"} {
		if err := os.Mkdir(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "bin/busybox"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "www/index.html"), []byte("inside\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	addr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	backendAddr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	// httpd serves the page; a shell loop fetches the check's backend from
	// inside and shows what it got.
	script := "trap 'exit 0' TERM; /bin/busybox httpd -p " + addr + " -h /www; while true; do /bin/busybox wget -q -O - http://" + backendAddr + "/ 2>&1; /bin/busybox sleep 0.2; done"
	l := &launch{argv: []string{"/bin/busybox", "sh", "-c", script}, exe: "/bin/busybox", env: []string{"PATH=/bin"}, cwd: "/"}
	out := &lockedBuffer{}
	proc, err := start(context.Background(), IsolationRunc, t.TempDir(), rootfs, l, out)
	if err != nil {
		t.Fatal(err)
	}
	defer proc.stop()
	n := proc.network()
	if n.ns == nil {
		t.Fatal("runc gave no network namespace")
	}
	be := &backend{addr: backendAddr}
	if err := be.serve(n); err != nil {
		t.Fatal(err)
	}
	defer be.close()

	client := newClient(n)
	var body []byte
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := client.Get("http://" + addr + "/index.html")
		if err == nil {
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the check's client never reached the server inside: %v\n%s", err, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if string(body) != "inside\n" {
		t.Errorf("inside server answered %q", body)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("the host's loopback reaches the container's %s", addr)
	}
	// The backend counts a request before it answers: wait for the answer.
	for be.count() == 0 || !strings.Contains(out.String(), "xtraefik runtime check backend") {
		if time.Now().After(deadline) {
			t.Fatalf("the backend served in the namespace was never reached from inside (%d requests):\n%s", be.count(), out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// httpd daemonized itself: the PID namespace takes it down with the rest.
	proc.stop()
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); err == nil && bytes.Contains(cmd, []byte(addr)) {
			t.Errorf("process %s outlived the container: %q", e.Name(), cmd)
		}
	}
}

func TestMissingProtections(t *testing.T) {
	for _, tt := range []struct {
		iso  string
		want []string
	}{
		{IsolationRunc, nil},
		{IsolationChroot, []string{"network:", "processes:", "writes:", "files: only a chroot"}},
		{IsolationNone, []string{"network:", "processes:", "writes:", "files: no chroot"}},
	} {
		got := missingProtections(tt.iso)
		if len(got) != len(tt.want) {
			t.Errorf("%s: %q", tt.iso, got)
			continue
		}
		for i, w := range tt.want {
			if !strings.HasPrefix(got[i], w) {
				t.Errorf("%s: %q does not start with %q", tt.iso, got[i], w)
			}
		}
	}
}
