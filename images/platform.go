package images

import (
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// ParsePlatform parses os/arch[/variant]. Both os and architecture are
// required: go-containerregistry reads "linux" as "linux, any architecture",
// which would silently keep every platform of a base.
func ParsePlatform(s string) (*v1.Platform, error) {
	p, err := v1.ParsePlatform(s)
	if err != nil {
		return nil, fmt.Errorf("platform %q: %w", s, err)
	}
	if err := checkPlatform(*p); err != nil {
		return nil, fmt.Errorf("platform %q: %w", s, err)
	}
	return p, nil
}

func checkPlatform(p v1.Platform) error {
	if p.OS == "" || p.Architecture == "" {
		return fmt.Errorf("want os/arch[/variant], e.g. linux/amd64")
	}
	return nil
}

// checkPlatforms refuses a narrowing platform that would match everything.
func checkPlatforms(ps []v1.Platform) error {
	for _, p := range ps {
		if err := checkPlatform(p); err != nil {
			return fmt.Errorf("platform %q: %w", p.String(), err)
		}
	}
	return nil
}
