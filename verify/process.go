package verify

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// watchInterval is how often the worker's resident memory is sampled.
const watchInterval = 25 * time.Millisecond

// runWorker interprets one plugin in a child process (exe, or this executable
// when exe is "", with workerEnv set) so that a runaway plugin — an endless
// loop in init, a memory blow-up, a crash in one of its goroutines — costs a
// FAIL, not the build. The child is killed at opts.Timeout or when its
// resident memory passes opts.MemoryLimit. The error is for failures to run
// the child at all.
func runWorker(ctx context.Context, exe string, j *job, opts Options) (outcome, error) {
	var args []string
	if exe == "" {
		self, err := os.Executable()
		if err != nil {
			return outcome{}, fmt.Errorf("find own executable for the worker: %w", err)
		}
		exe = self
		if flag.Lookup("test.run") != nil {
			// In a test binary whose TestMain forgot MaybeRunWorker, run no tests.
			args = []string{"-test.run=^$", "-test.bench=^$"}
		}
	}
	j.Protocol = workerProtocol
	in, err := json.Marshal(j)
	if err != nil {
		return outcome{}, fmt.Errorf("encode worker job: %w", err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(workerEnviron(os.Environ()), workerEnv+"=1",
		// Make the collector work hard before the watchdog has to kill.
		"GOMEMLIMIT="+strconv.FormatInt(opts.MemoryLimit*3/4, 10))
	cmd.Stdin = bytes.NewReader(in)
	stderr := newTail(32 << 10)
	cmd.Stdout, cmd.Stderr = stderr, stderr
	pr, pw, err := os.Pipe()
	if err != nil {
		return outcome{}, fmt.Errorf("worker report pipe: %w", err)
	}
	defer pr.Close()
	cmd.ExtraFiles = []*os.File{pw}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// A grandchild holding stdout must not keep Wait from returning.
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		pw.Close()
		return outcome{}, fmt.Errorf("start worker %s: %w", exe, err)
	}
	pw.Close()
	pid := cmd.Process.Pid
	kill := func() { _ = syscall.Kill(-pid, syscall.SIGKILL) }

	var mu sync.Mutex
	phase := "start"
	reportDone := make(chan struct{})
	var res *outcome
	var reportErr error
	go func() {
		defer close(reportDone)
		res, reportErr = readReport(pr, func(p string) { mu.Lock(); phase = p; mu.Unlock() })
	}()
	waitDone := make(chan error, 1)
	go func() { waitDone <- cmd.Wait() }()
	currentPhase := func() string { mu.Lock(); defer mu.Unlock(); return phase }

	timer := time.NewTimer(opts.Timeout)
	defer timer.Stop()
	tick := time.NewTicker(watchInterval)
	defer tick.Stop()
	var killed string
	var peak int64
	var waitErr error
loop:
	for {
		select {
		case waitErr = <-waitDone:
			break loop
		case <-ctx.Done():
			kill()
			<-waitDone
			return outcome{}, ctx.Err()
		case <-timer.C:
			killed = fmt.Sprintf("timed out after %s during %s", opts.Timeout, currentPhase())
			kill()
		case <-tick.C:
			if killed != "" {
				continue
			}
			rss := residentBytes(pid)
			peak = max(peak, rss)
			if rss > opts.MemoryLimit {
				killed = fmt.Sprintf("interpretation exceeded %d MB during %s", opts.MemoryLimit>>20, currentPhase())
				kill()
			}
		}
	}
	// The group may hold the plugin's own children; none may outlive us.
	kill()
	// A child that left the group (setsid) may still hold the report pipe:
	// give it as long as Wait gives stdout, then stop reading.
	select {
	case <-reportDone:
	case <-time.After(cmd.WaitDelay):
		pr.Close()
		<-reportDone
	}
	if killed != "" {
		return outcome{Reason: killed, Detail: detailFrom(stderr.String(), peak)}, nil
	}
	// A crash wins over a result already sent: a plugin goroutine that kills
	// the worker would kill Traefik too.
	var exitErr *exec.ExitError
	if errors.As(waitErr, &exitErr) && exitErr.ExitCode() != 0 && exitErr.ExitCode() != workerFailed {
		out := stderr.String()
		return outcome{
			Reason: fmt.Sprintf("interpretation crashed the process during %s: %s", currentPhase(), crashLine(out, waitErr)),
			Detail: out,
		}, nil
	}
	if reportErr != nil {
		return outcome{}, fmt.Errorf("read worker report: %w", reportErr)
	}
	if res != nil {
		if res.Protocol != workerProtocol {
			return outcome{}, fmt.Errorf("worker %s answered in protocol %d, this xtraefik speaks %d: rebuild the worker from the same xtraefik source", exe, res.Protocol, workerProtocol)
		}
		return *res, nil
	}
	return outcome{}, fmt.Errorf("worker (%s) exited (%v) without a result; is verify.MaybeRunWorker() called first in main/TestMain? output: %s",
		exe, waitErr, truncate(stderr.String(), 500))
}

// workerEnviron is the worker's environment: environ without the git
// credentials xtraefik reads (XTRAEFIK_GIT_*, the SSH agent). The worker runs
// the plugin's code, which Traefik would never have given the builder's
// secrets; os.Getenv and /proc/self/environ alike must not hold them.
func workerEnviron(environ []string) []string {
	out := make([]string, 0, len(environ))
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "XTRAEFIK_GIT_") || k == "SSH_AUTH_SOCK" {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// residentBytes reads VmRSS of pid; 0 when it cannot.
func residentBytes(pid int) int64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) >= 1 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

func detailFrom(output string, peak int64) string {
	d := fmt.Sprintf("worker killed; peak resident memory seen: %d MB", peak>>20)
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
