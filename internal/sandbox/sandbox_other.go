//go:build !linux

package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

// Configure starts cmd in a process group of its own: this OS has none of
// the kernel features the Linux sandbox uses.
// Every other descriptor of this process is marked close-on-exec, as on
// Linux.
func Configure(cmd *exec.Cmd, spec Spec, namespaces bool) error {
	spec = spec.withDefaults()
	spec.Namespaces = false
	spec.Files = 3 + len(cmd.ExtraFiles)
	if err := markCloseOnExec(); err != nil {
		return fmt.Errorf("keep this process's descriptors from the sandbox: %w", err)
	}
	data, err := json.Marshal(spec)
	if err != nil {
		return fmt.Errorf("encode sandbox spec: %w", err)
	}
	cmd.Env = append(cmd.Env, EnvSpec+"="+string(data))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return nil
}

// NamespacesRefused is always true here: there are none to ask for.
func NamespacesRefused(error) bool { return true }

// Kill ends the process group.
func Kill(p *os.Process) {
	_ = syscall.Kill(-p.Pid, syscall.SIGKILL)
	_ = p.Kill()
}

// TreeRSS is unknown here (0): only the timeout bounds a runaway plugin.
func TreeRSS(int) int64 { return 0 }

// Enter applies nothing but the closing of inherited descriptors: it reports
// that every protection is missing, and refuses in ModeRequire.
func Enter() (Spec, Report, error) {
	s, err := specFromEnv()
	if err != nil {
		return Spec{}, Report{}, err
	}
	if _, err := closeInherited(s.Files); err != nil {
		return Spec{}, Report{}, err
	}
	if err := os.Chdir(s.WorkDirInside()); err != nil {
		return Spec{}, Report{}, fmt.Errorf("sandbox: enter the working directory: %w", err)
	}
	r := newReport(nil, []string{"every kernel protection (sandboxing needs Linux): plugin code runs as the caller"})
	if s.Mode == ModeRequire {
		return s, r, errors.New("sandbox: full containment required, but this OS offers none (Linux only)")
	}
	return s, r, nil
}
