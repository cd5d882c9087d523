package provider_provide_error

import (
	"context"
	"encoding/json"
	"errors"
)

// Config is the provider configuration.
type Config struct {
	Router string `json:"router,omitempty"`
}

// CreateConfig returns the default configuration.
func CreateConfig() *Config { return &Config{} }

// Provider is the provider.
type Provider struct {
	cfg    *Config
	cancel func()
}

// New builds the provider.
func New(_ context.Context, cfg *Config, _ string) (*Provider, error) {
	return &Provider{cfg: cfg, cancel: func() {}}, nil
}

// Init checks the configuration.
func (p *Provider) Init() error {
	return nil
}

type payload map[string]any

func (p payload) MarshalJSON() ([]byte, error) { return json.Marshal(map[string]any(p)) }

// Provide sends configurations.
func (p *Provider) Provide(cfgChan chan<- json.Marshaler) error {
	if p.cfg.Router != "" {
		return errors.New("cannot watch the backend")
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	go func() {
		<-ctx.Done()
	}()
	return nil
}

// Stop stops the provider.
func (p *Provider) Stop() error {
	p.cancel()
	return nil
}
