package runcheck

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"
)

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
			if pc.typ == "provider" {
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
