//go:build !linux

package runcheck

import "errors"

// enter runs f on the host's network; network namespaces are Linux's.
func (n network) enter(f func() error) error {
	if n.ns == nil {
		return f()
	}
	return errors.New("joining Traefik's network namespace needs Linux")
}
