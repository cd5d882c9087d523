//go:build !linux

package runcheck

import "syscall"

// groupAttr starts a process in a group of its own (no parent-death signal
// outside Linux).
func groupAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
