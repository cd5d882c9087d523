package build

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xtraefik/xtraefik/internal/testenv"
	"github.com/xtraefik/xtraefik/verify"
)

// TestRunnerStages: the runner runs the stages asked for in order, adds
// each timed stage's time to its field and no other, tells the Status of
// the steps within in order, stops at the first error, and wraps it once
// as a StageError naming the stage.
func TestRunnerStages(t *testing.T) {
	ev := &events{}
	r := &runner{st: ev}
	var tm Timings
	var ran []string
	boom := errors.New("boom")
	err := r.run(t.Context(),
		stage{name: StageResolve, timing: &tm.Resolve, run: func(ctx context.Context) error {
			ran = append(ran, "resolve")
			time.Sleep(time.Millisecond) // so that the time recorded cannot be 0
			return r.step(ctx, StageFetch, "demo", func(context.Context) (string, error) { return "fetched", nil })
		}},
		stage{}, // a stage the request did not ask for
		stage{name: StageVerify, run: func(context.Context) error {
			ran = append(ran, "verify")
			return nil
		}},
		stage{name: StageAssemble, timing: &tm.Assemble, run: func(ctx context.Context) error {
			ran = append(ran, "assemble")
			return r.step(ctx, StageAssemble, "", func(context.Context) (string, error) { return "", boom })
		}},
		stage{name: StagePublish, timing: &tm.Publish, run: func(context.Context) error {
			ran = append(ran, "publish")
			return nil
		}},
	)
	if strings.Join(ran, " ") != "resolve verify assemble" {
		t.Errorf("ran %q, want resolve verify assemble (none after the failure)", ran)
	}
	if tm.Resolve < 1 || tm.Verify != 0 || tm.Publish != 0 {
		t.Errorf("timings %+v: want resolve's time (at least its 1ms), nothing for the untimed verify nor the publish that did not run", tm)
	}
	var se *StageError
	if !errors.As(err, &se) || se.Stage != StageAssemble || se.Plugin != "" || !errors.Is(err, boom) || err.Error() != "boom" {
		t.Errorf("error %#v: want boom as a StageError of assemble, its message the stage's own", err)
	}
	want := []string{"start fetch demo", `done fetch demo "fetched" <nil>`, "start assemble ", `done assemble  "" boom`}
	if strings.Join(ev.lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(ev.lines, "\n"), strings.Join(want, "\n"))
	}
	// A StageError from within a stage (a plugin's) is not wrapped again.
	inner := &StageError{Stage: StageFetch, Plugin: "demo", Err: boom}
	err = (*runner)(nil).run(t.Context(), stage{name: StageResolve, run: func(context.Context) error { return inner }})
	if err != inner {
		t.Errorf("error %#v: want the fetch's StageError as it was", err)
	}
}

// TestRunnerCancellation: a context cancelled between stages stops the
// run before the next, and one cancelled within a stage makes its error
// satisfy errors.Is(err, context.Canceled) even when the stage's code
// returned an error of its own (as a network transport does), keeping
// that error's words.
func TestRunnerCancellation(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	ranVerify := false
	err := (*runner)(nil).run(ctx,
		stage{name: StageResolve, run: func(context.Context) error { cancel(); return nil }},
		stage{name: StageVerify, run: func(context.Context) error { ranVerify = true; return nil }},
	)
	var se *StageError
	if ranVerify || !errors.Is(err, context.Canceled) || !errors.As(err, &se) || se.Stage != StageVerify || err.Error() != "verify the plugins: context canceled" {
		t.Errorf("cancelled between stages: ran verify %v, error %v", ranVerify, err)
	}

	ctx, cancel = context.WithCancel(t.Context())
	closed := errors.New("read tcp 127.0.0.1:1: use of closed network connection")
	err = (*runner)(nil).run(ctx, stage{name: StageResolve, run: func(context.Context) error {
		cancel()
		return &StageError{Stage: StageFetch, Plugin: "demo", Err: closed}
	}})
	if !errors.Is(err, context.Canceled) || !errors.Is(err, closed) || !errors.As(err, &se) || se.Stage != StageFetch || se.Plugin != "demo" ||
		err.Error() != closed.Error()+" (context canceled)" {
		t.Errorf("cancelled within a stage: %v", err)
	}
	// An error that says it was cancelled is not said twice.
	ctx, cancel = context.WithCancel(t.Context())
	err = (*runner)(nil).run(ctx, stage{name: StageVerify, run: func(ctx context.Context) error {
		cancel()
		return errors.New("verify: " + ctx.Err().Error())
	}})
	if !errors.Is(err, context.Canceled) || err.Error() != "verify: context canceled" {
		t.Errorf("cancelled, said so: %v", err)
	}
}

