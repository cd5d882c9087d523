package runcheck

import (
	"context"
	"fmt"
	"net"
	"os"
)

// network is where Traefik's entry points, the check's backends and its
// client meet: the host's network, or Traefik's own network namespace (runc),
// which has nothing but a loopback interface. The check enters that
// namespace only to create its sockets: a socket stays in the namespace it
// was created in, whichever thread uses it later, so the backends serve and
// the client talks inside it while the rest of xtraefik stays on the host.
type network struct {
	// ns is the namespace (an open /proc/<pid>/ns/net); nil is the host's.
	ns *os.File
}

// String names the network for the report.
func (n network) String() string {
	if n.ns == nil {
		return "the host's network"
	}
	return "its own network namespace (loopback only)"
}

// listen listens on a TCP address of the network.
func (n network) listen(addr string) (net.Listener, error) {
	var ln net.Listener
	err := n.enter(func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listening on %s in %s: %w", addr, n, err)
	}
	return ln, nil
}

// dial connects to an address of the network; it fits http.Transport.
func (n network) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := n.enter(func() error {
		var err error
		c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
		return err
	})
	return c, err
}
