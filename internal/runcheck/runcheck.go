// Package runcheck proves an assembled image works: it unpacks the image for
// the host's platform, starts the image's own Traefik (entrypoint, command,
// environment, working directory and user as the image says) with the plugins
// enabled the way the image's static configuration mode enables them, puts
// every middleware plugin on a router in front of a loopback backend, and
// reports, per plugin, whether Traefik enabled it and how it answered the
// probe request (package probe: the request and criterion static
// verification uses too). Failures quote Traefik's own API or log.
//
// "The way the mode enables them" means the check adds nothing that enables a
// plugin except in flags mode, where passing the plugin flags is what a user
// (or the Helm chart) does. In env and file modes the image's baked variables
// or file must do it. The check's own settings (API, entry points, file
// provider, log) go into the one source Traefik will read by its own rule: the
// image's configuration file if it has one (amended in the unpacked copy,
// experimental.localPlugins untouched), else flags when arguments are passed
// (flags mode, ExtraArgs, flags in CMD), else TRAEFIK_* variables. Extra
// arguments thus show what Traefik really does with them.
//
// Isolation: runc where it works (root; terminal false; own PID, network,
// mount, IPC and UTS namespaces, read-only root), else chroot (root), else
// none (the unpacked root as working directory). Report.Isolation says which
// and Report.Missing what it lacked; an image for another platform is
// skipped, never emulated.
package runcheck

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/xtraefik/xtraefik/internal/manifest"
	"github.com/xtraefik/xtraefik/internal/plugin"
	"github.com/xtraefik/xtraefik/internal/probe"
	"github.com/xtraefik/xtraefik/internal/traefikcfg"
)

// Options configure Run.
type Options struct {
	// Mode is the image's static configuration mode (default flags).
	Mode traefikcfg.Mode
	// Plugins are the image's local plugins; each one's Manifest (nil: read
	// from the image), Config, ExpectStatus and UseUnsafe are used.
	Plugins []plugin.Plugin
	// ExtraArgs are passed to the image like `docker run image ARGS...`, after
	// the plugin flags in flags mode: a way to show the static configuration traps.
	ExtraArgs []string
	// Isolation is auto (default: runc, else chroot, else none), runc, chroot or none.
	Isolation string
	// Timeout bounds the wait for Traefik once started (default 2 minutes).
	Timeout time.Duration
	// Log receives progress and Traefik's warnings and errors; may be nil.
	Log io.Writer
	// TempDir holds the work directory (default os.TempDir()).
	TempDir string
}

// PluginResult is the verdict for one plugin.
// Its JSON keys are the report's (camelCase; the HTTP status is
// httpStatus, as in a verification result).
type PluginResult struct {
	Alias  string `json:"alias"`
	Module string `json:"module"`
	Type   string `json:"type,omitempty"`
	OK     bool   `json:"ok"`
	Reason string `json:"reason,omitempty"`
	// Status is Traefik's answer to the request through the plugin's router.
	Status int `json:"httpStatus,omitempty"`
	// Warning qualifies a PASS: the plugin answered with a server error of
	// its own (probe.Judge), which Traefik serves.
	Warning string `json:"warning,omitempty"`
	// BackendHeaders are the request headers the backend received.
	BackendHeaders http.Header `json:"backendHeaders,omitempty"`
}

// Report is what Run observed.
type Report struct {
	// Platform is the image's os/architecture.
	Platform string
	// Skipped says why nothing was run (another platform); empty otherwise.
	Skipped string
	// Isolation is how Traefik was confined: runc, chroot or none.
	Isolation string
	// Missing names the protections the isolation did not give Traefik and
	// the plugin code it runs (see missingProtections); empty under runc.
	Missing []string
	// ConfigSource is the static configuration source Traefik read by its own
	// rule: "file:<path>", "flags" or "env".
	ConfigSource string
	// Args is the command line the process was started with.
	Args       []string
	APIAddress string
	// LoadedPlugins are experimental.localPlugins (alias -> module) as Traefik
	// reported its effective static configuration; nil if it did not.
	LoadedPlugins map[string]string
	// EntryPoints are the entry points Traefik's API lists.
	EntryPoints []string
	Plugins     []PluginResult
	Notes       []string
	TraefikLog  string
}

