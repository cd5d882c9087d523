package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xtraefik/xtraefik/internal/testenv"
	"github.com/xtraefik/xtraefik/recipe"
)

const importProvider, importProviderVersion = "github.com/traefik/pluginproviderdemo", "v0.3.0"

// importedTraefikYML is a traefik.yml that downloads two plugins at start-up.
const importedTraefikYML = `# Static configuration of the edge proxies
entryPoints:
  web:
    address: ":8000"
  traefik:
    address: ":9000"
api:
  dashboard: true
  insecure: true
providers:
  file:
    filename: /etc/traefik/dynamic.yml
log:
  level: DEBUG
experimental:
  plugins:
    demo:
      moduleName: github.com/traefik/plugindemo
      version: v0.2.2
    provider:
      moduleName: github.com/traefik/pluginproviderdemo
      version: v0.3.0
`

// TestImportThenBuild: `xtraefik import` of a traefik.yml, of the same in
// TOML and of Helm values writes recipes that lock and build with both
// plugins taken from a module proxy on loopback (checked against a checksum
// database on loopback), and rewritten configurations loading them as
// local plugins; the three recipes give the same image.
func TestImportThenBuild(t *testing.T) {
	w := newWorld(t)
	proxy := testenv.GoProxy(t, append([]string{demoModule + "@" + demoVersion, importProvider + "@" + importProviderVersion},
		testenv.VendoredModules(t, importProvider, importProviderVersion)...)...)
	db := testenv.SumDB(t, proxy)
	w.env["GOPROXY"], w.env["GOSUMDB"] = proxy.URL, db.GOSUMDB
	base := "docker://" + w.registry + "/library/traefik:v3.6"

	inputs := map[string]string{
		"traefik.yml": importedTraefikYML,
		"traefik.toml": `[entryPoints.web]
  address = ":8000"
[log]
  level = "DEBUG"
[experimental.plugins.demo]
  moduleName = "github.com/traefik/plugindemo"
  version = "v0.2.2"
[experimental.plugins.provider]
  moduleName = "github.com/traefik/pluginproviderdemo"
  version = "v0.3.0"
`,
		"values.yaml": `image:
  registry: ` + w.registry + `
  repository: library/traefik
  tag: v3.6
deployment:
  replicas: 2
experimental:
  plugins:
    demo:
      moduleName: github.com/traefik/plugindemo
      version: v0.2.2
additionalArguments:
  - --experimental.plugins.provider.modulename=github.com/traefik/pluginproviderdemo
  - --experimental.plugins.provider.version=v0.3.0
`,
	}
	digests := map[string]string{}
	for file, content := range inputs {
		t.Run(file, func(t *testing.T) {
			dir := filepath.Join(w.dir, strings.ReplaceAll(file, ".", "-"))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			in := filepath.Join(dir, file)
			if err := os.WriteFile(in, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			rp := filepath.Join(dir, "recipe.yaml")
			args := []string{"import", in, "-f", rp}
			if file != "values.yaml" {
				args = append(args, "--base", base)
			}
			out, errOut, err := runImport(args...)
			if err != nil {
				t.Fatalf("xtraefik %s: %v\n%s", strings.Join(args, " "), err, errOut)
			}
			if !strings.Contains(out, "wrote "+rp+": 2 plugin(s)") {
				t.Errorf("import output:\n%s", out)
			}
			r, err := recipe.Load(rp)
			if err != nil {
				t.Fatal(err)
			}
			if r.Plugins["demo"].Version != demoVersion || r.Plugins["provider"].Version != importProviderVersion {
				t.Errorf("recipe plugins: %+v %+v", r.Plugins["demo"], r.Plugins["provider"])
			}
			ext := filepath.Ext(file)
			cfg, err := os.ReadFile(filepath.Join(dir, strings.TrimSuffix(file, ext)+".local"+ext))
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"localPlugins", "github.com/traefik/pluginproviderdemo"} {
				if !strings.Contains(string(cfg), want) {
					t.Errorf("rewritten configuration lacks %s:\n%s", want, cfg)
				}
			}
			w.mustRun("lock", "-f", rp)
			lock, err := recipe.ReadLock(recipe.LockPath(rp))
			if err != nil {
				t.Fatal(err)
			}
			for _, pl := range lock.Plugins {
				if !strings.HasPrefix(pl.Sum, "h1:") || pl.Git != "" {
					t.Errorf("%s: not locked from the module proxy: %+v", pl.Alias, pl)
				}
			}
			digests[file] = digestLine(t, w.mustRun("build", "-f", rp, "--frozen", "--oci-layout", filepath.Join(dir, "layout")))
		})
	}
	// The same plugins on the same base: the same image, whatever the
	// input's format (Helm values name the base without docker://).
	if len(digests) == 3 && (digests["traefik.yml"] != digests["traefik.toml"]) {
		t.Errorf("traefik.yml and traefik.toml gave different images: %v", digests)
	}
}

