// Package verify checks plugins the way Traefik will load them, before an
// image is built: the manifest rules, dependencies that are not vendored,
// restricted imports, then the real thing in an isolated worker process — the
// Yaegi interpreter with Traefik's settings, CreateConfig decoded from the
// configuration, New, and one HTTP request (or a provider's Init, Provide,
// Stop), or the wasm module run through the http-wasm host.
package verify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/xtraefik/xtraefik/internal/manifest"
	"github.com/xtraefik/xtraefik/internal/plugin"
	"github.com/xtraefik/xtraefik/internal/sandbox"
)

// SandboxMode is how much containment verification insists on
// (Options.Sandbox).
type SandboxMode = sandbox.Mode

// Sandbox modes.
const (
	SandboxAuto    = sandbox.ModeAuto    // contain as well as the host allows, and say what is missing
	SandboxRequire = sandbox.ModeRequire // refuse to run plugin code without full containment
)

// Options tune a verification.
type Options struct {
	// AllowUnsafe is the trust the recipe's allowUnsafe gives plugin code:
	// with it, interpreted code may use reflect.NewAt, reflect.SliceAt and
	// runtime/debug.WriteHeapDump (memoryFuncs), which reach any memory. Whether a plugin gets unsafe and syscall is
	// its Plugin.UseUnsafe, decided at resolution.
	AllowUnsafe bool
	// Timeout bounds the interpretation of one plugin, worker start to last
	// check (default 60s).
	Timeout time.Duration
	// MemoryLimit bounds the worker's resident memory in bytes (default 1 GiB).
	MemoryLimit int64
	// TraefikVersion is the base image's Traefik version ("v3.6.12"); empty when
	// unknown.
	TraefikVersion string
	// Parallel is how many workers run at once (default: the number of CPUs,
	// at most 4).
	Parallel int
	// Yaegi is the Yaegi version the target Traefik embeds, as the caller
	// read it (the base's Traefik binary, or Traefik's go.mod); it
	// overrides the table entry for TraefikVersion. Empty: the table
	// decides. With InterpreterSource set, Wazero and HTTPWasm
	// (interpreters.Interpreter's) come from the same source and override
	// the table too.
	Yaegi, Wazero, HTTPWasm string
	// InterpreterSource names where Yaegi, Wazero and HTTPWasm were read
	// ("binary", "go.mod", "table"); every Result carries it. Empty with
	// Yaegi set means "binary".
	InterpreterSource string
	// Workers are verification workers to use (paths, or names looked up
	// in $PATH); the one that describes itself as the target's Yaegi runs
	// its plugins. Otherwise provision.WorkerName(version) next to the running
	// executable, else in $PATH, else one built into WorkerCache.
	Workers []string
	// WorkerCache is where workers are built on first use (default
	// provision.DefaultCacheDir).
	WorkerCache string
	// WorkerKey seals the record (SHA-256) of each worker built into
	// WorkerCache, which is checked before the worker runs: the host key
	// kept outside the cache, as for verdicts. nil: the key in KeyFile.
	WorkerKey []byte
	// KeyFile is the host key file WorkerKey is read from when nil; ""
	// means DefaultKeyFile.
	KeyFile string
	// Sandbox is how much containment plugin code must run under:
	// SandboxAuto (default) contains it as well as the host allows and
	// says what was missing in each Result; SandboxRequire refuses to run
	// plugin code without full containment.
	Sandbox SandboxMode
	// Log receives a line when a verification worker has to be built (the
	// first use of a Traefik release whose Yaegi xtraefik does not link);
	// nil discards.
	Log io.Writer
	// Cache keeps OK verdicts across runs (see Cache); nil verifies every
	// plugin every time.
	Cache Cache
	// Offline builds a missing verification worker from the Go module
	// cache only, never through a module proxy.
	Offline bool
	// AcceptApproximate keeps the verdict of an interpreter other than the
	// target's (marked Approximate, with a note) instead of UNVERIFIED.
	AcceptApproximate bool
}

