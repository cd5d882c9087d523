package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xtraefik/xtraefik/internal/fileset"
	"github.com/xtraefik/xtraefik/internal/plugin"
	"github.com/xtraefik/xtraefik/internal/sandbox"
	"github.com/xtraefik/xtraefik/internal/testenv"
	"github.com/xtraefik/xtraefik/verify/provision"
)

// hostileChildEnv marks the re-run of the hostile suite as another user.
const hostileChildEnv = "XTRAEFIK_HOSTILE_CHILD"

// hostilePlugin returns fixture testdata/hostile/<name> as a plugin, with
// extra files (busybox) added to its tree.
func hostilePlugin(t *testing.T, name string, config map[string]any, extra map[string]string) plugin.Plugin {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(testenv.FixturesDir(t), "hostile", name)
	if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	for dst, from := range extra {
		data, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, dst), data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files, err := fileset.FromDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return plugin.Plugin{Alias: name, Module: "example.com/hostile/" + name, Files: files, Config: config}
}

// hostileVerify verifies p alone; fallback forces the containment a host
// without namespaces gives (a container without privileges).
func hostileVerify(t *testing.T, p plugin.Plugin, opts Options, fallback bool) Result {
	t.Helper()
	opts.TraefikVersion = "v3.6.12"
	v, err := NewVerifier(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if fallback {
		v.contain.refuse()
	}
	// As build starts it without a verdict cache: ahead of the plugin, so
	// the worker warms up before its hello (warmUp).
	v.Prepare(1)
	for len(v.pool.ready) < 1 {
		time.Sleep(time.Millisecond)
	}
	res, err := v.Verify(context.Background(), []plugin.Plugin{asResolved(p, opts)})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	r := res[0]
	if r.Containment == nil {
		if r.Status == StatusUnverified {
			return r // refused before any code ran
		}
		t.Fatalf("no containment reported: %+v", r)
	}
	switch {
	case fallback && (r.Containment.Level != sandbox.LevelPartial || !strings.Contains(r.Containment.String(), "namespaces")):
		t.Fatalf("fallback containment %s, want partial without namespaces", r.Containment)
	case !fallback && testenv.Strict() && !r.Containment.Full():
		t.Fatalf("containment %s: the CI host allows full containment", r.Containment)
	}
	return r
}

// probeReport decodes the probe plugin's report from its FAIL reason.
func probeReport(t *testing.T, r Result) map[string]string {
	t.Helper()
	_, js, ok := strings.Cut(r.Reason, "probe:")
	if r.OK || !ok {
		t.Fatalf("probe did not report: %+v", r)
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(js), &m); err != nil {
		t.Fatalf("probe report %q: %v", js, err)
	}
	return m
}

func TestHostile(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("containment is Linux only")
	}
	for _, fallback := range []bool{false, true} {
		name := "namespaces"
		if fallback {
			name = "no-namespaces"
		}
		t.Run(name, func(t *testing.T) {
			t.Run("forged reports", func(t *testing.T) { testForgedReports(t, fallback) })
			t.Run("secrets", func(t *testing.T) { testSecrets(t, fallback) })
			t.Run("writes", func(t *testing.T) { testWrites(t, fallback) })
			t.Run("network", func(t *testing.T) { testNetwork(t, fallback) })
			t.Run("processes", func(t *testing.T) { testProcesses(t, fallback) })
			t.Run("runaway", func(t *testing.T) { testRunaway(t, fallback) })
			t.Run("foreign ABI", func(t *testing.T) { testForeignABI(t, fallback) })
			t.Run("raw memory", func(t *testing.T) { testRawMemory(t, fallback) })
			t.Run("heap dump", func(t *testing.T) { testHeapDump(t, fallback) })
			t.Run("own memory", func(t *testing.T) { testOwnMemory(t, fallback) })
			t.Run("forged compile", func(t *testing.T) { testForgedCompile(t, fallback) })
			t.Run("planted workers", func(t *testing.T) { testPlantedWorkers(t, fallback) })
			t.Run("inherited descriptors", func(t *testing.T) { testInheritedDescriptors(t, fallback) })
			t.Run("socket families", func(t *testing.T) { testSocketFamilies(t, fallback) })
			t.Run("other processes", func(t *testing.T) { testOtherProcesses(t, fallback) })
			t.Run("device nodes", func(t *testing.T) { testDeviceNodes(t, fallback) })
		})
	}
}

