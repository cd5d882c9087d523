package main

import (
	"runtime"
	"strings"
	"testing"

	"github.com/xtraefik/xtraefik/verify"
)

// TestVerifyTimeoutDefault: docs/verification.md documents the verifier's default
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

// TestHelpAndVersion: `xtraefik version` and `--version` print the version from
// the binary's build information; flag help names the value, not prose.
func TestHelpAndVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		var out strings.Builder
		root := newRoot(func(string) string { return "" })
		root.SetArgs(args)
		root.SetOut(&out)
		if err := root.Execute(); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if got := out.String(); !strings.HasPrefix(got, "xtraefik ") || !strings.Contains(got, runtime.Version()) {
			t.Errorf("%v printed %q", args, got)
		}
	}
	var out strings.Builder
	root := newRoot(func(string) string { return "" })
	root.SetArgs([]string{"build", "--help"})
	root.SetOut(&out)
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"--tarball string ", "--push stringArray ", "--registry-timeout duration "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("build --help lacks %q:\n%s", want, out.String())
		}
	}
}

// Enumerated flags refuse a typo when parsed, before anything is fetched,
// naming the flag and the values it takes.
func TestEnumFlagsRefuseTypos(t *testing.T) {
	for _, tc := range []struct{ args, want []string }{
		{[]string{"verify", "--sandbox", "bogus"}, []string{`invalid argument "bogus" for "--sandbox"`, "want auto or require"}},
		{[]string{"build", "--sandbox", "Require"}, []string{`"--sandbox"`}},
		{[]string{"verify", "--runtime-isolation", "bogus"}, []string{`invalid argument "bogus" for "--runtime-isolation"`, "want auto, runc, chroot or none"}},
		{[]string{"import", "traefik.yml", "--kind", "values"}, []string{`invalid argument "values" for "--kind"`, "want auto, static or helm"}},
	} {
		root := newRoot(func(string) string { return "" })
		root.SetArgs(append(tc.args, "-f", "/nonexistent/recipe.yaml"))
		var out strings.Builder
		root.SetOut(&out)
		root.SetErr(&out)
		err := root.Execute()
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%v: err %v, want %q", tc.args, err, w)
			}
		}
	}
}