// Result is the verdict for one plugin.
type Result struct {
	Alias  string `json:"alias"`
	Module string `json:"module"`
	Commit string `json:"commit,omitempty"`
	// Version is a module-proxy plugin's version.
	Version string `json:"version,omitempty"`
	Type    string `json:"type,omitempty"`
	Runtime string `json:"runtime,omitempty"`
	// Interpreter names what the plugin was checked with ("yaegi v0.16.1").
	Interpreter string `json:"interpreter,omitempty"`
	// InterpreterSource says where the target Traefik's interpreter was
	// read: "binary" (the base's Traefik binary), "go.mod" (Traefik's
	// go.mod for that version), "table" (xtraefik's table); "" when
	// unknown.
	InterpreterSource string `json:"interpreterSource,omitempty"`
	// Status is StatusOK, StatusFail or StatusUnverified; OK means StatusOK.
	Status string `json:"status"`
	OK     bool   `json:"ok"`
	// Approximate marks a verdict from another interpreter than the target's,
	// kept because Options.AcceptApproximate said so.
	Approximate bool `json:"approximate,omitempty"`
	// Reason is the one-line, Traefik-equivalent cause of a FAIL.
	Reason string `json:"reason,omitempty"`
	// Detail is the rest of the evidence: full errors, plugin output.
	Detail   string        `json:"detail,omitempty"`
	Duration time.Duration `json:"-"`
	// Warnings qualify an OK: what Traefik will serve but a user should see
	// (a server error the plugin answered by itself, see probe.Judge).
	Warnings []string `json:"warnings,omitempty"`
	Notes    []string `json:"notes,omitempty"`
	// Containment is the sandbox the plugin's code ran in; nil when no
	// plugin code ran (a static check failed first).
	Containment *sandbox.Report `json:"containment,omitempty"`
	// Status is a middleware's answer to the probe request (0 when none).
	HTTPStatus int `json:"httpStatus,omitempty"`
	// Cached marks a verdict taken from Options.Cache.
	Cached bool `json:"cached,omitempty"`
}

// Defaults.
const (
	DefaultTimeout     = 60 * time.Second
	DefaultMemoryLimit = 1 << 30
)

// Verify checks every plugin and returns one Result per plugin, in order.
// Plugin failures are Results; the error is for failures of the verifier
// itself (no temporary directory, no worker process) or a cancelled ctx.
func Verify(ctx context.Context, plugins []plugin.Plugin, opts Options) ([]Result, error) {
	v, err := NewVerifier(opts)
	if err != nil {
		return nil, err
	}
	defer v.Close()
	return v.Verify(ctx, plugins)
}

// Verifier verifies one set of plugins. Created ahead of time (while the
// plugins are fetched) and told how many plugins are coming with Prepare, it
// starts contained workers in the background, so that verifying a plugin
// costs little more than interpreting it.
type Verifier struct {
	opts    Options
	work    string
	goPath  string
	contain *containment
	pool    *pool
	bins    binaries
	// onVerdict hears each plugin's verdict as soon as it is final.
	onVerdict func(i int, r Result)
}

// OnVerdict has f told each plugin's verdict (its index in Verify's
// plugins, and the result) as soon as it is final, from the goroutine that
// reached it: plugins are verified side by side, so a caller can show each
// one end while the others run. f must be safe for concurrent use.
func (v *Verifier) OnVerdict(f func(i int, r Result)) { v.onVerdict = f }

// NewVerifier creates the work directory and the worker pool; Close removes
// them.
func NewVerifier(opts Options) (*Verifier, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MemoryLimit <= 0 {
		opts.MemoryLimit = DefaultMemoryLimit
	}
	if opts.Parallel <= 0 {
		opts.Parallel = min(runtime.NumCPU(), 4)
	}
	// "3.6.12" is how people often write v3.6.12.
	if v := normaliseVersion(opts.TraefikVersion); v != "" {
		opts.TraefikVersion = v
	}
	mode, err := sandbox.ParseMode(string(opts.Sandbox))
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	opts.Sandbox = mode
	work, err := os.MkdirTemp(workBase(), "xtraefik-verify-")
	if err != nil {
		return nil, fmt.Errorf("verify: create work directory: %w", err)
	}
	// The sandbox's user (nobody, for a root caller) must reach the tree to
	// mount it; the tree holds nothing but plugin sources.
	goPath := filepath.Join(work, plugin.LocalDir)
	if err := errors.Join(os.Chmod(work, 0o755), os.Mkdir(goPath, 0o755)); err != nil {
		os.RemoveAll(work)
		return nil, fmt.Errorf("verify: create work directory: %w", err)
	}
	v := &Verifier{opts: opts, work: work, goPath: goPath, contain: &containment{mode: mode}}
	v.pool = newPool(opts.Parallel, func(ctx context.Context, warm bool) (*proc, error) {
		return startWorker(ctx, nil, goPath, work, v.contain, opts.MemoryLimit, warm)
	})
	return v, nil
}

