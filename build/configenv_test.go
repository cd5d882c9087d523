package build

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/xtraefik/xtraefik/internal/testenv"
	"github.com/xtraefik/xtraefik/recipe"
)

// TestConfigIsTheOnlyInput: a library caller's Config.Env decides every
// location a session reads and writes. The process environment names
// other, poisoned ones — a Docker config and an auth file that do not
// parse, a host key others may read (LoadKey refuses it) — and nothing
// there is read (the build would fail or warn) or written (the tree is the
// same after). Registry credentials come from Env's DOCKER_CONFIG (the
// registry refuses anonymous pulls and pushes), the cache from Env's
// XTRAEFIK_CACHE, the host key from Env's HOME.
func TestConfigIsTheOnlyInput(t *testing.T) {
	const user, pass = "team", "s3cret"
	reg := testenv.Registry(t, testenv.RegistryOptions{User: user, Password: pass})
	testenv.PushBase(t, reg+"/library/traefik:v3.6", testenv.BaseOptions{OCI: true, Auth: &authn.Basic{Username: user, Password: pass}})

	poison := t.TempDir()
	for k, rel := range map[string]string{"HOME": "home", "XDG_CONFIG_HOME": "config", "XDG_CACHE_HOME": "cache",
		"XDG_RUNTIME_DIR": "run", "DOCKER_CONFIG": "docker", "XTRAEFIK_CACHE": "xtraefik-cache", "REGISTRY_AUTH_FILE": "auth.json",
		"SSH_KNOWN_HOSTS": "known_hosts"} {
		t.Setenv(k, filepath.Join(poison, rel))
	}
	for file, content := range map[string]string{
		"home/.docker/config.json":                "{not json",
		"docker/config.json":                      "{not json",
		"auth.json":                               "{not json",
		"run/containers/auth.json":                "{not json",
		"config/containers/auth.json":             "{not json",
		"config/xtraefik/verdict-cache.key":       "0123456789abcdef0123456789abcdef",
		"home/.config/xtraefik/verdict-cache.key": "0123456789abcdef0123456789abcdef",
	} {
		p := filepath.Join(poison, file)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		// 0644: a key others may read is refused, with a warning.
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	before := snapshot(t, poison)

	good := t.TempDir()
	docker := filepath.Join(good, "docker")
	if err := os.MkdirAll(docker, 0o700); err != nil {
		t.Fatal(err)
	}
	auth := fmt.Sprintf(`{"auths":{%q:{"username":%q,"password":%q}}}`, reg, user, pass)
	if err := os.WriteFile(filepath.Join(docker, "config.json"), []byte(auth), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"HOME":           filepath.Join(good, "home"),
		"DOCKER_CONFIG":  docker,
		"XTRAEFIK_CACHE": filepath.Join(good, "cache"),
		"GOPROXY":        "off",
	}
	plugin := filepath.Join(testenv.FixturesDir(t), "vendored-ok")
	r := &recipe.Recipe{Base: reg + "/library/traefik:v3.6",
		Plugins: map[string]*recipe.Plugin{"team": {Module: "example.com/fixtures/vendored-ok", Path: plugin}}}
	s, err := Open(Config{Recipe: r, Env: func(k string) string { return env[k] }})
	if err != nil {
		t.Fatal(err)
	}
	push := reg + "/team/traefik:v1"
	res, err := s.Build(context.Background(), BuildRequest{Outputs: Outputs{Push: []string{push}}})
	if err != nil {
		t.Fatalf("build: %v (warnings %q)", err, res.Report.Warnings)
	}
	for _, w := range res.Report.Warnings {
		if strings.Contains(w, "caches not used") {
			t.Errorf("warning: %s", w)
		}
	}
	// Written where Env says: the host key under its HOME, the verdicts
	// and blobs under its XTRAEFIK_CACHE.
	for _, p := range []string{"home/.config/xtraefik/verdict-cache.key", "cache/verdicts", "cache/blobs"} {
		if _, err := os.Stat(filepath.Join(good, p)); err != nil {
			t.Errorf("not written where Config.Env says: %v", err)
		}
	}
	if after := snapshot(t, poison); after != before {
		t.Errorf("the process environment's locations changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	ref, err := name.ParseReference(push)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Head(ref, remote.WithAuth(&authn.Basic{Username: user, Password: pass}))
	if err != nil || desc.Digest != res.Image.Digest {
		t.Errorf("pushed %v (%v), built %s", desc, err, res.Image.Digest)
	}

	// Config.KeyFile names the key in place of the default.
	keyFile := filepath.Join(good, "keys", "host.key")
	s, err = Open(Config{Recipe: r, KeyFile: keyFile, Env: func(k string) string { return env[k] }})
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := s.Verify(context.Background(), VerifyRequest{}); err != nil {
		t.Fatalf("verify: %v (warnings %q)", err, rep.Warnings)
	}
	if _, err := os.Stat(keyFile); err != nil {
		t.Errorf("Config.KeyFile not used: %v", err)
	}
	if after := snapshot(t, poison); after != before {
		t.Errorf("the process environment's locations changed:\n%s", after)
	}
}

// snapshot lists every entry under dir with its mode, size and time.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %s %d %d\n", p, info.Mode(), info.Size(), info.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}
