package build

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/xtraefik/xtraefik/images"
	"github.com/xtraefik/xtraefik/internal/plugin"
	"github.com/xtraefik/xtraefik/internal/testenv"
	"github.com/xtraefik/xtraefik/recipe"
	"github.com/xtraefik/xtraefik/verify"
)

func TestTraefikPaths(t *testing.T) {
	for _, tc := range []struct {
		entrypoint, cmd, env []string
		want                 []string
	}{
		// Traefik's official image.
		{[]string{"/entrypoint.sh"}, []string{"traefik"}, []string{"PATH=/usr/local/bin:/usr/bin"},
			[]string{"/usr/local/bin/traefik", "/usr/bin/traefik", "/usr/local/bin/traefik"}},
		{[]string{"/opt/traefik"}, nil, nil, []string{"/opt/traefik", "/usr/local/bin/traefik"}},
		{nil, []string{"sh", "-c", "run"}, nil, []string{"/usr/local/bin/traefik"}},
	} {
		if got := traefikPaths(tc.entrypoint, tc.cmd, tc.env); !slices.Equal(got, tc.want) {
			t.Errorf("traefikPaths(%v, %v, %v) = %v, want %v", tc.entrypoint, tc.cmd, tc.env, got, tc.want)
		}
	}
}

// A local base's Traefik binary names its Yaegi through its Go build info,
// and that wins over the table entry for the version its labels name: a
// plugin importing log/slog FAILs for a binary linking yaegi v0.15.1 although
// the labels say v3.6.12.
func TestBaseTraefikBinaryWins(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	// A stand-in Traefik: a Go binary linking yaegi v0.15.1, with the version
	// link flag Traefik v2.11.0's release build sets.
	src := t.TempDir()
	for name, content := range map[string]string{
		"go.mod":  "module example.com/fake\n\ngo 1.22\n\nrequire github.com/traefik/yaegi v0.16.1\n\nreplace github.com/traefik/yaegi => github.com/traefik/yaegi v0.15.1\n",
		"main.go": "package main\n\nimport _ \"github.com/traefik/yaegi/interp\"\n\nfunc main() {}\n",
	} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(src, "traefik")
	cmd := exec.Command(goBin, "build", "-o", bin, "-ldflags", "-X github.com/traefik/traefik/v2/pkg/version.Version=v2.11.0", ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	img := testenv.TraefikBase(t, bin, testenv.TraefikBaseOptions{Version: "v3.6.12", OCI: true})
	dir := filepath.Join(t.TempDir(), "layout")
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	base, err := images.Resolve(ctx, images.Reference{Transport: images.TransportOCI, Path: dir}, images.Options{})
	if err != nil {
		t.Fatal(err)
	}
	slog := testenv.Fixture{}
	for _, f := range testenv.Fixtures() {
		if f.Name == "stdlib-slog" {
			slog = f
		}
	}
	// The binary decides, its version as well as its interpreter, and
	// the report says the labels disagree.
	tgt, warnings, err := target(ctx, nil, &options{}, base)
	if err != nil || tgt.Version != "v2.11.0" || tgt.Yaegi != "v0.15.1" || tgt.InterpreterSource != InterpreterFromBinary || tgt.Binary != "/usr/local/bin/traefik" {
		t.Fatalf("target = %+v, %v; want v2.11.0 with yaegi v0.15.1 from the binary", tgt, err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "labels say Traefik v3.6.12") || !strings.Contains(warnings[0], "the binary decides") {
		t.Fatalf("warnings %q: want one saying the labels and the binary disagree", warnings)
	}
	res := &resolution{Recipe: &recipe.Recipe{}, Base: base, Traefik: tgt, Plugins: []plugin.Plugin{
		{Alias: "accesslog", Module: slog.Module, Files: testenv.FixtureFiles(t, slog)},
	}}
	rs, err := verifyPlugins(ctx, res, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r := rs[0]; r.Status != verify.StatusFail || r.Interpreter != "yaegi v0.15.1" || !strings.Contains(r.Reason, "log/slog") {
		t.Fatalf("result %+v: want a FAIL from yaegi v0.15.1's standard library", r)
	}

}
