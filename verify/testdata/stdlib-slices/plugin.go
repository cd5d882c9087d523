// Package stdlib_slices imports slices (Go 1.21): in the standard library of
// yaegi v0.16.1, not of v0.15.1 (Traefik v2.11).
package stdlib_slices

import (
	"context"
	"net/http"
	"slices"
)

// Config is the plugin configuration.
type Config struct {
	Headers map[string]string `json:"headers,omitempty"`
}

// CreateConfig returns the default configuration.
func CreateConfig() *Config { return &Config{Headers: map[string]string{}} }

type mw struct {
	next http.Handler
	keys []string
	cfg  map[string]string
}

// New builds the middleware.
func New(_ context.Context, next http.Handler, cfg *Config, _ string) (http.Handler, error) {
	m := &mw{next: next, cfg: cfg.Headers}
	for k := range cfg.Headers {
		if !slices.Contains(m.keys, k) {
			m.keys = append(m.keys, k)
		}
	}
	return m, nil
}

func (m *mw) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	for _, k := range m.keys {
		if !slices.Contains([]string{"Host", "Content-Length"}, k) {
			r.Header.Set(k, m.cfg[k])
		}
	}
	m.next.ServeHTTP(w, r)
}
