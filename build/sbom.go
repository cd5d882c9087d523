package build

import (
	"errors"
	"runtime/debug"

	"github.com/xtraefik/xtraefik/images"
	"github.com/xtraefik/xtraefik/internal/sbom"
)

// fullSBOM renders the SPDX document of a built image: the base, each plugin at its
// commit with its content hash, vendored modules and declared licences.
func fullSBOM(res *result) ([]byte, error) {
	if res.Image == nil {
		return nil, errors.New("sbom: the build made no full image")
	}
	return sbomOf(res, res.Image, false)
}

// sbomOf renders the SPDX document of img, the full image or (plugins) the
// plugins image of res.
func sbomOf(res *result, img *images.Result, plugins bool) ([]byte, error) {
	r := res.Resolution
	in := sbom.Input{
		BaseName:     r.Recipe.Base,
		BaseDigest:   r.Base.Digest.String(),
		ImageDigest:  img.Digest.String(),
		Created:      r.Epoch,
		Plugins:      r.Plugins,
		ToolVersion:  toolVersion(),
		PluginsImage: plugins,
	}
	// sbom's errors name the SBOM already.
	return sbom.SPDX(in)
}

// toolVersion is xtraefik's module version when built from a tagged module.
func toolVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return ""
}
