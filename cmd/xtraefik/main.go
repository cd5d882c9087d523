// Command xtraefik builds Traefik images with pinned, verified local plugins,
// without a container daemon.
package main

import (
	"context"
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
		os.Exit(1)
	}
}
