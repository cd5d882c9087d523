package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// imageUID is the user the release image runs as (scripts/releaseimage).
const imageUID = 65532

// workspaceError is a path this process may not write, in a container
// that runs as another user than the one who owns the workspace.
type workspaceError struct {
	err error
	uid int
}

func (e *workspaceError) Error() string {
	return fmt.Sprintf("%v\nxtraefik runs as user %d in this container and may not write that path: a directory mounted from the host belongs to the host's user. "+
		"Run the container as your user: docker run --user \"$(id -u):$(id -g)\" … (or give --cache-dir and the outputs a directory user %d may write)", e.err, e.uid, e.uid)
}

func (e *workspaceError) Unwrap() error { return e.err }

// withWorkspaceHint says how to fix err when a path could not be written
// for lack of permission (EACCES, EPERM) and this process is a non-root
// user in a container (the release image runs as 65532): the usual cause
// is a workspace mounted from the host, owned by another uid.
func withWorkspaceHint(err error) error {
	return workspaceHint(err, os.Getuid(), inContainer)
}

// workspaceHint is withWorkspaceHint with the user id and the container
// probe given.
func workspaceHint(err error, uid int, container func() bool) error {
	if err == nil || uid == 0 || errors.As(err, new(*workspaceError)) || !pathRefused(err) {
		return err
	}
	if uid != imageUID && !container() {
		return err
	}
	return &workspaceError{err: err, uid: uid}
}

// pathRefused reports whether err is a file operation on a path refused
// for lack of permission; starting a program (a worker, a sandbox refused
// by the kernel) is not.
func pathRefused(err error) bool {
	if !errors.Is(err, syscall.EACCES) && !errors.Is(err, syscall.EPERM) {
		return false
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Op != "fork/exec" && pe.Op != "exec"
	}
	var le *os.LinkError
	return errors.As(err, &le)
}

// inContainer reports whether this process runs in a Docker or Podman
// container, by the files those leave at the root.
func inContainer() bool {
	for _, f := range []string{"/.dockerenv", "/run/.containerenv"} {
		if _, err := os.Stat(f); err == nil {
			return true
		}
	}
	return false
}
