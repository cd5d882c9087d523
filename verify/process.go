package verify

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/xtraefik/xtraefik/internal/sandbox"
)

// watchInterval is how often the worker's resident memory is sampled.
const watchInterval = 25 * time.Millisecond

// helloTimeout bounds a worker's start, sandbox included: it runs no plugin
// code yet, so only a broken host makes it slow.
const helloTimeout = 30 * time.Second

// maxReportLine bounds one line on the report channel.
const maxReportLine = 4 << 20

// proc is a started worker: contained, its sandbox reported, waiting for
// the one job it will run. Starting workers ahead of their jobs hides the
// cost of a process and its sandbox behind other work.
type proc struct {
	// exe names the worker in messages: the worker binary's origin, or
	// this executable.
	exe         string
	contain     *containment
	cmd         *exec.Cmd
	stdin       io.WriteCloser
	report      *os.File
	reader      *bufio.Reader
	output      *tail
	spec        sandbox.Spec
	containment sandbox.Report
	waitDone    chan error
	private     string
}

// containment decides, once per Verifier, whether workers get namespaces:
// after the host refuses them once, later workers do not ask again.
type containment struct {
	mode sandbox.Mode
	mu   sync.Mutex
	// refused is set once the host refused namespaces.
	refused bool
	// reaping counts workers being stopped after their verdict came in.
	reaping sync.WaitGroup
}

func (c *containment) namespaces() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.refused
}

func (c *containment) refuse() {
	c.mu.Lock()
	c.refused = true
	c.mu.Unlock()
}

// startWorker starts a worker contained to the plugin tree goPath, and waits
// for its hellos: the sandbox it runs under, then the worker's protocol.
// The process started is always this executable, which contains itself
// first (serveWorker); w's binary, when it has one, is then executed inside
// the sandbox, never outside. The worker then waits for its job; kill it
// with stop when it gets none. A warm worker (started ahead of its job)
// grows its heap before its hello (warmUp).
func startWorker(ctx context.Context, w *worker, goPath, work string, c *containment, memoryLimit int64, warm bool) (*proc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own executable for the worker: %w", err)
	}
	name := self
	if w != nil && w.exe != "" {
		name = w.origin
	}
	private, err := os.MkdirTemp(work, "sandbox-")
	if err != nil {
		return nil, fmt.Errorf("create the worker's private directory: %w", err)
	}
	if err := os.Chmod(private, 0o755); err != nil {
		os.RemoveAll(private)
		return nil, fmt.Errorf("create the worker's private directory: %w", err)
	}
	spec := sandbox.Spec{Tree: goPath, Private: private, Mode: c.mode}
	if w != nil {
		spec.Exec = w.exe
	}
	for {
		ns := c.namespaces()
		p, err := spawn(self, name, spec, ns, memoryLimit, warm)
		if err != nil && ns && sandbox.NamespacesRefused(err) {
			if c.mode == sandbox.ModeRequire {
				os.RemoveAll(private)
				return nil, fmt.Errorf("full containment required (sandbox require), but the host refused new namespaces: %w; "+
					"allow unprivileged user namespaces (or run as root) or use the default sandbox mode", err)
			}
			c.refuse()
			continue
		}
		if err != nil {
			os.RemoveAll(private)
			return nil, err
		}
		p.private, p.contain = private, c
		if err := p.hello(ctx); err != nil {
			p.stop()
			return nil, err
		}
		return p, nil
	}
}

