package sandbox

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// namespaceFlags are the namespaces a contained process starts in.
const namespaceFlags = syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS | syscall.CLONE_NEWPID |
	syscall.CLONE_NEWNET | syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS | syscall.CLONE_NEWCGROUP

// nobody is the host user a root parent maps the sandbox's root to, so that
// even an escape from the mount namespace would find only world-readable files.
const nobody = 65534

// Configure sets cmd up to start contained by spec: in new namespaces when
// namespaces is true, else in a process group of its own. cmd.Env should be
// the minimal environment the contained code may see; Configure adds the spec.
// Call it after setting cmd.ExtraFiles: the process gets those and stdin,
// stdout and stderr, nothing else. Configure marks every other descriptor of
// this process close-on-exec (one this process inherited without the flag
// would reach the contained code), and Enter refuses to go on if one
// reached it anyway.
func Configure(cmd *exec.Cmd, spec Spec, namespaces bool) error {
	spec = spec.withDefaults()
	spec.Namespaces = namespaces
	spec.Files = 3 + len(cmd.ExtraFiles)
	if err := markCloseOnExec(); err != nil {
		return fmt.Errorf("keep this process's descriptors from the sandbox: %w", err)
	}
	attr := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// A root caller's sandbox runs as nobody, so that neither an escape from
	// the namespaces nor the host without them leaves plugin code root; the
	// sandbox user must reach the tree, its private directory and Exec.
	root := os.Getuid() == 0
	unreachable := ""
	for _, d := range []string{spec.Tree, spec.Private, filepath.Dir(spec.Exec)} {
		if d != "." && !reachableByOthers(d) {
			unreachable = d
			break
		}
	}
	spec.HostUID = os.Getuid()
	switch {
	case namespaces:
		// The namespace's root is mapped at clone time, before the
		// executable runs: nobody must reach it too, else root is mapped
		// (the report says so).
		uid, gid := os.Getuid(), os.Getgid()
		if root && unreachable == "" && reachableByOthers(filepath.Dir(cmd.Path)) {
			uid, gid, spec.HostUID = nobody, nobody, nobody
		}
		attr.Cloneflags = namespaceFlags
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: uid, Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: gid, Size: 1}}
		attr.GidMappingsEnableSetgroups = false
		// The process starts as the caller; becoming the namespace's root
		// makes it the mapped host user.
		attr.Credential = &syscall.Credential{Uid: 0, Gid: 0, NoSetGroups: true}
	case root:
		// Without namespaces a root caller's worker is never root: it starts
		// as root — this executable need not be reachable by others — and
		// Enter makes it nobody, without groups or capabilities, before any
		// untrusted code runs.
		if unreachable != "" {
			return fmt.Errorf("without namespaces plugin code runs as nobody (uid %d), never as root, and nobody cannot reach %s: "+
				"make the directories down to it searchable by others (or set TMPDIR to a directory that is)", nobody, unreachable)
		}
		if err := os.Chown(spec.Private, nobody, nobody); err != nil {
			return fmt.Errorf("hand the scratch directory to the sandbox user: %w", err)
		}
		spec.HostUID = nobody
	}
	data, err := json.Marshal(spec)
	if err != nil {
		return fmt.Errorf("encode sandbox spec: %w", err)
	}
	cmd.Env = append(cmd.Env, EnvSpec+"="+string(data))
	cmd.SysProcAttr = attr
	return nil
}

// NamespacesRefused tells a start that failed because the host does not let
// this process create the namespaces (a container without privileges,
// user namespaces disabled) from other failures.
func NamespacesRefused(err error) bool {
	// Not EACCES: that is an executable the mapped user cannot run.
	for _, e := range []error{syscall.EPERM, syscall.EINVAL, syscall.ENOSPC, syscall.EUSERS, syscall.ENOSYS} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// reachableByOthers reports whether every directory from / down to dir lets
// other users in: the sandbox user must reach the executable and the tree.
func reachableByOthers(dir string) bool {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil || fi.Mode().Perm()&0o001 == 0 {
			return false
		}
		if d == "/" {
			return true
		}
	}
}

// Kill ends a contained process and everything it started: its process
// group, and — when it is PID 1 of its own namespace — by the kernel every
// process of that namespace, even those that left the group.
func Kill(p *os.Process) {
	_ = syscall.Kill(-p.Pid, syscall.SIGKILL)
	_ = p.Kill()
}

// TreeRSS is the resident memory of pid and every descendant, so that a
// plugin cannot hide memory in a child process; 0 when pid is gone.
func TreeRSS(pid int) int64 {
	var total int64
	seen := map[int]bool{}
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if seen[p] {
			continue
		}
		seen[p] = true
		total += residentBytes(p)
		queue = append(queue, children(p)...)
	}
	return total
}

// children lists the child processes of pid, from every one of its threads.
func children(pid int) []int {
	tasks, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	if err != nil {
		return nil
	}
	var out []int
	for _, t := range tasks {
		data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + t.Name() + "/children")
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(data)) {
			if c, err := strconv.Atoi(f); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}

// residentBytes reads VmRSS of pid; 0 when it cannot.
func residentBytes(pid int) int64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			if f := strings.Fields(v); len(f) >= 1 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}
