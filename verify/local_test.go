package verify

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xtraefik/xtraefik/internal/testenv"
)

func TestFromDir(t *testing.T) {
	p, err := FromDir(filepath.Join(testenv.FixturesDir(t), "vendored-ok"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Module != "example.com/fixtures/vendored-ok" || p.Alias != "vendored-ok" {
		t.Fatalf("got module %q alias %q", p.Module, p.Alias)
	}
	res, err := VerifyDir(context.Background(), filepath.Join(testenv.FixturesDir(t), "vendored-ok"), 0, Options{TraefikVersion: "v3.6.12"})
	if err != nil {
		t.Fatal(err)
	}
	checkVerdict(t, res[0], true, "")

	empty := t.TempDir()
	if err := os.WriteFile(filepath.Join(empty, "main.go"), []byte("package x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyDir(context.Background(), empty, 0, Options{}); err == nil || !strings.Contains(err.Error(), "no go.mod") {
		t.Fatalf("err = %v, want no go.mod", err)
	}
	if err := os.WriteFile(filepath.Join(empty, "go.mod"), []byte("go 1.22\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := FromDir(empty); err == nil || !strings.Contains(err.Error(), "no module line") {
		t.Fatalf("err = %v, want no module line", err)
	}
}
