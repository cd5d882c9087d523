package sandbox

import "golang.org/x/sys/unix"

// fdDir lists this process's open descriptors.
const fdDir = "/proc/self/fd"

// markCloseOnExec makes every descriptor from 3 up close-on-exec, so that a
// process this one starts gets only the files its command names (extra
// files are duplicated into place, unaffected). One call on Linux ≥ 5.11.
func markCloseOnExec() error {
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err == nil {
		return nil
	}
	return markEach(fdDir)
}
