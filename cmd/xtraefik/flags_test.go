package main

import (
	"io"
	"os"
	"path/filepath"
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

// TestNewcomerErrors: the first mistakes a newcomer makes (no recipe, a
// wrong flag, a required flag left out, --base before a lock) each end in
// one sentence that says what to do, naming the flag or command to use.
func TestNewcomerErrors(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	missing := filepath.Join(dir, "nope.yaml")
	unlocked := filepath.Join(dir, "unlocked.yaml")
	if err := os.WriteFile(unlocked, []byte("base: docker.io/library/traefik:v3.6\nplugins:\n  demo:\n    module: github.com/traefik/plugindemo\n    git: https://github.com/traefik/plugindemo.git\n    ref: v0.2.2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(dir, "cache")
	for _, tc := range []struct {
		args        []string
		want, avoid []string
	}{
		{[]string{"build"}, []string{"no recipe file recipe.yaml (the default -f)", "-f FILE", "--base REF --with MODULE@VERSION"}, []string{"read recipe"}},
		{[]string{"run", "-f", missing}, []string{"no recipe file " + missing + " (given with -f)", "check the path", "--base REF --with"}, []string{"read recipe"}},
		{[]string{"verify"}, []string{"no recipe file recipe.yaml", "--dir DIR"}, nil},
		{[]string{"lock", "-f", missing}, []string{"(given with -f)", "xtraefik import"}, []string{"-f FILE"}},
		{[]string{"outdated"}, []string{"the default -f", "-f FILE", "xtraefik import"}, nil},
		{[]string{"build", "--bogus"}, []string{"unknown flag: --bogus", "`xtraefik build --help` lists its flags"}, nil},
		{[]string{"cache", "prune", "--max-age", "x", "--bogus"}, []string{"`xtraefik cache prune --help`"}, nil},
		{[]string{"install-plugins"}, []string{"needs --image REF@sha256:", "and --to DIR", "emptyDir"}, []string{"required flag"}},
		{[]string{"install-plugins", "--image", "oci:" + dir}, []string{"needs --to DIR"}, []string{"--image REF"}},
		{[]string{"workers"}, []string{"needs --out DIR", "command -v xtraefik"}, []string{"required flag"}},
		{[]string{"verify", "-f", unlocked, "--base", "docker.io/library/traefik:v3.7", "--cache-dir", cache}, []string{"there is no lock: run `xtraefik lock -f " + unlocked + "` first"}, nil},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			root := newRoot(func(string) string { return "" })
			root.SetArgs(append(tc.args, "--quiet"))
			root.SetOut(io.Discard)
			root.SetErr(io.Discard)
			err := root.Execute()
			if err == nil {
				t.Fatal("succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			for _, a := range tc.avoid {
				if strings.Contains(err.Error(), a) {
					t.Errorf("error %q still says %q", err, a)
				}
			}
		})
	}
}
