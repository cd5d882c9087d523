//go:build linux

package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xtraefik/xtraefik/internal/testenv"
)

// TestSignalStops runs the built binary and signals it while it is blocked
// where its context does not reach (a recipe read from a pipe nobody writes
// to), waiting on a registry that never answers, or interpreting a plugin
// that never returns: it must end within the grace period, with the status
// of the signal, and leave no verification worker behind.
func TestSignalStops(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "xtraefik")
	if out, err := exec.Command("go", "build", "-o", exe, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	fixtures, err := filepath.Abs("../../verify/testdata")
	if err != nil {
		t.Fatal(err)
	}
	silent := testenv.SilentServer(t)
	stalled := filepath.Join(dir, "stalled.yaml")
	if err := os.WriteFile(stalled, []byte("base: "+silent+"/library/traefik:v3.6\nplugins:\n  demo:\n    module: example.com/demo\n    git: git://"+silent+"/demo\n    ref: v1\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	hang := []string{"verify", "--dir", filepath.Join(fixtures, "hang-init"), "--traefik-version", "v3.6.12", "--verify-timeout", "10m"}
	tests := []struct {
		name string
		args []string
		// ready returns once the process is where the signals are to hit it.
		ready    func(t *testing.T, pid int, arg string)
		signals  []syscall.Signal
		status   int
		within   time.Duration
		wantErrs []string
	}{
		{
			name: "blocked read, SIGTERM", args: []string{"build", "-f", "FIFO"}, ready: readerBlocked,
			signals: []syscall.Signal{syscall.SIGTERM}, status: 143, within: stopGrace + 10*time.Second,
			wantErrs: []string{"xtraefik: terminated: stopping (send it again to stop at once)", "xtraefik: terminated: still running 10s later, stopping now"},
		},
		{
			name: "blocked read, SIGINT twice", args: []string{"build", "-f", "FIFO"}, ready: readerBlocked,
			signals: []syscall.Signal{syscall.SIGINT, syscall.SIGINT}, status: 130, within: stopGrace / 2,
			wantErrs: []string{"xtraefik: interrupt again: stopping now"},
		},
		{
			name: "stalled registry, SIGTERM", args: []string{"lock", "-f", stalled, "--registry-timeout", "10m"}, ready: connected(silent),
			signals: []syscall.Signal{syscall.SIGTERM}, status: 143, within: stopGrace / 2,
			wantErrs: []string{"xtraefik: terminated: stopping", "context canceled"},
		},
		{
			name: "plugin spinning in init, SIGTERM", args: hang, ready: workerStarted,
			signals: []syscall.Signal{syscall.SIGTERM}, status: 143, within: stopGrace / 2,
			wantErrs: []string{"xtraefik: terminated: stopping"},
		},
		{
			// No clean-up at all: the kernel must end the worker (Pdeathsig).
			name: "plugin spinning in init, SIGKILL", args: hang, ready: workerStarted,
			signals: []syscall.Signal{syscall.SIGKILL}, status: -1, within: stopGrace / 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			arg := ""
			if args[len(args)-1] == "FIFO" {
				arg = filepath.Join(t.TempDir(), "recipe.yaml")
				if err := syscall.Mkfifo(arg, 0o600); err != nil {
					t.Fatal(err)
				}
				args = append(args[:len(args)-1:len(args)-1], arg)
			}
			cmd := exec.Command(exe, append(args, "--cache-dir", t.TempDir())...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			defer func() {
				_ = cmd.Process.Kill()
				<-exited
			}()
			tt.ready(t, cmd.Process.Pid, arg)
			children := childPIDs(cmd.Process.Pid)
			start := time.Now()
			for _, s := range tt.signals {
				if err := cmd.Process.Signal(s); err != nil {
					t.Fatal(err)
				}
				time.Sleep(100 * time.Millisecond)
			}
			var err error
			select {
			case err = <-exited:
				exited <- err
			case <-time.After(tt.within):
				t.Fatalf("still running %v after %v\nstderr:\n%s", tt.within, tt.signals, stderr.String())
			}
			t.Logf("exited after %v: %v", time.Since(start).Round(time.Millisecond), err)
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != tt.status {
				t.Errorf("exit: %v, want status %d\nstderr:\n%s", err, tt.status, stderr.String())
			}
			for _, w := range tt.wantErrs {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr.String())
				}
			}
			// The kernel may take a moment to end a child of a dead parent.
			deadline := time.Now().Add(5 * time.Second)
			for _, c := range children {
				for alive(c) && time.Now().Before(deadline) {
					time.Sleep(50 * time.Millisecond)
				}
				if alive(c) {
					t.Errorf("child process %d outlived xtraefik", c)
				}
			}
		})
	}
}

// readerBlocked returns once the process has the FIFO open for reading
// (opening it for writing without blocking succeeds only then), and keeps
// it open without writing, so that the read blocks.
func readerBlocked(t *testing.T, _ int, fifo string) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		fd, err := syscall.Open(fifo, syscall.O_WRONLY|syscall.O_NONBLOCK, 0)
		if err == nil {
			t.Cleanup(func() { syscall.Close(fd) })
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the recipe pipe was never opened: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// connected returns once the process has a TCP connection open to addr.
func connected(addr string) func(t *testing.T, pid int, _ string) {
	return func(t *testing.T, pid int, _ string) {
		_, port, _ := strings.Cut(addr, ":")
		p, _ := strconv.Atoi(port)
		want := fmt.Sprintf(":%04X ", p)
		waitFor(t, "a connection to "+addr, func() bool {
			// The remote address column of /proc/<pid>/net/tcp.
			data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/net/tcp", pid))
			for _, l := range strings.Split(string(data), "\n") {
				f := strings.Fields(l)
				if len(f) > 3 && strings.HasSuffix(f[2]+" ", want) && f[3] == "01" { // ESTABLISHED
					return true
				}
			}
			return false
		})
	}
}

// workerStarted returns once the process has started a child: the worker
// interpreting the plugin.
func workerStarted(t *testing.T, pid int, _ string) {
	waitFor(t, "a verification worker", func() bool { return len(childPIDs(pid)) > 0 })
	time.Sleep(500 * time.Millisecond) // into the plugin's init
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after 60s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// childPIDs lists the processes whose parent is pid.
func childPIDs(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		c, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, _ := statField(c, 1); ppid == strconv.Itoa(pid) {
			out = append(out, c)
		}
	}
	return out
}

// alive reports whether pid runs (a zombie waiting for a reaper does not).
func alive(pid int) bool {
	state, ok := statField(pid, 0)
	return ok && state != "Z" && state != "X"
}

// statField returns field i after the command name of /proc/<pid>/stat
// (0: state, 1: parent pid).
func statField(pid, i int) (string, bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", false
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if i >= len(f) {
		return "", false
	}
	return f[i], true
}
