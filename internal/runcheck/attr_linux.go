package runcheck

import "syscall"

// groupAttr starts a process in a group of its own that dies with xtraefik.
func groupAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