// Forged lines on fds 3–11 and stdout do not turn New's failure into OK,
// and a plugin that ends the worker gets a FAIL, not someone's OK.
func testForgedReports(t *testing.T, fallback bool) {
	r := hostileVerify(t, hostilePlugin(t, "forge", nil, nil), Options{}, fallback)
	checkVerdict(t, r, false, "New returned an error: genuine failure")
	if !strings.Contains(strings.Join(r.Notes, "\n"), "line(s) on the report channel that the verifier did not write") {
		t.Fatalf("forged lines not noted: %v", r.Notes)
	}
	// Closing fds 3–11 may close the Go runtime's own epoll descriptor too
	// (its number depends on what the worker opened first): the worker then
	// dies of it. Either way it is a FAIL, never the forged OK.
	r = hostileVerify(t, hostilePlugin(t, "forge", map[string]any{"sabotage": true}, nil), Options{}, fallback)
	if r.OK || r.Status != StatusFail || !(strings.Contains(r.Reason, "the plugin's code broke the verifier's report channel") ||
		strings.Contains(r.Reason, "interpretation crashed the process")) {
		t.Fatalf("sabotage: status %s, reason %q; want a FAIL for the broken channel or the crash", r.Status, r.Reason)
	}
}

// Nothing of the caller's secrets is reachable: environment (own and the
// parent's through /proc), DOCKER_CONFIG, ~/.ssh, git credentials.
func testSecrets(t *testing.T, fallback bool) {
	const secret = "s3cr3t-0123456789"
	home := t.TempDir()
	dockerCfg := filepath.Join(home, ".docker", "config.json")
	sshKey := filepath.Join(home, ".ssh", "id_ed25519")
	for _, f := range []string{dockerCfg, sshKey} {
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		// World-readable, so that file permissions are not what stops it.
		if err := os.WriteFile(f, []byte(secret), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for k, v := range map[string]string{
		"XTRAEFIK_GIT_TOKEN": secret, "DOCKER_CONFIG": filepath.Dir(dockerCfg), "HOME": home,
		"SSH_AUTH_SOCK": "/tmp/" + secret, "COSIGN_PASSWORD": secret,
	} {
		t.Setenv(k, v)
	}
	r := hostileVerify(t, hostilePlugin(t, "probe", map[string]any{"read": []string{dockerCfg, sshKey, "/etc/hostname"}}, nil), Options{}, fallback)
	rep := probeReport(t, r)
	if blob, _ := json.Marshal(rep); strings.Contains(string(blob), secret) || strings.Contains(r.Detail, secret) {
		t.Fatalf("a secret reached the plugin: %s", blob)
	}
	for _, f := range []string{dockerCfg, sshKey, "/etc/hostname", "/proc/self/environ", "/proc/1/environ"} {
		if rep["read "+f] == "ok" {
			t.Errorf("read %s succeeded", f)
		}
	}
	for k, v := range rep {
		if strings.HasPrefix(k, "read /proc/") && strings.HasSuffix(k, "/environ") && v == "ok" {
			t.Errorf("%s succeeded", k)
		}
	}
}

// Writes by absolute path, by ../ and into the working directory leave
// nothing on the host.
func testWrites(t *testing.T, fallback bool) {
	outside := t.TempDir()
	if err := os.Chmod(outside, 0o777); err != nil {
		t.Fatal(err)
	}
	abs := filepath.Join(outside, "abs")
	targets := []string{abs, "../escaped-by-dotdot", "written-in-cwd", "plugins-local/src/example.com/injected.go", "/tmp/scratch-ok"}
	r := hostileVerify(t, hostilePlugin(t, "probe", map[string]any{"write": targets}, nil), Options{}, fallback)
	rep := probeReport(t, r)
	for _, w := range targets[:4] {
		if rep["write "+w] == "ok" {
			t.Errorf("write %s succeeded inside the sandbox", w)
		}
	}
	if _, err := os.Stat(abs); err == nil {
		t.Errorf("%s was written on the host", abs)
	}
	// The working directory is plugins-local's parent: the verifier's own
	// work directory, gone with it; the user's directory is untouched.
	if _, err := os.Stat("written-in-cwd"); err == nil {
		t.Error("the plugin wrote into the caller's working directory")
	}
	if rep["write /tmp/scratch-ok"] != "ok" && !fallback {
		t.Errorf("the private /tmp is not writable: %s", rep["write /tmp/scratch-ok"])
	}
	if _, err := os.Stat("/tmp/scratch-ok"); err == nil {
		t.Error("the private /tmp is the host's")
	}
}

// No host network: a listener the test runs on the host loopback is not
// reachable, and a port the plugin listens on is not the host's.
func testNetwork(t *testing.T, fallback bool) {
	wire := testenv.NewTripwire(t, "tcp", "127.0.0.1:0")
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listenAt := free.Addr().String()
	free.Close()
	stop := make(chan struct{})
	var reached atomic.Int32
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if c, err := net.DialTimeout("tcp", listenAt, 100*time.Millisecond); err == nil {
				if b, _ := io.ReadAll(c); strings.Contains(string(b), "plugin") {
					reached.Add(1)
				}
				c.Close()
			}
		}
	}()
	r := hostileVerify(t, hostilePlugin(t, "probe", map[string]any{"dial": wire.Addr(), "listen": listenAt, "holdMS": 1500}, nil), Options{}, fallback)
	close(stop)
	rep := probeReport(t, r)
	if n := wire.Count(); rep["dial "+wire.Addr()] == "ok" || n != 0 {
		t.Errorf("the plugin reached the host loopback listener: %q, %d connection(s)", rep["dial "+wire.Addr()], n)
	}
	if reached.Load() != 0 {
		t.Errorf("the host reached the plugin's listener %d time(s)", reached.Load())
	}
	want := "ok" // its own loopback, private to the verification
	if fallback {
		want = "operation not permitted" // no network namespace: no sockets at all
	}
	if got := rep["listen "+listenAt]; !strings.Contains(got, want) {
		t.Errorf("listen: %q, want %q", got, want)
	}
}

