// Command xtraefik builds Traefik images with pinned, verified local plugins,
// without a container daemon.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/xtraefik/xtraefik/verify"
)

func main() {
	// The verifier re-executes this binary to interpret plugins in a child process.
	verify.MaybeRunWorker()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRoot(os.Getenv).ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "xtraefik:", err)
		code := 1
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
		os.Exit(code)
	}
}

// exitError ends the process with code instead of 1: a result a script tests
// for (outdated --exit-code), distinct from a failure.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }
