//go:build linux

package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/xtraefik/xtraefik/internal/testenv"
)

// helloPlugin is a plugin author's working copy: a middleware that sets
// X-Hello to "<version> <greeting>".
func helloPlugin(t *testing.T, dir, version string) {
	t.Helper()
	files := map[string]string{
		"go.mod":       "module example.com/hello\n\ngo 1.21\n",
		".traefik.yml": "displayName: Hello\ntype: middleware\nimport: example.com/hello\nsummary: sets X-Hello\ntestData:\n  Greeting: test\n",
		"hello.go": `package hello

import (
	"context"
	"net/http"
)

type Config struct{ Greeting string }

func CreateConfig() *Config { return &Config{} }

type Hello struct {
	next     http.Handler
	greeting string
}

func New(ctx context.Context, next http.Handler, config *Config, name string) (http.Handler, error) {
	return &Hello{next: next, greeting: config.Greeting}, nil
}

func (h *Hello) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	rw.Header().Set("X-Hello", "` + version + ` "+h.greeting)
	h.next.ServeHTTP(rw, req)
}
`,
	}
	os.MkdirAll(dir, 0o755)
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// syncBuffer is the child's standard error, read while it is written.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRunWatch is a plugin author's loop against the real Traefik binary:
// `xtraefik run --with example.com/hello=DIR --watch` serves a request
// through the plugin on the published entry point; an edit to the working
// copy shows in the next response, as does an edit to the dynamic
// configuration; a broken edit leaves the previous build
// serving; SIGTERM ends xtraefik with Traefik gone. Then the same from a
// recipe file with a path: plugin, without --watch, ended by SIGINT.
func TestRunWatch(t *testing.T) {
	bin := testenv.TraefikBinary(t, "v3.6.12")
	dir := t.TempDir()
	exe := filepath.Join(dir, "xtraefik")
	if out, err := exec.Command("go", "build", "-o", exe, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	baseDir := filepath.Join(dir, "traefik-base")
	lp, err := layout.Write(baseDir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	img := testenv.TraefikBase(t, bin, testenv.TraefikBaseOptions{Version: "v3.6.12", WorkingDir: "/srv/traefik", User: "nonroot", OCI: true})
	if err := lp.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "v3.6.12"})); err != nil {
		t.Fatal(err)
	}
	plugin := filepath.Join(dir, "hello")
	helloPlugin(t, plugin, "v1")
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "backend") }))
	defer backend.Close()
	dynamic := filepath.Join(dir, "dynamic.yml")
	os.WriteFile(dynamic, []byte(fmt.Sprintf(`http:
  routers:
    hello:
      rule: PathPrefix(`+"`/`"+`)
      entryPoints: [web]
      middlewares: [hello]
      service: backend
  middlewares:
    hello:
      plugin:
        hello:
          greeting: world
  services:
    backend:
      loadBalancer:
        servers:
          - url: %s
`, backend.URL)), 0o644)

	port := freePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	flag := fmt.Sprintf("--entryPoints.web.address=127.0.0.1:%d", port)
	r := startRun(t, exe, "run", "--base", "oci:"+baseDir+":v3.6.12", "--with", "example.com/hello="+plugin,
		"--dynamic", dynamic, "--entrypoint", fmt.Sprintf("web=:%d", port), "--watch", "--cache-dir", filepath.Join(dir, "cache"))
	r.expect(url, "v1 world", 4*time.Minute)

	helloPlugin(t, plugin, "v2")
	r.expect(url, "v2 world", 2*time.Minute)

	// The dynamic configuration is watched too.
	os.WriteFile(dynamic, bytes.Replace(mustRead(t, dynamic), []byte("greeting: world"), []byte("greeting: there"), 1), 0o644)
	r.expect(url, "v2 there", 2*time.Minute)

	// A broken edit: the rebuild fails and the previous build keeps serving.
	os.WriteFile(filepath.Join(plugin, "hello.go"), []byte("package hello\n\nfunc broken( {\n"), 0o644)
	waitFor(t, "a failed rebuild", func() bool {
		return strings.Contains(r.stderr.String(), "rebuild failed, Traefik keeps serving the previous build")
	})
	r.expect(url, "v2 there", 10*time.Second)
	r.stop(syscall.SIGTERM, url, flag)

	// From a recipe file with a path: plugin, without --watch; Ctrl-C.
	helloPlugin(t, plugin, "v3")
	rp := filepath.Join(dir, "recipe.yaml")
	os.WriteFile(rp, []byte("base: oci:"+baseDir+":v3.6.12\nplugins:\n  hello:\n    module: example.com/hello\n    path: ./hello\n"), 0o644)
	port = freePort(t)
	url = fmt.Sprintf("http://127.0.0.1:%d/", port)
	r = startRun(t, exe, "run", "-f", rp, "--dynamic", dynamic, "--entrypoint", fmt.Sprintf("web=:%d", port), "--cache-dir", filepath.Join(dir, "cache"))
	r.expect(url, "v3 there", 4*time.Minute)
	r.stop(syscall.SIGINT, url, fmt.Sprintf("--entryPoints.web.address=127.0.0.1:%d", port))
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// runProc is a running `xtraefik run`.
type runProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	stderr *syncBuffer
	exited chan error
}

