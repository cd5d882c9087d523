// Package runcheck proves an assembled image works: it unpacks the image for
// the host's platform, starts the image's own Traefik (entrypoint, command,
// environment, working directory and user as the image says) with the plugins
// enabled the way the image's static configuration mode enables them, puts
// every middleware plugin on a router in front of a loopback backend, and
// reports, per plugin, whether Traefik enabled it and whether a request went
// through it. Failures quote Traefik's own API or log.
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
// Isolation: runc where it works (root; terminal false; own PID, mount, IPC
// and UTS namespaces, the host's network for loopback), else chroot (root),
// else none (the unpacked root as working directory). Report.Isolation says
// which; an image for another platform is skipped, never emulated.
package runcheck

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"gopkg.in/yaml.v3"

	"github.com/xtraefik/xtraefik/traefikcfg"
)

// Plugin is one local plugin of the image.
type Plugin struct {
	Alias, Module string
	// Type is "middleware" or "provider"; empty reads the plugin's manifest
	// from the image.
	Type string
	// Config is the middleware's configuration; nil uses the manifest's testData.
	Config map[string]any
	// ExpectStatus is the status the plugin answers with; 0 means the request
	// must reach the backend.
	ExpectStatus int
	// UseUnsafe adds settings.useUnsafe to the plugin flags (flags mode), as
	// the build prints them when the recipe allows unsafe.
	UseUnsafe bool
}

