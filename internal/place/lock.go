package place

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"
)

// Lock takes an exclusive advisory lock on path (created if needed),
// waiting until it is free or ctx ends; progress, when not nil, is told
// once that the wait began. The kernel drops the lock if the process dies.
func Lock(ctx context.Context, path string, progress io.Writer) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	wait := 10 * time.Millisecond
	for announced := false; ; announced = true {
		ok, err := tryLock(f)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if ok {
			return func() {
				_ = unlockFile(f)
				f.Close()
			}, nil
		}
		if !announced && progress != nil {
			fmt.Fprintf(progress, "waiting for another process to release %s\n", path)
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			f.Close()
			return nil, fmt.Errorf("waiting for lock %s: %w", path, ctx.Err())
		case <-timer.C:
		}
		wait = min(2*wait, 500*time.Millisecond)
	}
}
