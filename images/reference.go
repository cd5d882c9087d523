// Package images resolves a Traefik base image, appends the plugin layer to every
// platform of it, and writes the result to a registry, an OCI layout or a
// `docker load` tarball. All OCI work is go-containerregistry's; this package
// decides what goes into the layer and keeps the result deterministic.
package images

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Transports, named as in the containers-transports convention (skopeo, podman).
const (
	TransportDocker        = "docker"
	TransportOCI           = "oci"
	TransportDockerArchive = "docker-archive"
)

// unsupportedTransport reports containers-transports we recognise only to refuse
// clearly instead of misreading "dir:/x" as a registry named "dir".
func unsupportedTransport(t string) bool {
	switch t {
	case "dir", "oci-archive", "containers-storage", "docker-daemon", "sif", "tarball":
		return true
	}
	return false
}

// Reference names an image in one of the supported transports.
//
//	docker.io/library/traefik:v3.6      registry (also "docker://docker.io/...")
//	oci:<dir>[:<tag>|@<digest>]          OCI image layout
//	docker-archive:<file>[:<name:tag>]   `docker save` tarball
type Reference struct {
	// Transport is TransportDocker, TransportOCI or TransportDockerArchive.
	Transport string
	// Name is the repository as written ("traefik", "docker.io/library/traefik")
	// for the docker transport, and the optional image name inside a
	// docker-archive.
	Name string
	// Path is the layout directory or archive file.
	Path string
	// Tag is the tag as written; empty when none was given.
	Tag string
	// Digest is "sha256:<hex>" when the reference pins one.
	Digest string
}

// ParseReference parses s according to the transport prefix it carries.
func ParseReference(s string) (Reference, error) {
	transport, rest, found := strings.Cut(s, ":")
	switch {
	case found && transport == TransportOCI:
		return parseOCI(s, rest)
	case found && transport == TransportDockerArchive:
		return parseArchive(s, rest)
	case strings.HasPrefix(s, TransportDocker+"://"):
		return parseDocker(s, strings.TrimPrefix(s, TransportDocker+"://"))
	case found && unsupportedTransport(transport):
		return Reference{}, fmt.Errorf("image reference %q: transport %q is not supported (use a registry reference, oci: or docker-archive:)", s, transport)
	}
	return parseDocker(s, s)
}

func parseDocker(orig, s string) (Reference, error) {
	if s == "" {
		return Reference{}, fmt.Errorf("image reference %q: empty image name", orig)
	}
	ref := Reference{Transport: TransportDocker}
	repo := s
	if before, digest, ok := strings.Cut(s, "@"); ok {
		if _, err := v1.NewHash(digest); err != nil {
			return Reference{}, fmt.Errorf("image reference %q: bad digest: %w", orig, err)
		}
		repo, ref.Digest = before, digest
	}
	// A tag follows the last ":" only when that colon is after the last "/";
	// otherwise the colon belongs to a registry port ("localhost:5000/x").
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo, ref.Tag = repo[:i], repo[i+1:]
	}
	ref.Name = repo
	if _, err := name.ParseReference(ref.registryString(), name.WeakValidation); err != nil {
		return Reference{}, fmt.Errorf("image reference %q: %w", orig, err)
	}
	return ref, nil
}

func parseOCI(orig, rest string) (Reference, error) {
	ref := Reference{Transport: TransportOCI}
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		if _, err := v1.NewHash(rest[i+1:]); err == nil {
			ref.Path, ref.Digest = rest[:i], rest[i+1:]
			if ref.Path == "" {
				return Reference{}, fmt.Errorf("image reference %q: empty layout path", orig)
			}
			return ref, nil
		}
	}
	path, tag, hasTag := strings.Cut(rest, ":")
	if path == "" {
		return Reference{}, fmt.Errorf("image reference %q: empty layout path", orig)
	}
	if hasTag && tag == "" {
		return Reference{}, fmt.Errorf("image reference %q: empty tag after %q", orig, path+":")
	}
	ref.Path, ref.Tag = path, tag
	return ref, nil
}

func parseArchive(orig, rest string) (Reference, error) {
	ref := Reference{Transport: TransportDockerArchive}
	path, image, hasImage := strings.Cut(rest, ":")
	if path == "" {
		return Reference{}, fmt.Errorf("image reference %q: empty archive path", orig)
	}
	ref.Path = path
	if !hasImage {
		return ref, nil
	}
	if image == "" || strings.Contains(image, "@") {
		return Reference{}, fmt.Errorf("image reference %q: want docker-archive:<file>[:<name:tag>]", orig)
	}
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		ref.Name, ref.Tag = image[:i], image[i+1:]
	} else {
		ref.Name = image
	}
	if _, err := ref.archiveTag(); err != nil {
		return Reference{}, fmt.Errorf("image reference %q: %w", orig, err)
	}
	return ref, nil
}

// PublicName is the reference as documents that leave this machine name
// it (provenance, SBOM): a registry reference as written, and a base on
// this machine (an OCI layout, a docker archive) by the base name of its
// path, which names it without telling where the host keeps it.
func (r Reference) PublicName() string {
	switch r.Transport {
	case TransportOCI, TransportDockerArchive:
		r.Path = filepath.Base(r.Path)
	}
	return r.String()
}

// String renders the reference in the syntax ParseReference reads. Registry
// references are written without the optional "docker://" prefix.
func (r Reference) String() string {
	switch r.Transport {
	case TransportOCI:
		switch {
		case r.Digest != "":
			return "oci:" + r.Path + "@" + r.Digest
		case r.Tag != "":
			return "oci:" + r.Path + ":" + r.Tag
		}
		return "oci:" + r.Path
	case TransportDockerArchive:
		s := "docker-archive:" + r.Path
		if r.Name != "" {
			s += ":" + r.Name
			if r.Tag != "" {
				s += ":" + r.Tag
			}
		}
		return s
	}
	return r.registryString()
}

// Registry is the registry a docker reference is pulled from, as a mirror
// prefix names it ("docker.io" for Docker Hub's names); "" for a base on
// this machine.
func (r Reference) Registry() string {
	if r.Transport != TransportDocker && r.Transport != "" {
		return ""
	}
	ref, err := name.ParseReference(r.registryString(), name.WeakValidation)
	if err != nil {
		return ""
	}
	return canonicalRegistry(ref.Context().RegistryStr())
}

func (r Reference) registryString() string {
	s := r.Name
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest
	}
	return s
}

// archiveTag is the image to pick from a docker-archive, nil for "the only one".
func (r Reference) archiveTag() (*name.Tag, error) {
	if r.Name == "" {
		return nil, nil
	}
	s := r.Name
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	t, err := name.NewTag(s, name.WeakValidation)
	if err != nil {
		return nil, err
	}
	return &t, nil
}