// Processes the plugin starts — detached with setsid, or not — die with the
// verification.
func testProcesses(t *testing.T, fallback bool) {
	busybox := testenv.Tool(t, "busybox")
	marker := fmt.Sprintf("%d", 3600+time.Now().UnixNano()%1000)
	p := hostilePlugin(t, "probe", map[string]any{"busybox": "plugins-local/src/example.com/hostile/probe/busybox", "spawn": marker},
		map[string]string{"busybox": busybox})
	r := hostileVerify(t, p, Options{}, fallback)
	rep := probeReport(t, r)
	if rep["spawn"] != "ok" {
		t.Fatalf("the plugin could not start a process at all (%q): the test proves nothing", rep["spawn"])
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		left := processesWith("sleep", marker)
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes the plugin started outlived the verification: %v", left)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A memory hog in a child process counts against the limit; init and
// ServeHTTP that never return are killed at the timeout.
func testRunaway(t *testing.T, fallback bool) {
	if busybox, err := exec.LookPath("busybox"); err == nil {
		p := hostilePlugin(t, "probe", map[string]any{"busybox": "plugins-local/src/example.com/hostile/probe/busybox", "hog": "700M"},
			map[string]string{"busybox": busybox})
		r := hostileVerify(t, p, Options{MemoryLimit: 300 << 20}, fallback)
		checkVerdict(t, r, false, "interpretation exceeded 300 MB during New")
	}
	for _, name := range []string{"hang-init", "hang-serve"} {
		f := fixtureByName(t, name)
		p := plugin.Plugin{Alias: f.Name, Module: f.Module, Files: testenv.FixtureFiles(t, f)}
		r := hostileVerify(t, p, Options{Timeout: 3 * time.Second}, fallback)
		checkVerdict(t, r, false, "timed out after 3s")
	}
}

// A native program in the plugin's tree making i386 system calls (int
// $0x80), which a filter written for x86_64 numbers would not see, is killed
// before it reaches a Unix socket on the host.
func testForeignABI(t *testing.T, fallback bool) {
	if runtime.GOARCH != "amd64" {
		t.Skip("int $0x80 is x86_64's i386 ABI")
	}
	gcc := testenv.Tool(t, "gcc")
	dir, err := os.MkdirTemp("", "xtraefik-abi-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o777); err != nil { // permissions are not what stops it
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "s")
	wire := testenv.NewTripwire(t, "unix", sock)
	if err := os.Chmod(sock, 0o777); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "int80")
	src := filepath.Join(testenv.FixturesDir(t), "hostile", "native", "int80.c")
	if out, err := exec.Command(gcc, "-static", "-nostdlib", "-no-pie", "-O1", `-DSOCK_PATH="`+sock+`"`, "-o", bin, src).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	// Outside the sandbox it connects: the test would prove nothing otherwise.
	// A kernel without IA32 emulation has no int $0x80 at all (the
	// instruction faults): there is then no foreign ABI to refuse.
	err = exec.Command(bin).Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == -1 && wire.Count() == 0 {
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGSEGV {
			t.Skip("this kernel has no IA32 emulation: int $0x80 faults everywhere, so there is no foreign ABI for the sandbox to refuse")
		}
	}
	if err != nil || wire.Count() != 1 {
		t.Fatalf("the program does not connect outside the sandbox: %v", err)
	}
	p := hostilePlugin(t, "probe", map[string]any{"busybox": "plugins-local/src/example.com/hostile/probe/int80", "hog": "x"},
		map[string]string{"int80": bin})
	rep := probeReport(t, hostileVerify(t, p, Options{}, fallback))
	if wire.Count() != 1 {
		t.Fatalf("the program connected to the host's socket from the sandbox (%q)", rep["hog"])
	}
	if !strings.Contains(rep["hog"], "bad system call") {
		t.Errorf("the program was not killed by seccomp: %q", rep["hog"])
	}
}

// reflect.NewAt on a crafted slice header reaches any address (the worker's
// report key included): such code is not run unless the recipe trusts
// plugins with memory (allowUnsafe), and then it runs as in Traefik.
func testRawMemory(t *testing.T, fallback bool) {
	p := hostilePlugin(t, "rawmem", nil, nil)
	r := hostileVerify(t, p, Options{}, fallback)
	if r.Status != StatusUnverified || !strings.Contains(r.Reason, "calls reflect.NewAt (example.com/hostile/rawmem)") {
		t.Fatalf("a plugin calling reflect.NewAt was %s: %q", r.Status, r.Reason)
	}
	if r.Containment != nil {
		t.Fatal("its code ran")
	}
	r = hostileVerify(t, p, Options{AllowUnsafe: true}, fallback)
	checkVerdict(t, r, true, "")
}

// runtime/debug.WriteHeapDump writes the worker's heap, report key
// included, to a file the plugin reads back: such code is not run unless the
// recipe trusts plugins with memory, and the worker's interpreter does not
// even offer the function.
func testHeapDump(t *testing.T, fallback bool) {
	p := hostilePlugin(t, "heapdump", nil, nil)
	r := hostileVerify(t, p, Options{}, fallback)
	if r.Status != StatusUnverified || !strings.Contains(r.Reason, "calls runtime/debug.WriteHeapDump (example.com/hostile/heapdump)") {
		t.Fatalf("a plugin calling debug.WriteHeapDump was %s: %q", r.Status, r.Reason)
	}
	if r.Containment != nil {
		t.Fatal("its code ran")
	}
	if _, ok := guardedSymbols()["runtime/debug/debug"]["WriteHeapDump"]; ok {
		t.Fatal("the worker's interpreter offers WriteHeapDump")
	}
	if _, ok := guardedSymbols()["runtime/debug/debug"]["Stack"]; !ok {
		t.Fatal("runtime/debug lost more than its memory functions")
	}
}

// /proc/self/mem reads the worker's memory, report key included, and
// /proc/self/maps says where to look: neither is reachable, with or without
// namespaces (Landlock).
func testOwnMemory(t *testing.T, fallback bool) {
	rep := probeReport(t, hostileVerify(t, hostilePlugin(t, "probe", map[string]any{"mem": true}, nil), Options{}, fallback))
	for _, k := range []string{"mem", "read /proc/self/maps"} {
		if got := rep[k]; got == "ok" || got == "" {
			t.Errorf("%s: %q, want refused", k, got)
		}
	}
}

// A plugin whose code does not compile under Yaegi, but whose imported
// package's init runs first and forges (with guessed keys) a compiled
// message and an OK on every descriptor: FAIL for the compile error.
func testForgedCompile(t *testing.T, fallback bool) {
	r := hostileVerify(t, hostilePlugin(t, "compilefail", nil, nil), Options{}, fallback)
	checkVerdict(t, r, false, `failed to import plugin code "example.com/hostile/compilefail"`)
	if !strings.Contains(r.Reason+r.Detail, "undefinedHandler") {
		t.Errorf("reason %q does not name the compile error", r.Reason)
	}
	if !strings.Contains(strings.Join(r.Notes, "\n"), "line(s) on the report channel that the verifier did not write") {
		t.Fatalf("forged lines not noted: %v", r.Notes)
	}
}

// plantedWorker compiles testdata/hostile/native/planted.c (static) with the
// given -D definitions and returns its path; it skips without gcc.
func plantedWorker(t *testing.T, defines ...string) string {
	t.Helper()
	gcc := testenv.Tool(t, "gcc")
	bin := filepath.Join(t.TempDir(), "planted")
	args := []string{"-static", "-O1", "-o", bin}
	for _, d := range defines {
		args = append(args, "-D"+d)
	}
	args = append(args, filepath.Join(testenv.FixturesDir(t), "hostile", "native", "planted.c"))
	if out, err := exec.Command(gcc, args...).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	return bin
}

// A worker binary planted where xtraefik looks for one — --yaegi-worker,
// next to xtraefik, $PATH — starts only inside the sandbox, executed by
// xtraefik once contained: it neither writes on the host nor reads the
// user's credentials, and its forged answer is not believed. One planted in
// the worker cache (no record, a record sealed elsewhere, or bytes that
// differ from a record sealed here) is removed with a warning and rebuilt,
// never run.
func testPlantedWorkers(t *testing.T, fallback bool) {
	const secret = "planted-s3cr3t-42"
	home := t.TempDir()
	dockerCfg := filepath.Join(home, ".docker", "config.json")
	if err := os.MkdirAll(filepath.Dir(dockerCfg), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dockerCfg, []byte(secret), 0o644); err != nil {
		t.Fatal(err)
	}
	outside := t.TempDir()
	if err := os.Chmod(outside, 0o777); err != nil { // permissions are not what stops it
		t.Fatal(err)
	}
	marker := filepath.Join(outside, "marker")
	planted := plantedWorker(t, `MARKER="`+marker+`"`, `SECRET="`+dockerCfg+`"`)
	data, err := os.ReadFile(planted)
	if err != nil {
		t.Fatal(err)
	}
	// Outside the sandbox it does both: the test would prove nothing otherwise.
	if out, err := exec.Command(planted).CombinedOutput(); err != nil || !strings.Contains(string(out), secret) {
		t.Fatalf("the planted worker does not read the secret outside the sandbox: %v\n%s", err, out)
	}
	if err := os.Remove(marker); err != nil {
		t.Fatalf("the planted worker wrote no marker outside the sandbox: %v", err)
	}
	name := "xtraefik-yaegi-v0.15.1"
	p := hostilePlugin(t, "probe", nil, nil)
	run := func(t *testing.T, opts Options) (Result, string, error) {
		t.Helper()
		var log strings.Builder
		opts.TraefikVersion, opts.Log = "v2.11.0", &log
		if opts.WorkerCache == "" {
			opts.WorkerCache = t.TempDir()
		}
		opts.WorkerKey = testWorkerKey(t)
		v, err := NewVerifier(opts)
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
		if fallback {
			v.contain.refuse()
		}
		res, err := v.Verify(context.Background(), []plugin.Plugin{asResolved(p, opts)})
		var r Result
		if len(res) == 1 {
			r = res[0]
		}
		return r, log.String(), err
	}
	contained := func(t *testing.T, err error) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), "did not describe its interpreter") {
			t.Fatalf("err = %v, want the planted worker's answer refused", err)
		}
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("the planted worker read the secret: %v", err)
		}
		if _, err := os.Stat(marker); err == nil {
			t.Fatal("the planted worker wrote on the host")
		}
	}
	t.Setenv("PATH", t.TempDir()) // no toolchain, no other worker
	t.Run("yaegi-worker", func(t *testing.T) {
		_, _, err := run(t, Options{Workers: []string{planted}})
		contained(t, err)
	})
	t.Run("PATH", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Setenv("PATH", dir)
		_, _, err := run(t, Options{})
		contained(t, err)
	})
	t.Run("next to xtraefik", func(t *testing.T) {
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		next := filepath.Join(filepath.Dir(self), name)
		if err := os.WriteFile(next, data, 0o755); err != nil {
			t.Skipf("the test binary's directory is not writable: %v", err)
		}
		defer os.Remove(next)
		_, _, err = run(t, Options{})
		contained(t, err)
	})
	t.Run("cache", func(t *testing.T) {
		other := bytes.Repeat([]byte{3}, 32)
		for _, tc := range []struct {
			name, warning string
			record        func(exe string)
		}{
			{"no record", "it has no record sealed by this host", func(string) {}},
			{"record sealed elsewhere", "not sealed by this host", func(exe string) {
				if _, err := provision.Seal(other, exe, "v0.15.1"); err != nil {
					t.Fatal(err)
				}
			}},
			{"bytes changed after sealing", "does not match its sealed record", func(exe string) {
				if _, err := provision.Seal(testWorkerKey(t), exe, "v0.15.1"); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(exe, append(bytes.Clone(data), 0), 0o755); err != nil {
					t.Fatal(err)
				}
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				cache := t.TempDir()
				exe, err := provision.Path(cache, "v0.15.1")
				if err != nil {
					t.Fatal(err)
				}
				if err := os.MkdirAll(filepath.Dir(exe), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(exe, data, 0o755); err != nil {
					t.Fatal(err)
				}
				tc.record(exe)
				r, log, err := run(t, Options{WorkerCache: cache})
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				// Rebuilt — here, with no toolchain, not at all: no verdict,
				// and the planted binary never ran.
				if r.Status != StatusUnverified || !strings.Contains(r.Reason, "there is no Go toolchain to build it") {
					t.Fatalf("result %s %q, want UNVERIFIED for the missing rebuild", r.Status, r.Reason)
				}
				if !strings.Contains(log, "warning: ") || !strings.Contains(log, tc.warning) || !strings.Contains(log, "rebuilding it") {
					t.Fatalf("log %q lacks the warning %q", log, tc.warning)
				}
				if _, err := os.Stat(exe); err == nil {
					t.Fatal("the planted worker is still in the cache")
				}
				if _, err := os.Stat(marker); err == nil {
					t.Fatal("the planted worker ran")
				}
			})
		}
	})
}

