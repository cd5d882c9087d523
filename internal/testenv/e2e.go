package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// E2EVar names the environment variable that makes the suite strict. CI
// (.ci/run, scripts/test) sets XTRAEFIK_E2E=1: every tool is installed
// there, so a missing one fails the test instead of skipping it and CI
// cannot pass by skipping. Set to anything, it is on.
const E2EVar = "XTRAEFIK_E2E"

// Strict reports whether XTRAEFIK_E2E is set.
func Strict() bool { return os.Getenv(E2EVar) != "" }

// Unavailable ends t for want of something outside the code under test (a
// tool, a service, a network): it skips t, or fails it under XTRAEFIK_E2E.
// The message says what is missing.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if Strict() {
		t.Fatalf("%s, and %s is set", msg, E2EVar)
	}
	t.Skipf("%s, skipping (set %s=1 to make this fatal)", msg, E2EVar)
}

// Tool returns the path of the external tool name from $PATH; a missing
// one is Unavailable.
func Tool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		missing(t, name, err)
	}
	return p
}

// missing is Unavailable for a tool that could not be found.
func missing(t testing.TB, tool string, err error) {
	t.Helper()
	Unavailable(t, "%s not available: %v", tool, err)
}
