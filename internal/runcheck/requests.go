package runcheck

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/xtraefik/xtraefik/internal/probe"
)

// canaryName names the router without a plugin whose answer proves that
// Traefik serves the check's dynamic configuration.
const canaryName = "xtraefik-check-canary"

// newClient talks to Traefik through n. It sends what probe.ClientHeader
// says and nothing more (no Accept-Encoding of its own).
func newClient(n network) *http.Client {
	return &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true, DisableCompression: true, DialContext: n.dial},
		// Plugins may redirect: the check looks at their own answer.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// requests sends the probe request through every enabled middleware's
// router, once Traefik routes the canary: its routers are built and switched
// in together with the plugins' (one file-provider configuration), so from
// then on a 404 is a plugin's own answer or a router Traefik disabled (the
// API tells which), never a configuration not applied yet. When ctx ends,
// the plugins not reached yet fail too: none is left without a reason.
func (c *checker) requests(ctx context.Context) error {
	failRest := func(why string) {
		for _, pc := range c.pending() {
			pc.fail("no request sent through the plugin's router: " + why)
		}
	}
	if len(c.pending()) == 0 {
		return nil
	}
	if err := c.awaitRouting(ctx); err != nil {
		if ctx.Err() != nil {
			failRest("the check ended first (" + ctx.Err().Error() + ")")
			return ctx.Err()
		}
		failRest(err.Error())
		return nil
	}
	for _, pc := range c.pending() {
		if err := c.request(ctx, pc); err != nil {
			failRest("the check ended first (" + err.Error() + ")")
			return err
		}
	}
	return nil
}

// awaitRouting sends requests to the canary router until its backend answers.
func (c *checker) awaitRouting(ctx context.Context) error {
	last := "no answer"
	for {
		before := c.canary.count()
		req, err := http.NewRequestWithContext(ctx, probe.Method, c.web+probe.Path(canaryName), nil)
		if err != nil {
			return err
		}
		req.Host, req.Header = probe.Host, probe.ClientHeader()
		resp, err := c.client.Do(req)
		if err == nil {
			resp.Body.Close()
			if c.canary.count() > before {
				return nil
			}
			last = "Traefik answered " + resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the check's requests were never routed by Traefik (%s): %w", last, ctx.Err())
		case <-c.exited:
			return fmt.Errorf("the check's requests were never routed: Traefik exited (%s)", last)
		case <-time.After(pollInterval):
		}
	}
}

// request sends the probe request through one plugin's router and judges the
// answer with the criterion static verification uses (probe.Judge).
func (c *checker) request(ctx context.Context, pc *pluginCheck) error {
	before := pc.backend.count()
	req, err := http.NewRequestWithContext(ctx, probe.Method, c.web+probe.Path(pc.Alias), nil)
	if err != nil {
		return err
	}
	req.Host, req.Header = probe.Host, probe.ClientHeader()
	resp, err := c.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		pc.requestFailed = true
		pc.fail("no answer through the plugin's router: " + err.Error())
		return nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	resp.Body.Close()
	pc.res.Status = resp.StatusCode
	reached := pc.backend.count() > before
	if reached {
		pc.res.BackendHeaders = pc.backend.lastHeader()
	}
	if resp.StatusCode == http.StatusNotFound && !reached {
		// Traefik's own 404 when it dropped the router, e.g. because the
		// middleware failed to build: the API says so.
		rt, err := c.object(ctx, "/api/http/routers/"+pc.name+"@file")
		switch {
		case err != nil:
			pc.requestFailed = true
			pc.fail("Traefik answered 404 and its API could not say whether the plugin's router is enabled: " + err.Error())
			return nil
		case rt == nil || rt.Status != "enabled":
			why := "the router is gone"
			if rt != nil {
				why = "router " + rt.Status + quoteErrors(rt.Error, 3)
			}
			pc.requestFailed = true
			pc.fail("Traefik disabled the plugin's router and answered 404 itself: " + why)
			return nil
		}
	}
	ok, verdict, warning := probe.Judge(probe.Answer{Status: resp.StatusCode, Reached: reached}, probe.Expect{Status: pc.ExpectStatus})
	if ok {
		pc.pass("enabled by Traefik; " + verdict)
		if warning != "" {
			// Until Traefik's log says it was no panic (judgePanics).
			pc.res.Warning = warning + "; Traefik answered " + quote(strings.TrimSpace(string(body)))
		}
		return nil
	}
	pc.requestFailed = true
	pc.fail(verdict + "; Traefik answered " + quote(strings.TrimSpace(string(body))))
	return nil
}

// recoveredPanic is how Traefik's recovery middleware logs a panic of a
// handler (pkg/middlewares/recovery, v2.11 and v3.6.12 alike), followed by
// "[<client> - <URL>]: <value>".
const recoveredPanic = "Recovered from panic in HTTP handler"

// judgePanics fails the plugins whose server error was Traefik's recovery
// answering for a panic, not the plugin's own answer: a panic FAILs, as in
// static verification. Call it once Traefik has stopped (as
// explainRequestFailures), before it.
func (c *checker) judgePanics() {
	errs := c.sink.state().errors
	for _, pc := range c.plugins {
		if !pc.res.OK || pc.res.Warning == "" {
			continue
		}
		for _, e := range errs {
			if strings.Contains(e, recoveredPanic) && strings.Contains(e, probe.Path(pc.Alias)+"]") {
				pc.res.Warning = ""
				pc.requestFailed = true
				pc.fail(fmt.Sprintf("the plugin panicked serving the request; Traefik's recovery answered %d", pc.res.Status))
				break
			}
		}
	}
}

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
			if strings.Contains(e, probe.Path(pc.Alias)+"]") || strings.Contains(e, "plugin=plugin-"+pc.Alias+" ") || strings.Contains(e, "plugin=plugin-"+pc.Alias+")") {
				mine = append(mine, e)
			}
		}
		pc.res.Reason += quoteErrors(mine, 3)
	}
}

// backend records the requests a plugin lets through. Its address is chosen
// before Traefik starts (Traefik's configuration names it); it listens once
// Traefik's network exists.
type backend struct {
	addr   string
	srv    *http.Server
	mu     sync.Mutex
	n      int
	header http.Header
}

func (b *backend) url() string { return "http://" + b.addr }

// serve starts answering on b.addr in n.
func (b *backend) serve(n network) error {
	ln, err := n.listen(b.addr)
	if err != nil {
		return err
	}
	b.mu.Lock()
	b.srv = &http.Server{Handler: b, ReadHeaderTimeout: 10 * time.Second}
	b.mu.Unlock()
	go func() { _ = b.srv.Serve(ln) }()
	return nil
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

func (b *backend) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.srv != nil {
		_ = b.srv.Close()
	}
}

// freeAddr picks a free loopback port of the host. It is released before
// Traefik or a backend binds it; a clash shows up as a failure to listen. In
// Traefik's own network namespace every port is free.
// ports hands out loopback addresses, each distinct from those it handed
// out before: a port freeAddr just released may be the kernel's next answer,
// and two backends on one port collide in Traefik's network namespace.
type ports map[string]bool

func (p *ports) free() (string, error) {
	if *p == nil {
		*p = ports{}
	}
	for range 32 {
		addr, err := freeAddr()
		if err != nil {
			return "", err
		}
		if !(*p)[addr] {
			(*p)[addr] = true
			return addr, nil
		}
	}
	return "", fmt.Errorf("runtime check: no free port distinct from the %d already chosen", len(*p))
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("runtime check: finding a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
