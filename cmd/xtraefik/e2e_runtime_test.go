package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/xtraefik/xtraefik/internal/testenv"
)

// TestRuntimeCheck builds images from a real Traefik base (the binary built from
// its module, assembled as Dockerfile.base describes) and runs that Traefik
// through the CLI, in each static configuration mode, traps included.
func TestRuntimeCheck(t *testing.T) {
	w := newWorld(t)
	bin := testenv.TraefikBinary(t, "v3.6.12")
	baseDir := filepath.Join(w.dir, "traefik-base")
	lp, err := layout.Write(baseDir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	img := testenv.TraefikBase(t, bin, testenv.TraefikBaseOptions{Version: "v3.6.12", WorkingDir: "/srv/traefik", User: "nonroot", OCI: true})
	if err := lp.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "v3.6.12"})); err != nil {
		t.Fatal(err)
	}
	base := "oci:" + baseDir + ":v3.6.12"
	// A base that bakes its own configuration file, which would silently defeat
	// every mode unless the recipe replaces it.
	withCfg := testenv.TraefikBase(t, bin, testenv.TraefikBaseOptions{Version: "v3.6.12", OCI: true,
		Files: map[string]string{"/etc/traefik/traefik.yml": "entryPoints:\n  web:\n    address: \":8080\"\n"}})
	if err := lp.AppendImage(withCfg, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "with-config"})); err != nil {
		t.Fatal(err)
	}
	cfgBase := "oci:" + baseDir + ":with-config"
	fails := w.customPlugin(t, testenv.OnlyInTraefikModule, func(r *testenv.Repo) {
		r.Remove("demo.go")
		for name, content := range testenv.OnlyInTraefikFiles() {
			r.WriteFile(name, content)
		}
	})

	tests := []struct {
		name, extra, base string
		args              []string
		// wantErr is "" for a passing check.
		wantErr, wantWarning, wantOutput string
	}{
		{name: "flags", wantOutput: "PASS demo (github.com/traefik/plugindemo)"},
		{name: "flags-only-fails-in-traefik", extra: fails, wantErr: "runtime check failed",
			wantOutput: "FAIL bad (example.test/onlyintraefik)"},
		{name: "file", extra: "staticConfig:\n  mode: file\n  config:\n    log: {level: WARN}\n",
			wantWarning: "Traefik then ignores every command-line flag", wantOutput: "PASS demo"},
		{name: "file-trap-extra-flags", extra: "staticConfig:\n  mode: file\n", args: []string{"--runtime-arg", "--log.level=DEBUG"},
			wantWarning: "Traefik then ignores every command-line flag", wantOutput: "PASS demo"},
		{name: "env", extra: "staticConfig:\n  mode: env\n",
			wantWarning: "as soon as one command-line flag is passed", wantOutput: "PASS demo"},
		{name: "base-config-flags", base: cfgBase, wantErr: "the base image already has a Traefik configuration file (/etc/traefik/traefik.yml): Traefik reads that file and ignores the plugin flags"},
		{name: "base-config-file", base: cfgBase, extra: "staticConfig:\n  mode: file\n", wantErr: "the base image already has a Traefik configuration file (/etc/traefik/traefik.yml)"},
		{name: "base-config-file-replace", base: cfgBase, extra: "staticConfig:\n  mode: file\n  replace: true\n", wantOutput: "PASS demo"},
		{name: "base-config-flags-replace", base: cfgBase, extra: "staticConfig:\n  replace: true\n", wantOutput: "PASS demo",
			wantWarning: "is removed by the recipe's replace option"},
		{name: "env-trap-one-flag", extra: "staticConfig:\n  mode: env\n", args: []string{"--runtime-arg", "--log.level=DEBUG"},
			wantWarning: "as soon as one command-line flag is passed", wantErr: "runtime check failed", wantOutput: "FAIL demo"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := base
			if tt.base != "" {
				b = tt.base
			}
			rp := w.writeRecipe(tt.name+".yaml", w.demoRecipe(b, "")+tt.extra)
			if strings.HasPrefix(tt.extra, "  bad:") {
				rp = w.writeRecipe(tt.name+".yaml", w.demoRecipe(b, tt.extra))
			}
			out := filepath.Join(w.dir, tt.name+"-out")
			args := append([]string{"build", "-f", rp, "--runtime-check", "--oci-layout", out}, tt.args...)
			stdout, stderr, err := w.run(args...)
			all := stdout + stderr
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("build: %v\n%s", err, all)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("build error = %v, want %q\n%s", err, tt.wantErr, all)
			}
			if !strings.Contains(all, tt.wantOutput) {
				t.Errorf("output lacks %q:\n%s", tt.wantOutput, all)
			}
			if !strings.Contains(stderr, tt.wantWarning) {
				t.Errorf("build did not warn %q:\n%s", tt.wantWarning, stderr)
			}
			if tt.name == "flags-only-fails-in-traefik" && !strings.Contains(all, "onlyintraefik refuses middleware") {
				t.Errorf("the failure does not quote Traefik:\n%s", all)
			}
			if _, err := os.Stat(out); tt.wantErr != "" && err == nil {
				t.Errorf("a failed runtime check left %s", out)
			}
		})
	}
}