// TestImportErrors: no plugins, an existing output without --overwrite and
// a malformed file each fail with one clear error; --output json reports
// what could not be carried over.
func TestImportErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	base := "docker.io/library/traefik:v3.6"

	none := write("none.yml", "entryPoints:\n  web:\n    address: :80\n")
	if _, _, err := runImport("import", none, "--base", base, "-f", filepath.Join(dir, "r1.yaml")); err == nil ||
		err.Error() != none+": no plugins to import: the file has no experimental.plugins" {
		t.Errorf("no plugins: %v", err)
	}

	bad := write("bad.yml", "entryPoints:\n  web:\n    address: :80\n  websecure\n    address: :443\n")
	_, _, err := runImport("import", bad, "--base", base, "-f", filepath.Join(dir, "r2.yaml"))
	if err == nil || !strings.HasPrefix(err.Error(), bad+":4: ") || strings.Contains(err.Error(), "\n") {
		t.Errorf("malformed YAML: %v", err)
	}
	badTOML := write("bad.toml", "[log]\nlevel = \"DEBUG\"\nformat = json\n")
	_, _, err = runImport("import", badTOML, "--base", base, "-f", filepath.Join(dir, "r3.yaml"))
	if err == nil || !strings.HasPrefix(err.Error(), badTOML+":3: ") || strings.Contains(err.Error(), "\n") {
		t.Errorf("malformed TOML: %v", err)
	}

	in := write("traefik.yml", importedTraefikYML+"    nover:\n      moduleName: github.com/example/nover\n")
	rp := filepath.Join(dir, "recipe.yaml")
	if err := os.WriteFile(rp, []byte("mine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, err := runImport("import", in, "--base", base, "-f", rp, "-o", "json")
	if err == nil || err.Error() != rp+" exists: pass --overwrite to replace it" {
		t.Errorf("existing recipe: %v", err)
	}
	if data, _ := os.ReadFile(rp); string(data) != "mine\n" {
		t.Errorf("the existing recipe was changed: %q", data)
	}
	var rep struct {
		OK         bool
		Error      string
		NotCarried []string
		Plugins    []struct{ Alias string }
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--output json: %v\n%s", err, out)
	}
	if rep.OK || rep.Error == "" || len(rep.Plugins) != 2 || len(rep.NotCarried) != 1 ||
		!strings.HasPrefix(rep.NotCarried[0], "experimental.plugins.nover: left as it was: it has no version") {
		t.Errorf("JSON report %+v", rep)
	}
	_, errOut, err := runImport("import", in, "--base", base, "-f", rp, "--overwrite")
	if err != nil || !strings.Contains(errOut, "not carried over: experimental.plugins.nover") {
		t.Errorf("--overwrite: %v\n%s", err, errOut)
	}
}

// runImport runs the CLI in-process, as main does; import reads no
// environment and has no cache.
func runImport(args ...string) (stdout, stderr string, err error) {
	var out, errb bytes.Buffer
	root := newRoot(func(string) string { return "" })
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errb)
	err = root.ExecuteContext(context.Background())
	return out.String(), errb.String(), err
}
