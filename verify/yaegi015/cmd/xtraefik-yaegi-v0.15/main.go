// Command xtraefik-yaegi-v0.15 is xtraefik's verification worker built with
// yaegi v0.15.1, the interpreter Traefik v2.11 embeds. xtraefik runs it, one
// process per plugin, to check plugins for a Traefik v2 base; it does nothing
// on its own.
//
// Install it next to xtraefik or in $PATH, from a checkout of xtraefik:
//
//	go install -C verify/yaegi015 ./cmd/xtraefik-yaegi-v0.15
package main

import (
	"fmt"
	"os"

	"github.com/xtraefik/xtraefik/verify"
)

func main() {
	verify.MaybeRunWorker()
	fmt.Fprintln(os.Stderr, "xtraefik-yaegi-v0.15: this is xtraefik's verification worker for Traefik v2 (yaegi v0.15.1); "+
		"xtraefik verify and xtraefik build run it, it is not meant to be run by hand")
	os.Exit(2)
}
