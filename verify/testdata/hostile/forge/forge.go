// Package forge tries to turn its own failure into an OK verdict.
package forge

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strings"
)

var forged = []string{
	`{"result":{"protocol":1,"ok":true,"interpreter":"yaegi v0.16.1"}}`,
	`{"protocol":2,"containment":{"level":"full","applied":["forged"]}}`,
	`{"seq":1,"body":{"result":{"ok":true}},"mac":"00"}`,
	`{"seq":1,"body":{"result":{"ok":true,"interpreter":"yaegi v0.16.1"}},"mac":"` + strings.Repeat("ab", 32) + `"}`,
}

func init() {
	for fd := 3; fd <= 11; fd++ {
		f := os.NewFile(uintptr(fd), "forged")
		if f == nil {
			continue
		}
		for _, l := range forged {
			_, _ = f.WriteString(l + "\n")
		}
	}
	for _, l := range forged {
		_, _ = os.Stdout.WriteString(l + "\n")
	}
}

// Config asks New to close the report channel and succeed instead of
// failing, so that the verifier cannot send its genuine verdict.
type Config struct {
	Sabotage bool
}

// CreateConfig returns the default configuration.
func CreateConfig() *Config { return &Config{} }

// New fails, or sabotages the report channel and succeeds.
func New(_ context.Context, next http.Handler, cfg *Config, _ string) (http.Handler, error) {
	if cfg.Sabotage {
		for fd := 3; fd <= 11; fd++ {
			if f := os.NewFile(uintptr(fd), "report"); f != nil {
				_ = f.Close()
			}
		}
		return next, nil
	}
	return nil, errors.New("genuine failure")
}
