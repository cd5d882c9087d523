package traefikcfg

import (
	"reflect"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"gopkg.in/yaml.v3"
)

// staticYAML is a real-looking traefik.yml: entry points, providers, TLS,
// metrics, two remote plugins, one without a version, a wasm plugin's
// settings, and Pilot.
const staticYAML = `# Production static configuration
global:
  checkNewVersion: false
entryPoints:
  web:
    address: ":80" # plain HTTP
    http:
      redirections:
        entryPoint:
          to: websecure
  websecure:
    address: ":443"
providers:
  kubernetesCRD:
    allowCrossNamespace: false
  file:
    directory: /etc/traefik/dynamic
certificatesResolvers:
  le:
    acme:
      email: ops@example.com
      storage: /data/acme.json
      tlsChallenge: {}
metrics:
  prometheus:
    addEntryPointsLabels: true
log:
  level: INFO
experimental:
  plugins:
    demo:
      moduleName: github.com/traefik/plugindemo
      version: v0.2.2
    provider:
      moduleName: github.com/traefik/pluginproviderdemo
      version: v0.3.0
      settings:
        envs: ["PROVIDER_TOKEN"]
        mounts: ["/data"]
    unpinned:
      moduleName: github.com/example/unpinned
pilot:
  token: "0000"
`

func decodeYAML(t *testing.T, data []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal(data, &m); err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	return m
}

// TestImportStaticYAML: two plugins move to experimental.localPlugins under
// their aliases; the unpinned one stays a remote plugin and is listed with
// the dropped settings and Pilot; every other section and the comments are
// kept.
func TestImportStaticYAML(t *testing.T) {
	im, err := Import("traefik.yml", []byte(staticYAML), KindAuto)
	if err != nil {
		t.Fatal(err)
	}
	want := []RemotePlugin{
		{Alias: "demo", Module: "github.com/traefik/plugindemo", Version: "v0.2.2"},
		{Alias: "provider", Module: "github.com/traefik/pluginproviderdemo", Version: "v0.3.0"},
	}
	if im.Kind != KindStatic || im.Format != "yaml" || !reflect.DeepEqual(im.Plugins, want) {
		t.Errorf("kind %s, format %s, plugins %+v", im.Kind, im.Format, im.Plugins)
	}
	got, in := decodeYAML(t, im.Config), decodeYAML(t, []byte(staticYAML))
	for k, v := range in {
		if k != "experimental" && !reflect.DeepEqual(got[k], v) {
			t.Errorf("%s changed: %v -> %v", k, v, got[k])
		}
	}
	if len(got) != len(in) {
		t.Errorf("top-level keys %d, want %d", len(got), len(in))
	}
	exp := got["experimental"].(map[string]any)
	wantExp := map[string]any{
		"plugins": map[string]any{"unpinned": map[string]any{"moduleName": "github.com/example/unpinned"}},
		"localPlugins": map[string]any{
			"demo":     map[string]any{"moduleName": "github.com/traefik/plugindemo"},
			"provider": map[string]any{"moduleName": "github.com/traefik/pluginproviderdemo"},
		},
	}
	if !reflect.DeepEqual(exp, wantExp) {
		t.Errorf("experimental = %v", exp)
	}
	for _, c := range []string{"# Production static configuration", "# plain HTTP"} {
		if !strings.Contains(string(im.Config), c) {
			t.Errorf("comment %q lost", c)
		}
	}
	notCarried := strings.Join(im.NotCarried, "\n")
	for _, w := range []string{
		"experimental.plugins.unpinned: left as it was: it has no version",
		"experimental.plugins.provider: settings.envs=[PROVIDER_TOKEN] is dropped",
		"experimental.plugins.provider: settings.mounts=[/data] is dropped",
		"pilot: Traefik Pilot",
	} {
		if !strings.Contains(notCarried, w) {
			t.Errorf("not carried over lacks %q:\n%s", w, notCarried)
		}
	}
	if len(im.NotCarried) != 4 {
		t.Errorf("%d things not carried over, want 4:\n%s", len(im.NotCarried), notCarried)
	}
}

