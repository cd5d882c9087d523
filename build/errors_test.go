package build

import (
	"context"
	"strings"
	"testing"

	"github.com/xtraefik/xtraefik/images"
	"github.com/xtraefik/xtraefik/internal/plugin"
	"github.com/xtraefik/xtraefik/recipe"
	"github.com/xtraefik/xtraefik/verify"
)

// TestErrorsNameTheirStageOnce: verify's and sbom's errors already say which
// stage failed; build passes them on without saying it again.
func TestErrorsNameTheirStageOnce(t *testing.T) {
	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	res := &resolution{Recipe: &recipe.Recipe{Base: "example.com/traefik:v3"},
		Base: &images.Base{}, Traefik: Target{Version: "v3.6.12"},
		Plugins: []plugin.Plugin{{Alias: "demo", Module: "example.com/demo"}}}
	for _, tt := range []struct {
		stage string
		run   func() error
	}{
		{"verify: ", func() error {
			_, err := verifyPlugins(canceled, res, verify.Options{})
			return err
		}},
		{"sbom: ", func() error {
			_, err := fullSBOM(&result{Resolution: &resolution{Recipe: &recipe.Recipe{}, Base: &images.Base{}}, Image: &images.Result{}})
			return err
		}},
	} {
		err := tt.run()
		if err == nil || strings.Count(err.Error(), tt.stage) != 1 {
			t.Errorf("error %v: want %q exactly once", err, tt.stage)
		}
	}
}

// verifyPlugins verifies res's plugins as the verify stage does, with
// nobody told.
func verifyPlugins(ctx context.Context, res *resolution, vo verify.Options) ([]verify.Result, error) {
	v, err := verify.NewVerifier(vo)
	if err != nil {
		return nil, err
	}
	defer v.Close()
	return verifyWith(ctx, nil, v, res)
}
