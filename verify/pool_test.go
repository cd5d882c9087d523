package verify

import (
	"context"
	"runtime/metrics"
	"slices"
	"sync"
	"testing"
	"time"
)

// startLog records the warm flag of every worker a pool starts, in order.
type startLog struct {
	mu    sync.Mutex
	warm  []bool
	gate  chan struct{} // when not nil, each start waits for a value
	began chan struct{}
}

func (l *startLog) start(ctx context.Context, warm bool) (*proc, error) {
	l.began <- struct{}{}
	if l.gate != nil {
		<-l.gate
	}
	l.mu.Lock()
	l.warm = append(l.warm, warm)
	l.mu.Unlock()
	return nil, nil
}

func (l *startLog) flags() []bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.warm)
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(time.Millisecond)
	}
}

// Workers asked for ahead of time (Prepare) warm up; a worker started for a
// plugin already waiting, or asked for when the plugins are ready, does not.
func TestPoolWarmsOnlyWorkersStartedAhead(t *testing.T) {
	ctx := context.Background()
	t.Run("ahead, then one more on demand", func(t *testing.T) {
		l := &startLog{began: make(chan struct{}, 10)}
		p := newPool(2, l.start)
		defer p.close()
		p.add(2, true)
		waitFor(t, func() bool { return len(l.flags()) == 2 })
		for range 3 {
			if _, err := p.take(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if got, want := l.flags(), []bool{true, true, false}; !slices.Equal(got, want) {
			t.Fatalf("warm flags %v, want %v", got, want)
		}
	})
	t.Run("wanted now", func(t *testing.T) {
		l := &startLog{began: make(chan struct{}, 10)}
		p := newPool(2, l.start)
		defer p.close()
		p.add(2, false)
		for range 2 {
			if _, err := p.take(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if got, want := l.flags(), []bool{false, false}; !slices.Equal(got, want) {
			t.Fatalf("warm flags %v, want %v", got, want)
		}
	})
	t.Run("ahead, but a plugin waits before it starts", func(t *testing.T) {
		l := &startLog{began: make(chan struct{}, 10), gate: make(chan struct{})}
		p := newPool(1, l.start)
		defer p.close()
		p.add(2, true)
		<-l.began // the first start waits at the gate
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() { _, _ = p.take(ctx) })
		}
		waitFor(t, func() bool { p.mu.Lock(); defer p.mu.Unlock(); return p.taken == 2 })
		l.gate <- struct{}{}
		<-l.began
		l.gate <- struct{}{}
		wg.Wait()
		if got, want := l.flags(), []bool{true, false}; !slices.Equal(got, want) {
			t.Fatalf("warm flags %v, want %v", got, want)
		}
	})
}

// warmUp allocates its pages for real and frees them: a warm-up the
// compiler elided, or one that kept its memory, would be no warm-up.
func TestWarmUpGrowsAndFreesTheHeap(t *testing.T) {
	samples := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}, {Name: "/gc/cycles/forced:gc-cycles"}}
	metrics.Read(samples)
	allocs, forced := samples[0].Value.Uint64(), samples[1].Value.Uint64()
	warmUp()
	metrics.Read(samples)
	if got := samples[0].Value.Uint64() - allocs; got < warmHeapBytes {
		t.Errorf("warmUp allocated %d bytes, want at least %d", got, warmHeapBytes)
	}
	if samples[1].Value.Uint64() == forced {
		t.Error("warmUp did not collect what it allocated")
	}
}
