package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// FakeTraefik builds a stand-in Traefik binary: a tiny Go program in module
// github.com/traefik/traefik/v3 (v2 for a v2 version) that links
// github.com/traefik/yaegi at yaegiVersion and carries the version link
// flag Traefik's release builds set (-X …/pkg/version.Version=version), so
// that its Go build info says what a real release's does: which Traefik,
// which Yaegi. It does not serve anything; put it in an image with
// TraefikBase. Yaegi comes from the module cache, else the module proxy.
func FakeTraefik(t testing.TB, version, yaegiVersion string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		missing(t, "go", err)
	}
	module := "github.com/traefik/traefik/v3"
	if strings.HasPrefix(version, "v2.") {
		module = "github.com/traefik/traefik/v2"
	}
	src := t.TempDir()
	for name, content := range map[string]string{
		"go.mod":              "module " + module + "\n\ngo 1.22\n\nrequire github.com/traefik/yaegi " + yaegiVersion + "\n",
		"pkg/version/v.go":    "// Package version holds what Traefik's release build links in.\npackage version\n\n// Version is set with -X at link time.\nvar Version = \"dev\"\n",
		"cmd/traefik/main.go": "package main\n\nimport (\n\t\"fmt\"\n\n\t_ \"github.com/traefik/yaegi/interp\"\n\n\t\"" + module + "/pkg/version\"\n)\n\nfunc main() { fmt.Println(\"Version:\", version.Version) }\n",
	} {
		p := filepath.Join(src, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(t.TempDir(), "traefik")
	// Without -trimpath: with it, the go command leaves -ldflags (and so
	// the version flag) out of the build info.
	cmd := exec.Command(goBin, "build", "-o", bin,
		"-ldflags", "-s -w -X "+module+"/pkg/version.Version="+version, "./cmd/traefik")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building a stand-in Traefik %s linking yaegi %s: %v\n%s", version, yaegiVersion, err, out)
	}
	return bin
}
