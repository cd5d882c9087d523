// Package yaegi_generic_embed embeds an instance of a generic type and selects
// it by its type name: yaegi v0.16.1 interprets that, v0.15.1 (Traefik v2.11)
// fails with "undefined selector".
package yaegi_generic_embed

import (
	"context"
	"net/http"
)

// Config is the plugin configuration.
type Config struct {
	Headers map[string]string `json:"headers,omitempty"`
}

// CreateConfig returns the default configuration.
func CreateConfig() *Config { return &Config{Headers: map[string]string{}} }

// Pairs is a generic list of key/value pairs.
type Pairs[V any] struct {
	Keys   []string
	Values []V
}

type mw struct {
	Pairs[string]
	next http.Handler
}

// New builds the middleware.
func New(_ context.Context, next http.Handler, cfg *Config, _ string) (http.Handler, error) {
	m := &mw{next: next}
	for k, v := range cfg.Headers {
		m.Pairs.Keys = append(m.Pairs.Keys, k)
		m.Pairs.Values = append(m.Pairs.Values, v)
	}
	return m, nil
}

func (m *mw) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	for i, k := range m.Keys {
		r.Header.Set(k, m.Values[i])
	}
	m.next.ServeHTTP(w, r)
}