func spawn(self, name string, spec sandbox.Spec, namespaces bool, memoryLimit int64, warm bool) (*proc, error) {
	cmd := exec.Command(self)
	// The worker runs plugin code: it gets nothing of the caller's
	// environment, which may hold registry, git or signing credentials.
	cmd.Env = []string{
		workerEnv + "=" + entryMode,
		"PATH=/usr/local/bin:/usr/bin:/bin",
		// Make the collector work hard before the watchdog has to kill.
		"GOMEMLIMIT=" + strconv.FormatInt(memoryLimit*3/4, 10),
	}
	if warm {
		cmd.Env = append(cmd.Env, warmEnv+"=1")
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("worker job pipe: %w", err)
	}
	output := newTail(32 << 10)
	cmd.Stdout, cmd.Stderr = output, output
	pr, pw, err := os.Pipe()
	if err != nil {
		stdin.Close()
		return nil, fmt.Errorf("worker report pipe: %w", err)
	}
	// The report pipe is the worker's only descriptor beyond 0–2: Configure
	// keeps every other one of this process (inherited ones included) from it.
	cmd.ExtraFiles = []*os.File{pw}
	if err := sandbox.Configure(cmd, spec, namespaces); err != nil {
		stdin.Close()
		pr.Close()
		pw.Close()
		return nil, err
	}
	spec.Namespaces = namespaces
	// A grandchild holding stdout must not keep Wait from returning.
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return nil, fmt.Errorf("start worker %s: %w", name, err)
	}
	pw.Close()
	p := &proc{exe: name, cmd: cmd, stdin: stdin, report: pr, reader: bufio.NewReaderSize(pr, 64<<10),
		output: output, spec: spec, waitDone: make(chan error, 1)}
	go func() { p.waitDone <- cmd.Wait() }()
	return p, nil
}

// hello reads the two lines before the job: the first, written by this
// executable once contained and before any other code runs in the sandbox,
// is the one unauthenticated line believed; the second is the worker's
// protocol.
func (p *proc) hello(ctx context.Context) error {
	_ = p.report.SetReadDeadline(time.Now().Add(helloTimeout))
	defer func() { _ = p.report.SetReadDeadline(time.Time{}) }()
	type result struct {
		entry, worker hello
		err           error
	}
	got := make(chan result, 1)
	go func() {
		var r result
		r.entry, r.err = p.readHello()
		if r.err == nil && r.entry.Error == "" {
			r.worker, r.err = p.readHello()
		}
		got <- r
	}()
	var r result
	select {
	case r = <-got:
	case <-ctx.Done():
		return ctx.Err()
	}
	if r.err != nil {
		return r.err
	}
	if r.entry.Error != "" {
		return fmt.Errorf("worker %s could not contain itself: %s", p.exe, r.entry.Error)
	}
	if r.entry.Containment == nil {
		return fmt.Errorf("worker %s reported no containment", p.exe)
	}
	if r.worker.Protocol != workerProtocol {
		return fmt.Errorf("worker %s speaks protocol %d, this xtraefik speaks %d: rebuild the worker from the same xtraefik source", p.exe, r.worker.Protocol, workerProtocol)
	}
	p.containment = *r.entry.Containment
	return nil
}

// readHello reads one hello line.
func (p *proc) readHello() (hello, error) {
	line, err := p.reader.ReadSlice('\n')
	if err != nil {
		return hello{}, fmt.Errorf("worker %s did not start: %v; output: %s", p.exe, err, truncate(p.output.String(), 500))
	}
	var h hello
	if err := json.Unmarshal(line, &h); err != nil {
		return hello{}, fmt.Errorf("worker %s did not start: unreadable hello %q", p.exe, truncate(string(line), 200))
	}
	if h.Protocol != workerProtocol {
		return hello{}, fmt.Errorf("worker %s speaks protocol %d, this xtraefik speaks %d: rebuild the worker from the same xtraefik source", p.exe, h.Protocol, workerProtocol)
	}
	return h, nil
}

// stop kills the worker and everything it started, and removes its
// private directory.
func (p *proc) stop() {
	sandbox.Kill(p.cmd.Process)
	<-p.waitDone
	p.waitDone <- nil // later stops return at once
	p.report.Close()
	os.RemoveAll(p.private)
}

