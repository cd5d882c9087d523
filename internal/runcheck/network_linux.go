package runcheck

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// enter runs f with the calling thread in the namespace. f runs on a thread
// of its own that is never handed back to the Go scheduler: it ends with the
// goroutine (LockOSThread without Unlock), so no other goroutine ever runs
// in the container's namespace by accident.
func (n network) enter(f func() error) error {
	if n.ns == nil {
		return f()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Setns(int(n.ns.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("joining Traefik's network namespace: %w", err)
			return
		}
		errc <- f()
	}()
	return <-errc
}
