// Package stdlib_slog is a structured access log middleware, as plugins
// written since Go 1.21 are: it logs with log/slog, which is in the standard
// library of yaegi v0.16.1 (Traefik v2.11.1+, v3) but not of v0.15.x
// (Traefik v2.9.8–v2.11.0), where it cannot be imported.
package stdlib_slog

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"
)

// Config is the plugin configuration.
type Config struct {
	Level  string   `json:"level,omitempty"`
	Fields []string `json:"fields,omitempty"`
}

// CreateConfig returns the default configuration.
func CreateConfig() *Config {
	return &Config{Level: "info", Fields: []string{"method", "path", "status"}}
}

type accessLog struct {
	next   http.Handler
	name   string
	logger *slog.Logger
	level  slog.Level
	fields []string
}

// New builds the middleware.
func New(_ context.Context, next http.Handler, cfg *Config, name string) (http.Handler, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(strings.ToUpper(cfg.Level))); err != nil {
		return nil, fmt.Errorf("level %q: %w", cfg.Level, err)
	}
	h := slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: level})
	return &accessLog{next: next, name: name, logger: slog.New(h).With("middleware", name), level: level, fields: cfg.Fields}, nil
}

type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (a *accessLog) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	start := time.Now()
	rec := &recorder{ResponseWriter: rw, status: http.StatusOK}
	a.next.ServeHTTP(rec, req)
	attrs := []any{slog.Duration("duration", time.Since(start))}
	for _, f := range a.fields {
		switch f {
		case "method":
			attrs = append(attrs, slog.String("method", req.Method))
		case "path":
			attrs = append(attrs, slog.String("path", req.URL.Path))
		case "status":
			attrs = append(attrs, slog.Int("status", rec.status))
		}
	}
	a.logger.Log(req.Context(), a.level, "request", attrs...)
}
