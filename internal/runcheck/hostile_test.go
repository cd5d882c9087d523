package runcheck_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/xtraefik/xtraefik/internal/plugin"
	"github.com/xtraefik/xtraefik/internal/runcheck"
	"github.com/xtraefik/xtraefik/internal/testenv"
	"github.com/xtraefik/xtraefik/internal/traefikcfg"
)

// hostileModule tries, inside the image's Traefik, what a hostile plugin
// would: its init starts a detached `setsid sleep` (busybox, through
// os.StartProcess), and New reads
// every environment it can, dials a listener of the host's loopback, writes
// to the root, to a host path and to /tmp. It reports each outcome in request
// headers the check's backend records.
const hostileModule = "example.test/hostile"

// hostileSleep marks the detached process on the process table.
const hostileSleep = "8640017"

var hostileFiles = map[string]string{
	".traefik.yml": "displayName: Hostile\ntype: middleware\nimport: example.test/hostile\nsummary: Tries to reach outside\ntestData: {}\n",
	"go.mod":       "module example.test/hostile\n\ngo 1.22\n",
	"hostile.go": `package hostile

import (
	"context"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

type Config struct {
	Dial     string
	HostFile string
}

func CreateConfig() *Config { return &Config{} }

var (
	spawned string
	pid     int
)

func init() {
	// os/exec is not in Yaegi's standard library; os.StartProcess is.
	p, err := os.StartProcess("/bin/busybox", []string{"busybox", "setsid", "/bin/busybox", "sleep", "` + hostileSleep + `"}, &os.ProcAttr{})
	spawned = outcome(err)
	if err == nil {
		// setsid execs in place: the same process sleeps once it is detached.
		pid = p.Pid
	}
}

func outcome(err error) string {
	if err != nil {
		return "failed: " + err.Error()
	}
	return "ok"
}

func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 32 || r > 126 {
			return ' '
		}
		return r
	}, s)
}

type hostile struct {
	next     http.Handler
	findings http.Header
}

func New(ctx context.Context, next http.Handler, cfg *Config, name string) (http.Handler, error) {
	f := http.Header{}
	env := strings.Join(os.Environ(), " ")
	if ents, err := os.ReadDir("/proc"); err == nil {
		for _, e := range ents {
			if b, err := os.ReadFile("/proc/" + e.Name() + "/environ"); err == nil {
				env += " " + string(b)
			}
		}
	}
	f.Set("X-Hostile-Env", printable(env))
	if c, err := net.DialTimeout("tcp", cfg.Dial, 2*time.Second); err == nil {
		c.Close()
		f.Set("X-Hostile-Dial", "connected")
	} else {
		f.Set("X-Hostile-Dial", printable("failed: "+err.Error()))
	}
	f.Set("X-Hostile-Write-Root", printable(outcome(os.WriteFile("/hostile-was-here", []byte("x"), 0o644))))
	f.Set("X-Hostile-Write-Host", printable(outcome(os.WriteFile(cfg.HostFile, []byte("x"), 0o644))))
	f.Set("X-Hostile-Write-Tmp", printable(outcome(os.WriteFile("/tmp/scratch", []byte("x"), 0o644))))
	f.Set("X-Hostile-Spawn", printable(spawned))
	// Whether the detached process still sleeps when New runs.
	alive := "no"
	for i := 0; i < 50 && alive == "no"; i++ {
		if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline"); err == nil && strings.Contains(string(b), "` + hostileSleep + `") {
			alive = "yes"
		} else {
			time.Sleep(20 * time.Millisecond)
		}
	}
	f.Set("X-Hostile-Alive", alive)
	return &hostile{next: next, findings: f}, nil
}

func (h *hostile) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	for k, v := range h.findings {
		r.Header[k] = v
	}
	h.next.ServeHTTP(w, r)
}
`,
}