// xtraefik's caller (a CI agent, a shell, a program embedding the library)
// may hand it descriptors without close-on-exec: a host directory holding a
// secret (fchdir to it leads out of the new root), a pipe, a socket. None
// reaches plugin code: sandbox.Configure marks them close-on-exec before
// the worker starts (sandbox's TestEnterRefusesInheritedDescriptors covers
// the worker's own check). The fdprobe plugin lists every descriptor it
// holds; beyond 0–3 only the Go runtime's own may remain (the cgroup files
// its scheduler reads, epoll and eventfd, which stat as anonymous files).
func testInheritedDescriptors(t *testing.T, fallback bool) {
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "secret.txt"), []byte("host-secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir, err := os.Open(host)
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	sock, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(sock)
	for _, fd := range []uintptr{dir.Fd(), pr.Fd(), uintptr(sock)} {
		if _, _, errno := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_SETFD, 0); errno != 0 {
			t.Fatal(errno)
		}
	}
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
	if len(rep.FDs) < 4 {
		t.Fatalf("fdprobe saw %v, want at least stdin, stdout, stderr and the report pipe", rep.FDs)
	}
	for _, fd := range rep.FDs {
		var n int
		var mode string
		if _, err := fmt.Sscanf(fd, "%d:%s", &n, &mode); err != nil {
			t.Fatalf("fdprobe entry %q: %v", fd, err)
		}
		if strings.Contains(fd, "host-secret") {
			t.Errorf("plugin code read a host file through an inherited descriptor: %s", fd)
		}
		if n > 3 && !strings.HasPrefix(mode, "-") {
			t.Errorf("plugin code holds descriptor %s, not one of the Go runtime's own (a regular or anonymous file)", fd)
		}
	}
	if len(rep.Bytes) > 0 {
		t.Errorf("byte slices of 16+ bytes (a key?) reachable by reflection from what New receives: %v", rep.Bytes)
	}
	for _, kv := range rep.Env {
		if strings.HasPrefix(kv, sandbox.EnvSpec+"=") || strings.HasPrefix(kv, warmEnv+"=") {
			t.Errorf("the sandbox's instructions stay in the environment: %s", kv)
		}
	}
}

