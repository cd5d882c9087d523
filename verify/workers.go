package verify

import (
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/xtraefik/xtraefik/internal/plugin"
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
	// exe is the private copy of the worker binary, executed only inside
	// the sandbox by this executable; "" for this executable.
	exe string
	// origin is where the worker binary was found, for messages.
	origin string
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
	// pkgs is the standard library of target when xtraefik's table knows it
	// (exactPkgs). Otherwise the target's worker says (its describe answer,
	// worker.pkgs): a Yaegi newer than this xtraefik is never walked with
	// this binary's list.
	pkgs      packageSet
	exactPkgs bool
	// wasmMissing says why wasm plugins are not run with the target's wazero
	// and http-wasm; "" when they are.
	wasmMissing string
	// wasmTarget names the wazero and http-wasm the target runs wasm
	// plugins with, when the table knows them; "" otherwise.
	wasmTarget string

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
	p := &plan{opts: opts, v: v, self: self}
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
	if known && in.Wazero != "" {
		p.wasmTarget = "wazero " + in.Wazero + ", " + in.HTTPWasm
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

// keyTraefik is what of the Traefik verified for goes into a verdict's
// cache key besides the interpreter's name. When the interpreter is
// exactly known (the Yaegi version, from the base's binary or the release
// table, for a Yaegi plugin; the table's wazero and http-wasm for a wasm
// plugin), all else the Traefik release decides is its major version
// (manifest rules, the useUnsafe setting, restricted imports: v2 or v3),
// so a verdict carries over to every release embedding the same
// interpreter (a rebase onto a patch release). Otherwise, and for an
// approximate verdict (its note names the release), the release itself.
func (p *plan) keyTraefik(wasm bool) string {
	major := fmt.Sprintf("v%d", plugin.TraefikMajor(p.opts.TraefikVersion))
	switch {
	case p.opts.AcceptApproximate:
	case wasm && p.wasmTarget != "":
		return major + ", " + p.wasmTarget
	case !wasm && p.target != "":
		return major + ", yaegi " + p.target
	}
	return "Traefik " + p.opts.TraefikVersion + ", yaegi " + p.opts.Yaegi
}

// linked reports whether Yaegi plugins run in this binary's own worker,
// which the Verifier can start ahead of time.
func (p *plan) linked() bool {
	return p.target == "" || interpreters.Replaced(p.target) || p.yaegiName() == p.self.interpreter
}

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
		case interpreters.Replaced(p.target):
			// A fork's version says nothing of its code: no worker is
			// exactly it, whatever it calls itself.
			p.w, p.missing = p.self, fmt.Sprintf("%s embeds a fork of Yaegi, %s, in place of %s: xtraefik has no interpreter known to be that fork",
				p.source, p.target, interpreters.YaegiModule)
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
// Whatever its origin, a worker binary runs only as a private copy executed
// inside the sandbox (v.binary, startWorker).
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
		w, err := describe(ctx, exe, "", v)
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
		w, err := describe(ctx, installed[0], "", v)
		if err != nil {
			return nil, "", err
		}
		if w.interpreter != want {
			return nil, "", fmt.Errorf("verification worker %s interprets with %s, not %s: replace it", installed[0], w.interpreter, want)
		}
		return w, "", nil
	}
	if !provision.Buildable(target) {
		return nil, fmt.Sprintf("xtraefik has no worker for it and cannot build one (%q is not a Yaegi version from %s on)", target, provision.Floor), nil
	}
	cache := opts.WorkerCache
	if cache == "" {
		if cache, err = provision.DefaultCacheDir(); err != nil {
			return nil, err.Error(), nil
		}
	}
	key := opts.WorkerKey
	if key == nil {
		file, err := opts.KeyFile, error(nil)
		if file == "" {
			file, err = DefaultKeyFile()
		}
		if err == nil {
			key, err = LoadKey(file)
		}
		if err != nil {
			return nil, fmt.Sprintf("a worker built into the cache runs only when its record is sealed with this host's key, and there is none: %v. Fix: pass --yaegi-worker <path of %s>", err, name), nil
		}
	}
	warn := func(msg string) {
		if opts.Log != nil {
			fmt.Fprintln(opts.Log, "warning: "+msg)
		}
	}
	if path, err := provision.Path(cache, target); err == nil && opts.Log != nil {
		if _, err := os.Stat(path); err != nil {
			trust := ""
			if !slices.Contains(provision.Versions(), target) {
				trust = "; xtraefik pins no checksums for this Yaegi, the go command checks them against the checksum database (GOSUMDB)"
			}
			fmt.Fprintf(opts.Log, "building the verification worker for %s into %s (first use; needs the Go toolchain and module proxy; it takes a minute or two%s)\n", want, cache, trust)
		}
	}
	// The bytes run are the private copy's, hashed as they were copied: a
	// cached binary that differs from its sealed record is rebuilt, once.
	var exe, sum string
	for attempt := 0; ; attempt++ {
		exe, sum, err = provision.Build(ctx, cache, target, opts.Offline, key, warn)
		if err != nil {
			break
		}
		if _, err = v.binary(exe, sum); !errors.Is(err, errMismatch) || attempt > 0 {
			break
		}
		warn(fmt.Sprintf("the cached verification worker %s does not match its sealed record: rebuilding it", exe))
		if err = provision.Discard(cache, target); err != nil {
			break
		}
	}
	var buildErr *provision.BuildError
	switch {
	case errors.As(err, &buildErr):
		return nil, fmt.Sprintf("xtraefik cannot build %s: its worker source does not compile with %s (%s). Fix: use an xtraefik release that supports %s, or pass --yaegi-worker <path of %s>", name, want, buildErr.Line, want, name), nil
	case errors.Is(err, provision.ErrChecksum):
		return nil, fmt.Sprintf("xtraefik refused to build %s: %v. Fix: check GOPROXY and GOSUMDB (the proxy served a module the checksum database does not vouch for), or pass --yaegi-worker <path of %s>", name, err, name), nil
	case errors.Is(err, provision.ErrModuleCache):
		return nil, fmt.Sprintf("xtraefik refused to build %s: %v", name, err), nil
	case errors.Is(err, provision.ErrNoToolchain):
		return nil, fmt.Sprintf("no %s is installed and there is no Go toolchain to build it. Fix: install Go (https://go.dev/dl/) and run again (xtraefik builds the worker into %s on first use), or pass --yaegi-worker <path of %s>", name, cache, name), nil
	case errors.Is(err, errMismatch):
		return nil, "", err
	case err != nil:
		if ctx.Err() != nil {
			return nil, "", ctx.Err()
		}
		if opts.Offline {
			return nil, fmt.Sprintf("%s is not built and could not be built offline from the Go module cache: %v. Fix: run once online (or xtraefik workers --out DIR), or pass --yaegi-worker <path of %s>", name, err, name), nil
		}
		return nil, fmt.Sprintf("building %s failed: %v. Fix: make the Go module proxy reachable and run again, or pass --yaegi-worker <path of %s>", name, err, name), nil
	}
	if w, err = describe(ctx, exe, sum, v); err != nil {
		return nil, "", err
	}
	if w.interpreter != want {
		return nil, "", fmt.Errorf("verification worker %s built for %s interprets with %s: remove it and run again", exe, want, w.interpreter)
	}
	return w, "", nil
}

