package verify

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// workerEnv marks a process started by Verify to interpret one plugin.
const workerEnv = "XTRAEFIK_VERIFY_WORKER"

// workerFailed is the worker's exit code for its own failures (no job, no
// report pipe), told apart from a Go crash (2) caused by the plugin.
const workerFailed = 3

// workerProtocol numbers the job/message format. A worker binary of its own
// (the Traefik v2 one) may come from another xtraefik source than the parent:
// both sides refuse a mismatch rather than misread each other. Bump it when
// job, message or outcome change meaning.
const workerProtocol = 1

// job is what the parent sends the worker on stdin.
type job struct {
	Protocol int `json:"protocol"`
	// Describe asks only for the worker's interpreter and packageSet.
	Describe bool `json:"describe,omitempty"`
	// GoPath is the plugins-local directory, as Traefik's localGoPath.
	GoPath    string `json:"goPath"`
	Module    string `json:"module"`
	Type      string `json:"type"`
	Runtime   string `json:"runtime"`
	Import    string `json:"import,omitempty"`
	BasePkg   string `json:"basePkg,omitempty"`
	WasmFile  string `json:"wasmFile,omitempty"`
	UseUnsafe bool   `json:"useUnsafe,omitempty"`
	// Config is the plugin configuration as YAML, so that the worker sees the
	// same Go types (int, bool, string, nested maps) the parent decoded.
	Config string `json:"config"`
	// Name is the middleware/provider name handed to New.
	Name string `json:"name"`
	// Deadline bounds waits inside the worker (a provider's first
	// configuration), leaving the parent's hard kill as the last resort.
	Deadline time.Time `json:"deadline"`
	// ExpectStatus is the status the middleware's answer must have (0: any
	// answer without a server error; see probe.Judge).
	ExpectStatus int `json:"expectStatus,omitempty"`
}

// message is one JSON line the worker writes on its report pipe (fd 3): a
// phase announcement, so that a kill can say where the plugin was stuck, or
// the final outcome.
type message struct {
	Phase  string   `json:"phase,omitempty"`
	Result *outcome `json:"result,omitempty"`
}

type outcome struct {
	// Protocol and Interpreter are the worker's own: its workerProtocol and
	// what it interprets with, from its build information.
	Protocol    int      `json:"protocol"`
	Interpreter string   `json:"interpreter,omitempty"`
	OK          bool     `json:"ok"`
	Reason      string   `json:"reason,omitempty"`
	Detail      string   `json:"detail,omitempty"`
	Notes       []string `json:"notes,omitempty"`
	// Status is the middleware's answer to the probe request.
	Status int `json:"status,omitempty"`
	// Std and Restricted answer a Describe job (packageSet).
	Std        []string `json:"std,omitempty"`
	Restricted []string `json:"restricted,omitempty"`
}

// MaybeRunWorker turns the process into a verification worker when Verify
// started it (XTRAEFIK_VERIFY_WORKER=1), and never returns in that case. Call
// it first thing in main() and in TestMain of packages whose tests call Verify.
// Otherwise it returns at once.
func MaybeRunWorker() {
	if os.Getenv(workerEnv) != "1" {
		return
	}
	os.Exit(serveJob(os.Stdin, os.NewFile(3, "report")))
}

func serveJob(in io.Reader, report *os.File) int {
	if report == nil {
		fmt.Fprintln(os.Stderr, "xtraefik verify worker: no report pipe on fd 3")
		return workerFailed
	}
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
	w := &reporter{enc: json.NewEncoder(report)}
	var out outcome
	if j.Describe {
		pkgs := linkedPackages()
		out = outcome{OK: true, Std: sortedKeys(pkgs.std), Restricted: sortedKeys(pkgs.restricted)}
	} else {
		out = work(context.Background(), &j, w)
	}
	out.Protocol = workerProtocol
	out.Interpreter = interpreterName(j.Runtime == "wasm")
	if err := w.send(message{Result: &out}); err != nil {
		fmt.Fprintf(os.Stderr, "xtraefik verify worker: write result: %v\n", err)
		return workerFailed
	}
	return 0
}

// reporter serialises messages to the report pipe.
type reporter struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func (r *reporter) phase(p string) { _ = r.send(message{Phase: p}) }

func (r *reporter) send(m message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.enc.Encode(m)
}

// work runs the checks for one plugin and never panics: a panic anywhere in
// the plugin's code on this goroutine is a FAIL naming the phase.
func work(ctx context.Context, j *job, r *reporter) (out outcome) {
	logs := newTail(16 << 10)
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
		return checkYaegi(ctx, j, setPhase, logs)
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

// readReport reads worker messages until EOF, calling onPhase for each phase.
func readReport(r io.Reader, onPhase func(string)) (*outcome, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var res *outcome
	for sc.Scan() {
		var m message
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			// Only plugin code could have written this: not ours to fail on.
			continue
		}
		if m.Phase != "" {
			onPhase(m.Phase)
		}
		if m.Result != nil {
			res = m.Result
		}
	}
	return res, sc.Err()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
