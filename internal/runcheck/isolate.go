package runcheck

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/xtraefik/xtraefik/internal/probe"
)

// Isolation names how Traefik is confined.
const (
	IsolationAuto   = "auto"
	IsolationRunc   = "runc"
	IsolationChroot = "chroot"
	IsolationNone   = "none"
)

// How long Traefik gets to stop after SIGTERM before it is killed.
const stopGrace = 15 * time.Second

// errUnavailable marks an isolation that cannot work here; auto moves on.
var errUnavailable = errors.New("isolation unavailable")

// process is a started Traefik.
type process interface {
	// done is closed once the process has exited and its output is drained.
	done() <-chan struct{}
	// stop terminates the process (SIGTERM, then SIGKILL) and releases what
	// was set up for it. It is safe to call more than once.
	stop()
	// network is where the process listens and connects.
	network() network
}

// missingProtections names what an isolation does not give Traefik and the
// plugin code it runs, for the report. Every isolation gives a minimal
// environment (the image's variables and the check's, nothing of the
// caller's). runc gives the rest: its own network namespace with loopback
// only, PID namespace (every process dies with Traefik), mount namespace with
// a read-only root and a scratch /tmp, no bind of anything of the host.
func missingProtections(isolation string) []string {
	shared := []string{
		"network: Traefik shares the host's network: plugin code can reach the host's loopback services and any host the machine can",
		"processes: a process plugin code starts in a new session can outlive the check (no PID namespace)",
		"writes: the unpacked root is writable (no read-only root)",
	}
	switch isolation {
	case IsolationRunc:
		return nil
	case IsolationChroot:
		return append(shared,
			"files: only a chroot: plugin code running as root (the image's USER) can leave it and reach the caller's files")
	default:
		return append(shared,
			"files: no chroot: absolute paths resolve on the host, so plugin code can read and write the caller's files (home, credentials) and read /proc of every process, xtraefik's environment included")
	}
}

// start runs l confined by isolation, writing its output to out.
func start(ctx context.Context, isolation, work, rootfs string, l *launch, out io.Writer) (process, error) {
	switch isolation {
	case IsolationRunc:
		return startRunc(ctx, work, rootfs, l, out)
	case IsolationChroot:
		if os.Geteuid() != 0 {
			return nil, fmt.Errorf("%w: chroot needs root", errUnavailable)
		}
		return startExec(rootfs, l, true, out)
	case IsolationNone:
		return startExec(rootfs, l, false, out)
	default:
		return nil, fmt.Errorf("unknown isolation %q (want auto, runc, chroot or none)", isolation)
	}
}

// execProcess is a direct child in its own process group.
type execProcess struct {
	cmd      *exec.Cmd
	exited   chan struct{}
	stopOnce sync.Once
}