// escapeReport compiles testdata/hostile/native/escape.c (static), ships
// it in the probe plugin's tree, has the plugin run it with args and
// returns its answers ("what" → "ok" or an errno name).
func escapeReport(t *testing.T, fallback bool, args ...string) (map[string]string, Result) {
	t.Helper()
	gcc := testenv.Tool(t, "gcc")
	bin := filepath.Join(t.TempDir(), "escape")
	src := filepath.Join(testenv.FixturesDir(t), "hostile", "native", "escape.c")
	if out, err := exec.Command(gcc, "-static", "-O1", "-o", bin, src).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	p := hostilePlugin(t, "probe", map[string]any{"busybox": "plugins-local/src/example.com/hostile/probe/escape", "native": args},
		map[string]string{"escape": bin})
	r := hostileVerify(t, p, Options{}, fallback)
	rep := probeReport(t, r)
	if rep["native run"] != "ok" {
		t.Fatalf("the native program did not run: %q\n%s", rep["native run"], rep["native"])
	}
	out := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(rep["native"]), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			out[k] = v
		}
	}
	return out, r
}

// expectAnswers fails for each attempt whose answer is not the one wanted.
func expectAnswers(t *testing.T, got, want map[string]string) {
	t.Helper()
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: %q, want %q", k, got[k], w)
		}
	}
}

