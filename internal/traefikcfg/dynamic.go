package traefikcfg

import (
	"bytes"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// Route puts one plugin middleware on a router in front of one backend.
type Route struct {
	// Name names the router, the middleware and the service.
	Name string
	// Rule is the router rule, e.g. Host(`a.example`).
	Rule        string
	EntryPoints []string
	// Plugin is the local plugin alias; Config its configuration (testData).
	// Empty: a router without middleware.
	Plugin string
	Config map[string]any
	// Backend is the service URL.
	Backend string
}

// DynamicFile renders a file-provider configuration for routes. Traefik renders
// a file-provider file as a Go template (text/template with sprig, pkg/provider/
// file, v2.11 and v3.6) before parsing it, so every "{{" in the output is escaped
// to come out of that rendering unchanged: plugindemo's testData '{{URL}}' would
// otherwise break the whole file.
func DynamicFile(routes []Route) ([]byte, error) {
	routers := map[string]any{}
	middlewares := map[string]any{}
	services := map[string]any{}
	for _, r := range routes {
		if r.Name == "" || r.Rule == "" || r.Backend == "" {
			return nil, fmt.Errorf("route %q: name, rule and backend are required", r.Name)
		}
		if _, dup := routers[r.Name]; dup {
			return nil, fmt.Errorf("route %q appears twice", r.Name)
		}
		cfg, err := normalize(r.Config)
		if err != nil {
			return nil, fmt.Errorf("route %q: plugin configuration: %w", r.Name, err)
		}
		if cfg == nil {
			cfg = map[string]any{}
		}
		router := map[string]any{
			"rule":    r.Rule,
			"service": r.Name,
		}
		if len(r.EntryPoints) > 0 {
			router["entryPoints"] = r.EntryPoints
		}
		if r.Plugin != "" {
			router["middlewares"] = []string{r.Name}
			middlewares[r.Name] = map[string]any{"plugin": map[string]any{r.Plugin: cfg}}
		}
		routers[r.Name] = router
		services[r.Name] = map[string]any{"loadBalancer": map[string]any{"servers": []any{map[string]any{"url": r.Backend}}}}
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(map[string]any{"http": map[string]any{"routers": routers, "middlewares": middlewares, "services": services}}); err != nil {
		return nil, fmt.Errorf("rendering dynamic configuration: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("rendering dynamic configuration: %w", err)
	}
	return []byte(EscapeTemplate(buf.String())), nil
}

// EscapeTemplate makes text come out of Go template rendering unchanged. Only
// "{{" opens an action, so each one becomes an action printing "{{".
func EscapeTemplate(text string) string {
	return strings.ReplaceAll(text, "{{", `{{"{{"}}`)
}