// describe asks a worker binary what it interprets with, running its
// private copy (sum: the SHA-256 it must have; "" for any).
func describe(ctx context.Context, exe, sum string, v *Verifier) (*worker, error) {
	b, err := v.binary(exe, sum)
	if err != nil {
		return nil, err
	}
	w := &worker{exe: b, origin: exe}
	out, _, err := runWorker(ctx, w, &job{Describe: true}, v.opts, v.goPath, v.work, v.contain)
	if err != nil {
		return nil, fmt.Errorf("verification worker %s: %w", exe, err)
	}
	if !out.OK || out.Interpreter == "" || len(out.Std) == 0 {
		return nil, fmt.Errorf("verification worker %s did not describe its interpreter: %s", exe, strings.TrimSpace(out.Reason+" "+out.Detail))
	}
	w.interpreter, w.pkgs = out.Interpreter, packageSet{std: setOf(out.Std), restricted: setOf(out.Restricted)}
	return w, nil
}

// errMismatch is a worker binary whose bytes are not those its record names.
var errMismatch = errors.New("verification worker does not match its sealed record")

// maxWorkerBytes bounds a worker binary's copy.
const maxWorkerBytes = 512 << 20

// binaries are the private copies of worker binaries a Verifier made: each
// is copied and hashed once, into the work directory only this user can
// write, and the copy is what runs — whatever later happens to the file it
// came from.
type binaries struct {
	mu     sync.Mutex
	copies map[string]binaryCopy
}

