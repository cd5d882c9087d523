//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package place

import (
	"os"
	"syscall"
)

// lock takes an exclusive advisory lock on f, released when f is closed or the
// process dies: the sign that a temporary's writer is alive.
func lock(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}

// tryLock reports whether f's lock was free (and takes it).
func tryLock(f *os.File) bool {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil
}
