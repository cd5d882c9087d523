package verify

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xtraefik/xtraefik/internal/testenv"
)

func TestTraefikVersionFromLabels(t *testing.T) {
	for _, tc := range []struct {
		labels map[string]string
		want   string
	}{
		{map[string]string{"org.opencontainers.image.version": "v3.6.12"}, "v3.6.12"},
		{map[string]string{"org.opencontainers.image.version": "2.11.0"}, "v2.11.0"},
		{map[string]string{"org.label-schema.version": "v2.11.0", "org.opencontainers.image.version": "latest"}, "v2.11.0"},
		{map[string]string{"org.opencontainers.image.version": "v3.7.0-rc.1"}, "v3.7.0-rc.1"},
		{map[string]string{"org.opencontainers.image.version": "latest"}, ""},
		{nil, ""},
	} {
		if got := TraefikVersionFromLabels(tc.labels); got != tc.want {
			t.Errorf("%v: got %q, want %q", tc.labels, got, tc.want)
		}
	}
}

// A binary linked the way Traefik's releases are (-X .../pkg/version.Version=)
// tells its version through its Go build information.
func TestTraefikVersionFromBinary(t *testing.T) {
	goBin := testenv.Tool(t, "go")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/fake\n\ngo 1.22\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nfunc main() {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	build := func(ldflags string) string {
		out := filepath.Join(dir, "bin")
		args := []string{"build", "-o", out}
		if ldflags != "" {
			args = append(args, "-ldflags", ldflags)
		}
		cmd := exec.Command(goBin, append(args, ".")...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, b)
		}
		return out
	}
	for _, tc := range []struct{ ldflags, want string }{
		{"-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=v3.6.12", "v3.6.12"},
		{"-X github.com/traefik/traefik/v2/pkg/version.Version=2.11.0", "v2.11.0"},
		{"", ""},
	} {
		f, err := os.Open(build(tc.ldflags))
		if err != nil {
			t.Fatal(err)
		}
		got, err := TraefikVersionFromBinary(f)
		f.Close()
		if err != nil || got != tc.want {
			t.Errorf("ldflags %q: got %q, %v; want %q", tc.ldflags, got, err, tc.want)
		}
	}
	if _, err := TraefikVersionFromBinary(strings.NewReader("not a binary")); err == nil {
		t.Error("a non-binary was accepted")
	}
}