// OK is true when the check ran and every plugin passed.
func (r *Report) OK() bool {
	if r == nil || r.Skipped != "" || len(r.Plugins) == 0 {
		return false
	}
	for _, p := range r.Plugins {
		if !p.OK {
			return false
		}
	}
	return true
}

// Summary is one line per plugin, PASS or FAIL with the reason.
func (r *Report) Summary() string {
	if r.Skipped != "" {
		return "SKIP runtime check: " + r.Skipped + "\n"
	}
	var b strings.Builder
	for _, p := range r.Plugins {
		verdict := "PASS"
		if !p.OK {
			verdict = "FAIL"
		}
		fmt.Fprintf(&b, "%s %s (%s): %s\n", verdict, p.Alias, p.Module, p.Reason)
		if p.Warning != "" {
			fmt.Fprintf(&b, "  warning: %s\n", p.Warning)
		}
	}
	return b.String()
}

const (
	defaultTimeout = 2 * time.Minute
	pollInterval   = 200 * time.Millisecond
)

// Run checks img, which must be a single-platform image. Plugin failures are in
// the report; an error means the check itself could not run. The work
// directory and Traefik are removed and stopped before Run returns, also when
// ctx is cancelled.
func Run(ctx context.Context, img v1.Image, opts Options) (rep *Report, err error) {
	if len(opts.Plugins) == 0 {
		return nil, errors.New("runtime check: no plugins to check")
	}
	mode, err := traefikcfg.ParseMode(string(opts.Mode))
	if err != nil {
		return nil, err
	}
	isolations, err := isolationOrder(opts.Isolation)
	if err != nil {
		return nil, err
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	logf := func(format string, args ...any) {
		if opts.Log != nil {
			fmt.Fprintf(opts.Log, "runcheck: "+format+"\n", args...)
		}
	}

	u, skipped, err := unpackFor(ctx, img, opts.TempDir, logf)
	defer func() {
		if rmErr := u.remove(); rmErr != nil && err == nil {
			err = fmt.Errorf("runtime check: %w", rmErr)
		}
	}()
	if u != nil {
		rep = &Report{Platform: u.platform}
	}
	if err != nil {
		return rep, fmt.Errorf("runtime check: %w", err)
	}
	if skipped != "" {
		rep.Skipped = skipped
		logf("skipped: %s", rep.Skipped)
		return rep, nil
	}
	rootfs, workdir := u.rootfs, u.workdir()
	c := &checker{rep: rep, logf: logf}
	defer c.closeBackends()
	if err := c.preparePlugins(rootfs, workdir, opts.Plugins); err != nil {
		return rep, err
	}
	apiAddr, err := c.ports.free()
	if err != nil {
		return rep, err
	}
	webAddr, err := c.ports.free()
	if err != nil {
		return rep, err
	}
	rep.APIAddress = apiAddr
	c.api = "http://" + apiAddr
	c.web = "http://" + webAddr
	if err := c.writeDynamic(rootfs); err != nil {
		return rep, err
	}
	if len(c.pending()) == 0 {
		logf("no plugin can be checked; Traefik not started")
		return rep, nil
	}

	var userArgs []string
	if mode == traefikcfg.ModeFlags {
		userArgs = append(userArgs, traefikcfg.Flags(opts.Plugins)...)
	}
	userArgs = append(userArgs, opts.ExtraArgs...)

	var sink *traefikLog
	h := harness{apiAddr: apiAddr, webAddr: webAddr, dynamic: harnessDir + "/dynamic.yml"}
	st, err := launchTraefik(ctx, u, isolations, userArgs, h, false, func() io.Writer { sink = newTraefikLog(opts.Log); return sink }, logf)
	if err != nil {
		return rep, fmt.Errorf("runtime check: %w", err)
	}
	proc, l := st.proc, st.l
	rep.Notes = append(rep.Notes, st.notes...)
	rep.Isolation, rep.ConfigSource, rep.Args = st.isolation, l.source, l.argv
	if mode == traefikcfg.ModeFile && l.configFile == "" {
		rep.Notes = append(rep.Notes, "file mode, but the image has no configuration file where Traefik looks for one: nothing enables the plugins")
	}
	rep.Missing = missingProtections(st.isolation)
	c.sink = sink
	logf("started Traefik with %s isolation, static configuration from %s: %s", rep.Isolation, rep.ConfigSource, strings.Join(rep.Args, " "))
	for _, m := range rep.Missing {
		logf("not contained: %s", m)
	}
	defer func() {
		proc.stop()
		rep.TraefikLog = sink.String()
	}()
	// The check's client and backends live in Traefik's network.
	c.client, c.exited = newClient(proc.network()), proc.done()
	if err := c.serveBackends(proc.network()); err != nil {
		return rep, fmt.Errorf("runtime check: %w", err)
	}

	waitCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	logf("waiting for Traefik's API at %s to list the plugin middlewares", apiAddr)
	if err := c.wait(waitCtx, ctx, proc, sink, timeout); err != nil {
		return rep, err
	}
	if err := c.requests(waitCtx); err != nil && ctx.Err() != nil {
		return rep, fmt.Errorf("runtime check: %w", ctx.Err())
	}
	rep.EntryPoints = c.entryPoints(waitCtx)
	proc.stop()
	c.judgePanics()
	c.explainRequestFailures()
	rep.LoadedPlugins = sink.state().static
	for _, r := range rep.Plugins {
		verdict := "PASS"
		if !r.OK {
			verdict = "FAIL"
		}
		logf("%s %s (%s): %s", verdict, r.Alias, r.Module, r.Reason)
		if r.Warning != "" {
			logf("warning for %s: %s", r.Alias, r.Warning)
		}
	}
	return rep, nil
}

func isolationOrder(s string) ([]string, error) {
	switch s {
	case "", IsolationAuto:
		if os.Geteuid() != 0 {
			return []string{IsolationNone}, nil
		}
		return []string{IsolationRunc, IsolationChroot, IsolationNone}, nil
	case IsolationRunc, IsolationChroot, IsolationNone:
		return []string{s}, nil
	default:
		return nil, fmt.Errorf("runtime check: unknown isolation %q (want auto, runc, chroot or none)", s)
	}
}

// checker holds the per-plugin state of one run.
type checker struct {
	// ports are the loopback addresses handed out so far.
	ports    ports
	rep      *Report
	logf     func(string, ...any)
	api, web string
	client   *http.Client
	sink     *traefikLog
	plugins  []*pluginCheck
	// canary is the backend of the router without a plugin.
	canary *backend
	// exited is closed when Traefik has exited (nil: never).
	exited <-chan struct{}
}

type pluginCheck struct {
	plugin.Plugin
	// typ is the manifest's type: middleware or provider.
	typ  string
	res  *PluginResult
	done bool
	// requestFailed: enabled, but the request through it failed.
	requestFailed bool
	backend       *backend
	name          string // router, middleware and service name
}

func (pc *pluginCheck) fail(reason string) {
	pc.res.OK, pc.res.Reason, pc.done = false, reason, true
}

func (pc *pluginCheck) pass(reason string) {
	pc.res.OK, pc.res.Reason, pc.done = true, reason, true
}

// preparePlugins reads each plugin's manifest from the image when the
// options carry none, and starts a backend for every middleware.
func (c *checker) preparePlugins(rootfs, workdir string, ps []plugin.Plugin) error {
	c.rep.Plugins = make([]PluginResult, len(ps))
	for i, p := range ps {
		c.rep.Plugins[i] = PluginResult{Alias: p.Alias, Module: p.Module}
		pc := &pluginCheck{Plugin: p, res: &c.rep.Plugins[i], name: "xtraefik-check-" + p.Alias}
		c.plugins = append(c.plugins, pc)
		m := p.Manifest
		if m == nil {
			var where string
			var err error
			if m, where, err = readManifest(rootfs, workdir, p.Module); err != nil {
				pc.fail(fmt.Sprintf("manifest %s: %v", where, err))
				continue
			}
		}
		pc.typ = m.Type
		if pc.Config == nil {
			pc.Config = m.TestData
		}
		pc.res.Type = pc.typ
		switch pc.typ {
		case "middleware":
			addr, err := c.ports.free()
			if err != nil {
				return err
			}
			pc.backend = &backend{addr: addr}
		case "provider":
		default:
			pc.fail(fmt.Sprintf("plugin type %q is neither middleware nor provider", pc.typ))
		}
	}
	return nil
}

// readManifest reads a plugin's manifest from the unpacked image.
func readManifest(rootfs, workdir, module string) (*manifest.Manifest, string, error) {
	where := path.Join(plugin.Path(workdir, module), manifest.FileName)
	host, err := securejoin.SecureJoin(rootfs, where)
	if err != nil {
		return nil, where, err
	}
	b, err := os.ReadFile(host)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, where, fmt.Errorf("not in the image (Traefik reads plugins from ./%s/src relative to WORKDIR %s)", plugin.LocalDir, workdir)
	}
	if err != nil {
		return nil, where, err
	}
	m, err := manifest.Parse(b)
	return m, where, err
}

