package runcheck

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"gopkg.in/yaml.v3"
)

func fixtureRoot(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	base := map[string]string{
		"usr/local/bin/traefik": "#!/bin/sh\n",
		"entrypoint.sh":         "#!/bin/sh\n",
		"etc/passwd":            "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n",
		"etc/group":             "root:x:0:\nnonroot:x:65532:\n",
	}
	for k, v := range files {
		base[k] = v
	}
	for name, content := range base {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, "traefik") || strings.HasSuffix(name, ".sh") {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestPlan(t *testing.T) {
	h := harness{apiAddr: "127.0.0.1:1001", webAddr: "127.0.0.1:1002", dynamic: "/.xtraefik-runcheck/dynamic.yml"}
	plugin := "--experimental.localPlugins.demo.moduleName=github.com/traefik/plugindemo"
	same := func(p string) string { return p }
	bakedFile := "experimental:\n  localPlugins:\n    demo:\n      moduleName: github.com/traefik/plugindemo\nentryPoints:\n  web:\n    address: :80\n"
	for _, tc := range []struct {
		name       string
		files      map[string]string
		cfg        v1.Config
		userArgs   []string
		none       bool
		wantSource string
		wantArgv   []string
		wantExe    string
		wantEnv    []string
		wantErr    string
	}{
		{
			name:       "flags: harness flags, then the user's",
			cfg:        v1.Config{Entrypoint: []string{"traefik"}, Cmd: []string{"--ignored"}},
			userArgs:   []string{plugin},
			wantSource: "flags",
			wantArgv:   append(append([]string{"traefik"}, h.flags()...), plugin),
			wantExe:    "/usr/local/bin/traefik",
			wantEnv:    []string{"PATH=" + defaultPath, "HOME=/root"},
		},
		{
			name:       "env: official layout, no arguments",
			cfg:        v1.Config{Entrypoint: []string{"/entrypoint.sh"}, Cmd: []string{"traefik"}, Env: []string{"PATH=/usr/local/bin:/bin", "TRAEFIK_EXPERIMENTAL_LOCALPLUGINS_DEMO_MODULENAME=github.com/traefik/plugindemo"}},
			wantSource: "env",
			wantArgv:   []string{"/entrypoint.sh", "traefik"},
			wantExe:    "/entrypoint.sh",
			wantEnv:    []string{"TRAEFIK_EXPERIMENTAL_LOCALPLUGINS_DEMO_MODULENAME=github.com/traefik/plugindemo", "TRAEFIK_API_INSECURE=true", "TRAEFIK_ENTRYPOINTS_XTRAEFIKCHECK_ADDRESS=127.0.0.1:1002", "TRAEFIK_PROVIDERS_FILE_FILENAME=/.xtraefik-runcheck/dynamic.yml"},
		},
		{
			name:       "env image given a flag: everything becomes flags",
			cfg:        v1.Config{Entrypoint: []string{"/entrypoint.sh"}, Cmd: []string{"traefik"}},
			userArgs:   []string{"--log.level=INFO"},
			wantSource: "flags",
			wantArgv:   append(append([]string{"/entrypoint.sh"}, h.flags()...), "--log.level=INFO"),
			wantExe:    "/entrypoint.sh",
		},
		{
			name:       "no entrypoint, flags in cmd",
			cfg:        v1.Config{Cmd: []string{"traefik", "--accesslog"}, User: "nonroot"},
			wantSource: "flags",
			wantArgv:   append([]string{"traefik", "--accesslog"}, h.flags()...),
			wantExe:    "/usr/local/bin/traefik",
			wantEnv:    []string{"HOME=/home/nonroot"},
		},
		{
			name:       "file: found, amended, flags passed through",
			files:      map[string]string{"etc/traefik/traefik.yml": bakedFile},
			cfg:        v1.Config{Entrypoint: []string{"traefik"}},
			userArgs:   []string{"--entryPoints.extra.address=:81"},
			wantSource: "file:/etc/traefik/traefik.yml",
			wantArgv:   []string{"traefik", "--entryPoints.extra.address=:81"},
			wantExe:    "/usr/local/bin/traefik",
		},
		{
			name:       "file in the working directory, relative program",
			files:      map[string]string{"srv/traefik/traefik.yaml": bakedFile, "srv/traefik/bin/traefik": "#!/bin/sh\n"},
			cfg:        v1.Config{Entrypoint: []string{"./bin/traefik"}, WorkingDir: "/srv/traefik"},
			wantSource: "file:/srv/traefik/traefik.yaml",
			wantArgv:   []string{"./bin/traefik"},
			wantExe:    "/srv/traefik/bin/traefik",
		},
		{
			name:       "--configFile names the file",
			files:      map[string]string{"conf/custom.yml": bakedFile},
			cfg:        v1.Config{Entrypoint: []string{"traefik"}, WorkingDir: "/conf"},
			userArgs:   []string{"--configfile", "custom.yml"},
			wantSource: "file:/conf/custom.yml",
			wantArgv:   []string{"traefik", "--configfile", "custom.yml"},
			wantExe:    "/usr/local/bin/traefik",
		},
		{
			name:       "unconfined: paths point into the root",
			files:      map[string]string{"etc/traefik/traefik.yml": bakedFile},
			cfg:        v1.Config{Entrypoint: []string{"traefik"}},
			none:       true,
			wantSource: "file:/etc/traefik/traefik.yml",
			wantArgv:   []string{"traefik", "--configFile=ROOT/etc/traefik/traefik.yml"},
			wantExe:    "/usr/local/bin/traefik",
			wantEnv:    []string{"HOME=ROOT/root", "PATH=ROOT/usr/local/sbin:ROOT/usr/local/bin:ROOT/usr/sbin:ROOT/usr/bin:ROOT/sbin:ROOT/bin"},
		},
		{
			name:    "TOML file",
			files:   map[string]string{"etc/traefik/traefik.toml": "[api]\n"},
			cfg:     v1.Config{Entrypoint: []string{"traefik"}},
			wantErr: "not YAML",
		},
		{
			name:    "missing program",
			cfg:     v1.Config{Entrypoint: []string{"nope"}},
			wantErr: `program "nope" is not an executable file`,
		},
		{
			name:    "no command",
			cfg:     v1.Config{},
			wantErr: "neither an entrypoint nor a command",
		},
		{
			name:    "unknown user",
			cfg:     v1.Config{Entrypoint: []string{"traefik"}, User: "www"},
			wantErr: `user "www" is not in the image's /etc/passwd`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := fixtureRoot(t, tc.files)
			inside := same
			hh := h
			if tc.none {
				inside = func(p string) string { return filepath.Join(root, p) }
				hh.dynamic = inside(h.dynamic)
			}
			l, err := plan(root, &tc.cfg, tc.userArgs, hh, inside)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			fix := func(ss []string) []string {
				out := make([]string, len(ss))
				for i, s := range ss {
					out[i] = strings.ReplaceAll(s, "ROOT", root)
				}
				return out
			}
			if l.source != tc.wantSource {
				t.Errorf("source = %q, want %q", l.source, tc.wantSource)
			}
			if want := fix(tc.wantArgv); !reflect.DeepEqual(l.argv, want) {
				t.Errorf("argv = %q\nwant %q", l.argv, want)
			}
			if l.exe != tc.wantExe {
				t.Errorf("exe = %q, want %q", l.exe, tc.wantExe)
			}
			env := strings.Join(l.env, "\n")
			for _, e := range fix(tc.wantEnv) {
				if !strings.Contains("\n"+env+"\n", "\n"+e+"\n") {
					t.Errorf("env lacks %q:\n%s", e, env)
				}
			}
			if strings.HasPrefix(l.source, "file:") {
				b, err := os.ReadFile(filepath.Join(root, strings.TrimPrefix(l.source, "file:")))
				if err != nil {
					t.Fatal(err)
				}
				var got map[string]any
				if err := yaml.Unmarshal(b, &got); err != nil {
					t.Fatal(err)
				}
				eps, _ := got["entryPoints"].(map[string]any)
				api, _ := got["api"].(map[string]any)
				file, _ := got["providers"].(map[string]any)["file"].(map[string]any)
				exp, _ := got["experimental"].(map[string]any)
				if eps["web"] != nil || eps[checkEntryPoint] == nil || api["insecure"] != true || file["filename"] != hh.dynamic || exp["localPlugins"] == nil {
					t.Errorf("amended file:\n%s", b)
				}
			}
		})
	}
}

func TestResolveUser(t *testing.T) {
	root := fixtureRoot(t, nil)
	for _, tc := range []struct {
		spec     string
		uid, gid uint32
		home     string
		wantErr  bool
	}{
		{"", 0, 0, "/root", false},
		{"root", 0, 0, "/root", false},
		{"nonroot", 65532, 65532, "/home/nonroot", false},
		{"65532", 65532, 65532, "/home/nonroot", false},
		{"1000", 1000, 0, "/", false},
		{"1000:nonroot", 1000, 65532, "/", false},
		{"nonroot:0", 65532, 0, "/home/nonroot", false},
		{"ghost", 0, 0, "", true},
		{"1000:ghosts", 0, 0, "", true},
	} {
		uid, gid, home, err := resolveUser(root, tc.spec)
		if (err != nil) != tc.wantErr || uid != tc.uid || gid != tc.gid || (!tc.wantErr && home != tc.home) {
			t.Errorf("resolveUser(%q) = %d, %d, %q, %v; want %d, %d, %q, error %v", tc.spec, uid, gid, home, err, tc.uid, tc.gid, tc.home, tc.wantErr)
		}
	}
}

func TestConfigFileFlag(t *testing.T) {
	for args, want := range map[string]string{
		"--configFile=/a.yml":          "/a.yml",
		"-configfile /b.yml":           "/b.yml",
		"--CONFIGFILE=c.yml --x":       "c.yml",
		"--api.insecure --log.level=x": "",
		"traefik --configFile":         "",
	} {
		if got := configFileFlag(strings.Fields(args)); got != want {
			t.Errorf("configFileFlag(%q) = %q, want %q", args, got, want)
		}
	}
}
