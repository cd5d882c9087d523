package build

import (
	"context"
	"fmt"
	"runtime"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/xtraefik/xtraefik/internal/runcheck"
	"github.com/xtraefik/xtraefik/internal/traefikcfg"
)

// runtimeCheck starts the assembled image's own Traefik for the host's platform
// with every plugin enabled the way the recipe's static configuration mode
// enables them, and sends a request through each middleware. Images without the
// host's platform are skipped (the report says so), never run under emulation.
// opts.Mode and opts.Plugins are filled from the build.
func runtimeCheck(ctx context.Context, res *result, opts runcheck.Options) (*runcheck.Report, error) {
	opts.Mode = traefikcfg.Mode(res.Resolution.Recipe.Mode())
	opts.Plugins = res.Resolution.Plugins
	img, skipped, err := hostImage(res)
	if err != nil {
		return nil, fmt.Errorf("runtime check: %w", err)
	}
	if skipped != "" {
		return &runcheck.Report{Skipped: skipped}, nil
	}
	return runcheck.Run(ctx, img, opts)
}

// hostImage is the image of res for the host's platform; skipped says why
// there is none (Traefik is never run under emulation).
func hostImage(res *result) (img v1.Image, skipped string, err error) {
	host := v1.Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH}
	var have []string
	for _, p := range res.Image.Platforms {
		if p.Platform.OS == "" && p.Platform.Architecture == "" {
			return nil, fmt.Sprintf("the base image's config names no platform (os and architecture are empty), so Traefik is not run: it may not be %s; set them on the base, e.g. crane mutate --set-platform %s", host, host), nil
		}
		have = append(have, p.Platform.String())
		if p.Platform.OS == host.OS && p.Platform.Architecture == host.Architecture {
			img, err := res.Image.Image(p.Platform)
			return img, "", err
		}
	}
	return nil, fmt.Sprintf("the image has no %s platform (it has %s): Traefik is not run for another platform", host.String(), strings.Join(have, ", ")), nil
}