// Target sets what the plugins are verified for when that is known only
// after the Verifier was made (build resolves the base's Traefik version
// and Yaegi, and reads the recipe's useUnsafe, while the workers start).
func (v *Verifier) Target(traefikVersion, yaegi string, allowUnsafe bool) {
	if n := normaliseVersion(traefikVersion); n != "" {
		traefikVersion = n
	}
	v.opts.TraefikVersion, v.opts.Yaegi, v.opts.AllowUnsafe = traefikVersion, yaegi, allowUnsafe
}

// Interpreter sets the interpreters the target Traefik embeds and where
// they were read (Options.Yaegi, Wazero, HTTPWasm, InterpreterSource),
// when known only after the Verifier was made.
func (v *Verifier) Interpreter(yaegi, wazero, httpWasm, source string) {
	v.opts.Yaegi, v.opts.Wazero, v.opts.HTTPWasm, v.opts.InterpreterSource = yaegi, wazero, httpWasm, source
}

// Prepare starts workers for n plugins ahead of Verify (at most Parallel at
// a time wait ready). A worker started ahead of its plugin also grows its
// heap before it says it is ready (warmUp).
func (v *Verifier) Prepare(n int) { v.pool.add(n, true) }

// Close stops the workers Verify did not use and removes the work directory.
func (v *Verifier) Close() error {
	v.pool.close()
	v.contain.reaping.Wait()
	if err := os.RemoveAll(v.work); err != nil {
		return fmt.Errorf("verify: remove work directory: %w", err)
	}
	return nil
}

// Verify checks every plugin and returns one Result per plugin, in order
// (see the package function Verify). A Verifier verifies one set of
// plugins: call it once.
func (v *Verifier) Verify(ctx context.Context, plugins []plugin.Plugin) ([]Result, error) {
	results, err := v.verify(ctx, plugins)
	if err != nil {
		noVerdict(results, err)
	}
	return results, err
}

// noVerdict gives every result the verifier's error left without a verdict
// the reason: a report shows each FAIL with why, also when the verifier
// itself stopped (no worker, containment refused).
func noVerdict(results []Result, err error) {
	for i := range results {
		r := &results[i]
		if r.OK || r.Reason != "" {
			continue
		}
		r.Reason = "no verdict: " + oneLine(err.Error())
		settle(r)
	}
}

