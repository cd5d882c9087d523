package verify

import (
	"context"
	"sync"
)

// pool starts workers ahead of their jobs, one at a time in the background,
// keeping at most cap(ready) of them waiting.
type pool struct {
	// start starts a worker; warm when it was asked for ahead of time and
	// nobody is waiting for it yet, so that it can warm up before its hello.
	start func(ctx context.Context, warm bool) (*proc, error)
	ready chan started

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu sync.Mutex
	// promised is how many workers were asked for, ahead how many of them
	// ahead of time (Prepare); taken how many were handed out (or are being
	// waited for); begun how many starts have begun; owed how many are
	// still to start.
	promised, ahead, taken, begun, owed int
	running, closed                     bool
}

type started struct {
	p   *proc
	err error
}

func newPool(capacity int, start func(context.Context, bool) (*proc, error)) *pool {
	ctx, cancel := context.WithCancel(context.Background())
	return &pool{start: start, ready: make(chan started, capacity), ctx: ctx, cancel: cancel}
}

// add asks for n workers in all, ahead of time when ahead (their jobs are
// not ready yet); asking again for fewer than already asked for changes
// nothing.
func (p *pool) add(n int, ahead bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n > p.promised {
		p.owed += n - p.promised
		p.promised = n
	}
	if ahead {
		p.ahead = max(p.ahead, n)
	}
	p.fillLocked()
}

func (p *pool) fillLocked() {
	if p.running || p.closed || p.owed == 0 {
		return
	}
	p.running = true
	p.wg.Add(1)
	go p.fill()
}

func (p *pool) fill() {
	defer p.wg.Done()
	for {
		p.mu.Lock()
		if p.owed == 0 || p.closed {
			p.running = false
			p.mu.Unlock()
			return
		}
		p.owed--
		p.begun++
		// Workers are handed out in the order they start.
		warm := p.begun <= p.ahead && p.taken < p.begun
		p.mu.Unlock()
		w, err := p.start(p.ctx, warm)
		select {
		case p.ready <- started{w, err}:
		case <-p.ctx.Done():
			if w != nil {
				w.stop()
			}
			p.mu.Lock()
			p.running = false
			p.mu.Unlock()
			return
		}
	}
}

// take hands out a started worker, asking for one more when every worker
// asked for is already taken.
func (p *pool) take(ctx context.Context) (*proc, error) {
	p.mu.Lock()
	if p.taken >= p.promised {
		p.promised++
		p.owed++
	}
	p.taken++
	p.fillLocked()
	p.mu.Unlock()
	select {
	case s := <-p.ready:
		return s.p, s.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// close stops the workers nobody took.
func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.cancel()
	p.wg.Wait()
	for {
		select {
		case s := <-p.ready:
			if s.p != nil {
				s.p.stop()
			}
		default:
			return
		}
	}
}
