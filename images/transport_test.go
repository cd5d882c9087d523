package images

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

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

// TestRegistryErrorsReadAsSentences: what a registry refuses is said in a
// sentence that names the registry and what it lacks or refuses, with the
// registry's code and message but without its details map or request URL —
// against Distribution, with and without htpasswd, and a registry that
// rate-limits or denies.
func TestRegistryErrorsReadAsSentences(t *testing.T) {
	for k, v := range map[string]string{"HOME": t.TempDir(), "DOCKER_CONFIG": "", "REGISTRY_AUTH_FILE": "", "XDG_RUNTIME_DIR": "", "XDG_CONFIG_HOME": ""} {
		t.Setenv(k, v)
	}
	open := testenv.Registry(t, testenv.RegistryOptions{})
	testenv.PushBase(t, open+"/library/traefik:v3", testenv.BaseOptions{Single: true, Platforms: []v1.Platform{hostPlatform()}})
	const user, pass = "alice", "s3cret"
	closed := testenv.Registry(t, testenv.RegistryOptions{User: user, Password: pass})
	limited := refusingRegistry(t, http.StatusTooManyRequests, `{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit.","detail":{"limit":100}}]}`)
	denied := refusingRegistry(t, http.StatusForbidden, `{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}`)
	unknown := refusingRegistry(t, http.StatusNotFound, `{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry","detail":{"name":"nothing/here"}}]}`)
	missing := "sha256:" + strings.Repeat("0", 64)

	for _, tc := range []struct {
		name, ref string
		opts      Options
		want      string
	}{
		{"missing tag", open + "/library/traefik:v3.9", Options{},
			"base image " + open + "/library/traefik:v3.9 not found: the registry " + open + " has no tag v3.9 in library/traefik (MANIFEST_UNKNOWN: manifest unknown)"},
		{"missing tag through a mirror", "docker.io/library/traefik:v3.9", Options{Mirrors: []Mirror{{Prefix: "docker.io", Location: open}}},
			"not found: the registry " + open + " has no tag v3.9 in library/traefik (MANIFEST_UNKNOWN: manifest unknown)"},
		{"missing repository", unknown + "/nothing/here:v3", Options{},
			"base image " + unknown + "/nothing/here:v3 not found: the registry " + unknown + " has no repository nothing/here (NAME_UNKNOWN: repository name not known to registry)"},
		{"missing digest", open + "/library/traefik@" + missing, Options{},
			"not found: the registry " + open + " has no manifest " + missing + " in library/traefik (MANIFEST_UNKNOWN: manifest unknown)"},
		{"not authorized", closed + "/library/traefik:v3", Options{},
			"base image " + closed + "/library/traefik:v3: not authorized by " + closed + ": log in with `docker login " + closed + "`"},
		{"rate limited", limited + "/library/traefik:v3", Options{},
			"base image " + limited + "/library/traefik:v3: the registry " + limited + " refuses more requests for now (rate limit): try again later, log in (Docker Hub allows logged-in users more pulls), or pull through a mirror (TOOMANYREQUESTS: You have reached your pull rate limit.)"},
		{"denied", denied + "/library/traefik:v3", Options{},
			"base image " + denied + "/library/traefik:v3: access to library/traefik denied by " + denied + ": the credentials sent may not use it; log in as a user who may (credentials: none: no Docker or Podman auth file found; the registry said DENIED: requested access to the resource is denied)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Resolve(ctx(t), mustParse(t, tc.ref), tc.opts)
			if err == nil {
				t.Fatal("resolved")
			}
			t.Log(err)
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error\n  %v\nwant it to contain\n  %s", err, tc.want)
			}
			for _, noise := range []string{"map[", "GET http", "HEAD http", "; map"} {
				if strings.Contains(err.Error(), noise) {
					t.Errorf("error %q still holds %q", err, noise)
				}
			}
			var terr *transport.Error
			if !errors.As(err, &terr) {
				t.Errorf("error %v lost the registry's *transport.Error", err)
			}
		})
	}
}

// refusingRegistry answers /v2/ and then every request with status and the
// registry error document body.
func refusingRegistry(t *testing.T, status int, body string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/" {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}