// oneLine joins a multi-line error into one line, for a reason.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func (v *Verifier) verify(ctx context.Context, plugins []plugin.Plugin) ([]Result, error) {
	opts := v.opts
	pl := newPlan(opts, v)
	results := make([]Result, len(plugins))
	laidOut := make([]bool, len(plugins))
	for i, p := range plugins {
		results[i] = Result{Alias: p.Alias, Module: p.Module, Commit: p.Source.Commit, Version: p.Source.Version, InterpreterSource: pl.interpreterSource}
	}
	// Every plugin that can have its own directory is laid out, exactly as
	// the image holds them (Yaegi in GOPATH mode sees the whole
	// plugins-local tree, not one plugin alone) — unless the cache answers
	// for all of them: then nothing runs and nothing is written.
	for i, p := range plugins {
		if reason := layoutConflict(plugins, i); reason != "" {
			results[i].Reason = reason
			continue
		}
		if err := manifest.CheckModuleName(p.Module); err != nil {
			results[i].Reason = "invalid module name: " + err.Error()
			continue
		}
		laidOut[i] = true
	}
	cached := v.fromCache(plugins, laidOut, pl, results)
	misses := 0
	for i := range plugins {
		if laidOut[i] && results[i].Status != StatusOK {
			misses++
		}
	}
	if misses > 0 {
		for i, p := range plugins {
			if !laidOut[i] {
				continue
			}
			dir := plugin.FilePath(v.work, p.Module)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, fmt.Errorf("verify: create %s: %w", dir, err)
			}
			if err := p.Files.WriteDir(dir); err != nil {
				return nil, fmt.Errorf("verify: lay out %s under %s: %w", p.Module, dir, err)
			}
		}
	}
	if pl.linked() {
		// Wanted now: a worker nobody prepared does not warm up first.
		v.pool.add(misses, false)
	}
	// A worker for another Yaegi is found or built (minutes, the first
	// time) before any plugin's clock starts: its time is no plugin's.
	if misses > 0 && !pl.linked() && slices.ContainsFunc(plugins, func(p plugin.Plugin) bool { return p.Manifest == nil || p.Manifest.IsYaegi() }) {
		if _, _, err := pl.yaegiWorker(ctx); err != nil {
			return results, fmt.Errorf("verify: %w", err)
		}
	}
	sem := make(chan struct{}, opts.Parallel)
	var wg sync.WaitGroup
	errs := make([]error, len(plugins))
	told := make([]bool, len(plugins)) // each written by its own goroutine only
	for i := range plugins {
		if !laidOut[i] || cached[i] != "" && results[i].Status == StatusOK {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				errs[i] = ctx.Err()
				return
			}
			defer func() { <-sem }()
			start := time.Now()
			errs[i] = v.verifyOne(ctx, plugins[i], pl, &results[i])
			results[i].Duration = time.Since(start)
			if errs[i] == nil && ctx.Err() == nil {
				settle(&results[i])
				told[i] = true
				if v.onVerdict != nil {
					v.onVerdict(i, results[i])
				}
			}
		}()
	}
	wg.Wait()
	for i := range results {
		if errs[i] != nil && ctx.Err() == nil {
			noVerdict(results[i:i+1], errs[i])
		}
		settle(&results[i])
	}
	if v.onVerdict != nil && ctx.Err() == nil {
		for i := range results {
			if !told[i] && errs[i] == nil {
				v.onVerdict(i, results[i])
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return results, fmt.Errorf("verify: %w", err) // once, not once per waiting plugin
	}
	for i, key := range cached {
		if key != "" && results[i].Status == StatusOK && !results[i].Approximate && results[i].Duration > 0 {
			// A verdict the cache cannot keep is verified again next time.
			_ = opts.Cache.Put(key, results[i])
		}
	}
	if err := errors.Join(errs...); err != nil {
		return results, fmt.Errorf("verify: %w", err)
	}
	return results, nil
}

// settle gives a result without a status the one its OK says.
func settle(r *Result) {
	if r.Status == "" {
		r.Status = StatusFail
		if r.OK {
			r.Status = StatusOK
		}
	}
}

// layoutConflict reports why plugin i cannot have its own directory under
// plugins-local/src: Traefik allows a module once, and one module's tree
// cannot hold another's.
func layoutConflict(plugins []plugin.Plugin, i int) string {
	for j, q := range plugins {
		if j == i {
			continue
		}
		switch p := plugins[i]; {
		case q.Module == p.Module:
			return fmt.Sprintf("only one version of a plugin is allowed, there is a duplicate of %s", p.Module)
		case strings.HasPrefix(p.Module, q.Module+"/"):
			return fmt.Sprintf("module %s lies inside module %s under plugins-local/src: their files would mix", p.Module, q.Module)
		case strings.HasPrefix(q.Module, p.Module+"/"):
			return fmt.Sprintf("module %s contains module %s under plugins-local/src: their files would mix", p.Module, q.Module)
		}
	}
	return ""
}

// verifyOne fills r. It returns an error only for infrastructure failures.
func (v *Verifier) verifyOne(ctx context.Context, p plugin.Plugin, pl *plan, r *Result) error {
	opts, goPath := v.opts, v.goPath
	m := p.Manifest
	if m == nil {
		var err error
		if m, err = manifest.Read(p.Files); err != nil {
			r.Reason = "failed to read manifest: " + err.Error()
			return nil
		}
	}
	r.Type, r.Runtime = m.Type, m.RuntimeName()
	// Wasm runs in this binary; Yaegi in the worker of the target's Yaegi.
	w, missing := pl.self, pl.wasmMissing
	if m.IsWasm() {
		r.Interpreter = interpreterName(true)
	} else {
		r.Interpreter = pl.yaegiName()
	}
	if err := m.CheckFor(p.Module, opts.TraefikVersion); err != nil {
		r.Reason = "invalid manifest: " + err.Error()
		return nil
	}
	major := plugin.TraefikMajor(opts.TraefikVersion)
	root := plugin.FilePath(v.work, p.Module)
	config := p.Config
	if config == nil {
		config = m.TestData
	}
	cfgYAML, err := yaml.Marshal(config)
	if err != nil {
		r.Reason = "invalid configuration: " + err.Error()
		return nil
	}
	j := job{
		GoPath: goPath, Module: p.Module, Type: m.Type, Runtime: m.RuntimeName(),
		Import: m.Import, BasePkg: m.BasePackage(), Config: string(cfgYAML),
		Name: p.Alias, ExpectStatus: p.ExpectStatus,
	}
	if j.Name == "" {
		j.Name = path.Base(p.Module)
	}

	if m.IsWasm() {
		j.WasmFile = path.Clean(m.WasmFile())
		if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(j.WasmFile))); err != nil {
			r.Reason = fmt.Sprintf("loading Wasm binary: wasmPath %q is not in the plugin", m.WasmFile())
			return nil
		}
	} else {
		// The walk uses the target's standard library when xtraefik knows it:
		// its FAIL is a verdict even when the target's worker is missing.
		// Otherwise the target's worker says what its Yaegi offers (describe);
		// without one, this binary's list gives an approximate verdict.
		pkgs, exact := pl.pkgs, pl.exactPkgs
		if !exact {
			if w, missing, err = pl.yaegiWorker(ctx); err != nil {
				return err
			}
			pkgs, exact = w.pkgs, missing == ""
		}
		ok := staticYaegiChecks(root, p, m, opts, major, pkgs, r)
		if !ok {
			if !exact {
				approximate(r, missing, opts)
			}
			return nil
		}
		if w, missing, err = pl.yaegiWorker(ctx); err != nil {
			return err
		}
		j.UseUnsafe, j.RawMemory = p.UseUnsafe, opts.AllowUnsafe
	}

	var proc *proc
	if w.exe == "" {
		proc, err = v.pool.take(ctx)
	} else {
		proc, err = startWorker(ctx, w, goPath, v.work, v.contain, opts.MemoryLimit, false)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", p.Module, err)
	}
	r.Containment = &proc.containment
	j.Deadline = time.Now().Add(opts.Timeout * 3 / 4)
	out, err := proc.run(ctx, &j, opts)
	if err != nil {
		return fmt.Errorf("%s: %w", p.Module, err)
	}
	r.OK, r.Reason, r.Detail, r.HTTPStatus = out.OK, out.Reason, out.Detail, out.Status
	if out.Interpreter != "" {
		// The worker's own word on what it ran the plugin with.
		r.Interpreter = out.Interpreter
	}
	r.Notes = append(r.Notes, out.Notes...)
	if out.Warning != "" {
		r.Warnings = append(r.Warnings, out.Warning)
	}
	if missing != "" {
		approximate(r, missing, opts)
	}
	return nil
}