type binaryCopy struct{ path, sum string }

// binary returns the private copy of the worker binary exe, made on first
// use; sum, when not "", is the SHA-256 it must have (errMismatch).
func (v *Verifier) binary(exe, sum string) (string, error) {
	v.bins.mu.Lock()
	defer v.bins.mu.Unlock()
	c, ok := v.bins.copies[exe]
	if !ok {
		dir, err := os.MkdirTemp(v.work, "worker-")
		if err != nil {
			return "", fmt.Errorf("copy verification worker %s: %w", exe, err)
		}
		// The sandbox's user must reach the copy; only this user may change it.
		if err := os.Chmod(dir, 0o755); err != nil {
			return "", fmt.Errorf("copy verification worker %s: %w", exe, err)
		}
		c.path = filepath.Join(dir, filepath.Base(exe))
		if c.sum, err = copyHashed(exe, c.path); err != nil {
			return "", fmt.Errorf("copy verification worker %s: %w", exe, err)
		}
		if err := staticExecutable(c.path); err != nil {
			return "", fmt.Errorf("verification worker %s: %w", exe, err)
		}
		if v.bins.copies == nil {
			v.bins.copies = map[string]binaryCopy{}
		}
		v.bins.copies[exe] = c
	}
	if sum != "" && c.sum != sum {
		delete(v.bins.copies, exe)
		os.Remove(c.path)
		return "", fmt.Errorf("%w: %s has SHA-256 %s, its record says %s", errMismatch, exe, c.sum, sum)
	}
	return c.path, nil
}

// staticExecutable refuses what cannot start inside the sandbox, which holds
// no dynamic loader and no script interpreter: on Linux a worker must be a
// static ELF executable (xtraefik builds its workers so).
func staticExecutable(path string) error {
	if runtime.GOOS != "linux" {
		return nil
	}
	f, err := elf.Open(path)
	if err != nil {
		return errors.New("not a static executable (a worker runs inside the sandbox, where only a static executable can start; build it with CGO_ENABLED=0, as xtraefik workers does)")
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return errors.New("dynamically linked (a worker runs inside the sandbox, where there is no dynamic loader; build it with CGO_ENABLED=0, as xtraefik workers does)")
		}
	}
	return nil
}

// copyHashed copies the regular file src to dst (read and execute only),
// returning the SHA-256 of the bytes written.
func copyHashed(src, dst string) (string, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer in.Close()
	if fi, err := in.Stat(); err != nil || !fi.Mode().IsRegular() {
		return "", fmt.Errorf("not a regular file")
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o700)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), io.LimitReader(in, maxWorkerBytes+1))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil && n > maxWorkerBytes {
		err = fmt.Errorf("larger than %d MB", maxWorkerBytes>>20)
	}
	if err == nil {
		err = os.Chmod(dst, 0o555)
	}
	if err != nil {
		os.Remove(dst)
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
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