// TestImportStaticTOML: the same in TOML, keys matched ignoring case as
// Traefik matches them; useUnsafe is carried over; the rewritten file is
// TOML with the same settings.
func TestImportStaticTOML(t *testing.T) {
	const in = `# TOML static configuration
[entryPoints.web]
  address = ":80"

[providers.file]
  filename = "/etc/traefik/dynamic.toml"

[accessLog]
  bufferingSize = 100

[Experimental.Plugins.demo]
  ModuleName = "github.com/traefik/plugindemo"
  Version = "v0.2.2"

[Experimental.Plugins.unsafe]
  moduleName = "github.com/example/unsafe"
  version = "v1.0.0"
  [Experimental.Plugins.unsafe.settings]
    useUnsafe = true
`
	im, err := Import("traefik.toml", []byte(in), KindAuto)
	if err != nil {
		t.Fatal(err)
	}
	want := []RemotePlugin{
		{Alias: "demo", Module: "github.com/traefik/plugindemo", Version: "v0.2.2"},
		{Alias: "unsafe", Module: "github.com/example/unsafe", Version: "v1.0.0", UseUnsafe: true},
	}
	if im.Format != "toml" || !reflect.DeepEqual(im.Plugins, want) || len(im.NotCarried) != 0 {
		t.Errorf("format %s, plugins %+v, not carried %v", im.Format, im.Plugins, im.NotCarried)
	}
	var got, orig map[string]any
	if _, err := toml.Decode(string(im.Config), &got); err != nil {
		t.Fatalf("the rewritten file is not TOML: %v\n%s", err, im.Config)
	}
	if _, err := toml.Decode(in, &orig); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"entryPoints", "providers", "accessLog"} {
		if !reflect.DeepEqual(got[k], orig[k]) {
			t.Errorf("%s changed: %v -> %v", k, orig[k], got[k])
		}
	}
	wantExp := map[string]any{"localPlugins": map[string]any{
		"demo":   map[string]any{"moduleName": "github.com/traefik/plugindemo"},
		"unsafe": map[string]any{"moduleName": "github.com/example/unsafe", "settings": map[string]any{"useUnsafe": true}},
	}}
	if !reflect.DeepEqual(got["Experimental"], wantExp) {
		t.Errorf("experimental = %v\n%s", got["Experimental"], im.Config)
	}
}

// TestImportHelmValues: plugins from the chart's experimental.plugins and
// from --experimental.plugins flags in additionalArguments; the flags are
// replaced by --experimental.localPlugins ones, other arguments and values
// are kept, and the base is the values' image.
func TestImportHelmValues(t *testing.T) {
	const in = `image:
  registry: registry.example.com
  repository: mirror/traefik
  tag: v3.6.12
deployment:
  replicas: 3
experimental:
  plugins:
    demo:
      moduleName: github.com/traefik/plugindemo
      version: v0.2.2
additionalArguments:
  - "--log.level=DEBUG"
  - "--experimental.plugins.provider.modulename=github.com/traefik/pluginproviderdemo"
  - "--Experimental.Plugins.provider.version=v0.3.0"
ports:
  web:
    port: 8000
`
	im, err := Import("values.yaml", []byte(in), KindAuto)
	if err != nil {
		t.Fatal(err)
	}
	if im.Kind != KindHelm || im.Image != "registry.example.com/mirror/traefik:v3.6.12" {
		t.Errorf("kind %s, image %s", im.Kind, im.Image)
	}
	if len(im.Plugins) != 2 || im.Plugins[1] != (RemotePlugin{Alias: "provider", Module: "github.com/traefik/pluginproviderdemo", Version: "v0.3.0"}) {
		t.Errorf("plugins %+v", im.Plugins)
	}
	got := decodeYAML(t, im.Config)
	wantArgs := []any{"--log.level=DEBUG",
		"--experimental.localPlugins.demo.moduleName=github.com/traefik/plugindemo",
		"--experimental.localPlugins.provider.moduleName=github.com/traefik/pluginproviderdemo"}
	if !reflect.DeepEqual(got["additionalArguments"], wantArgs) {
		t.Errorf("additionalArguments = %v", got["additionalArguments"])
	}
	if _, ok := got["experimental"]; ok {
		t.Errorf("an empty experimental is left: %v", got["experimental"])
	}
	orig := decodeYAML(t, []byte(in))
	for _, k := range []string{"image", "deployment", "ports"} {
		if !reflect.DeepEqual(got[k], orig[k]) {
			t.Errorf("%s changed", k)
		}
	}

	// A plugin named twice with two modules is an error, not a guess.
	twice := strings.Replace(in, "  - \"--log.level=DEBUG\"\n", "  - \"--log.level=DEBUG\"\n  - --experimental.plugins.demo.moduleName=github.com/other/demo\n", 1)
	_, err = Import("values.yaml", []byte(twice), KindHelm)
	if err == nil || !strings.Contains(err.Error(), "plugin demo is github.com/traefik/plugindemo in experimental.plugins and github.com/other/demo in additionalArguments") {
		t.Errorf("conflicting module: %v", err)
	}
}

