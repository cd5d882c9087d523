package testenv

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Cosign returns the path of the real cosign client (scripts/test installs
// it with go install): from PATH, else from GOPATH/bin, where go install put
// it when PATH lacks that directory. It skips the test when there is none,
// unless XTRAEFIK_E2E is set (then it fails).
func Cosign(t testing.TB) string {
	t.Helper()
	return GoTool(t, "cosign", "go install github.com/sigstore/cosign/v2/cmd/cosign@v2.6.5")
}

// CosignResult is what one cosign run printed.
type CosignResult struct {
	Stdout, Stderr []byte
	Err            error
}

// RunCosign runs cosign with args in dir, with COSIGN_PASSWORD set to
// password and nothing that would reach the public-good Sigstore instance
// (TUF, Rekor) from the environment, and returns its output; a run longer
// than two minutes fails the test.
func RunCosign(t testing.TB, bin, dir, password string, args ...string) CosignResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	home := filepath.Join(dir, ".cosign-home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	// A fresh HOME: no docker credentials or TUF cache of the user's, and
	// no experimental or repository overrides from the environment.
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"TUF_ROOT=" + filepath.Join(home, "tuf"),
		"DOCKER_CONFIG=" + filepath.Join(home, "docker"),
		"COSIGN_PASSWORD=" + password,
		"COSIGN_YES=true",
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("cosign %v: timed out\n%s", args, stderr.Bytes())
	}
	return CosignResult{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), Err: err}
}

// CosignKeyPair runs `cosign generate-key-pair` in a new directory with
// password and returns the paths of cosign.key and cosign.pub.
func CosignKeyPair(t testing.TB, bin, password string) (key, pub string) {
	t.Helper()
	dir := t.TempDir()
	r := RunCosign(t, bin, dir, password, "generate-key-pair")
	if r.Err != nil {
		t.Fatalf("cosign generate-key-pair: %v\n%s", r.Err, r.Stderr)
	}
	return filepath.Join(dir, "cosign.key"), filepath.Join(dir, "cosign.pub")
}
