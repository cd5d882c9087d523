package testenv

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// SSHOptions configure SSHServer.
type SSHOptions struct {
	// AuthorizedKeys are the public keys allowed to log in, one OpenSSH
	// public key line each (the content of a .pub file). At least one.
	AuthorizedKeys []string
}

// SSHServer is OpenSSH's sshd serving git over ssh on 127.0.0.1 for the
// duration of a test. Every authorized key is restricted to git-shell, the
// way git hosts restrict theirs: it can fetch (and push), not run a shell.
type SSHServer struct {
	// URL is the base URL with a trailing slash,
	// ssh://<user>@127.0.0.1:<port><absolute root>/: append a repository's
	// path relative to root, as with GitDaemon.
	URL string
	// Addr is 127.0.0.1:<port>.
	Addr string
	// User is the login user: the one running the test, since only root
	// can switch users and the repositories belong to the test's user.
	User string
	// HostKey is the server's public host key ("ssh-ed25519 AAAA...").
	HostKey string
	// HostPattern is how known_hosts names the server: "[127.0.0.1]:<port>".
	HostPattern string
	// KnownHostsLine is HostPattern + " " + HostKey.
	KnownHostsLine string

	stop   func()
	once   sync.Once
	stderr *gitLockedBuffer
}

// Stop shuts sshd down before the test ends; it is also called on cleanup.
func (s *SSHServer) Stop() { s.once.Do(s.stop) }

// Log is what sshd logged so far (LogLevel VERBOSE): accepted and refused
// keys, with their fingerprints. Useful in failure messages.
func (s *SSHServer) Log() string { return s.stderr.String() }

// WriteKnownHosts writes a known_hosts file that trusts this server's host
// key and returns its path.
func (s *SSHServer) WriteKnownHosts(t testing.TB) string {
	t.Helper()
	return WriteKnownHosts(t, s.KnownHostsLine)
}

// WriteKnownHosts writes lines as a known_hosts file in a temporary
// directory and returns its path.
func WriteKnownHosts(t testing.TB, lines ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatalf("write known_hosts: %v", err)
	}
	return p
}

