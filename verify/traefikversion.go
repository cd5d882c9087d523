package verify

import (
	"debug/buildinfo"
	"fmt"
	"io"
	"regexp"
	"runtime/debug"
	"strings"
)

var semver = regexp.MustCompile(`^v?(\d+)\.(\d+)(\.\d+)?(-[0-9A-Za-z.-]+)?$`)

// TraefikVersionFromLabels reads Traefik's version from an image's labels,
// normalised to "vX.Y.Z"; "" when no label holds a version.
func TraefikVersionFromLabels(labels map[string]string) string {
	// In order of trust: the official images set the OCI one.
	for _, k := range []string{"org.opencontainers.image.version", "org.label-schema.version"} {
		if v := normaliseVersion(labels[k]); v != "" {
			return v
		}
	}
	return ""
}

// TraefikVersionFromBinary reads the version a Traefik binary was built with
// from its Go build information: the -X .../pkg/version.Version= link flag
// Traefik's release builds set, else the main module version. It returns ""
// (no error) for a Go binary that tells neither.
func TraefikVersionFromBinary(r io.ReaderAt) (string, error) {
	bi, err := buildinfo.Read(r)
	if err != nil {
		return "", fmt.Errorf("read Go build info of the Traefik binary: %w", err)
	}
	return TraefikVersionFromBuildInfo(bi), nil
}

// TraefikVersionFromBuildInfo is TraefikVersionFromBinary for build info
// already read.
func TraefikVersionFromBuildInfo(bi *debug.BuildInfo) string {
	for _, s := range bi.Settings {
		if s.Key != "-ldflags" {
			continue
		}
		for _, f := range strings.Fields(s.Value) {
			if _, v, ok := strings.Cut(f, "/pkg/version.Version="); ok && strings.Contains(f, "github.com/traefik/traefik") {
				if v := normaliseVersion(strings.Trim(v, `'"`)); v != "" {
					return v
				}
			}
		}
	}
	if strings.HasPrefix(bi.Main.Path, "github.com/traefik/traefik") {
		return normaliseVersion(bi.Main.Version)
	}
	return ""
}

func normaliseVersion(v string) string {
	v = strings.TrimSpace(v)
	if !semver.MatchString(v) {
		return ""
	}
	if !strings.HasPrefix(v, "v") {
		v = "v" + v
	}
	return v
}
