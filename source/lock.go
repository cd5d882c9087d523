package source

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"
)

// lockPath takes an exclusive advisory lock on path (created if needed),
// waiting until it is free or ctx ends. Processes sharing a cache directory
// serialise their fetches into one repository this way; readers need no lock
// because git writes pack files under a temporary name and renames them
// once complete, and the cache never deletes objects.
func lockPath(ctx context.Context, path string, progress io.Writer) (unlock func(), err error) {
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
