package verify

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/xtraefik/xtraefik/internal/sandbox"
)

// workerEnv marks a process started by Verify to interpret one plugin. Its
// value says which side of the sandbox entry the process is on: entryMode for
// this very executable, started by the parent, which contains itself and
// then runs the job or executes the worker binary the sandbox names; and
// containedMode for that worker binary, which finds itself contained already.
const workerEnv = "XTRAEFIK_VERIFY_WORKER"

const (
	entryMode     = "1"
	containedMode = "contained"
)

// treeEnv tells an executed worker binary where the plugin tree is inside
// the sandbox, so that it can prepare its interpreter before its job.
const treeEnv = "XTRAEFIK_VERIFY_TREE"

// workerFailed is the worker's exit code for its own failures (no job, no
// report pipe), told apart from a Go crash (2) caused by the plugin.
const workerFailed = 3

// workerProtocol numbers the job/message format. A worker binary of its own
// (the Traefik v2 one) may come from another xtraefik source than the parent:
// both sides refuse a mismatch rather than misread each other. Bump it when
// hello, job, message, envelope or outcome change meaning (4: workers start
// contained by xtraefik, a sealed compile result is final, and a plugin's own
// server error is OK with outcome.Warning).
const workerProtocol = 4

// job is what the parent sends the worker on stdin.
type job struct {
	Protocol int `json:"protocol"`
	// Key authenticates the worker's report lines (HMAC-SHA256): it reaches
	// the worker before any plugin code runs and never leaves its memory,
	// which plugin code without unsafe cannot read.
	Key []byte `json:"key"`
	// Describe asks only for the worker's interpreter and packageSet.
	Describe bool `json:"describe,omitempty"`
	// GoPath is the plugins-local directory, as Traefik's localGoPath, as
	// the contained worker sees it.
	GoPath    string `json:"goPath"`
	Module    string `json:"module"`
	Type      string `json:"type"`
	Runtime   string `json:"runtime"`
	Import    string `json:"import,omitempty"`
	BasePkg   string `json:"basePkg,omitempty"`
	WasmFile  string `json:"wasmFile,omitempty"`
	UseUnsafe bool   `json:"useUnsafe,omitempty"`
	// RawMemory gives the plugin reflect.NewAt and reflect.SliceAt (the
	// recipe allows useUnsafe: it trusts plugins with any memory).
	RawMemory bool `json:"rawMemory,omitempty"`
	// Config is the plugin configuration as YAML, so that the worker sees the
	// same Go types (int, bool, string, nested maps) the parent decoded.
	Config string `json:"config"`
	// Name is the middleware/provider name handed to New.
	Name string `json:"name"`
	// Deadline bounds waits inside the worker (a provider's first
	// configuration), leaving the parent's hard kill as the last resort.
	Deadline time.Time `json:"deadline"`
	// ExpectStatus is the status the middleware's answer must have (0: any
	// answer of a plugin that ran, a server error with a warning; see
	// probe.Judge).
	ExpectStatus int `json:"expectStatus,omitempty"`
}

// hello is a line on the report pipe (fd 3) before the job. The first is
// written by xtraefik itself once contained — before any other program runs
// in the sandbox — and says which protections are in force, or why it could
// not contain itself. The second is the worker's (xtraefik's own, or the
// worker binary it executed): its protocol, so that neither side misreads
// the other.
type hello struct {
	Protocol    int             `json:"protocol"`
	Containment *sandbox.Report `json:"containment,omitempty"`
	Error       string          `json:"error,omitempty"`
}

// envelope is every later line on the report pipe: a message, its sequence
// number and their HMAC under the job's key.
type envelope struct {
	Seq  int64           `json:"seq"`
	Body json.RawMessage `json:"body"`
	MAC  string          `json:"mac"`
}

// message is the body of an envelope: a phase announcement, so that a kill
// can say where the plugin was stuck, whether the plugin compiled, or the
// final outcome.
type message struct {
	Phase    string    `json:"phase,omitempty"`
	Compiled *compiled `json:"compiled,omitempty"`
	Result   *outcome  `json:"result,omitempty"`
}

// compiled is what the target Yaegi made of the plugin's import: sent as
// soon as the import returns, it is final. A compile failure stays the
// verdict whatever comes later, and a Yaegi plugin's OK counts only after
// a compiled OK.
type compiled struct {
	OK     bool   `json:"ok"`
	Reason string `json:"reason,omitempty"`
	Detail string `json:"detail,omitempty"`
}

