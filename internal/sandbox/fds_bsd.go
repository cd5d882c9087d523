//go:build unix && !linux

package sandbox

// fdDir lists this process's open descriptors.
const fdDir = "/dev/fd"

// markCloseOnExec makes every descriptor from 3 up close-on-exec, so that a
// process this one starts gets only the files its command names (extra
// files are duplicated into place, unaffected).
func markCloseOnExec() error { return markEach(fdDir) }