// TestVerdictsFailed: FAIL and UNVERIFIED verdicts stop a command with
// ErrVerificationFailed, naming the plugin when one failed.
func TestVerdictsFailed(t *testing.T) {
	ok := verify.Result{Alias: "ok", Module: "example.com/ok", Status: verify.StatusOK, OK: true}
	bad := verify.Result{Alias: "bad", Module: "example.com/bad", Status: verify.StatusFail, Reason: "not vendored: x"}
	unv := verify.Result{Alias: "unv", Module: "example.com/unv", Status: verify.StatusUnverified, Reason: "no interpreter"}
	if err := verdictsFailed([]verify.Result{ok}, true); err != nil {
		t.Errorf("all OK: %v", err)
	}
	err := verdictsFailed([]verify.Result{ok, bad}, true)
	var se *StageError
	if !errors.Is(err, ErrVerificationFailed) || !errors.As(err, &se) || se.Stage != StageVerify || se.Plugin != "bad" ||
		err.Error() != "verification failed, no image was built: bad (example.com/bad): not vendored: x" {
		t.Errorf("one FAIL: %v", err)
	}
	err = verdictsFailed([]verify.Result{bad, unv}, false)
	if !errors.Is(err, ErrVerificationFailed) || !errors.As(err, &se) || se.Plugin != "" ||
		err.Error() != "verification failed: bad (example.com/bad): not vendored: x; unv (example.com/unv): UNVERIFIED: no interpreter" {
		t.Errorf("two: %v", err)
	}
}

// gitSession opens a session on a recipe whose one plugin, demo, comes
// from url at ref, on a base in an OCI layout, with a cache of its own.
func gitSession(t *testing.T, base, url, ref string) *Session {
	t.Helper()
	dir := t.TempDir()
	rp := filepath.Join(dir, "recipe.yaml")
	yaml := "base: " + base + "\nplugins:\n  demo:\n    module: github.com/traefik/plugindemo\n    git: " + url + "\n    ref: " + ref + "\n"
	if err := os.WriteFile(rp, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	env := func(k string) string {
		switch k {
		case "HOME", "XDG_CONFIG_HOME":
			return home
		case "GOPROXY":
			return "off"
		}
		return ""
	}
	s, err := Open(Config{RecipeFile: rp, CacheDir: t.TempDir(), Env: env})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestNotFound: a git ref the remote lacks is ErrNotFound, as a fetch
// StageError naming the plugin; so is a tag the registry lacks.
func TestNotFound(t *testing.T) {
	const module = "github.com/traefik/plugindemo"
	gitRoot := t.TempDir()
	repo := testenv.PluginRepo(t, gitRoot, module, "v0.2.2")
	daemon := testenv.StartGitDaemon(t, gitRoot)
	layout := filepath.Join(t.TempDir(), "base")
	testenv.WriteBaseLayout(t, layout, "v3.6", testenv.BaseOptions{Single: true})

	_, err := gitSession(t, "oci:"+layout+":v3.6", daemon.URL+repo.Path, "v9.9.9").Lock(t.Context(), LockRequest{})
	var se *StageError
	if !errors.Is(err, ErrNotFound) || !errors.As(err, &se) || se.Stage != StageFetch || se.Plugin != "demo" || !strings.Contains(err.Error(), "plugin demo (") {
		t.Errorf("missing ref: %v", err)
	}

	reg := testenv.Registry(t, testenv.RegistryOptions{})
	s := gitSession(t, reg+"/traefik:v9", daemon.URL+repo.Path, "v0.2.2")
	s.opts.Images.Insecure = []string{reg}
	_, err = s.Lock(t.Context(), LockRequest{})
	if !errors.Is(err, ErrNotFound) || !errors.As(err, &se) || se.Stage != StageResolve || se.Plugin != "" {
		t.Errorf("missing tag: %v", err)
	}
}

// stallProxy forwards TCP connections to target, passing on only the
// first allow bytes the server sends (across all connections), then
// holding the connections open without a byte more: a server that stalls
// at that point of the protocol. stalled is closed once it holds back.
type stallProxy struct {
	addr    string
	allow   int64
	sent    atomic.Int64
	stalled chan struct{}
	once    sync.Once
}

func startStallProxy(t *testing.T, target string, allow int64) *stallProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallProxy{addr: l.Addr().String(), allow: allow, stalled: make(chan struct{})}
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	keep := func(c net.Conn) {
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
	}
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			keep(c)
			keep(up)
			go func() { _, _ = io.Copy(up, c) }()
			go p.down(c, up)
		}
	}()
	return p
}

