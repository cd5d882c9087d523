package verify

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/xtraefik/xtraefik/plugin"
	"github.com/xtraefik/xtraefik/verify/interpreters"
	"github.com/xtraefik/xtraefik/verify/provision"
)

// Result statuses.
const (
	StatusOK   = "OK"
	StatusFail = "FAIL"
	// StatusUnverified: the interpreter the base's Traefik embeds was not
	// available (or is unknown), so there is no verdict, only a guess.
	StatusUnverified = "UNVERIFIED"
)

// acceptFlag is the CLI flag that sets Options.AcceptApproximate, named in
// UNVERIFIED reasons.
const acceptFlag = "--accept-approximate-verdict"

// worker is a kind of process plugins are interpreted in.
type worker struct {
	// exe is the worker binary; "" for this executable.
	exe string
	// interpreter is what the worker interprets Yaegi plugins with.
	interpreter string
	// pkgs is what its Yaegi offers plugins to import.
	pkgs packageSet
}

func selfWorker() *worker {
	return &worker{interpreter: interpreterName(false), pkgs: linkedPackages()}
}

// plan is how one Verify call interprets plugins for its Traefik.
type plan struct {
	opts Options
	self *worker
	// target is the Yaegi version the base's Traefik embeds ("v0.15.1"); ""
	// when unknown, and then unknown says why.
	target, unknown string
	// source says how target is known ("Traefik v2.11.0").
	source string
	// interpreterSource is Options.InterpreterSource, or what the
	// table's answer is ("table"); "" when unknown.
	interpreterSource string
	// pkgs is the standard library of target when xtraefik knows it
	// (exactPkgs), else this binary's.
	pkgs      packageSet
	exactPkgs bool
	// wasmMissing says why wasm plugins are not run with the target's wazero
	// and http-wasm; "" when they are.
	wasmMissing string

	// v runs the workers.
	v *Verifier

	// The Yaegi worker is found (or built) on first need only: a plugin the
	// static checks already fail needs none.
	once    sync.Once
	w       *worker
	missing string
	err     error
}

// newPlan finds the interpreters Traefik (opts) embeds: the Yaegi version
// its binary's build info names (opts.Yaegi), else the table's entry for
// opts.TraefikVersion.
func newPlan(opts Options, v *Verifier) *plan {
	self := selfWorker()
	p := &plan{opts: opts, v: v, self: self, pkgs: self.pkgs}
	in, known := interpreters.ForTraefik(opts.TraefikVersion)
	p.target, p.source = in.Yaegi, "Traefik "+opts.TraefikVersion
	if known {
		p.interpreterSource = "table"
	}
	switch {
	case opts.InterpreterSource != "" && opts.Yaegi != "":
		// The caller read all three from one source.
		in, known = interpreters.Interpreter{Yaegi: opts.Yaegi, Wazero: opts.Wazero, HTTPWasm: opts.HTTPWasm}, true
		p.target, p.interpreterSource = opts.Yaegi, opts.InterpreterSource
		switch opts.InterpreterSource {
		case "binary":
			p.source = "the base's Traefik binary"
		case "go.mod":
			p.source = "Traefik " + opts.TraefikVersion + " (its go.mod)"
		}
	case opts.Yaegi != "":
		p.target, p.source, p.interpreterSource = opts.Yaegi, "the base's Traefik binary", "binary"
	}
	switch {
	case !known && opts.TraefikVersion == "":
		p.wasmMissing = "Traefik version unknown (the base image's labels do not name it), so is the interpreter it embeds. Fix: name it with --traefik-version (e.g. v3.6.12)"
	case !known:
		p.wasmMissing = "Traefik " + opts.TraefikVersion + " is not in xtraefik's interpreter table, so the interpreter it embeds is unknown. Fix: name a release xtraefik knows with --traefik-version, or use a newer xtraefik"
	case in.Wazero == "" && plugin.TraefikMajor(opts.TraefikVersion) == 3:
		p.wasmMissing = fmt.Sprintf("%s names no wazero for Traefik %s, so the wasm runtime it embeds is unknown", p.source, opts.TraefikVersion)
	case in.Wazero != "" && (in.Wazero != moduleVersion(interpreters.WazeroModule) || in.HTTPWasm != interpreters.HTTPWasmModule+"@"+moduleVersion(interpreters.HTTPWasmModule)):
		p.wasmMissing = fmt.Sprintf("Traefik %s runs wasm plugins with wazero %s and %s; xtraefik runs them with %s only", opts.TraefikVersion, in.Wazero, in.HTTPWasm, interpreterName(true))
	}
	if p.target == "" {
		p.unknown = p.wasmMissing
		return p
	}
	if l, ok := interpreters.Stdlib(p.target); ok {
		p.pkgs, p.exactPkgs = packageSet{std: setOf(l.Std), restricted: setOf(l.Restricted)}, true
	}
	return p
}

// linked reports whether Yaegi plugins run in this binary's own worker,
// which the Verifier can start ahead of time.
func (p *plan) linked() bool { return p.target == "" || p.yaegiName() == p.self.interpreter }

// yaegiName names the interpreter Yaegi plugins are checked for.
func (p *plan) yaegiName() string {
	if p.target == "" {
		return p.self.interpreter
	}
	return "yaegi " + p.target
}