// writeDynamic writes the file-provider configuration: a router per
// middleware plugin, matching the probe request's host and the plugin's
// path, and the canary router without a plugin.
func (c *checker) writeDynamic(rootfs string) error {
	addr, err := c.ports.free()
	if err != nil {
		return err
	}
	c.canary = &backend{addr: addr}
	routes := []traefikcfg.Route{{
		Name:        canaryName,
		Rule:        probeRule(canaryName),
		EntryPoints: []string{checkEntryPoint},
		Backend:     c.canary.url(),
	}}
	for _, pc := range c.plugins {
		if pc.done || pc.backend == nil {
			continue
		}
		routes = append(routes, traefikcfg.Route{
			Name:        pc.name,
			Rule:        probeRule(pc.Alias),
			EntryPoints: []string{checkEntryPoint},
			Plugin:      pc.Alias,
			Config:      pc.Config,
			Backend:     pc.backend.url(),
		})
	}
	b, err := traefikcfg.DynamicFile(routes)
	if err != nil {
		return fmt.Errorf("runtime check: %w", err)
	}
	dir, err := securejoin.SecureJoin(rootfs, harnessDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "dynamic.yml"), b, 0o644)
}

// probeRule matches the probe request for alias.
func probeRule(alias string) string {
	return "Host(`" + probe.Host + "`) && Path(`" + probe.Path(alias) + "`)"
}

// serveBackends starts the backends in Traefik's network.
func (c *checker) serveBackends(n network) error {
	for _, b := range c.backends() {
		if err := b.serve(n); err != nil {
			return fmt.Errorf("starting a backend: %w", err)
		}
	}
	return nil
}

func (c *checker) closeBackends() {
	for _, b := range c.backends() {
		b.close()
	}
}

func (c *checker) backends() []*backend {
	var bs []*backend
	if c.canary != nil {
		bs = append(bs, c.canary)
	}
	for _, pc := range c.plugins {
		if pc.backend != nil {
			bs = append(bs, pc.backend)
		}
	}
	return bs
}

func (c *checker) pending() []*pluginCheck {
	var out []*pluginCheck
	for _, pc := range c.plugins {
		if !pc.done {
			out = append(out, pc)
		}
	}
	return out
}
