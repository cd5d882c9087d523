package main

import (
	"testing"

	"github.com/xtraefik/xtraefik/verify"
)

// TestVerifyTimeoutDefault: the README documents the verifier's default
// (verify.DefaultTimeout, 60s); the flag must not silently narrow it.
func TestVerifyTimeoutDefault(t *testing.T) {
	root := newRoot(func(string) string { return "" })
	for _, name := range []string{"build", "rebase", "verify"} {
		cmd, _, err := root.Find([]string{name})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		f := cmd.Flags().Lookup("verify-timeout")
		if f == nil {
			t.Fatalf("%s has no --verify-timeout", name)
		}
		if f.DefValue != verify.DefaultTimeout.String() {
			t.Errorf("%s --verify-timeout defaults to %s, want %s", name, f.DefValue, verify.DefaultTimeout)
		}
	}
}
