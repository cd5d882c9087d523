package publish

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// waiter is a publisher that waits for the other one to start, or for its
// context to end, so that only a concurrent run finishes.
type waiter struct {
	started, other chan struct{}
	fail           error
	ended          error
}

func (w *waiter) Validate(context.Context) error { return nil }
func (w *waiter) Undo() error                    { return nil }
func (w *waiter) Commit() error                  { return nil }
func (w *waiter) Publish(ctx context.Context, _ *Artifact) error {
	close(w.started)
	if w.fail != nil {
		return w.fail
	}
	select {
	case <-w.other:
		return nil
	case <-ctx.Done():
		w.ended = ctx.Err()
		return ctx.Err()
	case <-time.After(10 * time.Second):
		return errors.New("the other publisher never started: not concurrent")
	}
}

// TestConcurrent: both publishers run at once (each waits for the other to
// start); when one fails, the other's context is cancelled and both errors
// are returned.
func TestConcurrent(t *testing.T) {
	a := &waiter{started: make(chan struct{})}
	b := &waiter{started: make(chan struct{})}
	a.other, b.other = b.started, a.started
	if err := (Concurrent{a, b}).Publish(context.Background(), &Artifact{}); err != nil {
		t.Fatal(err)
	}

	c := &waiter{started: make(chan struct{}), fail: errors.New("registry down")}
	d := &waiter{started: make(chan struct{}), other: make(chan struct{})}
	err := (Concurrent{c, d}).Publish(context.Background(), &Artifact{})
	if err == nil || !strings.Contains(err.Error(), "registry down") || !errors.Is(d.ended, context.Canceled) {
		t.Errorf("error %v, other publisher ended with %v: want the failure and a cancelled context", err, d.ended)
	}
}