type outcome struct {
	// Interpreter is the worker's own: what it interprets with, from its
	// build information.
	Interpreter string   `json:"interpreter,omitempty"`
	OK          bool     `json:"ok"`
	Reason      string   `json:"reason,omitempty"`
	Detail      string   `json:"detail,omitempty"`
	Notes       []string `json:"notes,omitempty"`
	// Status is the middleware's answer to the probe request.
	Status int `json:"status,omitempty"`
	// Warning qualifies an OK: the plugin answered with a server error of
	// its own (probe.Judge).
	Warning string `json:"warning,omitempty"`
	// Std and Restricted answer a Describe job (packageSet).
	Std        []string `json:"std,omitempty"`
	Restricted []string `json:"restricted,omitempty"`
}

// init makes any program that links this package its own verification
// worker: Verify starts the running executable (xtraefik, a test binary, or a
// Go program embedding the library) as the sandbox's entry, and that process
// must serve the job before the program's main — which knows nothing of it —
// could run and print something else.
func init() { MaybeRunWorker() }

// MaybeRunWorker turns the process into a verification worker when Verify
// started it (XTRAEFIK_VERIFY_WORKER set), and never returns in that case;
// otherwise it returns at once. The package's init already calls it: calling
// it again from main is harmless and no longer needed.
func MaybeRunWorker() {
	switch os.Getenv(workerEnv) {
	case entryMode:
		debug.SetGCPercent(workerGCPercent)
		os.Exit(serveWorker(os.Stdin, os.NewFile(3, "report")))
	case containedMode:
		debug.SetGCPercent(workerGCPercent)
		os.Exit(serveContained(os.Stdin, os.NewFile(3, "report")))
	}
}

// workerGCPercent is a worker's GOGC. A worker is a short process whose live
// heap is the few MB of its prepared interpreter: at Go's default (100),
// compiling a plugin of a few dozen files collects that heap several times,
// which cost about a third of the job's CPU (fail2ban, geoblock). Memory
// stays bounded as before: GOMEMLIMIT (spawn) makes the collector work hard
// well before the memory watchdog kills the worker.
const workerGCPercent = 400

// serveWorker is the sandbox's entry: this executable contains the process,
// says so, then runs one job itself or executes the worker binary the spec
// names, inside the sandbox. Nothing but this code runs before containment.
func serveWorker(in io.Reader, report *os.File) int {
	if report == nil {
		fmt.Fprintln(os.Stderr, "xtraefik verify worker: no report pipe on fd 3")
		return workerFailed
	}
	spec, containment, err := sandbox.Enter()
	warm := os.Getenv(warmEnv) != ""
	_ = os.Unsetenv(warmEnv)
	h := hello{Protocol: workerProtocol, Containment: &containment}
	var pre *prepared
	switch {
	case err != nil:
		h = hello{Protocol: workerProtocol, Error: err.Error()}
	case spec.Exec == "":
		// Made before the hello, so that a worker said ready is ready.
		if warm {
			warmUp()
		}
		pre = prepare(spec.TreeInside())
	}
	if err := json.NewEncoder(report).Encode(h); err != nil || h.Error != "" {
		fmt.Fprintf(os.Stderr, "xtraefik verify worker: %s %v\n", h.Error, err)
		return workerFailed
	}
	if spec.Exec != "" {
		return execWorker(spec)
	}
	if err := json.NewEncoder(report).Encode(hello{Protocol: workerProtocol}); err != nil {
		fmt.Fprintf(os.Stderr, "xtraefik verify worker: %v\n", err)
		return workerFailed
	}
	return serveJob(in, report, pre)
}

// execWorker replaces the contained process by the worker binary: it keeps
// the namespaces, Landlock domain, seccomp filter, rlimits and the report
// pipe, and gets the environment the parent gave, marked contained.
func execWorker(spec sandbox.Spec) int {
	env := []string{workerEnv + "=" + containedMode, treeEnv + "=" + spec.TreeInside()}
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k != workerEnv && k != treeEnv {
			env = append(env, kv)
		}
	}
	path := spec.ExecInside()
	err := syscall.Exec(path, []string{filepath.Base(path)}, env)
	fmt.Fprintf(os.Stderr, "xtraefik verify worker: execute the worker binary inside the sandbox: %v\n", err)
	return workerFailed
}