// staticYaegiChecks names problems before the interpreter runs: what is not
// vendored, restricted imports, packages Yaegi lacks. It reports whether to
// go on. p.UseUnsafe says whether the unsafe/syscall symbols are loaded.
func staticYaegiChecks(root string, p plugin.Plugin, m *manifest.Manifest, opts Options, major int, pkgs packageSet, r *Result) (ok bool) {
	module, useUnsafe := p.Module, p.UseUnsafe
	// Traefik v3 refuses a plugin declaring useUnsafe when the settings do not
	// allow it, whatever it imports (newInterpreter). v2 has no such setting.
	if major != 2 && m.UseUnsafe && !useUnsafe {
		r.Reason = "this plugin uses restricted imports. If you want to use it, you need to allow useUnsafe in the settings"
		r.Detail = "the manifest declares useUnsafe: true; allow it in the recipe (Traefik: experimental.localPlugins.<alias>.settings.useUnsafe=true)"
		return false
	}

	g, err := walkImports(root, module, m.Import, pkgs)
	if err != nil {
		r.Reason = fmt.Sprintf("failed to import plugin code %q: %v", m.Import, err)
		return false
	}
	if len(g.fromGOPATH) > 0 {
		r.Notes = append(r.Notes, "imports "+strings.Join(g.fromGOPATH, ", ")+" from another plugin of the image (plugins-local/src), as Yaegi's GOPATH lookup in Traefik will: that plugin must stay in the image")
	}
	for pkg, mod := range g.nested {
		r.Notes = append(r.Notes, fmt.Sprintf("package %s is in nested module %s (own go.mod): a module proxy zip of %s does not contain it; take the plugin from git", pkg, path.Join(module, mod), module))
	}
	sort.Strings(r.Notes)
	if len(g.absent) > 0 {
		if g.absent[0] == m.Import {
			r.Reason = fmt.Sprintf("failed to import plugin code %q: no Go files for it in the plugin", m.Import)
		} else {
			r.Reason = "missing packages of the plugin's own module: " + strings.Join(g.absent, ", ")
		}
		r.Detail = "imported packages inside the module path have no buildable Go files in the plugin tree. " +
			"If they belong to a nested module (own go.mod), a module zip leaves them out: take the plugin from git."
		return false
	}
	if len(g.missing) > 0 {
		r.Reason = "not vendored: " + strings.Join(g.missing, ", ")
		r.Detail = "imported by the plugin's non-test code but found neither in Yaegi's standard library, the plugin, nor its vendor/ directory; " +
			"Traefik only reads vendor/, a go.mod requirement is not enough (run `go mod vendor` and commit vendor/). " +
			`Traefik fails with: failed to import plugin code: unable to find source related to: "` + g.missing[0] + `"`
		return false
	}
	if len(g.unavailable) > 0 {
		r.Reason = "not available in Yaegi: " + strings.Join(g.unavailable, ", ")
		r.Detail = "Traefik's interpreter (" + r.Interpreter + ") provides only the standard library packages in its stdlib symbols: no cgo, no plugin, no runtime/cgo"
		return false
	}
	if len(g.restricted) > 0 && !useUnsafe {
		list := strings.Join(g.restricted, ", ")
		switch {
		case major == 2:
			r.Reason = "restricted imports (" + list + "): Traefik v2 never provides unsafe or syscall to plugins"
		case !m.UseUnsafe:
			r.Reason = fmt.Sprintf("failed to import plugin code %q: imports %s, which Traefik only provides with useUnsafe: true in .traefik.yml", m.Import, list)
		default:
			r.Reason = "this plugin uses restricted imports. If you want to use it, you need to allow useUnsafe in the settings"
		}
		r.Detail = "unsafe and syscall symbols are loaded only when the manifest says useUnsafe: true and the static configuration allows it (Traefik v3)"
		return false
	}
	if len(g.rawMemory) > 0 && !opts.AllowUnsafe {
		r.Status = StatusUnverified
		r.Reason = "calls " + strings.Join(g.rawMemoryCalls, ", ") + " (" + strings.Join(g.rawMemory, ", ") + "): xtraefik does not run code that can reach any memory of the verifier unless the recipe allows useUnsafe"
		r.Detail = "reflect.NewAt or reflect.SliceAt on a crafted slice header read and write any address without importing unsafe; runtime/debug.WriteHeapDump and SetCrashOutput write the process's memory to a file the code can read: " +
			"during verification it could lift the report key and forge its own verdict. Traefik itself loads such plugins. Allow it with allowUnsafe in the recipe (the trust given to unsafe plugins) to verify it."
		return false
	}
	return true
}

