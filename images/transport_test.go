package images

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/xtraefik/xtraefik/internal/testenv"
)

// TestStalledRegistry: a registry that accepts and never answers fails a pull
// and a push with a clear error once each request has stalled three times.
func TestStalledRegistry(t *testing.T) {
	host := testenv.SilentServer(t)
	opts := Options{RequestTimeout: 200 * time.Millisecond}
	// Three attempts of 200ms and 1s+3s of back-off per request, a few requests.
	const bound = 30 * time.Second
	res := assembleSingle(t)
	for _, tt := range []struct {
		name string
		run  func() error
	}{
		{"pull", func() error { _, err := Resolve(ctx(t), mustParse(t, host+"/library/traefik:v3"), opts); return err }},
		{"push", func() error { _, err := Push(ctx(t), host+"/team/traefik:v1", res, opts); return err }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			err := tt.run()
			var stalled *StalledError
			if !errors.As(err, &stalled) || !strings.Contains(err.Error(), "stalled: no answer for 200ms") {
				t.Errorf("error %v, want a stall", err)
			}
			if d := time.Since(start); d > bound {
				t.Errorf("gave up after %s, want within %s", d, bound)
			}
		})
	}
}

// TestAuthErrorsNameTheCredentialSource: a refusal says which auth file was
// read (or that none was) next to what the registry said.
func TestAuthErrorsNameTheCredentialSource(t *testing.T) {
	const user, pass = "alice", "s3cret"
	host := testenv.Registry(t, testenv.RegistryOptions{User: user, Password: pass})
	baseRef := host + "/library/traefik:v3"
	testenv.PushBase(t, baseRef, testenv.BaseOptions{Single: true, Platforms: []v1.Platform{hostPlatform()},
		Auth: &authn.Basic{Username: user, Password: pass}})

	home := t.TempDir()
	for k, v := range map[string]string{"HOME": home, "DOCKER_CONFIG": "", "REGISTRY_AUTH_FILE": "", "XDG_RUNTIME_DIR": "", "XDG_CONFIG_HOME": ""} {
		t.Setenv(k, v)
	}
	writeAuth := func(dir, h, pw string) string {
		os.MkdirAll(dir, 0o700)
		f := filepath.Join(dir, "config.json")
		cfg := fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, h, base64.StdEncoding.EncodeToString([]byte(user+":"+pw)))
		if err := os.WriteFile(f, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	for _, tt := range []struct {
		name  string
		setup func() string // returns the credential source expected in the error
	}{
		{"no auth file", func() string { return "credentials: none: no Docker or Podman auth file found" }},
		{"no entry for the registry", func() string {
			f := writeAuth(filepath.Join(home, ".docker"), "other.example", pass)
			return "credentials: none for " + host + " in " + f
		}},
		{"wrong password", func() string {
			f := writeAuth(filepath.Join(home, ".docker"), host, "wrong")
			return "credentials: for " + host + " from " + f
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			os.RemoveAll(filepath.Join(home, ".docker"))
			want := tt.setup()
			_, err := Resolve(ctx(t), mustParse(t, baseRef), Options{})
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "UNAUTHORIZED") {
				t.Errorf("error %v\nwant %q and the registry's UNAUTHORIZED", err, want)
			}
		})
	}
}
