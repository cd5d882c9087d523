package testenv

import (
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// Tripwire is a service hostile code must not reach: a listener on the host
// that counts the connections it accepts.
type Tripwire struct {
	ln net.Listener
	n  atomic.Int32
}

// NewTripwire listens on network and address ("tcp", "127.0.0.1:0"; "unix",
// a socket path) until the test ends.
func NewTripwire(t testing.TB, network, address string) *Tripwire {
	t.Helper()
	ln, err := net.Listen(network, address)
	if err != nil {
		t.Fatal(err)
	}
	w := &Tripwire{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			w.n.Add(1)
			c.Close()
		}
	}()
	return w
}

// Addr is where the tripwire listens.
func (w *Tripwire) Addr() string { return w.ln.Addr().String() }

// Count is how many connections it accepted, once the count has been still
// for 100ms (at most 2s): a connect returns before Accept has counted it.
func (w *Tripwire) Count() int32 {
	last := w.n.Load()
	for stable, deadline := time.Now(), time.Now().Add(2*time.Second); time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		if n := w.n.Load(); n != last {
			last, stable = n, time.Now()
		} else if time.Since(stable) >= 100*time.Millisecond {
			break
		}
	}
	return last
}
