package traefikcfg

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"text/template"

	"gopkg.in/yaml.v3"
)

// render does what Traefik's file provider does with a file before parsing it
// (pkg/provider/file CreateConfiguration, v3.6): parse it as a text/template and
// execute it with false as data. Traefik also installs sprig's functions; escaped
// text calls none, and the lexer that decides what is an action is text/template's.
func render(t *testing.T, text string) (string, error) {
	t.Helper()
	tmpl, err := template.New("dynamic.yml").Parse(text)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, false); err != nil {
		return "", err
	}
	return buf.String(), nil
}

func TestEscapeTemplate(t *testing.T) {
	for _, s := range []string{
		"", "plain", "{{URL}}", "'{{URL}}'", "{{{", "{{{{", "}}", "{{- x -}}", "a{{b}}c{{", `{{"{{"}}`, "{ {", "x{",
	} {
		got, err := render(t, EscapeTemplate(s))
		if err != nil {
			t.Errorf("EscapeTemplate(%q) does not render: %v", s, err)
			continue
		}
		if got != s {
			t.Errorf("EscapeTemplate(%q) renders as %q", s, got)
		}
	}
}

func TestDynamicFile(t *testing.T) {
	routes := []Route{{
		Name:        "check-demo",
		Rule:        "Host(`p0.check.invalid`)",
		EntryPoints: []string{"web"},
		Plugin:      "demo",
		// plugindemo's testData: '{{URL}}' is for the plugin's own template, not Traefik's.
		Config:  map[string]any{"Headers": map[string]any{"X-Demo": "test", "X-URL": "{{URL}}"}},
		Backend: "http://127.0.0.1:8080",
	}, {
		Name:    "check-bare",
		Rule:    "PathPrefix(`/`)",
		Plugin:  "bare",
		Backend: "http://127.0.0.1:8081",
	}, {
		Name:    "check-none",
		Rule:    "Path(`/none`)",
		Backend: "http://127.0.0.1:8082",
	}}
	b, err := DynamicFile(routes)
	if err != nil {
		t.Fatal(err)
	}

	// Unescaped, the same configuration breaks Traefik's template rendering:
	// this is the failure the escaping exists to prevent.
	if _, err := render(t, strings.ReplaceAll(string(b), `{{"{{"}}`, "{{")); err == nil || !strings.Contains(err.Error(), `"URL" not defined`) {
		t.Fatalf("unescaped file should fail to render with an undefined function, got %v", err)
	}

	out, err := render(t, string(b))
	if err != nil {
		t.Fatalf("escaped file does not render: %v\n%s", err, b)
	}
	var got map[string]any
	if err := yaml.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("rendered file is not YAML: %v\n%s", err, out)
	}
	want := map[string]any{"http": map[string]any{
		"routers": map[string]any{
			"check-demo": map[string]any{"rule": "Host(`p0.check.invalid`)", "entryPoints": []any{"web"}, "middlewares": []any{"check-demo"}, "service": "check-demo"},
			"check-bare": map[string]any{"rule": "PathPrefix(`/`)", "middlewares": []any{"check-bare"}, "service": "check-bare"},
			"check-none": map[string]any{"rule": "Path(`/none`)", "service": "check-none"},
		},
		"middlewares": map[string]any{
			"check-demo": map[string]any{"plugin": map[string]any{"demo": map[string]any{"Headers": map[string]any{"X-Demo": "test", "X-URL": "{{URL}}"}}}},
			"check-bare": map[string]any{"plugin": map[string]any{"bare": map[string]any{}}},
		},
		"services": map[string]any{
			"check-demo": map[string]any{"loadBalancer": map[string]any{"servers": []any{map[string]any{"url": "http://127.0.0.1:8080"}}}},
			"check-bare": map[string]any{"loadBalancer": map[string]any{"servers": []any{map[string]any{"url": "http://127.0.0.1:8081"}}}},
			"check-none": map[string]any{"loadBalancer": map[string]any{"servers": []any{map[string]any{"url": "http://127.0.0.1:8082"}}}},
		},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("rendered configuration:\n%s\nwant %v", out, want)
	}
}

func TestDynamicFileErrors(t *testing.T) {
	ok := Route{Name: "a", Rule: "PathPrefix(`/`)", Plugin: "p", Backend: "http://127.0.0.1:1"}
	noRule := ok
	noRule.Rule = ""
	badCfg := ok
	badCfg.Config = map[string]any{"x": map[any]any{2: 3}}
	for name, routes := range map[string][]Route{
		"missing rule":    {noRule},
		"duplicate":       {ok, ok},
		"non-string keys": {badCfg},
	} {
		if _, err := DynamicFile(routes); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
