// Package upstream_unreachable stands for an authentication middleware
// (OIDC) that asks its identity provider for its discovery document on each
// request and, when the provider cannot be reached, answers with its own
// error page and a server error, as such plugins do.
package upstream_unreachable

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Config is the plugin configuration.
type Config struct {
	IssuerURL string `json:"issuerURL,omitempty"`
	// Status is what the plugin answers when the provider is unreachable.
	Status int `json:"status,omitempty"`
}

// CreateConfig returns the default configuration.
func CreateConfig() *Config { return &Config{Status: http.StatusServiceUnavailable} }

type oidc struct {
	next   http.Handler
	issuer string
	status int
	client *http.Client
}

// New builds the middleware; the provider is only asked on requests.
func New(_ context.Context, next http.Handler, cfg *Config, _ string) (http.Handler, error) {
	if cfg.IssuerURL == "" {
		return nil, errors.New("issuerURL is required")
	}
	return &oidc{next: next, issuer: cfg.IssuerURL, status: cfg.Status, client: &http.Client{Timeout: 3 * time.Second}}, nil
}

func (o *oidc) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	resp, err := o.client.Get(o.issuer + "/.well-known/openid-configuration")
	if err != nil {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(o.status)
		fmt.Fprintf(w, "<html><body><h1>Sign-in unavailable</h1><p>the identity provider cannot be reached</p></body></html>\n")
		return
	}
	resp.Body.Close()
	// A real plugin would redirect to the provider here.
	w.Header().Set("Location", o.issuer+"/protocol/openid-connect/auth")
	w.WriteHeader(http.StatusFound)
}
