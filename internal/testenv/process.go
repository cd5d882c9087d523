package testenv

import (
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// startServer starts cmd (its stderr already set to log) and polls ready until
// the server answers. It returns a stop function that kills the process and
// waits for it; a server that exits or stays silent for 30 s is an error
// quoting its log.
func startServer(cmd *exec.Cmd, log fmt.Stringer, what string, ready func() bool) (stop func(), err error) {
	// A connection's child may outlive the server by a moment and hold
	// stderr; do not let Wait hang on it.
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop = func() {
		_ = cmd.Process.Kill()
		<-exited
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-exited:
			return nil, fmt.Errorf("%s exited: %s", what, strings.TrimSpace(log.String()))
		default:
		}
		if ready() {
			return stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("%s not answering: %s", what, strings.TrimSpace(log.String()))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
