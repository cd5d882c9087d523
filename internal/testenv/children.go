package testenv

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Children runs n copies of the test binary at once, each with env added
// to the environment (its TestMain sees it and runs the child's part
// instead of the tests), as separate processes sharing a cache would. It
// returns what each printed, trimmed; a child that fails fails the test
// and prints "".
func Children(t testing.TB, n int, env ...string) []string {
	t.Helper()
	cmds := make([]*exec.Cmd, n)
	outs := make([]*bytes.Buffer, n)
	for i := range cmds {
		cmds[i] = exec.Command(os.Args[0])
		cmds[i].Env = append(os.Environ(), env...)
		outs[i] = new(bytes.Buffer)
		cmds[i].Stdout, cmds[i].Stderr = outs[i], outs[i]
		if err := cmds[i].Start(); err != nil {
			t.Fatal(err)
		}
	}
	got := make([]string, n)
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("child %d: %v\n%s", i, err, outs[i])
			continue
		}
		got[i] = strings.TrimSpace(outs[i].String())
	}
	return got
}
