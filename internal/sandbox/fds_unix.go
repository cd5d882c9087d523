//go:build unix

package sandbox

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Descriptors a process inherits are how a host directory, socket or file
// would reach untrusted code past every other protection: an open directory
// lets code fchdir out of a new root. Go opens every descriptor of its own
// close-on-exec, so xtraefik's caller (a CI agent, a shell, a program
// embedding the library) is where one without close-on-exec comes from.

// markEach sets close-on-exec on every descriptor from 3 up listed in dir
// (/proc/self/fd, /dev/fd).
func markEach(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("list open descriptors in %s: %w", dir, err)
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd < 3 {
			continue
		}
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err != nil {
			continue // the directory's own descriptor, closed since
		}
		if flags&unix.FD_CLOEXEC != 0 {
			continue
		}
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, flags|unix.FD_CLOEXEC); err != nil {
			return fmt.Errorf("mark descriptor %d close-on-exec: %w", fd, err)
		}
	}
	return nil
}

// inheritedFD is a descriptor the process did not open itself.
type inheritedFD struct {
	fd   int
	what string
}

func (d inheritedFD) String() string { return fmt.Sprintf("%d (%s)", d.fd, d.what) }

// inheritedFrom lists the descriptors listed in dir from first up that are
// not close-on-exec. At the start of a Go process those are exactly the
// inherited ones: an exec closes every close-on-exec descriptor, and the Go
// runtime and standard library open all of theirs (epoll, eventfd, kqueue,
// the cgroup files the scheduler reads) close-on-exec.
func inheritedFrom(dir string, first int) ([]inheritedFD, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list open descriptors in %s: %w", dir, err)
	}
	var out []inheritedFD
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd < first {
			continue
		}
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err != nil || flags&unix.FD_CLOEXEC != 0 {
			continue
		}
		out = append(out, inheritedFD{fd, describeFD(fd)})
	}
	return out, nil
}

// describeFD names what descriptor fd is open on, for the error message.
func describeFD(fd int) string {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return "unknown: " + err.Error()
	}
	kind := "file"
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		kind = "directory"
	case unix.S_IFSOCK:
		kind = "socket"
	case unix.S_IFIFO:
		kind = "pipe"
	case unix.S_IFCHR, unix.S_IFBLK:
		kind = "device"
	}
	if target, err := os.Readlink(fdDir + "/" + strconv.Itoa(fd)); err == nil && target != "" {
		return kind + " " + target
	}
	return kind
}

// closeInherited closes every descriptor this process holds beyond the
// files it was given (stdin, stdout, stderr and the command's extra files)
// that it did not open itself, and names them: Enter runs before any
// untrusted code, and a descriptor that got here despite Configure would
// reach that code. Such descriptors do get here: Go's own fork code opens a
// child's /proc/<pid>/setgroups and uid_map without close-on-exec while
// another goroutine of the same process may be forking (forkpipe2 lets
// forks overlap), so a program starting workers side by side hands them
// each other's. Closing them here is as safe as refusing them, without
// failing the verification over the parent's race.
func closeInherited(files int) ([]string, error) {
	if files < 3 {
		files = 3
	}
	inherited, err := inheritedFrom(fdDir, files)
	if err != nil {
		return nil, fmt.Errorf("sandbox: check inherited descriptors: %w", err)
	}
	for _, d := range inherited {
		if err := unix.Close(d.fd); err != nil {
			return nil, fmt.Errorf("sandbox: close the inherited descriptor %s: %w", d, err)
		}
	}
	names := make([]string, len(inherited))
	for i, d := range inherited {
		names[i] = d.String()
	}
	return names, nil
}