// TestRuncContainsHostilePlugin asserts each defence of the runc isolation
// against plugin code run by the image's Traefik: no caller environment, no
// host loopback, no writes outside the unpacked root (a scratch /tmp only),
// no process left behind.
func TestRuncContainsHostilePlugin(t *testing.T) {
	bin := testenv.TraefikBinary(t, "v3.6.12")
	e2eRequire(t, os.Geteuid() == 0, "not root: runc needs root")
	_, err := exec.LookPath("runc")
	e2eRequire(t, err == nil, "runc not installed")

	const secret = "hostile-canary-secret-7f3a"
	t.Setenv("XTRAEFIK_GIT_TOKEN", secret)
	t.Setenv("DOCKER_CONFIG", "/"+secret)
	home := t.TempDir()
	t.Setenv("HOME", home)

	// A service of the host's loopback the plugin must not reach.
	wire := testenv.NewTripwire(t, "tcp", "127.0.0.1:0")
	hostFile := filepath.Join(home, "written-by-plugin")

	base := testenv.TraefikBase(t, bin, testenv.TraefikBaseOptions{Version: "v3.6.12", EntrypointScript: true})
	img := withLayer(t, base, imageLayer(t, "/", []module{{hostileModule, writeTree(t, hostileFiles)}}, nil), nil)
	rep, err := run(t, context.Background(), img, runcheck.Options{Mode: traefikcfg.ModeFlags, Isolation: runcheck.IsolationRunc, Plugins: []plugin.Plugin{
		{Alias: "hostile", Module: hostileModule, Config: map[string]any{"Dial": wire.Addr(), "HostFile": hostFile}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	h := result(t, rep, "hostile")
	if !h.OK {
		t.Fatalf("hostile: %s\n%s", h.Reason, rep.TraefikLog)
	}
	if rep.Isolation != runcheck.IsolationRunc || len(rep.Missing) != 0 {
		t.Errorf("isolation %s, missing %q", rep.Isolation, rep.Missing)
	}
	got := h.BackendHeaders
	t.Logf("findings: %q", got)

	t.Run("environment", func(t *testing.T) {
		env := got.Get("X-Hostile-Env")
		if !strings.Contains(env, "PATH=") {
			t.Fatalf("the plugin saw no environment at all (%q): the probe did not run", env)
		}
		if strings.Contains(env, secret) || strings.Contains(env, home) {
			t.Errorf("the caller's environment reached the plugin: %q", env)
		}
	})
	t.Run("host loopback", func(t *testing.T) {
		if d := got.Get("X-Hostile-Dial"); !strings.HasPrefix(d, "failed") {
			t.Errorf("dial of the host's %s: %q", wire.Addr(), d)
		}
		if n := wire.Count(); n != 0 {
			t.Errorf("the host listener accepted %d connections from inside", n)
		}
	})
	t.Run("writes", func(t *testing.T) {
		if w := got.Get("X-Hostile-Write-Root"); !strings.Contains(w, "read-only file system") {
			t.Errorf("write to / : %q, want refused by the read-only root", w)
		}
		if w := got.Get("X-Hostile-Write-Host"); w == "ok" {
			t.Errorf("write to %s inside: %q", hostFile, w)
		}
		if _, err := os.Stat(hostFile); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the plugin wrote the host's %s: %v", hostFile, err)
		}
		if w := got.Get("X-Hostile-Write-Tmp"); w != "ok" {
			t.Errorf("write to the scratch /tmp: %q", w)
		}
	})
	t.Run("processes", func(t *testing.T) {
		if s, a := got.Get("X-Hostile-Spawn"), got.Get("X-Hostile-Alive"); s != "ok" || a != "yes" {
			t.Fatalf("the detached process did not start or stay (%q, alive %q): nothing proven", s, a)
		}
		if pids := processesWith(t, hostileSleep); len(pids) > 0 {
			t.Errorf("the plugin's detached `setsid sleep` outlived the check: pids %v", pids)
		}
	})
}

// TestChrootLacksWhatItSays runs the hostile plugin under chroot, which the
// report says leaves the network shared and detached processes alive: the
// plugin reaches the host listener and its `setsid sleep` outlives the check,
// as the report's Missing list warns.
func TestChrootLacksWhatItSays(t *testing.T) {
	bin := testenv.TraefikBinary(t, "v3.6.12")
	e2eRequire(t, os.Geteuid() == 0, "not root: chroot needs root")
	wire := testenv.NewTripwire(t, "tcp", "127.0.0.1:0")
	base := testenv.TraefikBase(t, bin, testenv.TraefikBaseOptions{Version: "v3.6.12", EntrypointScript: true})
	img := withLayer(t, base, imageLayer(t, "/", []module{{hostileModule, writeTree(t, hostileFiles)}}, nil), nil)
	rep, err := run(t, context.Background(), img, runcheck.Options{Mode: traefikcfg.ModeFlags, Isolation: runcheck.IsolationChroot, Plugins: []plugin.Plugin{
		{Alias: "hostile", Module: hostileModule, Config: map[string]any{"Dial": wire.Addr(), "HostFile": filepath.Join(t.TempDir(), "x")}},
	}})
	// The survivor is this test's to end.
	defer func() {
		for _, pid := range processesWith(t, hostileSleep) {
			if n, err := strconv.Atoi(pid); err == nil {
				_ = syscall.Kill(n, syscall.SIGKILL)
			}
		}
	}()
	if err != nil {
		t.Fatal(err)
	}
	missing := strings.Join(rep.Missing, "\n")
	if got, n := result(t, rep, "hostile").BackendHeaders.Get("X-Hostile-Dial"), wire.Count(); got != "connected" || n == 0 {
		t.Errorf("under chroot the plugin's dial of the host listener: %q (%d accepted); the report says %q", got, n, missing)
	}
	if !strings.Contains(missing, "host's network") {
		t.Errorf("the shared network is not named: %q", missing)
	}
	if pids := processesWith(t, hostileSleep); len(pids) == 0 {
		t.Errorf("no detached process survived chroot (spawn: %q), yet the report says %q", result(t, rep, "hostile").BackendHeaders.Get("X-Hostile-Spawn"), missing)
	}
	if !strings.Contains(missing, "outlive the check") {
		t.Errorf("surviving processes are not named: %q", missing)
	}
}
