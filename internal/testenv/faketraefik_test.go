package testenv

import (
	"debug/buildinfo"
	"os/exec"
	"strings"
	"testing"
)

// TestFakeTraefik: the stand-in's build info names what a release's does —
// Traefik's module, the Yaegi it links, the version link flag — and it
// prints its version.
func TestFakeTraefik(t *testing.T) {
	bin := FakeTraefik(t, "v3.8.1", "v0.15.1")
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if bi.Main.Path != "github.com/traefik/traefik/v3" {
		t.Errorf("main module %s", bi.Main.Path)
	}
	yaegi := ""
	for _, d := range bi.Deps {
		if d.Path == "github.com/traefik/yaegi" {
			yaegi = d.Version
		}
	}
	if yaegi != "v0.15.1" {
		t.Errorf("links yaegi %q, want v0.15.1", yaegi)
	}
	flags := ""
	for _, s := range bi.Settings {
		if s.Key == "-ldflags" {
			flags = s.Value
		}
	}
	if !strings.Contains(flags, "-X github.com/traefik/traefik/v3/pkg/version.Version=v3.8.1") {
		t.Errorf("-ldflags %q lack the version flag", flags)
	}
	out, err := exec.Command(bin).Output()
	if err != nil || strings.TrimSpace(string(out)) != "Version: v3.8.1" {
		t.Errorf("running it: %q, %v", out, err)
	}
}
