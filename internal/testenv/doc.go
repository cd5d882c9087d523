// Package testenv is the test harness that runs real servers and real tools on
// the loopback interface: git daemon and git http-backend for plugin
// repositories built from real module versions, a Distribution registry, and
// the external checkers. Nothing here is a mock of the code under test.
//
// Every helper takes a testing.TB, works under t.TempDir and stops what it
// started in t.Cleanup. A helper that needs an external binary skips the test
// when the binary is missing, unless the environment variable XTRAEFIK_E2E is
// set (CI sets XTRAEFIK_E2E=1): then a missing tool fails the test, so CI can
// never pass by skipping. Strict, Unavailable and Tool are that gate, for
// every test of the repository.
package testenv