// linkedVersion is the version of a linked interpreter module as go.mod pins
// it. Test binaries carry no dependency build info, so it is kept here; a test
// holds it to go.mod.
func linkedVersion(mod string) string {
	switch mod {
	case "github.com/traefik/yaegi":
		return "v0.16.1"
	case "github.com/tetratelabs/wazero":
		return "v1.8.0"
	case "github.com/http-wasm/http-wasm-host-go":
		return "v0.7.0"
	}
	return "(unknown version)"
}

// interpreterName names what this binary interprets Yaegi (or wasm) plugins
// with, in its own build: the v2 worker links another Yaegi than xtraefik.
func interpreterName(wasm bool) string {
	if wasm {
		return "wazero " + moduleVersion("github.com/tetratelabs/wazero") +
			", http-wasm-host-go " + moduleVersion("github.com/http-wasm/http-wasm-host-go")
	}
	return "yaegi " + moduleVersion("github.com/traefik/yaegi")
}

// moduleVersion is the linked version of a module, from the build info when
// the binary has it (a replace directive's version when one applies).
func moduleVersion(mod string) string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == mod {
				if d.Replace != nil && d.Replace.Version != "" {
					return d.Replace.Version
				}
				return d.Version
			}
		}
	}
	return linkedVersion(mod)
}