// Native code gets only the socket families Go's net package uses. A
// network namespace covers those; AF_VSOCK (the hypervisor's transport),
// AF_PACKET, AF_ALG and netlink families other than NETLINK_ROUTE are not
// confined by it, or reach kernel code plugins have no use for: seccomp
// answers EAFNOSUPPORT, whatever the upper
// half of the argument holds. Without namespaces there are no sockets
// at all (EPERM), only socketpair of AF_UNIX.
func testSocketFamilies(t *testing.T, fallback bool) {
	got, _ := escapeReport(t, fallback, "sockets")
	want := map[string]string{
		"socket unix": "ok", "socket inet": "ok", "socket inet6": "ok", "socket netlink route": "ok",
		"socket netlink audit": "EAFNOSUPPORT", "socket vsock": "EAFNOSUPPORT", "socket vsock upper bits": "EAFNOSUPPORT",
		"socket packet": "EAFNOSUPPORT", "socket alg": "EAFNOSUPPORT",
		"socketpair unix": "ok", "socketpair vsock": "EAFNOSUPPORT",
	}
	if fallback {
		for k := range want {
			if strings.HasPrefix(k, "socket ") {
				want[k] = "EPERM"
			}
		}
	}
	expectAnswers(t, got, want)
}

// Native code cannot act on the verifying xtraefik by its host PID:
// seccomp refuses prlimit64, setpriority, sched_setaffinity,
// sched_setscheduler, sched_setparam and ioprio_set on any process but
// the caller (EPERM), with and without namespaces, while the same calls
// on itself work. Its signals stay in the sandbox: without namespaces
// Landlock scopes them (EPERM), with them the PID namespace has no such
// process (ESRCH). xtraefik's own limit is unchanged.
func testOtherProcesses(t *testing.T, fallback bool) {
	var before unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &before); err != nil {
		t.Fatal(err)
	}
	got, r := escapeReport(t, fallback, "pid", strconv.Itoa(os.Getpid()))
	want := map[string]string{
		"prlimit self": "ok", "prlimit": "EPERM", "setpriority": "EPERM", "setpriority self": "ok", "setpriority group": "EPERM",
		"sched_setaffinity": "EPERM", "sched_setaffinity self": "ok", "sched_setscheduler": "EPERM", "sched_setparam": "EPERM",
		"ioprio_set": "EPERM", "ioprio_set self": "ok", "kill self": "ok", "kill": "ESRCH",
	}
	if fallback {
		want["kill"] = "EPERM"
		if strings.Contains(r.Containment.String(), "signal scoping") && os.Getuid() != 0 {
			// Landlock ABI < 6: nothing scopes signals to a process of the
			// same user; the report says so.
			delete(want, "kill")
		}
	}
	expectAnswers(t, got, want)
	var after unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &after); err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Errorf("xtraefik's RLIMIT_NOFILE changed from %+v to %+v", before, after)
	}
}