// run sends j and returns the worker's authenticated outcome. A runaway
// plugin — an endless loop, a memory blow-up (its children's included), a
// crash — is a FAIL, and so is a worker that ends without an authenticated
// result: only plugin code makes it do that. The error is for failures of
// the verifier itself, or a cancelled ctx.
func (p *proc) run(ctx context.Context, j *job, opts Options) (outcome, error) {
	early := false
	defer func() {
		if !early {
			p.stop()
		}
	}()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return outcome{}, fmt.Errorf("job key: %w", err)
	}
	j.Protocol, j.Key = workerProtocol, key
	if j.GoPath != "" {
		j.GoPath = p.spec.TreeInside()
	}
	in, err := json.Marshal(j)
	if err != nil {
		return outcome{}, fmt.Errorf("encode worker job: %w", err)
	}
	if _, err := p.stdin.Write(in); err != nil {
		return outcome{Reason: "worker died before its job: " + crashLine(p.output.String(), err)}, nil
	}
	p.stdin.Close()

	var mu sync.Mutex
	phase := "start"
	reportDone := make(chan struct{})
	sealedResult := make(chan report, 1)
	var rep report
	go func() {
		defer close(reportDone)
		rep = readReport(p.reader, key, func(ph string) { mu.Lock(); phase = ph; mu.Unlock() },
			func(r report) { sealedResult <- r })
	}()
	currentPhase := func() string { mu.Lock(); defer mu.Unlock(); return phase }

	timer := time.NewTimer(opts.Timeout)
	defer timer.Stop()
	tick := time.NewTicker(watchInterval)
	defer tick.Stop()
	pid := p.cmd.Process.Pid
	var killed string
	var peak int64
	var waitErr error
loop:
	for {
		select {
		case waitErr = <-p.waitDone:
			p.waitDone <- waitErr
			break loop
		case <-ctx.Done():
			return outcome{}, ctx.Err()
		case r := <-sealedResult:
			// The verdict is in and a crash from now on would race it anyway:
			// stop the worker without waiting for its exit and namespace
			// teardown, which Verifier.Close waits for.
			early = true
			sandbox.Kill(p.cmd.Process)
			p.contain.reaping.Add(1)
			go func() {
				defer p.contain.reaping.Done()
				<-reportDone
				p.stop()
			}()
			return forgedNote(sealedOutcome(r, j), r.forged), nil
		case <-timer.C:
			killed = fmt.Sprintf("timed out after %s during %s", opts.Timeout, currentPhase())
			sandbox.Kill(p.cmd.Process)
		case <-tick.C:
			if killed != "" {
				continue
			}
			rss := sandbox.TreeRSS(pid)
			peak = max(peak, rss)
			if rss > opts.MemoryLimit {
				killed = fmt.Sprintf("interpretation exceeded %d MB during %s", opts.MemoryLimit>>20, currentPhase())
				sandbox.Kill(p.cmd.Process)
			}
		}
	}
	// The worker is gone: the processes plugin code started go with it (PID
	// namespace, or the process group). Give a straggler holding the report
	// pipe as long as Wait gives stdout, then stop reading.
	sandbox.Kill(p.cmd.Process)
	select {
	case <-reportDone:
	case <-time.After(p.cmd.WaitDelay):
		p.report.Close()
		<-reportDone
	}
	var res *outcome
	if rep.result != nil {
		o := sealedOutcome(rep, j)
		res = &o
	}
	switch {
	case killed != "":
		res = &outcome{Reason: killed, Detail: detailFrom(p.output.String(), peak)}
	case exitCode(waitErr) == workerFailed:
		res = &outcome{
			Reason: fmt.Sprintf("the plugin's code broke the verifier's report channel during %s: the worker could not send its result", currentPhase()),
			Detail: p.output.String(),
		}
	case exitCode(waitErr) != 0:
		// A crash wins over a result already sent: a plugin goroutine that
		// kills the worker would kill Traefik too.
		o := p.output.String()
		res = &outcome{Reason: fmt.Sprintf("interpretation crashed the process during %s: %s", currentPhase(), crashLine(o, waitErr)), Detail: o}
	case res == nil:
		res = &outcome{
			Reason: fmt.Sprintf("the plugin's code ended the verification during %s without a result (%s)", currentPhase(), exitText(waitErr)),
			Detail: p.output.String(),
		}
	}
	return forgedNote(*res, rep.forged), nil
}

// forgedNote says that plugin code wrote on the report channel.
func forgedNote(out outcome, forged int) outcome {
	if forged > 0 {
		out.Notes = append(out.Notes, fmt.Sprintf("ignored %d line(s) on the report channel that the verifier did not write: plugin code wrote them", forged))
	}
	return out
}

