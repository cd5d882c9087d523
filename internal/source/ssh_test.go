package source

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/xtraefik/xtraefik/internal/testenv"
)

// sshDemo serves a plugindemo repository under root over ssh to the holders
// of keys and returns it with its ssh URL.
func sshDemo(t *testing.T, root string, keys ...testenv.SSHKey) (*testenv.Plugin, *testenv.SSHServer, string) {
	t.Helper()
	p := testenv.PluginRepo(t, root, demoModule, demoVersion)
	var pubs []string
	for _, k := range keys {
		pubs = append(pubs, k.Public)
	}
	srv := testenv.StartSSHServer(t, root, testenv.SSHOptions{AuthorizedKeys: pubs})
	return p, srv, srv.URL + p.Path
}

// mapEnv is the env of FromEnv, from m only: the process environment (a
// developer's SSH_AUTH_SOCK, ~/.ssh) must not decide a test.
func mapEnv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// fetchTag resolves the demo's release tag over u and reads its tree,
// checking both against what the repository holds.
func fetchTag(t *testing.T, p *testenv.Plugin, u string, env map[string]string) (string, error) {
	t.Helper()
	f, err := New(Options{CacheDir: t.TempDir(), Auth: FromEnv(mapEnv(env))})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	res, err := f.Resolve(ctx, u, demoVersion)
	if err != nil {
		return "", err
	}
	if want := (Resolved{p.ReleaseCommit, KindTag, "refs/tags/" + demoVersion}); res != want {
		t.Fatalf("Resolve(%s) = %+v, want %+v", demoVersion, res, want)
	}
	tree, err := f.Tree(ctx, u, res.Commit)
	if err != nil {
		return "", err
	}
	if tree.Commit != p.ReleaseCommit {
		t.Fatalf("tree of commit %s, want %s", tree.Commit, p.ReleaseCommit)
	}
	return mustHash(t, tree.Files), nil
}

// TestSSH fetches over a real sshd with each way FromEnv finds a key, and
// compares the tree with the same repository fetched over git://.
func TestSSH(t *testing.T) {
	plain := testenv.NewSSHKey(t, "")
	const passphrase = "correct horse battery staple"
	locked := testenv.NewSSHKey(t, passphrase)
	root := t.TempDir()
	p, srv, u := sshDemo(t, root, plain, locked)
	known := srv.WriteKnownHosts(t)

	viaGit, err := fetchTag(t, p, testenv.GitDaemon(t, root)+p.Path, nil)
	if err != nil {
		t.Fatalf("over git://: %v", err)
	}
	if want := moduleHash(t); viaGit != want {
		t.Fatalf("tree over git:// hashes to %s, the module to %s", viaGit, want)
	}

	agent := testenv.StartSSHAgent(t)
	agent.Add(t, plain)

	for _, tc := range []struct {
		name string
		env  map[string]string
	}{
		{"key file", map[string]string{EnvSSHKey: plain.Private, "SSH_KNOWN_HOSTS": known}},
		{"encrypted key file", map[string]string{EnvSSHKey: locked.Private, EnvSSHPassphrase: passphrase, "SSH_KNOWN_HOSTS": known}},
		// No key file: the agent, found through env only, holds the key.
		{"agent", map[string]string{"SSH_AUTH_SOCK": agent.Sock, "SSH_KNOWN_HOSTS": known}},
		{"key file wins over agent", map[string]string{EnvSSHKey: locked.Private, EnvSSHPassphrase: passphrase, "SSH_AUTH_SOCK": "/nonexistent/agent.sock", "SSH_KNOWN_HOSTS": known}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := fetchTag(t, p, u, tc.env)
			if err != nil {
				t.Fatalf("over ssh: %v\nsshd log:\n%s", err, srv.Log())
			}
			if got != viaGit {
				t.Errorf("tree over ssh hashes to %s, over git:// to %s", got, viaGit)
			}
		})
	}
}

// TestSSHErrors checks that a refused host key or client key fails the
// fetch with an error that says which, and never shows the passphrase.
func TestSSHErrors(t *testing.T) {
	authorized := testenv.NewSSHKey(t, "")
	const passphrase = "hunter2-but-longer"
	stranger := testenv.NewSSHKey(t, passphrase)
	p, srv, u := sshDemo(t, t.TempDir(), authorized)
	known := srv.WriteKnownHosts(t)
	impostor := testenv.NewSSHKey(t, "")
	// The control: this server, key and known_hosts do work, so each case
	// below fails for the one thing it changes.
	if _, err := fetchTag(t, p, u, map[string]string{EnvSSHKey: authorized.Private, "SSH_KNOWN_HOSTS": known}); err != nil {
		t.Fatalf("control fetch: %v\nsshd log:\n%s", err, srv.Log())
	}
	hostKeyOf := func(k testenv.SSHKey) string {
		f := strings.Fields(k.Public)
		return f[0] + " " + f[1]
	}

	for _, tc := range []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"host key mismatch",
			map[string]string{EnvSSHKey: authorized.Private, "SSH_KNOWN_HOSTS": testenv.WriteKnownHosts(t, srv.HostPattern+" "+hostKeyOf(impostor))},
			[]string{"host key", srv.Addr, "does not match", "known_hosts"}},
		{"host unknown",
			map[string]string{EnvSSHKey: authorized.Private, "SSH_KNOWN_HOSTS": testenv.WriteKnownHosts(t, "[127.0.0.1]:1 "+srv.HostKey)},
			[]string{"host key", srv.Addr, "not in known_hosts"}},
		{"key not authorized",
			map[string]string{EnvSSHKey: stranger.Private, EnvSSHPassphrase: passphrase, "SSH_KNOWN_HOSTS": known},
			[]string{u, "unable to authenticate", "publickey", "ssh keys come from XTRAEFIK_GIT_SSH_KEY"}},
		{"agent without the key",
			map[string]string{"SSH_AUTH_SOCK": testenv.StartSSHAgent(t).Sock, "SSH_KNOWN_HOSTS": known},
			[]string{u, "unable to authenticate"}},
		{"agent not running",
			map[string]string{"SSH_AUTH_SOCK": "/nonexistent/agent.sock", "SSH_KNOWN_HOSTS": known},
			[]string{"SSH agent", "/nonexistent/agent.sock"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := fetchTag(t, p, u, tc.env)
			if err == nil {
				t.Fatalf("fetch succeeded\nsshd log:\n%s", srv.Log())
			}
			t.Log(err)
			if errors.Is(err, ErrNotFound) {
				t.Errorf("errors.Is(ErrNotFound) for %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), passphrase) {
				t.Errorf("error %q shows the passphrase", err)
			}
		})
	}
}
