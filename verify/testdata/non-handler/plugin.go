package non_handler

import (
	"context"
	"net/http"
)

// Config is the plugin configuration.
type Config struct {
	Headers map[string]string
}

// CreateConfig returns the default configuration.
func CreateConfig() *Config { return &Config{} }

// New returns something that is not an http.Handler.
func New(_ context.Context, _ http.Handler, _ *Config, name string) (any, error) {
	return "not a handler: " + name, nil
}