// runWorker starts a worker for one job and runs it.
func runWorker(ctx context.Context, w *worker, j *job, opts Options, goPath, work string, c *containment) (outcome, sandbox.Report, error) {
	p, err := startWorker(ctx, w, goPath, work, c, opts.MemoryLimit, false)
	if err != nil {
		return outcome{}, sandbox.Report{}, err
	}
	out, err := p.run(ctx, j, opts)
	return out, p.containment, err
}

// report is what the parent took from the report channel.
type report struct {
	result *outcome
	// compiled is the first compile message, nil when none came.
	compiled *compiled
	// forged counts lines that failed authentication.
	forged int
}

// sealedOutcome is the verdict the worker's sealed messages add up to for
// j: a compile failure stays the verdict whatever result follows it, and a
// Yaegi plugin is OK only when the worker said it compiled first.
func sealedOutcome(r report, j *job) outcome {
	out := *r.result
	if j.Describe || j.Runtime == "wasm" || !out.OK {
		return out
	}
	switch {
	case r.compiled == nil:
		return outcome{Interpreter: out.Interpreter, Reason: "the worker reported OK without reporting that the plugin compiled: its report is not believed", Detail: out.Detail}
	case !r.compiled.OK:
		return outcome{Interpreter: out.Interpreter, Reason: r.compiled.Reason, Detail: r.compiled.Detail,
			Notes: []string{"an OK reported after the plugin failed to compile was ignored"}}
	}
	return out
}

// readReport reads worker messages until EOF, believing only those whose
// MAC verifies under the job's key, in sequence; onPhase is called for each
// phase, onResult (when not nil) once with the first result and the forged
// lines so far. Plugin code can write to the channel but cannot know the key.
func readReport(r *bufio.Reader, key []byte, onPhase func(string), onResult func(report)) report {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxReportLine)
	var rep report
	var next int64 = 1
	for sc.Scan() {
		body, seq, ok := open(key, sc.Bytes())
		if !ok || seq != next {
			rep.forged++
			continue
		}
		next++
		var m message
		if err := json.Unmarshal(body, &m); err != nil {
			rep.forged++
			continue
		}
		if m.Phase != "" {
			onPhase(m.Phase)
		}
		if m.Compiled != nil && rep.compiled == nil && rep.result == nil {
			rep.compiled = m.Compiled
		}
		if m.Result != nil && rep.result == nil {
			rep.result = m.Result
			if onResult != nil {
				onResult(rep)
			}
		}
	}
	return rep
}

// seal wraps body with its sequence number and MAC.
func seal(key []byte, seq int64, body []byte) ([]byte, error) {
	return json.Marshal(envelope{Seq: seq, Body: body, MAC: hex.EncodeToString(mac(key, seq, body))})
}

// open returns the body of a sealed line when its MAC verifies.
func open(key, line []byte) ([]byte, int64, bool) {
	var e envelope
	if err := json.Unmarshal(line, &e); err != nil || len(e.Body) == 0 {
		return nil, 0, false
	}
	got, err := hex.DecodeString(e.MAC)
	if err != nil || !hmac.Equal(got, mac(key, e.Seq, e.Body)) {
		return nil, 0, false
	}
	return e.Body, e.Seq, true
}

func mac(key []byte, seq int64, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(strconv.FormatInt(seq, 10) + "\n"))
	h.Write(body)
	return h.Sum(nil)
}

func exitCode(err error) int {
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return exitErr.ExitCode()
	}
	return 0
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

func detailFrom(output string, peak int64) string {
	d := fmt.Sprintf("worker killed; peak resident memory seen (worker and its children): %d MB", peak>>20)
	if output != "" {
		d += "\nworker output:\n" + output
	}
	return d
}

// crashLine picks the line that says why a Go process died.
func crashLine(out string, waitErr error) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "panic: ") || strings.HasPrefix(l, "fatal error: ") || strings.HasPrefix(l, "runtime: ") {
			return strings.TrimSpace(l)
		}
	}
	return waitErr.Error()
}
