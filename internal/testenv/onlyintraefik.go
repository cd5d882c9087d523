package testenv

// OnlyInTraefikModule is a plugin that is valid by every static rule and works
// when a verifier calls it, but refuses the provider-qualified name ("x@file")
// Traefik gives a middleware: it fails only inside Traefik, which is what the
// runtime check exists to catch.
const OnlyInTraefikModule = "example.test/onlyintraefik"

// OnlyInTraefikFiles are the plugin's files (path -> content).
func OnlyInTraefikFiles() map[string]string {
	return map[string]string{
		".traefik.yml": "displayName: Only fails in Traefik\ntype: middleware\nimport: example.test/onlyintraefik\nsummary: Refuses the names Traefik gives middlewares\ntestData:\n  Greeting: hello\n",
		"go.mod":       "module example.test/onlyintraefik\n\ngo 1.22\n",
		"plugin.go": `package onlyintraefik

import (
	"context"
	"fmt"
	"net/http"
	"strings"
)

type Config struct{ Greeting string }

func CreateConfig() *Config { return &Config{} }

func New(ctx context.Context, next http.Handler, cfg *Config, name string) (http.Handler, error) {
	if strings.Contains(name, "@") {
		return nil, fmt.Errorf("onlyintraefik refuses middleware %s", name)
	}
	return next, nil
}
`,
	}
}