// StartSSHServer starts sshd on a free 127.0.0.1 port, serving the git
// repositories under root (GitDaemon's layout) over ssh to the holders of
// opts.AuthorizedKeys. It uses a host key and configuration generated under
// t.TempDir, never the system's; sshd is killed on cleanup. As root it needs
// /run/sshd, which it creates. A missing sshd (Debian: openssh-server),
// ssh-keygen or git-shell skips the test, or fails it under XTRAEFIK_E2E.
func StartSSHServer(t testing.TB, root string, opts SSHOptions) *SSHServer {
	t.Helper()
	sshd := sshdBinary(t)
	keygen := Tool(t, "ssh-keygen")
	gitShell := Tool(t, "git-shell")
	if len(opts.AuthorizedKeys) == 0 {
		t.Fatal("SSHServer: no authorized keys")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		t.Fatalf("SSHServer: %v", err)
	}
	u, err := user.Current()
	if err != nil {
		t.Fatalf("SSHServer: current user: %v", err)
	}
	if os.Geteuid() == 0 {
		// Privilege separation chroots into this empty directory.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			t.Fatalf("SSHServer: create the privilege separation directory: %v", err)
		}
	}

	dir := t.TempDir()
	hostKey := filepath.Join(dir, "ssh_host_ed25519_key")
	if out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-N", "", "-C", "xtraefik-test-host", "-f", hostKey).CombinedOutput(); err != nil {
		t.Fatalf("SSHServer: ssh-keygen host key: %v: %s", err, out)
	}
	hostPub, err := os.ReadFile(hostKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	var authorized strings.Builder
	for _, k := range opts.AuthorizedKeys {
		k = strings.TrimSpace(k)
		if k == "" || strings.ContainsAny(k, "\n\r") {
			t.Fatalf("SSHServer: authorized key %q is not one public key line", k)
		}
		// restrict: no pty, forwarding or user rc; the command runs through
		// the login shell, so the client's request reaches git-shell as one
		// argument, which git-shell only accepts for git's pack commands.
		fmt.Fprintf(&authorized, "restrict,command=\"%s -c \\\"$SSH_ORIGINAL_COMMAND\\\"\" %s\n", gitShell, k)
	}
	authKeys := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authKeys, []byte(authorized.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	var lastErr error
	// Picking a free port and binding it are two steps; retry if someone
	// else took the port in between.
	for attempt := 0; attempt < 5; attempt++ {
		port, err := gitFreePort()
		if err != nil {
			t.Fatalf("SSHServer: find a free port: %v", err)
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		config := filepath.Join(dir, "sshd_config")
		if err := os.WriteFile(config, []byte(sshdConfig(addr, dir, hostKey, authKeys, u.Username)), 0o600); err != nil {
			t.Fatal(err)
		}
		srv, err := startSSHD(sshd, config, addr)
		if err != nil {
			lastErr = err
			continue
		}
		t.Cleanup(srv.Stop)
		srv.User = u.Username
		srv.URL = "ssh://" + u.Username + "@" + addr + filepath.ToSlash(abs) + "/"
		srv.HostKey = sshKeyField(string(hostPub))
		srv.HostPattern = "[127.0.0.1]:" + strconv.Itoa(port)
		srv.KnownHostsLine = srv.HostPattern + " " + srv.HostKey
		return srv
	}
	t.Fatalf("start sshd: %v", lastErr)
	return nil
}

// sshdConfig is a complete sshd_config: nothing comes from /etc/ssh.
func sshdConfig(addr, dir, hostKey, authKeys, login string) string {
	return strings.Join([]string{
		"ListenAddress " + addr,
		"HostKey " + hostKey,
		"PidFile " + filepath.Join(dir, "sshd.pid"),
		"AuthorizedKeysFile " + authKeys,
		"AllowUsers " + login,
		"PubkeyAuthentication yes",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"HostbasedAuthentication no",
		"PermitRootLogin prohibit-password",
		"PermitEmptyPasswords no",
		"UsePAM no",
		// The key files live in temporary directories sshd would find
		// too open.
		"StrictModes no",
		"PermitUserEnvironment no",
		"AllowTcpForwarding no",
		"AllowAgentForwarding no",
		"X11Forwarding no",
		"PermitTTY no",
		"PrintMotd no",
		"PrintLastLog no",
		"UseDNS no",
		"MaxStartups 64",
		"LogLevel VERBOSE",
		"",
	}, "\n")
}

func startSSHD(sshd, config, addr string) (*SSHServer, error) {
	// -D: stay in the foreground (the test owns the process); -e: log to
	// stderr, not syslog.
	cmd := exec.Command(sshd, "-D", "-e", "-f", config)
	stderr := new(gitLockedBuffer)
	cmd.Stderr = stderr
	stop, err := startServer(cmd, stderr, "sshd on "+addr, func() bool { return sshBanner(addr) })
	if err != nil {
		return nil, err
	}
	return &SSHServer{Addr: addr, stop: stop, stderr: stderr}, nil
}

// sshBanner reports whether an SSH server greets on addr (another program
// could hold the port).
func sshBanner(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "SSH-2.0-OpenSSH")
}

// sshdBinary returns sshd's absolute path (sshd refuses to re-execute
// itself otherwise), or skips/fails the test as the package doc says.
func sshdBinary(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat("/usr/sbin/sshd"); err == nil {
		return "/usr/sbin/sshd"
	}
	p, err := exec.LookPath("sshd")
	if err == nil {
		p, err = filepath.Abs(p)
	}
	if err != nil {
		missing(t, "sshd (Debian package openssh-server)", err)
	}
	return p
}

// sshKeyField returns "type base64" of a public key line, without its comment.
func sshKeyField(line string) string {
	f := strings.Fields(line)
	if len(f) < 2 {
		return strings.TrimSpace(line)
	}
	return f[0] + " " + f[1]
}

// SSHKey is a key pair made by ssh-keygen.
type SSHKey struct {
	// Private is the private key file (OpenSSH format, mode 0600).
	Private string
	// Public is the public key line ("ssh-ed25519 AAAA... comment").
	Public string
}

// NewSSHKey generates an ed25519 key pair with ssh-keygen in a temporary
// directory, encrypted with passphrase when it is not empty.
func NewSSHKey(t testing.TB, passphrase string) SSHKey {
	t.Helper()
	keygen := Tool(t, "ssh-keygen")
	p := filepath.Join(t.TempDir(), "id_ed25519")
	if out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-N", passphrase, "-C", "xtraefik-test", "-f", p).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	pub, err := os.ReadFile(p + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return SSHKey{Private: p, Public: strings.TrimSpace(string(pub))}
}

// SSHAgent is a running OpenSSH ssh-agent, killed on cleanup.
type SSHAgent struct {
	// Sock is the agent's socket: the value for SSH_AUTH_SOCK.
	Sock string

	sshAdd string
}

// StartSSHAgent starts ssh-agent, with no keys, listening on a socket in a
// temporary directory.
func StartSSHAgent(t testing.TB) *SSHAgent {
	t.Helper()
	agentBin := Tool(t, "ssh-agent")
	sshAdd := Tool(t, "ssh-add")
	dir := t.TempDir()
	// A unix socket path has a 108-byte limit; long test names make long
	// temporary directories.
	if len(dir) > 80 {
		d, err := os.MkdirTemp("", "agent")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(d) })
		dir = d
	}
	sock := filepath.Join(dir, "agent.sock")
	// -D: foreground, so that the test owns (and kills) the process.
	cmd := exec.Command(agentBin, "-D", "-a", sock)
	var out gitLockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start ssh-agent: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })
	a := &SSHAgent{Sock: sock, sshAdd: sshAdd}
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("ssh-agent exited: %s", strings.TrimSpace(out.String()))
		default:
		}
		// ssh-add -l exits 1 for an empty agent, 2 when it cannot connect.
		code, msg := a.run("-l")
		if code == 0 || code == 1 {
			return a
		}
		if time.Now().After(deadline) {
			t.Fatalf("ssh-agent not answering on %s: %s %s", sock, msg, strings.TrimSpace(out.String()))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Add loads an unencrypted private key into the agent with ssh-add.
func (a *SSHAgent) Add(t testing.TB, key SSHKey) {
	t.Helper()
	if code, msg := a.run(key.Private); code != 0 {
		t.Fatalf("ssh-add %s: exit %d: %s", key.Private, code, msg)
	}
}

// run runs ssh-add against the agent and returns its exit code (-1 when it
// did not run) and output.
func (a *SSHAgent) run(args ...string) (int, string) {
	cmd := exec.Command(a.sshAdd, args...)
	// No askpass: an encrypted key fails instead of prompting.
	cmd.Env = append(os.Environ(), "SSH_AUTH_SOCK="+a.Sock, "SSH_ASKPASS=", "SSH_ASKPASS_REQUIRE=never", "DISPLAY=")
	cmd.Stdin = bytes.NewReader(nil)
	out, err := cmd.CombinedOutput()
	msg := strings.TrimSpace(string(out))
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, msg
	case errors.As(err, &ee):
		return ee.ExitCode(), msg
	default:
		return -1, err.Error()
	}
}