// Options configure Run.
type Options struct {
	// Mode is the image's static configuration mode (default flags).
	Mode    traefikcfg.Mode
	Plugins []Plugin
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
type PluginResult struct {
	Alias, Module, Type string
	OK                  bool
	Reason              string
	// Status is Traefik's answer to the request through the plugin's router.
	Status int
	// BackendHeaders are the request headers the backend received.
	BackendHeaders http.Header
}

// Report is what Run observed.
type Report struct {
	// Platform is the image's os/architecture.
	Platform string
	// Skipped says why nothing was run (another platform); empty otherwise.
	Skipped string
	// Isolation is how Traefik was confined: runc, chroot or none.
	Isolation string
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

	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("runtime check: reading the image configuration: %w", err)
	}
	rep = &Report{Platform: cf.OS + "/" + cf.Architecture}
	if cf.Variant != "" {
		rep.Platform += "/" + cf.Variant
	}
	if runtime.GOOS != "linux" {
		rep.Skipped = "the runtime check runs Linux images on Linux hosts only; this host is " + runtime.GOOS
		logf("skipped: %s", rep.Skipped)
		return rep, nil
	}
	if cf.OS != runtime.GOOS || cf.Architecture != runtime.GOARCH {
		rep.Skipped = fmt.Sprintf("the image is %s and this host runs %s/%s: Traefik is not run for another platform", rep.Platform, runtime.GOOS, runtime.GOARCH)
		logf("skipped: %s", rep.Skipped)
		return rep, nil
	}

	work, err := os.MkdirTemp(opts.TempDir, "xtraefik-runcheck-")
	if err != nil {
		return nil, fmt.Errorf("runtime check: %w", err)
	}
	defer func() {
		if rmErr := os.RemoveAll(work); rmErr != nil && err == nil {
			err = fmt.Errorf("runtime check: removing %s: %w", work, rmErr)
		}
	}()
	rootfs := filepath.Join(work, "rootfs")
	if err := os.Chmod(work, 0o755); err != nil {
		return rep, err
	}
	if err := os.Mkdir(rootfs, 0o755); err != nil {
		return rep, err
	}
	logf("unpacking the %s image into %s", rep.Platform, rootfs)
	if err := Unpack(ctx, img, rootfs); err != nil {
		return rep, fmt.Errorf("runtime check: %w", err)
	}

	workdir := cf.Config.WorkingDir
	if workdir == "" {
		workdir = "/"
	}
	c := &checker{rep: rep, logf: logf, client: newClient()}
	// Registered first: preparePlugins may fail after starting some backends.
	defer c.closeBackends()
	if err := c.preparePlugins(rootfs, workdir, opts.Plugins); err != nil {
		return rep, err
	}
	apiAddr, err := freeAddr()
	if err != nil {
		return rep, err
	}
	webAddr, err := freeAddr()
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
		userArgs = append(userArgs, traefikcfg.Flags(localPlugins(opts.Plugins))...)
	}
	userArgs = append(userArgs, opts.ExtraArgs...)

	var proc process
	var sink *traefikLog
	for i, iso := range isolations {
		inside := func(p string) string { return p }
		if iso == IsolationNone {
			inside = func(p string) string { return filepath.Join(rootfs, p) }
		}
		h := harness{apiAddr: apiAddr, webAddr: webAddr, dynamic: inside(harnessDir + "/dynamic.yml")}
		l, err := plan(rootfs, &cf.Config, userArgs, h, inside)
		if err != nil {
			return rep, fmt.Errorf("runtime check: %w", err)
		}
		sink = newTraefikLog(opts.Log)
		proc, err = start(ctx, iso, work, rootfs, l, sink)
		if err != nil {
			if errors.Is(err, errUnavailable) && i < len(isolations)-1 {
				rep.Notes = append(rep.Notes, fmt.Sprintf("%s not used: %v", iso, err))
				logf("%s not used: %v", iso, err)
				continue
			}
			return rep, fmt.Errorf("runtime check: %w", err)
		}
		rep.Isolation, rep.ConfigSource, rep.Args = iso, l.source, l.argv
		if mode == traefikcfg.ModeFile && l.configFile == "" {
			rep.Notes = append(rep.Notes, "file mode, but the image has no configuration file where Traefik looks for one: nothing enables the plugins")
		}
		if iso == IsolationNone {
			rep.Notes = append(rep.Notes, "no isolation: Traefik ran on the host with the unpacked root as working directory; absolute paths it opens resolve on the host")
		}
		break
	}
	c.sink = sink
	logf("started Traefik with %s isolation, static configuration from %s: %s", rep.Isolation, rep.ConfigSource, strings.Join(rep.Args, " "))
	defer func() {
		proc.stop()
		rep.TraefikLog = sink.String()
	}()

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
	c.explainRequestFailures()
	rep.LoadedPlugins = sink.state().static
	for _, r := range rep.Plugins {
		verdict := "PASS"
		if !r.OK {
			verdict = "FAIL"
		}
		logf("%s %s (%s): %s", verdict, r.Alias, r.Module, r.Reason)
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

func localPlugins(ps []Plugin) []traefikcfg.LocalPlugin {
	out := make([]traefikcfg.LocalPlugin, 0, len(ps))
	for _, p := range ps {
		out = append(out, traefikcfg.LocalPlugin{Alias: p.Alias, Module: p.Module, UseUnsafe: p.UseUnsafe})
	}
	return out
}

// checker holds the per-plugin state of one run.
type checker struct {
	rep      *Report
	logf     func(string, ...any)
	api, web string
	client   *http.Client
	sink     *traefikLog
	plugins  []*pluginCheck
}

type pluginCheck struct {
	Plugin
	res  *PluginResult
	done bool
	// requestFailed: enabled, but the request through it failed.
	requestFailed bool
	backend       *backend
	name          string // router, middleware and service name
	host          string // the router's Host rule
}

func (pc *pluginCheck) fail(reason string) {
	pc.res.OK, pc.res.Reason, pc.done = false, reason, true
}

func (pc *pluginCheck) pass(reason string) {
	pc.res.OK, pc.res.Reason, pc.done = true, reason, true
}

// preparePlugins reads what the options leave out from each plugin's manifest
// in the image and starts a backend for every middleware.
func (c *checker) preparePlugins(rootfs, workdir string, ps []Plugin) error {
	c.rep.Plugins = make([]PluginResult, len(ps))
	for i, p := range ps {
		c.rep.Plugins[i] = PluginResult{Alias: p.Alias, Module: p.Module, Type: p.Type}
		pc := &pluginCheck{Plugin: p, res: &c.rep.Plugins[i], name: "xtraefik-check-" + p.Alias, host: fmt.Sprintf("p%d.xtraefik-runcheck.invalid", i)}
		c.plugins = append(c.plugins, pc)
		if p.Type == "" || (p.Config == nil && p.Type != "provider") {
			m, where, err := readManifest(rootfs, workdir, p.Module)
			if err != nil {
				pc.fail(fmt.Sprintf("manifest %s: %v", where, err))
				continue
			}
			if pc.Type == "" {
				pc.Type = m.Type
			}
			if pc.Config == nil {
				pc.Config = m.TestData
			}
		}
		pc.res.Type = pc.Type
		switch pc.Type {
		case "middleware":
			b, err := newBackend()
			if err != nil {
				return fmt.Errorf("runtime check: starting a backend: %w", err)
			}
			pc.backend = b
		case "provider":
		default:
			pc.fail(fmt.Sprintf("plugin type %q is neither middleware nor provider", pc.Type))
		}
	}
	return nil
}

type manifest struct {
	Type     string         `yaml:"type"`
	TestData map[string]any `yaml:"testData"`
}

func readManifest(rootfs, workdir, module string) (manifest, string, error) {
	where := path.Join(workdir, "plugins-local/src", module, ".traefik.yml")
	var m manifest
	host, err := securejoin.SecureJoin(rootfs, where)
	if err != nil {
		return m, where, err
	}
	b, err := os.ReadFile(host)
	if errors.Is(err, fs.ErrNotExist) {
		return m, where, fmt.Errorf("not in the image (Traefik reads plugins from ./plugins-local/src relative to WORKDIR %s)", workdir)
	}
	if err != nil {
		return m, where, err
	}
	if err := yaml.Unmarshal(b, &m); err != nil {
		return m, where, err
	}
	return m, where, nil
}

func (c *checker) writeDynamic(rootfs string) error {
	var routes []traefikcfg.Route
	for _, pc := range c.plugins {
		if pc.done || pc.backend == nil {
			continue
		}
		routes = append(routes, traefikcfg.Route{
			Name:        pc.name,
			Rule:        "Host(`" + pc.host + "`)",
			EntryPoints: []string{checkEntryPoint},
			Plugin:      pc.Alias,
			Config:      pc.Config,
			Backend:     pc.backend.url,
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

func (c *checker) closeBackends() {
	for _, pc := range c.plugins {
		if pc.backend != nil {
			pc.backend.close()
		}
	}
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

// wait polls Traefik's API until every plugin is enabled or failed. Only
// cancellation of parent is an error; Traefik exiting or the timeout fail the
// plugins still pending, with Traefik's own errors as the reason.
func (c *checker) wait(ctx, parent context.Context, proc process, sink *traefikLog, timeout time.Duration) error {
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	apiAnswered := false
	ready := map[*pluginCheck]bool{}
	for {
		var waiting []*pluginCheck
		for _, pc := range c.pending() {
			if !ready[pc] {
				waiting = append(waiting, pc)
			}
		}
		if len(waiting) == 0 {
			return nil
		}
		select {
		case <-proc.done():
			st := sink.state()
			reason := "Traefik exited before enabling the plugin" + quoteErrors(st.errors, 3)
			if st.pluginsDisabled != "" {
				reason = disabledReason(st.pluginsDisabled)
			}
			for _, pc := range waiting {
				pc.fail(reason)
			}
			return nil
		case <-ctx.Done():
			if parent.Err() != nil {
				for _, pc := range waiting {
					pc.fail("the check was cancelled")
				}
				return fmt.Errorf("runtime check: %w", parent.Err())
			}
			st := sink.state()
			what := "did not list the plugin middleware as enabled"
			if !apiAnswered {
				what = "never answered (were the check's settings ignored? Traefik read its static configuration from " + c.rep.ConfigSource + ")"
			}
			for _, pc := range waiting {
				pc.fail(fmt.Sprintf("Traefik's API at %s %s within %s%s", c.rep.APIAddress, what, timeout, quoteErrors(st.errors, 3)))
			}
			return nil
		case <-ticker.C:
		}
		st := sink.state()
		if st.pluginsDisabled != "" {
			for _, pc := range waiting {
				pc.fail(disabledReason(st.pluginsDisabled))
			}
			return nil
		}
		// Without the check's dynamic configuration nothing will show up.
		for _, e := range st.errors {
			if strings.Contains(e, "*file.Provider") {
				for _, pc := range waiting {
					pc.fail("Traefik could not load the check's dynamic configuration: " + quote(e))
				}
				return nil
			}
		}
		for _, pc := range waiting {
			if pc.Type == "provider" {
				if st.pluginsLoaded {
					pc.pass("loaded by Traefik (provider plugins are not started by the check)")
				}
				continue
			}
			mw, err := c.object(ctx, "/api/http/middlewares/"+pc.name+"@file")
			if err != nil {
				continue
			}
			apiAnswered = true
			if mw == nil {
				continue
			}
			if len(mw.Error) > 0 {
				pc.fail("Traefik: " + quote(strings.Join(mw.Error, "; ")))
				continue
			}
			if mw.Status != "enabled" {
				continue
			}
			rt, err := c.object(ctx, "/api/http/routers/"+pc.name+"@file")
			if err != nil || rt == nil {
				continue
			}
			if len(rt.Error) > 0 {
				pc.fail("Traefik, on the plugin's router: " + quote(strings.Join(rt.Error, "; ")))
				continue
			}
			if rt.Status == "enabled" {
				ready[pc] = true
			}
		}
	}
}

func disabledReason(err string) string {
	return "Traefik disabled all plugins: " + quote(err)
}

// quote puts Traefik's words in quotes, on one line (v2.11 reports multiple
// errors as an indented list).
func quote(s string) string { return `"` + strings.Join(strings.Fields(s), " ") + `"` }

func quoteErrors(errs []string, n int) string {
	if len(errs) == 0 {
		return ""
	}
	if len(errs) > n {
		errs = errs[len(errs)-n:]
	}
	q := make([]string, len(errs))
	for i, e := range errs {
		q[i] = quote(e)
	}
	return "; Traefik logged: " + strings.Join(q, ", ")
}

type apiObject struct {
	Status string   `json:"status"`
	Error  []string `json:"error"`
}

func newClient() *http.Client {
	return &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
		// Plugins may redirect: the check looks at their own answer.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// object fetches one API object; nil, nil when Traefik does not know it (yet).
func (c *checker) object(ctx context.Context, p string) (*apiObject, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.api+p, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, nil
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", p, resp.Status)
	}
	var o apiObject
	if err := json.NewDecoder(resp.Body).Decode(&o); err != nil {
		return nil, fmt.Errorf("GET %s: %w", p, err)
	}
	return &o, nil
}

func (c *checker) entryPoints(ctx context.Context) []string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.api+"/api/entrypoints", nil)
	if err != nil {
		return nil
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var eps []struct {
		Name string `json:"name"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&eps) != nil {
		return nil
	}
	var names []string
	for _, ep := range eps {
		names = append(names, ep.Name)
	}
	sort.Strings(names)
	return names
}

// requests sends one request through every enabled middleware's router. When
// ctx ends, the plugins not reached yet fail too: none is left without a reason.
func (c *checker) requests(ctx context.Context) error {
	for _, pc := range c.pending() {
		if err := c.request(ctx, pc); err != nil {
			for _, rest := range c.pending() {
				rest.fail("no request sent through the plugin's router: the check ended first (" + err.Error() + ")")
			}
			return err
		}
	}
	return nil
}

func (c *checker) request(ctx context.Context, pc *pluginCheck) error {
	var last string
	// A 404 right after the API lists the router can be Traefik still
	// switching to the new configuration: retry it for a short while.
attempts:
	for attempt := 0; attempt < 25; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				pc.fail("no answer through the plugin's router: " + last)
				return ctx.Err()
			case <-time.After(pollInterval):
			}
		}
		before := pc.backend.count()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.web+requestPath(pc.Alias), nil)
		if err != nil {
			return err
		}
		req.Host = pc.host
		resp, err := c.client.Do(req)
		if err != nil {
			last = err.Error()
			continue
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		pc.res.Status = resp.StatusCode
		reached := pc.backend.count() > before
		if reached {
			pc.res.BackendHeaders = pc.backend.lastHeader()
		}
		last = fmt.Sprintf("Traefik answered %d %s", resp.StatusCode, quote(strings.TrimSpace(string(body))))
		switch {
		case pc.ExpectStatus != 0 && resp.StatusCode == pc.ExpectStatus:
			pc.pass(fmt.Sprintf("enabled by Traefik; answered %d as expected", resp.StatusCode))
			return nil
		case pc.ExpectStatus == 0 && reached:
			pc.pass(fmt.Sprintf("enabled by Traefik; the request reached the backend (%d)", resp.StatusCode))
			return nil
		case resp.StatusCode == http.StatusNotFound && !reached:
			continue
		}
		break attempts
	}
	pc.requestFailed = true
	if pc.ExpectStatus != 0 {
		pc.fail(fmt.Sprintf("expected status %d through the plugin, but %s", pc.ExpectStatus, last))
	} else {
		pc.fail("the request through the plugin did not reach the backend: " + last)
	}
	return nil
}

// requestPath is unique per plugin, so Traefik's log lines about a request
// (a recovered panic names its URL) can be told apart.
func requestPath(alias string) string { return "/xtraefik-runcheck/" + alias }

// explainRequestFailures adds to failed requests what Traefik logged about
// them: the request's path or the plugin's logger. Call it once Traefik has
// stopped, when its whole output has been read: a log line can arrive after
// the response it explains.
func (c *checker) explainRequestFailures() {
	errs := c.sink.state().errors
	for _, pc := range c.plugins {
		if !pc.requestFailed {
			continue
		}
		var mine []string
		for _, e := range errs {
			if strings.Contains(e, requestPath(pc.Alias)+"]") || strings.Contains(e, "plugin=plugin-"+pc.Alias+" ") || strings.Contains(e, "plugin=plugin-"+pc.Alias+")") {
				mine = append(mine, e)
			}
		}
		pc.res.Reason += quoteErrors(mine, 3)
	}
}

// backend records the requests a plugin lets through.
type backend struct {
	url    string
	srv    *http.Server
	mu     sync.Mutex
	n      int
	header http.Header
}

func newBackend() (*backend, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := &backend{url: "http://" + ln.Addr().String()}
	b.srv = &http.Server{Handler: b, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = b.srv.Serve(ln) }()
	return b, nil
}

func (b *backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	b.n++
	b.header = r.Header.Clone()
	b.mu.Unlock()
	_, _ = io.WriteString(w, "xtraefik runtime check backend\n")
}

func (b *backend) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n
}

func (b *backend) lastHeader() http.Header {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.header.Clone()
}

func (b *backend) close() { _ = b.srv.Close() }

// freeAddr picks a free loopback port. It is released before Traefik binds
// it; a clash shows up as Traefik failing to listen, in its log.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("runtime check: finding a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
