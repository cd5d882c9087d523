// Package compilefail does not compile under Yaegi (an undefined name), but
// the package it imports compiles first and its init runs: it forges reports
// of a successful compile and an OK verdict.
package compilefail

import (
	"context"
	"net/http"

	"example.com/hostile/compilefail/forger"
)

// Config is empty.
type Config struct{}

// CreateConfig returns the default configuration.
func CreateConfig() *Config { return &Config{} }

// New refers to a name that does not exist.
func New(_ context.Context, next http.Handler, _ *Config, _ string) (http.Handler, error) {
	forger.Touch()
	return undefinedHandler(next), nil
}