func startExec(rootfs string, l *launch, chroot bool, out io.Writer) (process, error) {
	attr := groupAttr()
	cmd := &exec.Cmd{Args: l.argv, Env: l.env, Stdout: out, Stderr: out, SysProcAttr: attr}
	if chroot {
		// The kernel chroots, then changes directory, then executes: every
		// path here is inside the image.
		attr.Chroot = rootfs
		cmd.Path, cmd.Dir = l.exe, l.cwd
	} else {
		cmd.Path, cmd.Dir = filepath.Join(rootfs, l.exe), filepath.Join(rootfs, l.cwd)
	}
	if os.Geteuid() == 0 && (l.uid != 0 || l.gid != 0) {
		attr.Credential = &syscall.Credential{Uid: l.uid, Gid: l.gid, Groups: []uint32{}}
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", l.exe, err)
	}
	p := &execProcess{cmd: cmd, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

func (p *execProcess) done() <-chan struct{} { return p.exited }

func (p *execProcess) network() network { return network{} }

func (p *execProcess) stop() {
	p.stopOnce.Do(func() {
		pgid := p.cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(stopGrace):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-p.exited
		}
		// Anything the process left behind in its group.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	})
}

// runcProcess is a container created with `runc create` and started with
// `runc start`: creation failing means runc does not work here, which auto
// isolation can tell apart from Traefik failing.
type runcProcess struct {
	runc, state, id string
	exited          chan struct{}
	stopOnce        sync.Once
	// netns is the container's network namespace, held open from creation
	// to stop.
	netns *os.File
}

func startRunc(ctx context.Context, work, rootfs string, l *launch, out io.Writer) (process, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("%w: runc needs root here", errUnavailable)
	}
	runc, err := exec.LookPath("runc")
	if err != nil {
		return nil, fmt.Errorf("%w: runc is not installed", errUnavailable)
	}
	bundle := filepath.Join(work, "bundle")
	if err := os.MkdirAll(bundle, 0o700); err != nil {
		return nil, err
	}
	spec, err := json.MarshalIndent(runtimeSpec(rootfs, l), "", "\t")
	if err != nil {
		return nil, fmt.Errorf("rendering the runtime spec: %w", err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), spec, 0o600); err != nil {
		return nil, err
	}
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, err
	}
	p := &runcProcess{runc: runc, state: filepath.Join(work, "runc-state"), id: "xtraefik-runcheck-" + hex.EncodeToString(rnd[:]), exited: make(chan struct{})}

	// The container inherits runc create's stdio (terminal: false, detached):
	// the pipe reaches EOF when the container has exited.
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	var createOut strings.Builder
	copied := make(chan struct{})
	go func() {
		// Until the container is started, output is runc's own.
		_, _ = io.Copy(out, io.TeeReader(r, &createOut))
		r.Close()
		close(copied)
	}()
	runcLog := filepath.Join(work, "runc.log")
	create := exec.CommandContext(ctx, runc, "--root", p.state, "--log", runcLog, "create", "--bundle", bundle, p.id)
	create.Stdout, create.Stderr = w, w
	err = create.Run()
	w.Close()
	if err != nil {
		<-copied
		logText, _ := os.ReadFile(runcLog)
		p.delete()
		// runc prints its error and also logs it: one of them is enough.
		msg := lastLines(string(logText), 1)
		if msg == "" {
			msg = lastLines(createOut.String(), 3)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: runc create failed: %v: %s", errUnavailable, err, msg)
	}
	go func() {
		<-copied
		close(p.exited)
	}()
	if !l.hostNetwork {
		if p.netns, err = p.openNetns(ctx); err != nil {
			p.stop()
			return nil, err
		}
	}
	if b, err := exec.CommandContext(ctx, runc, "--root", p.state, "start", p.id).CombinedOutput(); err != nil {
		p.stop()
		return nil, fmt.Errorf("runc start: %v: %s", err, strings.TrimSpace(string(b)))
	}
	return p, nil
}

func (p *runcProcess) done() <-chan struct{} { return p.exited }

func (p *runcProcess) network() network { return network{ns: p.netns} }

// openNetns opens the network namespace of the created (not yet started)
// container, through its init process.
func (p *runcProcess) openNetns(ctx context.Context) (*os.File, error) {
	out, err := exec.CommandContext(ctx, p.runc, "--root", p.state, "state", p.id).Output()
	if err != nil {
		return nil, fmt.Errorf("runc state %s: %w", p.id, err)
	}
	var st struct {
		Pid int `json:"pid"`
	}
	if err := json.Unmarshal(out, &st); err != nil || st.Pid <= 0 {
		return nil, fmt.Errorf("runc state %s: no process id in %q", p.id, strings.TrimSpace(string(out)))
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", st.Pid))
	if err != nil {
		return nil, fmt.Errorf("opening the container's network namespace: %w", err)
	}
	return f, nil
}

func (p *runcProcess) stop() {
	p.stopOnce.Do(func() {
		_ = p.command("kill", p.id, "TERM").Run()
		select {
		case <-p.exited:
		case <-time.After(stopGrace):
			_ = p.command("kill", "--all", p.id, "KILL").Run()
			select {
			case <-p.exited:
			case <-time.After(5 * time.Second):
			}
		}
		p.delete()
		if p.netns != nil {
			p.netns.Close()
		}
	})
}

func (p *runcProcess) delete() {
	_ = p.command("delete", "--force", p.id).Run()
}

func (p *runcProcess) command(args ...string) *exec.Cmd {
	// Never tied to the caller's context: cleanup must run after a cancel.
	return exec.Command(p.runc, append([]string{"--root", p.state}, args...)...)
}

// runtimeSpec is a minimal container: own PID namespace (every process dies
// with Traefik), network namespace (runc brings up its loopback and nothing
// else: the check reaches Traefik by entering it, see network), IPC, UTS and
// mount namespaces; a read-only root with a scratch tmpfs on /tmp and no bind
// of anything of the host (Serve keeps the host's network: hostNetwork); the environment the launch plan gives (the
// image's and the check's, nothing of the caller's); no terminal (runc's
// pass-through stdio), Docker's default capabilities, and the caller's
// resource limits (a container may not raise them).
func runtimeSpec(rootfs string, l *launch) *specs.Spec {
	caps := []string{
		"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
		"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
		"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
	}
	namespaces := []specs.LinuxNamespace{
		{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace}, {Type: specs.MountNamespace},
	}
	if l.hostNetwork {
		namespaces = slices.DeleteFunc(namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.NetworkNamespace })
	}
	return &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			Terminal:        false,
			User:            specs.User{UID: l.uid, GID: l.gid},
			Args:            l.argv,
			Env:             l.env,
			Cwd:             l.cwd,
			NoNewPrivileges: true,
			Capabilities:    &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps},
		},
		Root:     &specs.Root{Path: rootfs, Readonly: true},
		Hostname: probe.ServerHostname,
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777", "size=65536k"}},
		},
		Linux: &specs.Linux{
			Namespaces:    namespaces,
			MaskedPaths:   []string{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug"},
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