// Native code makes no device node in its scratch directory (which,
// without namespaces, is on the host's /dev/shm or $TMPDIR, not nodev):
// seccomp refuses mknod and mknodat of character and block devices
// (EPERM); Landlock does not grant making them, nor socket nodes
// (EACCES for a socket node without namespaces); a FIFO is fine. Without
// namespaces the worker of a root caller is never root: it runs as nobody
// with no capability.
func testDeviceNodes(t *testing.T, fallback bool) {
	got, _ := escapeReport(t, fallback, "nodes")
	want := map[string]string{"mknod chr": "EPERM", "mknod blk": "EPERM", "mknod fifo": "ok", "mknod sock": "ok"}
	if runtime.GOARCH == "amd64" {
		want["mknod chr old"] = "EPERM"
	}
	if fallback {
		want["mknod sock"] = "EACCES"
		want["cap effective"], want["cap permitted"] = "000000000", "000000000"
		uid := strconv.Itoa(os.Getuid())
		if os.Getuid() == 0 {
			uid = "65534"
		}
		for _, k := range []string{"uid", "euid", "suid"} {
			want[k] = uid
		}
	}
	expectAnswers(t, got, want)
}

func fixtureByName(t *testing.T, name string) testenv.Fixture {
	t.Helper()
	for _, f := range testenv.Fixtures() {
		if f.Name == name {
			return f
		}
	}
	t.Fatalf("no fixture %s", name)
	return testenv.Fixture{}
}

// processesWith lists host processes whose command line has every word.
func processesWith(words ...string) []string {
	entries, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(data) == 0 {
			continue
		}
		args := strings.Split(strings.TrimRight(string(data), "\x00"), "\x00")
		if len(args) < len(words) {
			continue
		}
		if strings.Join(args[len(args)-len(words):], " ") == strings.Join(words, " ") {
			out = append(out, e.Name()+": "+strings.Join(args, " "))
		}
	}
	return out
}

