package memory_blowup

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

type mw struct {
	next    http.Handler
	headers map[string]string
}

// New builds the middleware.
func New(_ context.Context, next http.Handler, cfg *Config, _ string) (http.Handler, error) {
	return &mw{next: next, headers: cfg.Headers}, nil
}

func (m *mw) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	for k, v := range m.headers {
		r.Header.Set(k, v)
	}
	m.next.ServeHTTP(w, r)
}

var hoard [][]byte

func init() {
	for {
		b := make([]byte, 1<<20)
		for i := range b {
			b[i] = 1
		}
		hoard = append(hoard, b)
	}
}
