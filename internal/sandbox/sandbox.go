// Package sandbox contains untrusted code — a plugin's init, New, ServeHTTP
// or provider run during verification — in a process of its own, so that it
// finds nothing to steal and can change nothing outside.
//
// The parent describes what the contained process may see (a Spec) and
// starts it with Configure; the process calls Enter before it runs any
// untrusted code. On Linux the process gets new user, mount, PID, network,
// IPC and UTS namespaces when the host allows them (root, or unprivileged
// user namespaces), a read-only root holding only the plugin tree, a private
// /tmp, no capabilities, a seccomp filter, Landlock and rlimits. Where the
// host allows less (a container without privileges), Enter applies what is
// left (Landlock, seccomp, rlimits) and the Report names what was missing;
// ModeRequire turns any gap into an error before untrusted code runs.
package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Mode says how much containment the caller insists on.
type Mode string

const (
	// ModeAuto contains as well as the host allows and reports what was
	// missing.
	ModeAuto Mode = "auto"
	// ModeRequire refuses to run untrusted code without full containment.
	ModeRequire Mode = "require"
)

// ParseMode reads a mode as a user writes it; "" is ModeAuto.
func ParseMode(s string) (Mode, error) {
	switch Mode(s) {
	case "", ModeAuto:
		return ModeAuto, nil
	case ModeRequire:
		return ModeRequire, nil
	}
	return "", fmt.Errorf("unknown sandbox mode %q (want auto or require)", s)
}

// Defaults.
const (
	DefaultScratchBytes = 64 << 20
	DefaultMaxProcs     = 512
)

// Spec is what the contained process may see and use.
type Spec struct {
	// Tree is a host directory the code may read and execute from (the
	// plugins-local tree). Inside the namespaces it is /<base name of Tree>
	// and the working directory is /, as in a Traefik image whose WORKDIR is
	// /; without them it keeps its host path and the working directory is
	// its parent.
	Tree string `json:"tree"`
	// Private is a host directory of this process alone: the mount point of
	// its new root inside the namespaces, its scratch directory without them.
	Private string `json:"private"`
	// ScratchBytes bounds what the code may write (the private /tmp, and
	// the size of any one file).
	ScratchBytes int64 `json:"scratchBytes"`
	// MaxProcs bounds the tasks (processes and threads) of the sandbox.
	MaxProcs int `json:"maxProcs"`
	// Mode is ModeAuto or ModeRequire.
	Mode Mode `json:"mode"`
	// Namespaces is set by Configure when the process is to start in new
	// namespaces.
	Namespaces bool `json:"namespaces"`
	// HostUID is set by Configure: the host user the sandbox runs as.
	HostUID int `json:"hostUID"`
	// Exec is a host file (a static executable) the contained process may
	// execute once it is contained, as ExecInside: the only way a program
	// other than the one Configure started runs in the sandbox. Inside the
	// namespaces it is bound read-only into the new root; without them
	// Landlock lets it be read and executed. "" for none.
	Exec string `json:"exec,omitempty"`
	// Files is set by Configure: how many descriptors the process is
	// given (stdin, stdout, stderr and the command's extra files). Enter
	// refuses any other that it did not open itself.
	Files int `json:"files"`
}

// ExecInside is where the contained process finds Exec.
func (s Spec) ExecInside() string {
	if s.Exec == "" || !s.Namespaces {
		return s.Exec
	}
	return execDir + "/" + baseName(s.Exec)
}

// execDir is the directory of the new root that holds Exec.
const execDir = "/.exec"

// TreeInside is where the contained process sees Tree.
func (s Spec) TreeInside() string {
	if s.Namespaces {
		return "/" + baseName(s.Tree)
	}
	return s.Tree
}

// WorkDirInside is the contained process's working directory: the directory
// holding the tree, as Traefik's working directory holds plugins-local.
func (s Spec) WorkDirInside() string {
	if s.Namespaces {
		return "/"
	}
	return parentDir(s.Tree)
}

// ScratchInside is the directory the contained process may write to.
func (s Spec) ScratchInside() string {
	if s.Namespaces {
		return "/tmp"
	}
	return s.Private
}

func (s Spec) withDefaults() Spec {
	if s.ScratchBytes <= 0 {
		s.ScratchBytes = DefaultScratchBytes
	}
	if s.MaxProcs <= 0 {
		s.MaxProcs = DefaultMaxProcs
	}
	if s.Mode == "" {
		s.Mode = ModeAuto
	}
	return s
}

// Report says which protections a contained process runs under.
type Report struct {
	// Level is "full", "partial" or "none".
	Level string `json:"level"`
	// Applied names each protection in force.
	Applied []string `json:"applied"`
	// Missing names each protection the host did not allow.
	Missing []string `json:"missing,omitempty"`
}

// Full reports whether nothing was missing.
func (r Report) Full() bool { return r.Level == LevelFull }

// Levels.
const (
	LevelFull    = "full"
	LevelPartial = "partial"
	LevelNone    = "none"
)

func newReport(applied, missing []string) Report {
	r := Report{Applied: applied, Missing: missing, Level: LevelFull}
	switch {
	case len(applied) == 0:
		r.Level = LevelNone
	case len(missing) > 0:
		r.Level = LevelPartial
	}
	return r
}

// String is one line: the level and what was missing.
func (r Report) String() string {
	if len(r.Missing) == 0 {
		return r.Level
	}
	return r.Level + " (missing: " + strings.Join(r.Missing, ", ") + ")"
}

// EnvSpec carries the Spec from Configure to Enter.
const EnvSpec = "XTRAEFIK_SANDBOX"

// specFromEnv takes the Spec Configure left in the environment out of it.
func specFromEnv() (Spec, error) {
	raw, ok := os.LookupEnv(EnvSpec)
	if !ok {
		return Spec{}, errors.New("sandbox: no spec in the environment: the process was not started by sandbox.Configure")
	}
	var s Spec
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		return Spec{}, fmt.Errorf("sandbox: read spec: %w", err)
	}
	_ = os.Unsetenv(EnvSpec)
	return s.withDefaults(), nil
}

func baseName(p string) string {
	p = strings.TrimRight(p, "/")
	if i := strings.LastIndex(p, "/"); i >= 0 {
		return p[i+1:]
	}
	return p
}

func parentDir(p string) string {
	p = strings.TrimRight(p, "/")
	i := strings.LastIndex(p, "/")
	switch {
	case i > 0:
		return p[:i]
	case i == 0:
		return "/"
	}
	return "."
}
