package source

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"
)

// writeKey writes a fresh ed25519 private key, encrypted when passphrase is set.
func writeKey(t *testing.T, passphrase string) string {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var block *pem.Block
	if passphrase == "" {
		block, err = ssh.MarshalPrivateKey(priv, "test")
	} else {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "test", []byte(passphrase))
	}
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(p, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFromEnv(t *testing.T) {
	plainKey := writeKey(t, "")
	lockedKey := writeKey(t, "open-sesame")
	known := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(known, []byte("example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	basic := func(u, p string) transport.AuthMethod { return &http.BasicAuth{Username: u, Password: p} }
	for _, tc := range []struct {
		name string
		url  string
		env  map[string]string
		want transport.AuthMethod // for http; ssh cases check the user below
		user string               // expected ssh user
		err  string
	}{
		{"anonymous https", "https://example.com/p", nil, nil, "", ""},
		{"userinfo wins", "https://bob:pw@example.com/p", map[string]string{EnvToken: "t0k3n-s3cret"}, basic("bob", "pw"), "", ""},
		{"token", "https://example.com/p", map[string]string{EnvToken: "t0k3n-s3cret", EnvPassword: "ignored"}, basic("x-access-token", "t0k3n-s3cret"), "", ""},
		{"token with user", "http://example.com/p", map[string]string{EnvToken: "t0k3n-s3cret", EnvUsername: "ci"}, basic("ci", "t0k3n-s3cret"), "", ""},
		{"user and password", "https://example.com/p", map[string]string{EnvUsername: "ci", EnvPassword: "pw"}, basic("ci", "pw"), "", ""},
		{"user alone", "https://example.com/p", map[string]string{EnvUsername: "ci"}, nil, "", ""},
		{"password alone", "https://example.com/p", map[string]string{EnvPassword: "pw"}, nil, "", EnvUsername + " is not"},
		{"git protocol", "git://example.com/p", map[string]string{EnvToken: "t0k3n-s3cret"}, nil, "", ""},
		{"local path", "/srv/git/p", map[string]string{EnvToken: "t0k3n-s3cret"}, nil, "", ""},
		{"file", "file:///srv/git/p", map[string]string{EnvToken: "t0k3n-s3cret"}, nil, "", ""},
		{"ssh key", "ssh://example.com/p", map[string]string{EnvSSHKey: plainKey, envKnownHosts: known}, nil, "git", ""},
		{"ssh key scp-like", "deploy@example.com:p.git", map[string]string{EnvSSHKey: plainKey, envKnownHosts: known}, nil, "deploy", ""},
		{"ssh encrypted key", "ssh://git@example.com/p", map[string]string{EnvSSHKey: lockedKey, EnvSSHPassphrase: "open-sesame", envKnownHosts: known}, nil, "git", ""},
		{"ssh no known_hosts", "ssh://git@example.com/p", map[string]string{EnvSSHKey: plainKey, envKnownHosts: "/nonexistent/known_hosts"}, nil, "", "known_hosts (/nonexistent/known_hosts): unable to find"},
		{"ssh agent not running", "ssh://git@example.com/p", map[string]string{envAuthSock: "/nonexistent/agent.sock", envKnownHosts: known}, nil, "", "SSH agent at /nonexistent/agent.sock (SSH_AUTH_SOCK)"},
		{"ssh wrong passphrase", "ssh://git@example.com/p", map[string]string{EnvSSHKey: lockedKey, EnvSSHPassphrase: "not-it"}, nil, "", "load SSH key " + lockedKey},
		{"ssh missing key", "ssh://git@example.com/p", map[string]string{EnvSSHKey: "/nonexistent/key"}, nil, "", "/nonexistent/key"},
		{"ssh nothing", "ssh://git@example.com/p", nil, nil, "", "no SSH credentials"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			auth, err := FromEnv(func(k string) string { return tc.env[k] })(tc.url)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				for _, secret := range []string{"not-it", "open-sesame", "pw"} {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("error %q leaks %q", err, secret)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.user != "" {
				pk, ok := auth.(*gitssh.PublicKeys)
				if !ok {
					t.Fatalf("auth %T, want ssh public keys", auth)
				}
				if pk.User != tc.user {
					t.Errorf("ssh user %q, want %q", pk.User, tc.user)
				}
				// known_hosts from env, with the key types it lists for the host.
				if pk.HostKeyCallback == nil || fmt.Sprint(pk.HostKeyAlgorithms) != "[ssh-ed25519]" {
					t.Errorf("host key check %v, algorithms %v, want known_hosts's ed25519", pk.HostKeyCallback != nil, pk.HostKeyAlgorithms)
				}
				return
			}
			if fmt.Sprint(auth) != fmt.Sprint(tc.want) {
				t.Errorf("auth %v, want %v", auth, tc.want)
			}
			if b, ok := auth.(*http.BasicAuth); ok {
				if w := tc.want.(*http.BasicAuth); *b != *w {
					t.Errorf("basic auth %+v, want %+v", *b, *w)
				}
				if p := b.Password; p != "" && strings.Contains(b.String(), p) {
					t.Errorf("String() shows the password: %s", b)
				}
			}
		})
	}
}
