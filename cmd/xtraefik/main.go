// Command xtraefik builds Traefik images with pinned, verified local plugins,
// without a container daemon.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/xtraefik/xtraefik/verify"
)

// memoryTarget is the Go heap the CLI keeps itself near unless GOMEMLIMIT
// says otherwise: builds stream what is large, so what stays live is small,
// and a garbage collector left at its default doubles it before it runs.
// The process also maps its own binary (about 45 MiB of it is touched), so
// the whole stays under 64 MB. A soft limit: a build that needs more gets
// it, at the price of more frequent collections.
const memoryTarget = 24 << 20

// stopGrace is how long a run cancelled by SIGINT or SIGTERM may take to
// stop cleanly. Work that does not watch its context (a blocked read, a
// long computation) must not keep a CI job or `docker stop` waiting for
// ever: after it, or at a second signal, the process exits regardless; the
// verification workers die with it (Pdeathsig on Linux) and temporaries left
// beside outputs are removed by the next run.
const stopGrace = 10 * time.Second

func main() {
	// The verifier re-executes this binary to interpret plugins in a child process.
	verify.MaybeRunWorker()
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryTarget)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	received := make(chan syscall.Signal, 1)
	go func() {
		sig := (<-sigs).(syscall.Signal)
		received <- sig
		fmt.Fprintf(os.Stderr, "xtraefik: %v: stopping (send it again to stop at once)\n", sig)
		cancel()
		select {
		case <-sigs:
			fmt.Fprintf(os.Stderr, "xtraefik: %v again: stopping now\n", sig)
		case <-time.After(stopGrace):
			fmt.Fprintf(os.Stderr, "xtraefik: %v: still running %v later, stopping now\n", sig, stopGrace)
		}
		os.Exit(exitStatus(sig))
	}()

	err := newRoot(os.Getenv).ExecuteContext(ctx)
	if err == nil {
		return
	}
	fmt.Fprintln(os.Stderr, "xtraefik:", withWorkspaceHint(err))
	select {
	case sig := <-received:
		os.Exit(exitStatus(sig))
	default:
	}
	code := 1
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	os.Exit(code)
}

// exitError ends the process with code instead of 1: a result a script tests
// for (outdated --exit-code), distinct from a failure.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// exitStatus is the shell's status for a process ended by sig (130 for
// SIGINT, 143 for SIGTERM), so that scripts tell an interruption from a failure.
func exitStatus(sig syscall.Signal) int { return 128 + int(sig) }
