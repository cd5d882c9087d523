package source

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/plumbing/transport/ssh"
	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
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

	// OpenSSH's own variables, which FromEnv reads through env as well.
	envAuthSock   = "SSH_AUTH_SOCK"
	envKnownHosts = "SSH_KNOWN_HOSTS"
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
// list of files, or ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts): a host
// missing from them, or with another key, fails the fetch. SSH_AUTH_SOCK and
// SSH_KNOWN_HOSTS are read through env too.
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
		if auth.HostKeyCallbackHelper, err = hostKeys(ep, env); err != nil {
			return nil, err
		}
		return auth, nil
	}
	sock := env(envAuthSock)
	if sock == "" {
		return nil, errors.New("no SSH credentials: set " + EnvSSHKey + " to a private key file or start an SSH agent (" + envAuthSock + ")")
	}
	var auth *ssh.PublicKeysCallback
	if runtime.GOOS == "windows" {
		// go-git finds Pageant or the OpenSSH agent's named pipe itself.
		var err error
		if auth, err = ssh.NewSSHAgentAuth(user); err != nil {
			return nil, fmt.Errorf("SSH agent: %w", err)
		}
	} else {
		// go-git would read SSH_AUTH_SOCK from the process environment;
		// dial the socket env names, as it does. Nothing closes the
		// connection (nor go-git's): the collector does, with the method,
		// once the fetch it was made for is over.
		conn, err := net.Dial("unix", sock)
		if err != nil {
			return nil, fmt.Errorf("SSH agent at %s (%s): %w", sock, envAuthSock, err)
		}
		auth = &ssh.PublicKeysCallback{User: user, Callback: agent.NewClient(conn).Signers}
	}
	var err error
	if auth.HostKeyCallbackHelper, err = hostKeys(ep, env); err != nil {
		return nil, err
	}
	return auth, nil
}

// hostKeys checks the host keys of ep against the known_hosts files that
// SSH_KNOWN_HOSTS lists (read through env, where go-git would read the
// process environment), or OpenSSH's default files. It also offers the
// server only the key types known_hosts has for it, as OpenSSH does, so a
// server with several host keys presents the known one.
func hostKeys(ep *transport.Endpoint, env func(string) string) (ssh.HostKeyCallbackHelper, error) {
	files := filepath.SplitList(env(envKnownHosts))
	if len(files) == 0 {
		// $HOME through env too: a library caller's environment decides.
		if home := env("HOME"); home != "" {
			files = append(files, filepath.Join(home, ".ssh", "known_hosts"))
		}
		files = append(files, "/etc/ssh/ssh_known_hosts")
	}
	list := strings.Join(files, ", ")
	db, err := ssh.NewKnownHostsDb(files...)
	if err != nil {
		return ssh.HostKeyCallbackHelper{}, fmt.Errorf("known_hosts (%s): %w", list, err)
	}
	check := db.HostKeyCallback()
	port := ep.Port
	if port <= 0 {
		port = ssh.DefaultPort
	}
	return ssh.HostKeyCallbackHelper{
		HostKeyCallback: func(host string, remote net.Addr, key gossh.PublicKey) error {
			err := check(host, remote, key)
			var keyErr *knownhosts.KeyError
			var revoked *knownhosts.RevokedError
			switch {
			case errors.As(err, &keyErr) && len(keyErr.Want) > 0:
				w := keyErr.Want[0]
				return fmt.Errorf("host key of %s (%s %s) does not match the one known_hosts has for it at %s:%d: %w",
					host, key.Type(), gossh.FingerprintSHA256(key), w.Filename, w.Line, err)
			case errors.As(err, &keyErr):
				return fmt.Errorf("host key of %s (%s %s) is not in known_hosts (%s): %w",
					host, key.Type(), gossh.FingerprintSHA256(key), list, err)
			case errors.As(err, &revoked):
				return fmt.Errorf("host key of %s (%s) is revoked in known_hosts at %s:%d: %w",
					host, gossh.FingerprintSHA256(key), revoked.Revoked.Filename, revoked.Revoked.Line, err)
			}
			return err
		},
		HostKeyAlgorithms: db.HostKeyAlgorithms(net.JoinHostPort(ep.Host, strconv.Itoa(port))),
	}, nil
}
