package traefikcfg

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/xtraefik/xtraefik/internal/plugin"
)

var demo = plugin.Plugin{Alias: "demo", Module: "github.com/traefik/plugindemo"}

func TestParseMode(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Mode
		wantErr bool
	}{
		{"", ModeFlags, false},
		{"flags", ModeFlags, false},
		{"file", ModeFile, false},
		{"env", ModeEnv, false},
		{"FILE", "", true},
		{"toml", "", true},
	} {
		got, err := ParseMode(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseMode(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestFlagsEnvLabels(t *testing.T) {
	ps := []plugin.Plugin{{Alias: "zeta", Module: "example.com/z"}, demo}
	wantFlags := []string{
		"--experimental.localPlugins.demo.moduleName=github.com/traefik/plugindemo",
		"--experimental.localPlugins.zeta.moduleName=example.com/z",
	}
	if got := Flags(ps); !reflect.DeepEqual(got, wantFlags) {
		t.Errorf("Flags = %q, want %q", got, wantFlags)
	}
	wantEnv := []string{
		"TRAEFIK_EXPERIMENTAL_LOCALPLUGINS_DEMO_MODULENAME=github.com/traefik/plugindemo",
		"TRAEFIK_EXPERIMENTAL_LOCALPLUGINS_ZETA_MODULENAME=example.com/z",
	}
	if got := EnvVars(ps); !reflect.DeepEqual(got, wantEnv) {
		t.Errorf("EnvVars = %q, want %q", got, wantEnv)
	}
	if ps[0].Alias != "zeta" {
		t.Error("Flags reordered its input")
	}

	unsafe := []plugin.Plugin{{Alias: "u", Module: "example.com/u", UseUnsafe: true}}
	if got, want := Flags(unsafe), []string{"--experimental.localPlugins.u.moduleName=example.com/u", "--experimental.localPlugins.u.settings.useUnsafe=true"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Flags(useUnsafe) = %q", got)
	}
	if got, want := EnvVars(unsafe), []string{"TRAEFIK_EXPERIMENTAL_LOCALPLUGINS_U_MODULENAME=example.com/u", "TRAEFIK_EXPERIMENTAL_LOCALPLUGINS_U_SETTINGS_USEUNSAFE=true"}; !reflect.DeepEqual(got, want) {
		t.Errorf("EnvVars(useUnsafe) = %q", got)
	}
	b, err := StaticFile(Static{Mode: ModeFile, Config: map[string]any{"experimental": map[string]any{"localPlugins": map[string]any{"u": map[string]any{"Settings": map[string]any{"UseUnsafe": false, "envs": []any{"A"}}}}}}}, unsafe)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := yaml.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"experimental": map[string]any{"localPlugins": map[string]any{"u": map[string]any{"moduleName": "example.com/u", "Settings": map[string]any{"useUnsafe": true, "envs": []any{"A"}}}}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("StaticFile(useUnsafe):\n%s", b)
	}
}

func TestHelmValues(t *testing.T) {
	b, err := HelmValues([]plugin.Plugin{demo})
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		AdditionalArguments []string `yaml:"additionalArguments"`
	}
	if err := yaml.Unmarshal(b, &v); err != nil {
		t.Fatalf("HelmValues is not YAML: %v\n%s", err, b)
	}
	if want := Flags([]plugin.Plugin{demo}); !reflect.DeepEqual(v.AdditionalArguments, want) {
		t.Errorf("additionalArguments = %q, want %q", v.AdditionalArguments, want)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		s       Static
		ps      []plugin.Plugin
		wantErr string
	}{
		{"flags default", Static{}, []plugin.Plugin{demo}, ""},
		{"bad mode", Static{Mode: "yaml"}, []plugin.Plugin{demo}, `mode "yaml"`},
		{"config in flags mode", Static{Mode: ModeFlags, Config: map[string]any{"log": map[string]any{"level": "DEBUG"}}}, []plugin.Plugin{demo}, "only baked in \"file\" mode"},
		{"config in env mode", Static{Mode: ModeEnv, Config: map[string]any{"api": true}}, []plugin.Plugin{demo}, "only baked"},
		{"config in file mode", Static{Mode: ModeFile, Config: map[string]any{"api": map[string]any{"insecure": true}}}, []plugin.Plugin{demo}, ""},
		{"dotted alias", Static{}, []plugin.Plugin{{Alias: "a.b", Module: "x/y"}}, "plugin alias"},
		{"empty alias", Static{}, []plugin.Plugin{{Alias: "", Module: "x/y"}}, "plugin alias"},
		{"upper alias in env mode", Static{Mode: ModeEnv}, []plugin.Plugin{{Alias: "myPlugin", Module: "x/y"}}, "lowercases"},
		{"underscore alias in env mode", Static{Mode: ModeEnv}, []plugin.Plugin{{Alias: "my_plugin", Module: "x/y"}}, "splits them at '_'"},
		{"underscore alias in flags mode", Static{}, []plugin.Plugin{{Alias: "my_plugin", Module: "x/y"}}, ""},
		{"module slash", Static{}, []plugin.Plugin{{Alias: "a", Module: "/x/y"}}, "should not start or end with a /"},
		{"module trailing slash", Static{}, []plugin.Plugin{{Alias: "a", Module: "x/y/"}}, "should not start or end with a /"},
		{"duplicate alias", Static{}, []plugin.Plugin{{Alias: "a", Module: "x/y"}, {Alias: "a", Module: "x/z"}}, "used twice"},
		{"duplicate module", Static{}, []plugin.Plugin{{Alias: "a", Module: "x/y"}, {Alias: "b", Module: "x/y"}}, "appears twice"},
		{"file mode conflict", Static{Mode: ModeFile, Config: map[string]any{"experimental": map[string]any{"localPlugins": map[string]any{"demo": map[string]any{"moduleName": "other/mod"}}}}}, []plugin.Plugin{demo}, "moduleName is other/mod"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(tc.s, tc.ps)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestStaticFile(t *testing.T) {
	for _, tc := range []struct {
		name    string
		config  map[string]any
		want    map[string]any
		wantErr string
	}{
		{
			name: "empty",
			want: map[string]any{"experimental": map[string]any{"localPlugins": map[string]any{"demo": map[string]any{"moduleName": demo.Module}}}},
		},
		{
			name: "merged, settings kept",
			config: map[string]any{
				"entryPoints":  map[string]any{"web": map[string]any{"address": ":80"}},
				"experimental": map[string]any{"localPlugins": map[string]any{"demo": map[string]any{"moduleName": demo.Module, "settings": map[string]any{"useUnsafe": true}}}},
			},
			want: map[string]any{
				"entryPoints":  map[string]any{"web": map[string]any{"address": ":80"}},
				"experimental": map[string]any{"localPlugins": map[string]any{"demo": map[string]any{"moduleName": demo.Module, "settings": map[string]any{"useUnsafe": true}}}},
			},
		},
		{
			name:   "case-insensitive field names, settings kept",
			config: map[string]any{"Experimental": map[string]any{"localplugins": map[string]any{"demo": map[string]any{"settings": map[string]any{"envs": []any{"A"}}}}}},
			want:   map[string]any{"Experimental": map[string]any{"localplugins": map[string]any{"demo": map[string]any{"settings": map[string]any{"envs": []any{"A"}}, "moduleName": demo.Module}}}},
		},
		{
			name:    "local plugin not in the image",
			config:  map[string]any{"experimental": map[string]any{"localPlugins": map[string]any{"other": map[string]any{"moduleName": "x/y"}}}},
			wantErr: "experimental.localPlugins.other is not a plugin of the recipe",
		},
		{
			name:   "map[any]any input",
			config: map[string]any{"log": map[any]any{"level": "DEBUG"}},
			want:   map[string]any{"log": map[string]any{"level": "DEBUG"}, "experimental": map[string]any{"localPlugins": map[string]any{"demo": map[string]any{"moduleName": demo.Module}}}},
		},
		{
			name:    "conflicting module",
			config:  map[string]any{"experimental": map[string]any{"localPlugins": map[string]any{"demo": map[string]any{"ModuleName": "x/y"}}}},
			wantErr: "moduleName is x/y",
		},
		{
			name:    "remote alias collision",
			config:  map[string]any{"experimental": map[string]any{"plugins": map[string]any{"demo": map[string]any{"moduleName": "x/y", "version": "v1"}}}},
			wantErr: "both a remote plugin",
		},
		{
			name:    "field spelled twice",
			config:  map[string]any{"experimental": map[string]any{}, "EXPERIMENTAL": map[string]any{}},
			wantErr: "spelled twice",
		},
		{
			name:    "experimental not a mapping",
			config:  map[string]any{"experimental": "yes"},
			wantErr: "not a mapping",
		},
		{
			name:    "non-string key",
			config:  map[string]any{"log": map[any]any{1: "x"}},
			wantErr: "not a string",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := StaticFile(Static{Mode: ModeFile, Config: tc.config}, []plugin.Plugin{demo})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]any
			if err := yaml.Unmarshal(b, &got); err != nil {
				t.Fatalf("not YAML: %v\n%s", err, b)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got\n%s\nwant %v", b, tc.want)
			}
			again, err := StaticFile(Static{Mode: ModeFile, Config: tc.config}, []plugin.Plugin{demo})
			if err != nil || string(again) != string(b) {
				t.Errorf("StaticFile is not deterministic or changed its input:\n%s\n---\n%s", b, again)
			}
		})
	}
}

func TestWarnings(t *testing.T) {
	if w := Warnings(ModeFlags); len(w) != 0 {
		t.Errorf("flags mode warns: %q", w)
	}
	if w := Warnings(ModeFile); len(w) != 1 || !strings.Contains(w[0], "ignores every command-line flag") {
		t.Errorf("file mode warnings = %q", w)
	}
	if w := Warnings(ModeEnv); len(w) != 1 || !strings.Contains(w[0], "one command-line flag") {
		t.Errorf("env mode warnings = %q", w)
	}
}

func TestImageConfigFilePaths(t *testing.T) {
	got := ImageConfigFilePaths("/srv/traefik", []string{"PATH=/bin", "HOME=/home/app", "XDG_CONFIG_HOME=/xdg"})
	want := []string{
		"/etc/traefik/traefik.toml", "/etc/traefik/traefik.yaml", "/etc/traefik/traefik.yml",
		"/xdg/traefik.toml", "/xdg/traefik.yaml", "/xdg/traefik.yml",
		"/home/app/.config/traefik.toml", "/home/app/.config/traefik.yaml", "/home/app/.config/traefik.yml",
		"/srv/traefik/traefik.toml", "/srv/traefik/traefik.yaml", "/srv/traefik/traefik.yml",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
	got = ImageConfigFilePaths("", nil)
	if len(got) != 9 || got[3] != "/.config/traefik.toml" || got[8] != "/traefik.yml" {
		t.Errorf("defaults: got %q", got)
	}
	if n := len(ConfigFilePaths()); n != 12 {
		t.Errorf("ConfigFilePaths has %d entries, want 12", n)
	}
}

func TestCheckBaseImage(t *testing.T) {
	withFile := Base{ConfigFiles: []string{"/etc/traefik/traefik.toml"}}
	for _, tc := range []struct {
		name     string
		s        Static
		b        Base
		wantErr  string
		wantWarn string
	}{
		{name: "flags, plain base", s: Static{}, b: Base{Entrypoint: []string{"traefik"}}},
		{name: "file on base with file", s: Static{Mode: ModeFile}, b: withFile, wantErr: "already has a Traefik configuration file"},
		{name: "file on base with file, replace", s: Static{Mode: ModeFile, Replace: true}, b: withFile, wantWarn: "removed by the recipe's replace option"},
		{name: "flags on base with file", s: Static{}, b: withFile, wantErr: "ignores the plugin flags"},
		{name: "env on base with file", s: Static{Mode: ModeEnv}, b: withFile, wantErr: "ignores the baked TRAEFIK_* variables"},
		{name: "env on base with flags in cmd", s: Static{Mode: ModeEnv}, b: Base{Entrypoint: []string{"traefik"}, Cmd: []string{"--api"}}, wantErr: "starts Traefik with flags (--api)"},
		{name: "env on official-style base", s: Static{Mode: ModeEnv}, b: Base{Entrypoint: []string{"/entrypoint.sh"}, Cmd: []string{"traefik"}, Env: []string{"TRAEFIK_LOG_LEVEL=DEBUG"}}},
		{name: "file on base with flags", s: Static{Mode: ModeFile}, b: Base{Cmd: []string{"traefik", "--api"}}, wantWarn: "ignores them while /etc/traefik/traefik.yml exists"},
		{name: "file on base with env", s: Static{Mode: ModeFile}, b: Base{Env: []string{"TRAEFIK_API=true"}}, wantWarn: "sets TRAEFIK_API"},
		{name: "flags on base with env", s: Static{}, b: Base{Env: []string{"traefik_log_level=INFO", "PATH=/bin"}}, wantWarn: "as soon as the plugin flags are passed"},
		{name: "bad mode", s: Static{Mode: "x"}, wantErr: `mode "x"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			warns, err := CheckBaseImage(tc.s, tc.b)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantWarn == "" {
				if len(warns) != 0 {
					t.Errorf("unexpected warnings %q", warns)
				}
				return
			}
			if !strings.Contains(strings.Join(warns, "\n"), tc.wantWarn) {
				t.Errorf("warnings %q, want one containing %q", warns, tc.wantWarn)
			}
		})
	}
}

func TestAmend(t *testing.T) {
	file := []byte("# comment\nentrypoints:\n  web:\n    address: \":80\"\nProviders:\n  docker: {}\n  File:\n    directory: /x\nexperimental:\n  localPlugins:\n    demo:\n      moduleName: github.com/traefik/plugindemo\n")
	b, err := Amend(file, []Setting{
		{Path: []string{"entryPoints"}, Value: map[string]any{"traefik": map[string]any{"address": "127.0.0.1:1"}}},
		{Path: []string{"providers", "file"}, Value: map[string]any{"filename": "/d.yml"}},
		{Path: []string{"log", "level"}, Value: "DEBUG"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := yaml.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"entryPoints":  map[string]any{"traefik": map[string]any{"address": "127.0.0.1:1"}},
		"Providers":    map[string]any{"docker": map[string]any{}, "file": map[string]any{"filename": "/d.yml"}},
		"log":          map[string]any{"level": "DEBUG"},
		"experimental": map[string]any{"localPlugins": map[string]any{"demo": map[string]any{"moduleName": demo.Module}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%s\nwant %v", b, want)
	}
	for name, in := range map[string]string{"not YAML": "a: [", "not a mapping": "- a\n- b\n", "scalar in path": "providers: 3\n"} {
		if _, err := Amend([]byte(in), []Setting{{Path: []string{"providers", "file"}, Value: 1}}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if b, err := Amend(nil, []Setting{{Path: []string{"api", "insecure"}, Value: true}}); err != nil || string(b) != "api:\n    insecure: true\n" {
		t.Errorf("empty file: %q, %v", b, err)
	}
}

func TestCheckBase(t *testing.T) {
	files := []string{"/etc/traefik/traefik.yml"}
	for _, tc := range []struct {
		mode    Mode
		replace bool
		files   []string
		wantErr string
	}{
		{ModeFlags, false, nil, ""},
		{ModeFile, false, nil, ""},
		{ModeFile, false, files, "already has a Traefik configuration file (/etc/traefik/traefik.yml)"},
		{ModeFile, true, files, ""},
		{"", false, files, "ignores the plugin flags"},
		{ModeEnv, false, files, "ignores the baked TRAEFIK_* variables"},
		{ModeEnv, true, files, ""},
		{"bogus", false, nil, "mode"},
	} {
		err := CheckBase(tc.mode, tc.replace, tc.files)
		if (tc.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("CheckBase(%q, %v, %q) = %v, want error containing %q", tc.mode, tc.replace, tc.files, err, tc.wantErr)
		}
	}
}

// The snippets of docs/recipe-and-lock.md ("Static configuration") are what
// the functions produce.
func TestDocsStaticConfig(t *testing.T) {
	const page = "../../docs/recipe-and-lock.md"
	b, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	helm, err := HelmValues([]plugin.Plugin{demo})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{string(helm), Flags([]plugin.Plugin{demo})[0], EnvVars([]plugin.Plugin{demo})[0], StaticFilePath} {
		if !strings.Contains(doc, want) {
			t.Errorf("%s lacks %q", page, want)
		}
	}
}