// yaegiWorker returns the worker for Yaegi plugins: one of the target's
// Yaegi, described as such before it is trusted, or this binary with missing
// saying why it is not the target's. The error is for broken workers.
func (p *plan) yaegiWorker(ctx context.Context) (w *worker, missing string, err error) {
	p.once.Do(func() {
		switch {
		case p.target == "":
			p.w, p.missing = p.self, p.unknown
		case p.yaegiName() == p.self.interpreter:
			p.w = p.self
		default:
			p.w, p.missing, p.err = findWorker(ctx, p.target, p.v)
			if p.w == nil && p.err == nil {
				p.w, p.missing = p.self, fmt.Sprintf("%s embeds %s; %s", p.source, p.yaegiName(), p.missing)
			}
		}
	})
	return p.w, p.missing, p.err
}

// findWorker returns a worker interpreting with yaegi version target: given
// in opts.Workers, installed next to the executable or in $PATH, or built
// into the cache. When there is none, missing says why and how to get it.
func findWorker(ctx context.Context, target string, v *Verifier) (w *worker, missing string, err error) {
	opts := v.opts
	want := "yaegi " + target
	for _, explicit := range opts.Workers {
		exe, err := exec.LookPath(explicit)
		if err != nil {
			return nil, "", fmt.Errorf("verification worker %s: %w", explicit, err)
		}
		if abs, err := filepath.Abs(exe); err == nil {
			exe = abs
		}
		w, err := describe(ctx, exe, v)
		if err != nil {
			return nil, "", err
		}
		if w.interpreter == want {
			return w, "", nil
		}
	}
	name := provision.WorkerName(target)
	var installed []string
	if exe, err := os.Executable(); err == nil {
		if p, err := exec.LookPath(filepath.Join(filepath.Dir(exe), name)); err == nil {
			installed = append(installed, p)
		}
	}
	// An error here includes exec.ErrDot: a worker found only through a
	// relative $PATH entry is not an installed one.
	if p, err := exec.LookPath(name); err == nil {
		installed = append(installed, p)
	}
	if len(installed) > 0 {
		w, err := describe(ctx, installed[0], v)
		if err != nil {
			return nil, "", err
		}
		if w.interpreter != want {
			return nil, "", fmt.Errorf("verification worker %s interprets with %s, not %s: replace it", installed[0], w.interpreter, want)
		}
		return w, "", nil
	}
	if !provision.Buildable(target) {
		return nil, "xtraefik has no worker for it and cannot build one (it can for yaegi v0.15.0 and v0.15.1)", nil
	}
	cache := opts.WorkerCache
	if cache == "" {
		if cache, err = provision.DefaultCacheDir(); err != nil {
			return nil, err.Error(), nil
		}
	}
	if path, err := provision.Path(cache, target); err == nil && opts.Log != nil {
		if _, err := os.Stat(path); err != nil {
			fmt.Fprintf(opts.Log, "building the verification worker for %s into %s (first use; needs the Go toolchain and module proxy; it takes a minute or two)\n", want, cache)
		}
	}
	exe, err := provision.Build(ctx, cache, target, opts.Offline)
	switch {
	case errors.Is(err, provision.ErrNoToolchain):
		return nil, fmt.Sprintf("no %s is installed and there is no Go toolchain to build it. Fix: install Go (https://go.dev/dl/) and run again (xtraefik builds the worker into %s on first use), or pass --yaegi-worker <path of %s>", name, cache, name), nil
	case err != nil:
		if ctx.Err() != nil {
			return nil, "", ctx.Err()
		}
		if opts.Offline {
			return nil, fmt.Sprintf("%s is not built and could not be built offline from the Go module cache: %v. Fix: run once online (or xtraefik workers --out DIR), or pass --yaegi-worker <path of %s>", name, err, name), nil
		}
		return nil, fmt.Sprintf("building %s failed: %v. Fix: make the Go module proxy reachable and run again, or pass --yaegi-worker <path of %s>", name, err, name), nil
	}
	if w, err = describe(ctx, exe, v); err != nil {
		return nil, "", err
	}
	if w.interpreter != want {
		return nil, "", fmt.Errorf("verification worker %s built for %s interprets with %s: remove it and run again", exe, want, w.interpreter)
	}
	return w, "", nil
}

// describe asks a worker binary what it interprets with.
func describe(ctx context.Context, exe string, v *Verifier) (*worker, error) {
	out, _, err := runWorker(ctx, exe, &job{Describe: true}, v.opts, v.goPath, v.work, v.contain)
	if err != nil {
		return nil, fmt.Errorf("verification worker %s: %w", exe, err)
	}
	if !out.OK || out.Interpreter == "" || len(out.Std) == 0 {
		return nil, fmt.Errorf("verification worker %s did not describe its interpreter: %s", exe, strings.TrimSpace(out.Reason+" "+out.Detail))
	}
	return &worker{exe: exe, interpreter: out.Interpreter, pkgs: packageSet{std: setOf(out.Std), restricted: setOf(out.Restricted)}}, nil
}

func setOf(l []string) map[string]bool {
	m := make(map[string]bool, len(l))
	for _, p := range l {
		m[p] = true
	}
	return m
}

// approximate turns the verdict r got from an interpreter other than the
// target's into UNVERIFIED, or, when opts accept approximate verdicts, keeps
// it and says so loudly.
func approximate(r *Result, missing string, opts Options) {
	verdict := StatusOK
	if !r.OK {
		verdict = StatusFail + " (" + r.Reason + ")"
	}
	if opts.AcceptApproximate {
		r.Approximate = true
		r.Notes = append(r.Notes, "APPROXIMATE VERDICT, accepted with "+acceptFlag+": "+verdict+" from "+r.Interpreter+", not from the interpreter Traefik uses: "+missing)
		return
	}
	r.Status, r.OK = StatusUnverified, false
	r.Reason = missing
	r.Notes = append(r.Notes, "approximate verdict from "+r.Interpreter+": "+verdict+"; "+acceptFlag+" would accept it")
}
