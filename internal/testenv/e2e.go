package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

// GoTool returns the path of a tool that `go install` puts in place
// (scripts/test installs them): from $PATH, else from GOPATH/bin, where go
// install puts it when $PATH lacks that directory. A missing one is
// Unavailable; install says how to install it.
func GoTool(t testing.TB, name, install string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		for _, dir := range filepath.SplitList(strings.TrimSpace(string(out))) {
			p := filepath.Join(dir, "bin", name)
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	Unavailable(t, "%s is not installed (%s; scripts/test installs it)", name, install)
	return ""
}

// KubectlValidate returns the path of kubectl-validate, the version
// scripts/test installs (the examples' manifests are checked against the
// schemas it carries); a missing one is Unavailable.
func KubectlValidate(t testing.TB) string {
	t.Helper()
	return GoTool(t, "kubectl-validate", "go install sigs.k8s.io/kubectl-validate@v0.0.4")
}

// missing is Unavailable for a tool that could not be found.
func missing(t testing.TB, tool string, err error) {
	t.Helper()
	Unavailable(t, "%s not available: %v", tool, err)
}
