package runcheck

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
)

// traefikLog collects Traefik's output and reads the events the check needs
// from its JSON log lines (zerolog in v3: "message"; logrus in v2: "msg").
type traefikLog struct {
	mu      sync.Mutex
	all     bytes.Buffer
	partial []byte
	fwd     io.Writer

	errors          []string
	pluginsLoaded   bool
	pluginsDisabled string
	// static holds experimental.localPlugins (alias -> module) as Traefik
	// dumped its effective static configuration, nil until seen.
	static map[string]string
}

func newTraefikLog(fwd io.Writer) *traefikLog { return &traefikLog{fwd: fwd} }

func (l *traefikLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all.Write(p)
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.line(string(l.partial[:i]))
		l.partial = l.partial[i+1:]
	}
	return len(p), nil
}

func (l *traefikLog) line(s string) {
	s = strings.TrimRight(s, "\r")
	if strings.TrimSpace(s) == "" {
		return
	}
	var ev map[string]any
	if err := json.Unmarshal([]byte(s), &ev); err != nil {
		// Not a log event: a crash, a shell, runc. Keep it as an error.
		l.errors = append(l.errors, s)
		l.forward(s)
		return
	}
	level, _ := ev["level"].(string)
	msg, _ := ev["message"].(string)
	if msg == "" {
		msg, _ = ev["msg"].(string)
	}
	errText, _ := ev["error"].(string)
	switch {
	case strings.HasPrefix(msg, "Plugins are disabled because an error has occurred"):
		l.pluginsDisabled = errText
		if errText == "" {
			// v2.11 puts the error in the message.
			l.pluginsDisabled = strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(msg, "Plugins are disabled because an error has occurred"), ":"))
		}
	case msg == "Plugins loaded.":
		l.pluginsLoaded = true
	case strings.HasPrefix(msg, "Static configuration loaded"):
		l.readStatic(ev, msg)
	}
	switch level {
	case "error", "fatal", "panic":
		// Traefik logs a recovered panic, then its stack: the first says it.
		if !strings.HasPrefix(msg, "Stack: ") {
			l.errors = append(l.errors, formatEvent(msg, errText, ev))
		}
		l.forward(s)
	case "warn", "warning":
		l.forward(s)
	}
}

func (l *traefikLog) forward(s string) {
	if l.fwd != nil {
		fmt.Fprintf(l.fwd, "traefik| %s\n", s)
	}
}

// readStatic takes the plugins from the static configuration dump (v3: a
// "staticConfiguration" object; v2: JSON appended to the message).
func (l *traefikLog) readStatic(ev map[string]any, msg string) {
	cfg, _ := ev["staticConfiguration"].(map[string]any)
	if cfg == nil {
		if i := strings.IndexByte(msg, '{'); i >= 0 {
			_ = json.Unmarshal([]byte(msg[i:]), &cfg)
		}
	}
	if cfg == nil {
		return
	}
	l.static = map[string]string{}
	exp, _ := cfg["experimental"].(map[string]any)
	local, _ := exp["localPlugins"].(map[string]any)
	for alias, d := range local {
		desc, _ := d.(map[string]any)
		mod, _ := desc["moduleName"].(string)
		l.static[alias] = mod
	}
}

func formatEvent(msg, errText string, ev map[string]any) string {
	// A stack trace after the first line says nothing a reason needs.
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i] + " …"
	}
	var parts []string
	if msg != "" {
		parts = append(parts, msg)
	}
	if errText != "" {
		parts = append(parts, errText)
	}
	// Context such as routerName or plugin, which says what failed.
	var keys []string
	for k := range ev {
		switch k {
		case "level", "message", "msg", "error", "time", "caller":
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var ctx []string
	for _, k := range keys {
		ctx = append(ctx, fmt.Sprintf("%s=%v", k, ev[k]))
	}
	out := strings.Join(parts, ": ")
	if len(ctx) > 0 {
		out += " (" + strings.Join(ctx, " ") + ")"
	}
	return out
}

type logState struct {
	errors          []string
	pluginsLoaded   bool
	pluginsDisabled string
	static          map[string]string
}

func (l *traefikLog) state() logState {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := logState{
		errors:          append([]string(nil), l.errors...),
		pluginsLoaded:   l.pluginsLoaded,
		pluginsDisabled: l.pluginsDisabled,
	}
	if l.static != nil {
		st.static = map[string]string{}
		for k, v := range l.static {
			st.static[k] = v
		}
	}
	return st
}

func (l *traefikLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.all.String()
}
