package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A plain `go build ./cmd/xtraefik`, run with no worker and no Go toolchain
// in $PATH: the import walk knows each Traefik's Yaegi standard library, so a
// plugin importing log/slog FAILs for Traefik v2.9 and v2.11.0 and passes for
// v3; a plugin it cannot decide without the right interpreter is UNVERIFIED
// (exit status 1) unless the approximate verdict is accepted.
func TestBareBinaryInterpreters(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	exe := filepath.Join(dir, "bin", "xtraefik")
	build := exec.Command(goBin, "build", "-o", exe, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	fixtures, err := filepath.Abs("../../verify/testdata")
	if err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	for _, tc := range []struct {
		fixture, traefik string
		extra            []string
		wantExit         int
		want             []string
	}{
		{"stdlib-slog", "v2.11.0", nil, 1, []string{"yaegi v0.15.1  -          FAIL", "reason: not available in Yaegi: log/slog"}},
		{"stdlib-slog", "v2.9.9", nil, 1, []string{"yaegi v0.15.0  -          FAIL", "reason: not available in Yaegi: log/slog"}},
		{"stdlib-slog", "v3.6.12", nil, 0, []string{"yaegi v0.16.1  full       OK", "1 plugin(s): 1 OK, 0 FAIL"}},
		{"vendored-ok", "v2.11.0", nil, 1, []string{"UNVERIFIED", "Traefik v2.11.0 embeds yaegi v0.15.1", "install Go (https://go.dev/dl/)",
			"1 plugin(s): 0 OK, 0 FAIL, 1 UNVERIFIED"}},
		{"vendored-ok", "v2.11.0", []string{"--accept-approximate-verdict"}, 0, []string{"OK (APPROXIMATE)", "APPROXIMATE VERDICT"}},
	} {
		t.Run(tc.fixture+"/"+tc.traefik+strings.Join(tc.extra, ""), func(t *testing.T) {
			args := append([]string{"verify", "--dir", filepath.Join(fixtures, tc.fixture), "--traefik-version", tc.traefik}, tc.extra...)
			cmd := exec.Command(exe, args...)
			cmd.Env = []string{"PATH=" + empty, "HOME=" + dir, "XDG_CACHE_HOME=" + filepath.Join(dir, "cache")}
			out, err := cmd.CombinedOutput()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.wantExit {
				t.Errorf("exit %d, want %d\n%s", code, tc.wantExit, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "cache", "xtraefik", "workers")); err == nil {
		t.Error("a worker was built without a Go toolchain")
	}
}
