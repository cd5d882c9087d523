package runcheck

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/xtraefik/xtraefik/internal/traefikcfg"
)

func TestParseEntryPoint(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want EntryPoint
		err  string
	}{
		{"web=:8080", EntryPoint{"web", "127.0.0.1:8080"}, ""},
		{"websecure=0.0.0.0:8443", EntryPoint{"websecure", "0.0.0.0:8443"}, ""},
		{"v6=[::1]:80", EntryPoint{"v6", "[::1]:80"}, ""},
		{":8080", EntryPoint{}, "want NAME=[HOST]:PORT"},
		{"web_1=:80", EntryPoint{}, "letters and digits"},
		{"web=8080", EntryPoint{}, "want NAME=[HOST]:PORT"},
		{"web=:", EntryPoint{}, "want NAME=[HOST]:PORT"},
	} {
		got, err := ParseEntryPoint(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: error %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

// TestServeHarness: Serve's settings carry the user's entry points and
// dynamic directory and no API, in every source Traefik may read.
func TestServeHarness(t *testing.T) {
	h := harness{entryPoints: []EntryPoint{{"web", "127.0.0.1:8080"}}, dynamic: "/.xtraefik-runcheck/dynamic", dynamicDir: true, logLevel: "INFO", logFormat: "common"}
	flags := strings.Join(h.flags(), " ")
	for _, want := range []string{"--entryPoints.web.address=127.0.0.1:8080", "--providers.file.directory=/.xtraefik-runcheck/dynamic", "--log.format=common"} {
		if !strings.Contains(flags, want) {
			t.Errorf("flags lack %s: %s", want, flags)
		}
	}
	if strings.Contains(flags, "api") || strings.Contains(flags, checkEntryPoint) {
		t.Errorf("Serve's flags hold the check's API or entry point: %s", flags)
	}
	if env := strings.Join(h.env(), " "); !strings.Contains(env, "TRAEFIK_ENTRYPOINTS_WEB_ADDRESS=127.0.0.1:8080") {
		t.Errorf("env: %s", env)
	}
	out, err := traefikcfg.Amend([]byte("entryPoints:\n  old: {address: ':80'}\nproviders:\n  docker: {}\n"), h.settings())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"web:\n        address: 127.0.0.1:8080", "directory: /.xtraefik-runcheck/dynamic", "docker: {}", "providersThrottleDuration: 0s"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("amended file lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "old:") {
		t.Errorf("the image's entry points survived:\n%s", out)
	}
	// The check's settings are as before: API, probe entry point, file.
	check := harness{apiAddr: "127.0.0.1:1", webAddr: "127.0.0.1:2", dynamic: "/d.yml"}
	var paths [][]string
	for _, s := range check.settings() {
		paths = append(paths, s.Path)
	}
	want := [][]string{{"global", "checkNewVersion"}, {"global", "sendAnonymousUsage"}, {"entryPoints"}, {"api"}, {"providers", "file"}, {"providers", "providersThrottleDuration"}, {"log"}}
	if !reflect.DeepEqual(paths, want) {
		t.Errorf("check settings paths %v, want %v", paths, want)
	}
}

func TestCopyDynamic(t *testing.T) {
	root, src := t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(src, "sub"), 0o755)
	os.WriteFile(filepath.Join(src, "a.yml"), []byte("a"), 0o600)
	os.WriteFile(filepath.Join(src, "sub", "b.toml"), []byte("b"), 0o600)
	os.Symlink("/etc/passwd", filepath.Join(src, "link.yml"))
	p, isDir, err := copyDynamic(root, src)
	if err != nil || !isDir || p != serveDynamicDir {
		t.Fatalf("%s %v %v", p, isDir, err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, serveDynamicDir, "sub", "b.toml")); string(b) != "b" {
		t.Errorf("sub/b.toml not copied")
	}
	if _, err := os.Lstat(filepath.Join(root, serveDynamicDir, "link.yml")); err == nil {
		t.Errorf("a symlink was copied")
	}
	p, isDir, err = copyDynamic(root, filepath.Join(src, "a.yml"))
	if err != nil || isDir || p != serveDynamicDir+"/a.yml" {
		t.Errorf("file: %s %v %v", p, isDir, err)
	}
}
