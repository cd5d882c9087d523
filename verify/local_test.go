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

// TestVerifyDirNamesUserPaths: a --dir run names the author's files where
// they are, not where the image holds them (plugins-local/src/<module>) nor
// in the temporary tree, whether the interpreter (in the worker) or the
// static import walk (in this process) finds the problem.
func TestVerifyDirNamesUserPaths(t *testing.T) {
	const manifest = "displayName: Broken\ntype: middleware\nimport: example.com/broken\nsummary: s\ntestData: {}\n"
	for _, tc := range []struct {
		name, code, want string
	}{
		{"type error", "package broken\n\nimport (\n\t\"context\"\n\t\"net/http\"\n)\n\ntype Config struct{}\n\nfunc CreateConfig() *Config { return &Config{} }\n\nfunc New(_ context.Context, next http.Handler, _ *Config, _ string) (http.Handler, error) {\n\treturn next, undefinedThing\n}\n",
			"/plugin.go:13:"},
		{"import syntax", "package broken\n\nimport (\n\t\"net/http\n)\n",
			"/plugin.go:4:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range map[string]string{".traefik.yml": manifest, "go.mod": "module example.com/broken\n\ngo 1.22\n", "plugin.go": tc.code} {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			res, err := VerifyDir(context.Background(), dir, 0, Options{TraefikVersion: "v3.6.12"})
			if err != nil {
				t.Fatal(err)
			}
			msg := res[0].Reason + "\n" + res[0].Detail
			if res[0].OK || !strings.Contains(msg, dir+tc.want) || strings.Contains(msg, "plugins-local") || strings.Contains(msg, "xtraefik-verify-") {
				t.Errorf("want a FAIL naming %s%s, got:\n%s", dir, tc.want, msg)
			}
		})
	}
}
