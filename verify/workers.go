package verify

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// WorkerV2Name is the file name of the verification worker built with the
// Yaegi Traefik v2.11 embeds (module verify/yaegi015 of xtraefik's source).
const WorkerV2Name = "xtraefik-yaegi-v0.15"

// v2Interpreter is what Traefik v2.11 interprets plugins with.
const v2Interpreter = "yaegi v0.15.1"

// installWorkerV2 says how to get the v2 worker.
const installWorkerV2 = "install " + WorkerV2Name + " next to xtraefik or in $PATH, from a checkout of xtraefik: " +
	"go install -C verify/yaegi015 ./cmd/" + WorkerV2Name +
	" (or go build -C verify/yaegi015 -o <dir>/" + WorkerV2Name + " ./cmd/" + WorkerV2Name + ")"

// worker is a kind of process plugins are interpreted in.
type worker struct {
	// exe is the worker binary; "" for this executable.
	exe string
	// interpreter is what the worker interprets Yaegi plugins with.
	interpreter string
	// pkgs is what its Yaegi offers plugins to import.
	pkgs packageSet
}

// workers are the processes one Verify call runs plugins in.
type workers struct {
	self *worker
	// v2 interprets Yaegi plugins for a Traefik v2 base; nil when no v2
	// worker is installed (self does, with a note).
	v2 *worker
}

// forYaegi is the worker a Yaegi plugin for traefikVersion runs in.
func (ws workers) forYaegi(traefikVersion string) *worker {
	if traefikMajor(traefikVersion) == 2 && ws.v2 != nil {
		return ws.v2
	}
	return ws.self
}

func selfWorker() *worker {
	return &worker{interpreter: interpreterName(false), pkgs: linkedPackages()}
}

// findWorkerV2 returns the path of the v2 worker: explicit when set (a path,
// or a name looked up in $PATH; it must be executable), else WorkerV2Name
// next to the running executable, else in $PATH; "" when there is none.
func findWorkerV2(explicit string) (string, error) {
	if explicit != "" {
		p, err := exec.LookPath(explicit)
		if err != nil {
			return "", fmt.Errorf("worker for Traefik v2 (%s): %w", explicit, err)
		}
		if abs, err := filepath.Abs(p); err == nil {
			p = abs
		}
		return p, nil
	}
	if exe, err := os.Executable(); err == nil {
		if p, err := exec.LookPath(filepath.Join(filepath.Dir(exe), WorkerV2Name)); err == nil {
			return p, nil
		}
	}
	// An error here includes exec.ErrDot: a worker found only through a
	// relative $PATH entry is not an installed one.
	if p, err := exec.LookPath(WorkerV2Name); err == nil {
		return p, nil
	}
	return "", nil
}

// v2Worker finds the v2 worker and asks it what it interprets with; nil when
// none is installed.
func v2Worker(ctx context.Context, opts Options, v *Verifier) (*worker, error) {
	exe, err := findWorkerV2(opts.WorkerV2)
	if err != nil || exe == "" {
		return nil, err
	}
	out, _, err := runWorker(ctx, exe, &job{Describe: true}, opts, v.goPath, v.work, v.contain)
	if err != nil {
		return nil, fmt.Errorf("worker for Traefik v2 (%s): %w", exe, err)
	}
	if !out.OK || out.Interpreter == "" || len(out.Std) == 0 {
		return nil, fmt.Errorf("worker for Traefik v2 (%s) did not describe its interpreter: %s", exe, strings.TrimSpace(out.Reason+" "+out.Detail))
	}
	set := func(l []string) map[string]bool {
		m := make(map[string]bool, len(l))
		for _, p := range l {
			m[p] = true
		}
		return m
	}
	return &worker{exe: exe, interpreter: out.Interpreter, pkgs: packageSet{std: set(out.Std), restricted: set(out.Restricted)}}, nil
}

// interpreterNote says plainly when the verdict comes from another Yaegi than
// the one the target Traefik embeds (v2.11: v0.15.1; v3.x: v0.16.x).
func interpreterNote(traefikVersion, interpreter string) string {
	switch {
	case traefikVersion == "":
		return "Traefik version unknown: verdict from " + interpreter + " (Traefik v3's interpreter); Traefik v2.11 uses " + v2Interpreter
	case traefikMajor(traefikVersion) != 2:
		return ""
	case interpreter != v2Interpreter:
		n := "verdict from " + interpreter + ", but Traefik " + traefikVersion + " uses another Yaegi (v2.11: v0.15.1): a best guess for that version"
		if interpreter == interpreterName(false) {
			n += "; for the real one, " + installWorkerV2
		}
		return n
	case v2Minor(traefikVersion) < 11:
		return "verdict from " + interpreter + ", the interpreter of Traefik v2.11; Traefik " + traefikVersion + " may embed an older Yaegi"
	}
	return ""
}

// v2Minor is the minor version of a v2 version ("v2.10.4" -> 10); 11 when
// it does not say.
func v2Minor(v string) int {
	rest, ok := strings.CutPrefix(v, "v2.")
	if !ok {
		return 11
	}
	minor, _, _ := strings.Cut(rest, ".")
	n, err := strconv.Atoi(minor)
	if err != nil {
		return 11
	}
	return n
}
