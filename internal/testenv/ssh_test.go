package testenv

import (
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// sshClient runs OpenSSH's ssh with key, trusting only knownHosts, and no
// user configuration or agent.
func sshClient(t *testing.T, key SSHKey, knownHosts string) string {
	t.Helper()
	ssh := Tool(t, "ssh")
	return strings.Join([]string{ssh, "-F", "/dev/null", "-i", key.Private,
		"-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o", "BatchMode=yes",
		"-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=" + knownHosts,
		"-o", "GlobalKnownHostsFile=/dev/null"}, " ")
}

// gitOverSSH runs the real git client over ssh with key.
func gitOverSSH(t *testing.T, key SSHKey, knownHosts string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(gitBinary(t), args...)
	cmd.Env = append(gitEnv(t.TempDir()), "GIT_SSH_COMMAND="+sshClient(t, key, knownHosts), "SSH_AUTH_SOCK=")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestSSHServerServesGit(t *testing.T) {
	root := t.TempDir()
	r := buildSample(t, filepath.Join(root, "example.com", "plugin"))
	key, stranger := NewSSHKey(t, ""), NewSSHKey(t, "")
	srv := StartSSHServer(t, root, SSHOptions{AuthorizedKeys: []string{key.Public}})
	if !strings.HasPrefix(srv.URL, "ssh://"+srv.User+"@127.0.0.1:") || !strings.HasSuffix(srv.URL, "/") {
		t.Fatalf("URL = %q", srv.URL)
	}
	if !strings.HasPrefix(srv.KnownHostsLine, "["+"127.0.0.1]:") || !strings.Contains(srv.KnownHostsLine, " ssh-ed25519 ") {
		t.Fatalf("KnownHostsLine = %q", srv.KnownHostsLine)
	}
	known := srv.WriteKnownHosts(t)
	u := srv.URL + "example.com/plugin"

	out, err := gitOverSSH(t, key, known, "ls-remote", u)
	if err != nil {
		t.Fatalf("git ls-remote %s: %v\n%s\nsshd:\n%s", u, err, out, srv.Log())
	}
	if want := r.Rev("HEAD") + "\trefs/heads/main"; !strings.Contains(out, want) {
		t.Errorf("ls-remote lacks %q:\n%s", want, out)
	}

	// The key reaches git-shell only: no shell commands.
	ssh := exec.Command("sh", "-c", sshClient(t, key, known)+` -p "$1" "$2" 'echo pwned'`, "sh",
		strings.TrimPrefix(srv.Addr, "127.0.0.1:"), srv.User+"@127.0.0.1")
	if out, err := ssh.CombinedOutput(); err == nil || !strings.Contains(string(out), "fatal: unrecognized command 'echo pwned'") {
		t.Errorf("a shell command over ssh: err %v, want git-shell's refusal:\n%s", err, out)
	}

	// Another key is refused; so is a host key other than the server's.
	if out, err := gitOverSSH(t, stranger, known, "ls-remote", u); err == nil || !strings.Contains(out, "Permission denied") {
		t.Errorf("unauthorized key: err %v, output:\n%s", err, out)
	}
	other := WriteKnownHosts(t, srv.HostPattern+" "+sshKeyField(NewSSHKey(t, "").Public))
	if out, err := gitOverSSH(t, key, other, "ls-remote", u); err == nil || !strings.Contains(out, "HOST IDENTIFICATION HAS CHANGED") {
		t.Errorf("wrong host key: err %v, output:\n%s", err, out)
	}

	srv.Stop()
	if c, err := net.Dial("tcp", srv.Addr); err == nil {
		c.Close()
		t.Errorf("sshd still accepting on %s after Stop", srv.Addr)
	}
}

func TestSSHAgent(t *testing.T) {
	a := StartSSHAgent(t)
	if code, out := a.run("-l"); code != 1 {
		t.Fatalf("fresh agent: ssh-add -l exit %d, want 1 (no identities): %s", code, out)
	}
	key := NewSSHKey(t, "")
	a.Add(t, key)
	code, out := a.run("-L")
	if code != 0 || !strings.Contains(out, sshKeyField(key.Public)) {
		t.Fatalf("agent keys (exit %d) lack %s:\n%s", code, key.Public, out)
	}
	if code, out := a.run(NewSSHKey(t, "secret").Private); code == 0 {
		t.Errorf("ssh-add of an encrypted key succeeded without a passphrase: %s", out)
	}
}