// serveContained is a worker binary executed by the sandbox's entry: already
// contained, it says which protocol it speaks, then runs one job.
func serveContained(in io.Reader, report *os.File) int {
	if report == nil {
		fmt.Fprintln(os.Stderr, "xtraefik verify worker: no report pipe on fd 3")
		return workerFailed
	}
	var pre *prepared
	if tree := os.Getenv(treeEnv); tree != "" {
		pre = prepare(tree)
	}
	if err := json.NewEncoder(report).Encode(hello{Protocol: workerProtocol}); err != nil {
		fmt.Fprintf(os.Stderr, "xtraefik verify worker: %v\n", err)
		return workerFailed
	}
	return serveJob(in, report, pre)
}

// serveJob reads one job and reports on it, every line sealed with its key;
// pre is the interpreter made while the job was on its way (nil: none).
func serveJob(in io.Reader, report io.Writer, pre *prepared) int {
	var j job
	if err := json.NewDecoder(in).Decode(&j); err != nil {
		fmt.Fprintf(os.Stderr, "xtraefik verify worker: read job: %v\n", err)
		return workerFailed
	}
	if j.Protocol != workerProtocol {
		fmt.Fprintf(os.Stderr, "xtraefik verify worker: job in protocol %d, this worker speaks %d: build the worker from the same xtraefik source as xtraefik\n",
			j.Protocol, workerProtocol)
		return workerFailed
	}
	if len(j.Key) < 16 {
		fmt.Fprintln(os.Stderr, "xtraefik verify worker: job without a key")
		return workerFailed
	}
	w := &reporter{w: report, key: j.Key}
	var out outcome
	if j.Describe {
		pkgs := linkedPackages()
		out = outcome{OK: true, Std: sortedKeys(pkgs.std), Restricted: sortedKeys(pkgs.restricted)}
	} else {
		out = work(context.Background(), &j, w, pre)
	}
	out.Interpreter = interpreterName(j.Runtime == "wasm")
	if err := w.send(message{Result: &out}); err != nil {
		fmt.Fprintf(os.Stderr, "xtraefik verify worker: write result: %v\n", err)
		return workerFailed
	}
	return 0
}

// reporter seals and serialises messages to the report pipe.
type reporter struct {
	mu  sync.Mutex
	w   io.Writer
	key []byte
	seq int64
}

func (r *reporter) phase(p string) { _ = r.send(message{Phase: p}) }

func (r *reporter) send(m message) error {
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	line, err := seal(r.key, r.seq, body)
	if err != nil {
		return err
	}
	_, err = r.w.Write(append(line, '\n'))
	return err
}

// work runs the checks for one plugin and never panics: a panic anywhere in
// the plugin's code on this goroutine is a FAIL naming the phase.
func work(ctx context.Context, j *job, r *reporter, pre *prepared) (out outcome) {
	logs := newTail(16 << 10)
	if pre != nil && pre.goPath == j.GoPath && j.Runtime != "wasm" {
		logs = pre.logs
	}
	phase := "start"
	setPhase := func(p string) { phase = p; r.phase(p) }
	defer func() {
		if v := recover(); v != nil {
			out = outcome{Reason: fmt.Sprintf("panic during %s: %v", phase, v)}
		}
		if !out.OK {
			if t := logs.String(); t != "" {
				out.Detail = strings.TrimSpace(out.Detail + "\nplugin output:\n" + t)
			}
		}
		// Name files as they are in the image, not in our temporary tree.
		out.Reason = strings.ReplaceAll(out.Reason, j.GoPath, "plugins-local")
		out.Detail = strings.ReplaceAll(out.Detail, j.GoPath, "plugins-local")
	}()
	switch j.Runtime {
	case "wasm":
		return checkWasm(ctx, j, setPhase, logs)
	default:
		// Sent the moment the import returns, before New: what the target
		// Yaegi made of the plugin is settled before its later code runs.
		compile := func(c compiled) {
			c.Reason = strings.ReplaceAll(c.Reason, j.GoPath, "plugins-local")
			c.Detail = strings.ReplaceAll(c.Detail, j.GoPath, "plugins-local")
			_ = r.send(message{Compiled: &c})
		}
		return checkYaegi(ctx, j, pre, setPhase, compile, logs)
	}
}

// tail keeps the last n bytes written to it: plugin output is evidence, not
// something to keep whole.
type tail struct {
	mu  sync.Mutex
	n   int
	buf []byte
}

func newTail(n int) *tail { return &tail{n: n} }

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.n {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.n:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
