//go:build windows

package place

import (
	"errors"
	"os"

	"golang.org/x/sys/windows"
)

// tempLocks is false: a directory handle cannot be locked here, so a live
// writer's temporary cannot be told from a dead one's and none is taken
// for stale.
const tempLocks = false

func tryLock(f *os.File) (bool, error) {
	ol := new(windows.Overlapped)
	err := windows.LockFileEx(windows.Handle(f.Fd()),
		windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, ol)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, windows.ERROR_LOCK_VIOLATION):
		return false, nil
	default:
		return false, err
	}
}

func unlockFile(f *os.File) error {
	return windows.UnlockFileEx(windows.Handle(f.Fd()), 0, 1, 0, new(windows.Overlapped))
}

// syncDir does nothing: a directory cannot be opened for Sync here, and
// the file system orders a rename with the data flushed before it.
func syncDir(string) error { return nil }