func startRun(t *testing.T, exe string, args ...string) *runProc {
	t.Helper()
	r := &runProc{t: t, cmd: exec.Command(exe, args...), stderr: &syncBuffer{}, exited: make(chan error, 1)}
	r.cmd.Stderr, r.cmd.Stdout = r.stderr, r.stderr
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.exited <- r.cmd.Wait() }()
	t.Cleanup(func() {
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-r.exited:
			r.exited <- err
		case <-time.After(30 * time.Second):
			_ = r.cmd.Process.Kill()
		}
	})
	return r
}

// expect waits for a 200 through url with X-Hello want.
func (r *runProc) expect(url, want string, within time.Duration) {
	r.t.Helper()
	deadline := time.Now().Add(within)
	var last string
	for time.Now().Before(deadline) {
		select {
		case err := <-r.exited:
			r.t.Fatalf("xtraefik run exited: %v\n%s", err, r.stderr.String())
		default:
		}
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			last = fmt.Sprintf("%d X-Hello=%q", resp.StatusCode, resp.Header.Get("X-Hello"))
			if resp.StatusCode == 200 && resp.Header.Get("X-Hello") == want {
				return
			}
		} else {
			last = err.Error()
		}
		time.Sleep(200 * time.Millisecond)
	}
	r.t.Fatalf("no X-Hello %q through %s within %v (last: %s)\n%s", want, url, within, last, r.stderr.String())
}

// stop signals xtraefik run, which must end with status 0 and leave no
// Traefik (found by its entry point flag) and nothing answering url.
func (r *runProc) stop(sig syscall.Signal, url, flag string) {
	r.t.Helper()
	if traefikPIDs(flag) == nil {
		r.t.Errorf("no Traefik process with %s", flag)
	}
	if err := r.cmd.Process.Signal(sig); err != nil {
		r.t.Fatal(err)
	}
	select {
	case err := <-r.exited:
		r.exited <- err
		if err != nil {
			r.t.Errorf("xtraefik run ended with %v after %v\n%s", err, sig, r.stderr.String())
		}
	case <-time.After(stopGrace + 5*time.Second):
		r.t.Fatalf("xtraefik run still running after %v\n%s", sig, r.stderr.String())
	}
	if pids := traefikPIDs(flag); len(pids) > 0 {
		r.t.Errorf("Traefik (pids %v) outlived xtraefik run", pids)
	}
	if _, err := http.Get(url); err == nil {
		r.t.Errorf("%s still answers after xtraefik run ended", url)
	}
	if testing.Verbose() {
		r.t.Logf("xtraefik run's output:\n%s", r.stderr.String())
	}
}

// traefikPIDs are the live processes whose command line holds arg.
func traefikPIDs(arg string) []string {
	var out []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(b, []byte(arg)) || bytes.Contains(b, []byte("xtraefik\x00run")) {
			continue
		}
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err == nil && alive(pid) {
			out = append(out, e.Name())
		}
	}
	return out
}