// down copies the server's bytes to the client until allow is spent.
func (p *stallProxy) down(c, up net.Conn) {
	buf := make([]byte, 512)
	for {
		n, err := up.Read(buf)
		if n > 0 {
			left := p.allow - p.sent.Load()
			if left <= 0 {
				p.once.Do(func() { close(p.stalled) })
				return // the connections stay open, silent
			}
			if int64(n) > left {
				n = int(left)
			}
			p.sent.Add(int64(n))
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// TestCancelDuringGitFetch: cancelling a lock while a git server stalls,
// at twenty points of the fetch from the first byte of the reference
// advertisement to the last of the pack, always ends it with an error
// satisfying errors.Is(err, context.Canceled), a fetch StageError naming
// the plugin, and no lock written.
func TestCancelDuringGitFetch(t *testing.T) {
	const module = "github.com/traefik/plugindemo"
	gitRoot := t.TempDir()
	repo := testenv.PluginRepo(t, gitRoot, module, "v0.2.2")
	daemon := testenv.StartGitDaemon(t, gitRoot)
	target := strings.TrimSuffix(strings.TrimPrefix(daemon.URL, "git://"), "/")
	layout := filepath.Join(t.TempDir(), "base")
	testenv.WriteBaseLayout(t, layout, "v3.6", testenv.BaseOptions{Single: true})
	base := "oci:" + layout + ":v3.6"

	// How many bytes a whole lock reads from the server.
	whole := startStallProxy(t, target, 1<<40)
	if _, err := gitSession(t, base, "git://"+whole.addr+"/"+repo.Path, "v0.2.2").Lock(t.Context(), LockRequest{}); err != nil {
		t.Fatalf("lock through the proxy: %v", err)
	}
	total := whole.sent.Load()
	if total == 0 {
		t.Fatal("nothing went through the proxy")
	}
	const runs = 20
	for i := int64(0); i < runs; i++ {
		p := startStallProxy(t, target, i*total/runs)
		s := gitSession(t, base, "git://"+p.addr+"/"+repo.Path, "v0.2.2")
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() {
			_, err := s.Lock(ctx, LockRequest{})
			done <- err
		}()
		select {
		case <-p.stalled:
		case err := <-done:
			cancel()
			t.Fatalf("run %d: the lock ended before the server stalled (%d of %d bytes): %v", i, p.allow, total, err)
		}
		cancel()
		var err error
		select {
		case err = <-done:
		case <-time.After(time.Minute):
			t.Fatalf("run %d (stalled after %d of %d bytes): the lock did not end a minute after its context was cancelled", i, p.allow, total)
		}
		var se *StageError
		if !errors.Is(err, context.Canceled) || !errors.As(err, &se) || se.Stage != StageFetch || se.Plugin != "demo" {
			t.Errorf("run %d (stalled after %d of %d bytes): error %v (%#v): want a fetch StageError of demo satisfying errors.Is(err, context.Canceled)", i, p.allow, total, err, err)
		}
		if _, serr := os.Stat(s.LockFile); serr == nil {
			t.Errorf("run %d: a cancelled lock wrote %s", i, s.LockFile)
		}
	}
}