// The same suite as an unprivileged user: the sandbox must hold without root.
func TestHostileUnprivileged(t *testing.T) {
	if runtime.GOOS != "linux" || os.Getuid() != 0 || os.Getenv(hostileChildEnv) != "" {
		t.Skip("runs as root, re-running the hostile suite as nobody")
	}
	// A copy of this test binary that nobody can run, in a directory nobody
	// may write too, so that a worker can be planted next to it.
	_, bin := testenv.CopyTestBinary(t, "verify.test", 0o777)
	cmd := testenv.AsUser(t, 65534, bin, "-test.run=^TestHostile$", "-test.count=1")
	cmd.Env = append(os.Environ(), hostileChildEnv+"=1", "HOME=/nonexistent", "TMPDIR=/tmp")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "PASS") {
		t.Fatalf("hostile suite as nobody: %v\n%s", err, out)
	}
}

// TestHostileInContainer runs the hostile suite inside an unprivileged
// Docker container (no privileges, the engine's default seccomp profile,
// another user), where the host refuses new namespaces: a CI runner that is
// itself a container. Only the host's /usr (toolchains, libc) and the
// fixtures are mounted, read-only.
func TestHostileInContainer(t *testing.T) {
	if runtime.GOOS != "linux" || os.Getuid() != 0 || os.Getenv(hostileChildEnv) != "" {
		t.Skip("runs as root, re-running the hostile suite in a container")
	}
	docker := testenv.Tool(t, "docker")
	if out, err := exec.Command(docker, "info").CombinedOutput(); err != nil {
		testenv.Unavailable(t, "no docker engine: %v\n%s", err, out)
	}
	dir := t.TempDir()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	rootfs := filepath.Join(dir, "rootfs")
	for _, d := range []string{"usr", "proc", "dev", "sys", "etc", "suite", "tmp"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Writable by the suite's user, so that a worker can be planted next to it.
	if err := errors.Join(os.Chmod(filepath.Join(rootfs, "tmp"), 0o1777), os.Chmod(filepath.Join(rootfs, "suite"), 0o777),
		os.WriteFile(filepath.Join(rootfs, "suite", "verify.test"), data, 0o755),
		os.WriteFile(filepath.Join(rootfs, "etc", "passwd"), []byte("root:x:0:0::/root:/bin/sh\nnobody:x:65534:65534::/nonexistent:/bin/sh\n"), 0o644),
		os.WriteFile(filepath.Join(rootfs, "etc", "group"), []byte("root:x:0:\nnogroup:x:65534:\n"), 0o644)); err != nil {
		t.Fatal(err)
	}
	// The merged-/usr links of a Debian root.
	for _, l := range []string{"bin", "lib", "lib64", "sbin"} {
		if err := os.Symlink("usr/"+l, filepath.Join(rootfs, l)); err != nil {
			t.Fatal(err)
		}
	}
	image := fmt.Sprintf("xtraefik-hostile-test:%d", time.Now().UnixNano())
	imp := exec.Command("sh", "-c", `tar -C "$1" -c . | "$2" import - "$3"`, "sh", rootfs, docker, image)
	if out, err := imp.CombinedOutput(); err != nil {
		t.Fatalf("docker import: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command(docker, "rmi", "-f", image).Run() })
	fixtures := testenv.FixturesDir(t)
	args := []string{"run", "--rm", "--network", "none", "--user", "65534:65534",
		"-v", "/usr:/usr:ro", "-v", fixtures + ":" + fixtures + ":ro",
		"-e", hostileChildEnv + "=1", "-e", "HOME=/nonexistent", "-e", "TMPDIR=/tmp", "-e", "PATH=/usr/local/go/bin:/usr/bin:/bin",
		"-e", testenv.E2EVar + "=" + os.Getenv(testenv.E2EVar),
		// The container refuses new namespaces: the half of the suite that
		// runs contained without them is the one that applies there.
		image, "/suite/verify.test", "-test.run=^TestHostile$/^no-namespaces$", "-test.count=1", "-test.v"}
	out, err := exec.Command(docker, args...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "\nPASS") {
		t.Fatalf("hostile suite in an unprivileged container: %v\n%s", err, out)
	}
	for _, want := range []string{"--- PASS: TestHostile/no-namespaces/planted_workers/cache", "--- PASS: TestHostile/no-namespaces/heap_dump",
		"--- PASS: TestHostile/no-namespaces/forged_compile", "--- PASS: TestHostile/no-namespaces/inherited_descriptors"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the suite in the container lacks %q:\n%s", want, out)
		}
	}
}
