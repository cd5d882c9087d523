package runcheck

import (
	"context"
	"fmt"
	"runtime"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// RunIndex runs the check on the image of idx built for the host's platform.
// An index without one gives a report that says so in Skipped: another
// platform's image is never run.
func RunIndex(ctx context.Context, idx v1.ImageIndex, opts Options) (*Report, error) {
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("runtime check: reading the index: %w", err)
	}
	var have []string
	for _, d := range m.Manifests {
		if d.Platform == nil || !d.MediaType.IsImage() {
			continue
		}
		have = append(have, d.Platform.String())
		if d.Platform.OS == runtime.GOOS && d.Platform.Architecture == runtime.GOARCH {
			img, err := idx.Image(d.Digest)
			if err != nil {
				return nil, fmt.Errorf("runtime check: reading the %s image: %w", d.Platform, err)
			}
			return Run(ctx, img, opts)
		}
	}
	rep := &Report{Skipped: fmt.Sprintf("the image has no %s/%s platform (it has %s): Traefik is not run for another platform", runtime.GOOS, runtime.GOARCH, strings.Join(have, ", "))}
	if opts.Log != nil {
		fmt.Fprintf(opts.Log, "runcheck: skipped: %s\n", rep.Skipped)
	}
	return rep, nil
}
