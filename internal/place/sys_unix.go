//go:build unix

package place

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// tempLocks says that a temporary's lock tells a live writer from a dead
// one here: flock(2) locks are dropped by the kernel when a process dies.
const tempLocks = true

// tryLock takes a flock(2) lock: it belongs to the open file, so it also
// excludes other goroutines of this process, and the kernel drops it if the
// process dies.
func tryLock(f *os.File) (bool, error) {
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EWOULDBLOCK):
			return false, nil
		default:
			return false, err
		}
	}
}

func unlockFile(f *os.File) error {
	return unix.Flock(int(f.Fd()), unix.LOCK_UN)
}

// syncDir makes the renames in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
