package build

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/xtraefik/xtraefik/images"
	"github.com/xtraefik/xtraefik/sbom"
	"github.com/xtraefik/xtraefik/traefikcfg"
)

// Outputs says where a built image goes. Any combination may be given.
type Outputs struct {
	OCILayout string
	Tarball   string
	// Tag names the image: `docker load` gives a tarball image this name, and the
	// OCI layout records its tag part (org.opencontainers.image.ref.name).
	Tag string
	// TarballPlatform picks the platform of a multi-platform image for the tarball
	// (docker load takes one); nil means the host's.
	TarballPlatform *v1.Platform
	Push            string
	DigestFile      string
	// ValuesFile receives the Helm values snippet that enables the plugins.
	ValuesFile string
	// SBOMDir receives sbom.spdx.json; a pushed image then also gets the SBOM
	// attached as an OCI referrer.
	SBOMDir string
	// Overwrite replaces an existing layout or tarball.
	Overwrite bool
}

// Empty reports whether no output was asked for.
func (o Outputs) Empty() bool {
	return o.OCILayout == "" && o.Tarball == "" && o.Push == "" && o.DigestFile == "" && o.SBOMDir == "" && o.ValuesFile == ""
}

// Published records what Publish wrote.
type Published struct {
	Digest     v1.Hash
	PushDigest string // name@digest when pushed
	// SBOMDigest is the referrer artifact attached to the pushed image.
	SBOMDigest v1.Hash
	// LayoutDigest differs from Digest when a Docker-typed image was written to
	// the OCI layout with OCI media types.
	LayoutDigest v1.Hash
}

// Publish writes img to every output. Local outputs are written first and removed
// again if a later output fails, so a failed run leaves nothing behind; the push
// comes last, and a registry only gets a tag once every blob is there.
func Publish(ctx context.Context, res *Result, out Outputs, opts images.Options) (*Published, error) {
	img := res.Image
	var written []string
	rollback := func(err error) (*Published, error) {
		for _, p := range written {
			os.RemoveAll(p)
		}
		return nil, err
	}
	if out.DigestFile != "" {
		if _, err := os.Stat(filepath.Dir(out.DigestFile)); err != nil {
			return nil, fmt.Errorf("--digest-file %s: %w", out.DigestFile, err)
		}
	}
	var doc []byte
	if out.SBOMDir != "" {
		var err error
		if doc, err = SBOM(res); err != nil {
			return nil, err
		}
	}
	if out.SBOMDir != "" {
		if err := os.MkdirAll(out.SBOMDir, 0o755); err != nil {
			return nil, fmt.Errorf("--sbom-dir: %w", err)
		}
		p := filepath.Join(out.SBOMDir, SBOMFile)
		if err := writeFileAtomic(p, doc); err != nil {
			return nil, fmt.Errorf("--sbom-dir: %w", err)
		}
		written = append(written, p)
	}
	tag := out.Tag
	if tag == "" {
		tag = DefaultTag
	}
	t, err := name.NewTag(tag)
	if err != nil {
		return nil, fmt.Errorf("--tag %q: %w", tag, err)
	}
	if out.ValuesFile != "" {
		values, err := traefikcfg.HelmValues(LocalPlugins(res.Resolution))
		if err != nil {
			return nil, fmt.Errorf("--values-file: %w", err)
		}
		if err := writeFileAtomic(out.ValuesFile, values); err != nil {
			return nil, fmt.Errorf("--values-file: %w", err)
		}
		written = append(written, out.ValuesFile)
	}
	if out.OCILayout != "" {
		if err := images.WriteLayout(ctx, out.OCILayout, img, images.LayoutOptions{Tag: t.TagStr(), Overwrite: out.Overwrite}); err != nil {
			return rollback(err)
		}
		written = append(written, out.OCILayout)
	}
	if out.Tarball != "" {
		if err := images.WriteTarball(ctx, out.Tarball, img, images.TarballOptions{Tag: tag, Platform: out.TarballPlatform, Overwrite: out.Overwrite}); err != nil {
			return rollback(err)
		}
		written = append(written, out.Tarball)
	}
	pub := &Published{Digest: img.Digest}
	if out.OCILayout != "" {
		oci, err := img.OCI()
		if err != nil {
			return rollback(err)
		}
		pub.LayoutDigest = oci.Digest
	}
	if out.Push != "" {
		d, err := images.Push(ctx, out.Push, img, opts)
		if err != nil {
			return rollback(fmt.Errorf("push %s: %w", out.Push, err))
		}
		pub.Digest = d
		pub.PushDigest = fmt.Sprintf("%s@%s", out.Push, d)
		if doc != nil {
			if pub.SBOMDigest, err = images.AttachSBOM(ctx, pub.PushDigest, doc, sbom.MediaType, opts); err != nil {
				return rollback(fmt.Errorf("push %s: attach SBOM: %w", out.Push, err))
			}
		}
	}
	if out.DigestFile != "" {
		if err := writeFileAtomic(out.DigestFile, []byte(pub.Digest.String()+"\n")); err != nil {
			return rollback(fmt.Errorf("--digest-file: %w", err))
		}
	}
	return pub, nil
}

// SBOMFile is the SPDX document's name in --sbom-dir.
const SBOMFile = "sbom.spdx.json"

// DefaultTag names a tarball image when no tag is given.
const DefaultTag = "localhost/xtraefik/traefik:latest"

func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".xtraefik-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr, os.Chmod(tmp.Name(), 0o644)); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
