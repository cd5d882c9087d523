package build

import (
	"context"
	"fmt"
	"os"
	"path"
	"strings"

	"github.com/xtraefik/xtraefik/images"
	"github.com/xtraefik/xtraefik/verify"
	"github.com/xtraefik/xtraefik/verify/interpreters"
)

// defaultPath is the PATH a container runtime gives an image without one.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// baseTraefik reads the Traefik binary of a base whose layers are on this
// machine (OCI layout, docker archive): its version and the Yaegi its Go
// build info names, which is the authority on the interpreter. Both are ""
// for a registry base (reading it would pull every layer) and for a base
// without a readable Traefik binary.
func baseTraefik(ctx context.Context, base *images.Base) (version, yaegi string, err error) {
	if !base.Local() || len(base.Platforms) == 0 {
		return "", "", nil
	}
	cf, err := base.ConfigFile(0)
	if err != nil {
		return "", "", err
	}
	f, err := os.CreateTemp("", "xtraefik-traefik-")
	if err != nil {
		return "", "", fmt.Errorf("temporary file for the base's Traefik binary: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	found, err := base.CopyFile(ctx, 0, traefikPaths(cf.Config.Entrypoint, cf.Config.Cmd, cf.Config.Env), f)
	if err != nil || found == "" {
		return "", "", err
	}
	in, ok, err := interpreters.FromBinary(f)
	if err != nil || !ok {
		// Not a Go binary, or one linking no Yaegi: the labels and the table decide.
		return "", "", nil
	}
	version, err = verify.TraefikVersionFromBinary(f)
	if err != nil {
		return "", "", nil
	}
	return version, in.Yaegi, nil
}

// traefikPaths are where the image's Traefik binary may be: the programs
// named traefik in its entrypoint or command (through its PATH when not
// absolute), then where the official image keeps it.
func traefikPaths(entrypoint, cmd, env []string) []string {
	search := defaultPath
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			search = v
		}
	}
	var out []string
	for _, w := range append(append([]string(nil), entrypoint...), cmd...) {
		if path.Base(w) != "traefik" {
			continue
		}
		if path.IsAbs(w) {
			out = append(out, w)
			continue
		}
		for _, d := range strings.Split(search, ":") {
			if path.IsAbs(d) {
				out = append(out, path.Join(d, w))
			}
		}
	}
	return append(out, "/usr/local/bin/traefik")
}
