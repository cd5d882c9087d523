package verify

import (
	"context"
	"sync"
)

// pool starts workers ahead of their jobs, one at a time in the background,
// keeping at most cap(ready) of them waiting.
type pool struct {
	start func(context.Context) (*proc, error)
	ready chan started

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu sync.Mutex
	// promised is how many workers were asked for; taken how many were
	// handed out; owed how many are still to start.
	promised, taken, owed int
	running, closed       bool
}

type started struct {
	p   *proc
	err error
}

func newPool(capacity int, start func(context.Context) (*proc, error)) *pool {
	ctx, cancel := context.WithCancel(context.Background())
	return &pool{start: start, ready: make(chan started, capacity), ctx: ctx, cancel: cancel}
}

// add asks for n workers in all; asking again for fewer than already asked
// for changes nothing.
func (p *pool) add(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n > p.promised {
		p.owed += n - p.promised
		p.promised = n
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
		p.mu.Unlock()
		w, err := p.start(p.ctx)
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
