package source

import (
	"errors"
	"fmt"

	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/plumbing/transport/ssh"
)

// AuthFunc returns the credentials for a remote URL, or nil for anonymous
// access. The URL it receives never carries http(s) userinfo: the Fetcher
// uses such credentials itself, before asking.
type AuthFunc func(url string) (transport.AuthMethod, error)

// Environment variables read by FromEnv.
const (
	EnvToken         = "XTRAEFIK_GIT_TOKEN"
	EnvUsername      = "XTRAEFIK_GIT_USERNAME"
	EnvPassword      = "XTRAEFIK_GIT_PASSWORD"
	EnvSSHKey        = "XTRAEFIK_GIT_SSH_KEY"
	EnvSSHPassphrase = "XTRAEFIK_GIT_SSH_KEY_PASSPHRASE"
)

// tokenUsername is the user name sent with a bare token. GitHub, GitLab and
// Gitea accept any non-empty user name with a token as password.
const tokenUsername = "x-access-token"

// FromEnv returns the default AuthFunc, reading variables through env
// (os.Getenv in production). The rules, first match wins:
//
// http and https remotes:
//  1. user name and password in the URL (https://user:token@host/repo);
//  2. XTRAEFIK_GIT_TOKEN, sent as HTTP basic auth with the user name
//     XTRAEFIK_GIT_USERNAME, or "x-access-token" when that is unset;
//  3. XTRAEFIK_GIT_USERNAME and XTRAEFIK_GIT_PASSWORD, as HTTP basic auth;
//  4. anonymous.
//
// The same credentials go to every http(s) remote of a build: give per-host
// credentials in the URL when plugins come from several hosts.
//
// ssh remotes (ssh://git@host/repo or git@host:repo; the user defaults to git):
//  1. the private key file XTRAEFIK_GIT_SSH_KEY, decrypted with
//     XTRAEFIK_GIT_SSH_KEY_PASSPHRASE when it is encrypted;
//  2. the SSH agent at SSH_AUTH_SOCK.
//
// Host keys are always checked against known_hosts (SSH_KNOWN_HOSTS, a
// list of files, or ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts).
//
// git:// and file:// remotes and local paths take no credentials.
//
// Secrets are never part of an error message or of the returned method's
// String form.
func FromEnv(env func(string) string) AuthFunc {
	return func(url string) (transport.AuthMethod, error) {
		ep, err := transport.NewEndpoint(url)
		if err != nil {
			return nil, fmt.Errorf("parse remote URL: %w", err)
		}
		switch ep.Protocol {
		case "http", "https":
			return httpAuth(ep, env)
		case "ssh":
			return sshAuth(ep, env)
		default:
			return nil, nil
		}
	}
}

func httpAuth(ep *transport.Endpoint, env func(string) string) (transport.AuthMethod, error) {
	if ep.User != "" {
		return &http.BasicAuth{Username: ep.User, Password: ep.Password}, nil
	}
	user := env(EnvUsername)
	if token := env(EnvToken); token != "" {
		if user == "" {
			user = tokenUsername
		}
		return &http.BasicAuth{Username: user, Password: token}, nil
	}
	pass := env(EnvPassword)
	switch {
	case user != "" && pass != "":
		return &http.BasicAuth{Username: user, Password: pass}, nil
	case pass != "":
		return nil, fmt.Errorf("%s is set but %s is not", EnvPassword, EnvUsername)
	}
	return nil, nil
}

func sshAuth(ep *transport.Endpoint, env func(string) string) (transport.AuthMethod, error) {
	user := ep.User
	if user == "" {
		user = ssh.DefaultUsername
	}
	if key := env(EnvSSHKey); key != "" {
		auth, err := ssh.NewPublicKeysFromFile(user, key, env(EnvSSHPassphrase))
		if err != nil {
			// The cause names the file or the key format, never the passphrase.
			return nil, fmt.Errorf("load SSH key %s (%s): %w", key, EnvSSHKey, err)
		}
		return auth, nil
	}
	if env("SSH_AUTH_SOCK") == "" {
		return nil, errors.New("no SSH credentials: set " + EnvSSHKey + " to a private key file or start an SSH agent (SSH_AUTH_SOCK)")
	}
	auth, err := ssh.NewSSHAgentAuth(user)
	if err != nil {
		return nil, fmt.Errorf("SSH agent: %w", err)
	}
	return auth, nil
}