// TestImportErrors: each refusal names the file, and the line where the
// parser stopped.
func TestImportErrors(t *testing.T) {
	laughs := "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n" +
		"d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
	for _, tc := range []struct {
		name, file, data string
		kind             Kind
		want             string
	}{
		{"no plugins", "traefik.yml", "entryPoints:\n  web:\n    address: :80\n", KindAuto, "traefik.yml: no plugins to import: the file has no experimental.plugins"},
		{"no plugins in values", "values.yaml", "additionalArguments: [--log.level=DEBUG]\n", KindAuto, "values.yaml: no plugins to import: the file has no experimental.plugins or --experimental.plugins flags in additionalArguments"},
		{"empty", "traefik.yml", "", KindAuto, "traefik.yml: empty file"},
		{"malformed yaml", "traefik.yml", "entryPoints:\n  web:\n    address: [\n", KindAuto, "traefik.yml:3: did not find expected node content"},
		{"tab indentation", "traefik.yml", "experimental:\n\tplugins: {}\n", KindAuto, "traefik.yml:2: found character that cannot start any token"},
		{"malformed toml", "traefik.toml", "[entryPoints.web]\naddress = \":80\"\n[experimental.plugins.demo\n", KindAuto, "traefik.toml:3: expected '.' or ']' to end table name"},
		{"two spellings", "traefik.toml", "[experimental.plugins.a]\nmoduleName = \"github.com/x/a\"\nversion = \"v1.0.0\"\n[Experimental.plugins.b]\nmoduleName = \"github.com/x/b\"\nversion = \"v1.0.0\"\n",
			KindAuto, "Experimental and experimental are one Traefik field spelled twice"},
		{"duplicate toml key", "traefik.toml", "[api]\ndashboard = true\ndashboard = false\n", KindAuto, "traefik.toml:3: "},
		{"duplicate yaml key", "traefik.yml", "api: {}\napi: {}\n", KindAuto, "traefik.yml:2: "},
		{"not a mapping", "traefik.yml", "- a\n- b\n", KindAuto, "traefik.yml:1: expected a mapping, got a list"},
		{"plugins not a mapping", "traefik.yml", "experimental:\n  plugins: [demo]\n", KindAuto, "experimental.plugins is not a mapping"},
		{"nothing importable", "traefik.yml", "experimental:\n  plugins:\n    demo:\n      moduleName: github.com/traefik/plugindemo\n", KindAuto,
			"traefik.yml: no plugin can be imported:\n  experimental.plugins.demo: left as it was: it has no version"},
		{"alias with a dot", "traefik.toml", "[experimental.plugins.\"a.b\"]\nmoduleName = \"github.com/x/y\"\nversion = \"v1.0.0\"\n", KindAuto, "cannot be a local plugin alias"},
		{"both kinds", "traefik.yml", "entryPoints: {}\nimage: {tag: v3}\nexperimental: {plugins: {}}\n", KindAuto, "say which with --kind"},
		{"helm toml", "values.toml", "a = 1\n", KindHelm, "Helm values are YAML"},
		{"alias already local", "traefik.yml", "experimental:\n  plugins:\n    demo: {moduleName: github.com/traefik/plugindemo, version: v0.2.2}\n  localPlugins:\n    demo: {moduleName: github.com/traefik/plugindemo}\n",
			KindAuto, "experimental.localPlugins.demo already exists"},
		{"billion laughs", "traefik.yml", laughs, KindAuto, "more than 100000 YAML values (aliases count once per use)"},
		{"too large", "traefik.yml", "a: " + strings.Repeat("x", 1<<20) + "\n", KindAuto, "larger than 1 MiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			im, err := Import(tc.file, []byte(tc.data), tc.kind)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
			if im != nil {
				t.Errorf("a result with the error: %+v", im)
			}
			if err != nil && strings.Count(err.Error(), tc.file) != 1 && tc.name != "nothing importable" {
				t.Errorf("the error does not name the file once: %v", err)
			}
		})
	}
}
