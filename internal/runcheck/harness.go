package runcheck

import (
	"strings"

	"github.com/xtraefik/xtraefik/internal/traefikcfg"
)

// harness is what xtraefik needs from Traefik, whatever the source: for
// the check, the API and the probe entry point (apiAddr, webAddr); for
// Serve, the user's entry points.
type harness struct {
	apiAddr, webAddr string
	entryPoints      []EntryPoint
	// graceTimeOut bounds how long Traefik lets the entryPoints' requests
	// finish when stopped (Traefik's default is 10s).
	graceTimeOut string
	// dynamic is the file-provider file (or directory, with dynamicDir) as
	// the process sees it.
	dynamic    string
	dynamicDir bool
	// logLevel and logFormat default to DEBUG and json, which the check
	// reads (traefikLog).
	logLevel, logFormat string
}

// flat is the harness as dotted keys and values, in a fixed order.
func (h harness) flat() [][2]string {
	level, format := h.logLevel, h.logFormat
	if level == "" {
		level = "DEBUG"
	}
	if format == "" {
		format = "json"
	}
	out := [][2]string{
		{"global.checkNewVersion", "false"},
		{"global.sendAnonymousUsage", "false"},
	}
	if h.apiAddr != "" {
		out = append(out, [2]string{"entryPoints." + apiEntryPoint + ".address", h.apiAddr})
	}
	if h.webAddr != "" {
		out = append(out, [2]string{"entryPoints." + checkEntryPoint + ".address", h.webAddr})
	}
	for _, ep := range h.entryPoints {
		out = append(out, [2]string{"entryPoints." + ep.Name + ".address", ep.Address})
		if h.graceTimeOut != "" {
			out = append(out, [2]string{"entryPoints." + ep.Name + ".transport.lifeCycle.graceTimeOut", h.graceTimeOut})
		}
	}
	if h.apiAddr != "" {
		out = append(out, [2]string{"api.insecure", "true"}, [2]string{"api.dashboard", "false"})
	}
	if h.dynamic != "" {
		key := "filename"
		if h.dynamicDir {
			key = "directory"
		}
		out = append(out, [2]string{"providers.file." + key, h.dynamic}, [2]string{"providers.file.watch", "false"})
	}
	return append(out,
		// One configuration, loaded once: nothing to throttle.
		[2]string{"providers.providersThrottleDuration", "0s"},
		[2]string{"log.level", level},
		[2]string{"log.format", format},
	)
}

// settings are the harness as a configuration file amendment: each
// top-level section the harness sets replaces the image's.
func (h harness) settings() []traefikcfg.Setting {
	var out []traefikcfg.Setting
	index := map[string]int{}
	for _, kv := range h.flat() {
		path := strings.Split(kv[0], ".")
		var v any = kv[1]
		switch kv[1] {
		case "true":
			v = true
		case "false":
			v = false
		}
		// entryPoints, api, providers.file and log are set whole, the
		// rest (global.*, providers.providersThrottleDuration) key by key.
		head := 1
		if path[0] == "global" || path[0] == "providers" {
			head = 2
		}
		key := strings.Join(path[:head], ".")
		i, ok := index[key]
		if !ok {
			i = len(out)
			index[key] = i
			out = append(out, traefikcfg.Setting{Path: path[:head], Value: map[string]any{}})
		}
		if head == len(path) {
			out[i].Value = v
			continue
		}
		m := out[i].Value.(map[string]any)
		for _, k := range path[head : len(path)-1] {
			next, ok := m[k].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[k] = next
			}
			m = next
		}
		m[path[len(path)-1]] = v
	}
	return out
}

func (h harness) flags() []string {
	var out []string
	for _, kv := range h.flat() {
		out = append(out, "--"+kv[0]+"="+kv[1])
	}
	return out
}

func (h harness) env() []string {
	var out []string
	for _, kv := range h.flat() {
		out = append(out, "TRAEFIK_"+strings.ToUpper(strings.ReplaceAll(kv[0], ".", "_"))+"="+kv[1])
	}
	return out
}
