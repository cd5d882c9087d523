package sandbox

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const childEnv = "XTRAEFIK_SANDBOX_TEST_CHILD"

// TestMain turns the test binary into the contained child when asked.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(child())
	}
	os.Exit(m.Run())
}

// child enters the sandbox and prints what it could do, as JSON.
func child() int {
	spec, r, err := Enter()
	res := map[string]string{"report": r.String()}
	if err != nil {
		res["enter"] = err.Error()
	}
	try := func(k string, err error) {
		res[k] = "ok"
		if err != nil {
			res[k] = err.Error()
		}
	}
	try("write tmp", os.WriteFile(filepath.Join(os.Getenv("TMPDIR"), "x"), []byte("x"), 0o644))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	try("listen", err)
	if l != nil {
		l.Close()
	}
	_, err = os.ReadFile("/etc/passwd")
	try("read /etc/passwd", err)
	if bin := os.Getenv("XTRAEFIK_SANDBOX_TEST_EXEC"); bin != "" {
		err := exec.Command(filepath.Join(spec.TreeInside(), filepath.Base(bin))).Run()
		res["exec"] = "ok"
		if err != nil {
			res["exec"] = err.Error()
		}
	}
	wd, _ := os.Getwd()
	res["cwd"] = wd
	json.NewEncoder(os.Stdout).Encode(res)
	return 0
}

func runChild(t *testing.T, namespaces bool, env ...string) map[string]string {
	t.Helper()
	work := t.TempDir()
	if err := os.Chmod(work, 0o755); err != nil {
		t.Fatal(err)
	}
	tree := filepath.Join(work, "plugins-local")
	private := filepath.Join(work, "private")
	for _, d := range []string{tree, private} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range env {
		if bin, ok := strings.CutPrefix(e, "XTRAEFIK_SANDBOX_TEST_EXEC="); ok {
			data, err := os.ReadFile(bin)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(tree, filepath.Base(bin)), data, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append([]string{childEnv + "=1"}, env...)
	if err := Configure(cmd, Spec{Tree: tree, Private: private}, namespaces); err != nil {
		t.Fatal(err)
	}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var res map[string]string
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("child said %q: %v", out, err)
	}
	return res
}

func TestEnter(t *testing.T) {
	for _, ns := range []bool{true, false} {
		res := runChild(t, ns)
		if res["enter"] != "" {
			t.Fatalf("enter: %s", res["enter"])
		}
		if res["write tmp"] != "ok" {
			t.Errorf("namespaces=%v: scratch not writable: %s", ns, res["write tmp"])
		}
		if got := res["listen"]; (got == "ok") != ns || (!ns && !strings.Contains(got, "operation not permitted")) {
			t.Errorf("namespaces=%v: listen: %s", ns, got)
		}
		if res["read /etc/passwd"] == "ok" {
			t.Errorf("namespaces=%v: read /etc/passwd", ns)
		}
	}
}
