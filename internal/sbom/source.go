package sbom

import (
	"fmt"
	"path"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	packageurl "github.com/package-url/packageurl-go"
	"golang.org/x/mod/semver"

	"github.com/xtraefik/xtraefik/images"
	"github.com/xtraefik/xtraefik/internal/redact"
)

// gitLocation is SPDX's VCS download location, git+<url>@<commit>. Local
// repositories (paths, file://) would write host paths into the document and
// locate nothing elsewhere: they are NOASSERTION, like unknown schemes.
func gitLocation(raw, commit string) string {
	u, ok := redact.Public(raw)
	if !ok {
		return noAssertion
	}
	loc := "git+" + u
	if commit != "" {
		loc += "@" + commit
	}
	return loc
}

// redactURL is the repository as the document may show it: without
// credentials, and without host paths.
func redactURL(raw string) string {
	if raw == "" {
		return ""
	}
	if u, ok := redact.Public(raw); ok {
		return u
	}
	return "(local repository)"
}

// goVersion is the version a Go purl names: the ref when it is a canonical
// module version (a release tag), else the commit.
func goVersion(ref, commit string) string {
	if semver.IsValid(ref) && semver.Canonical(ref) == ref {
		return ref
	}
	return commit
}

// golangPURL is pkg:golang/<module path>@<version>; case is kept, as module
// paths are case-sensitive.
func golangPURL(module, version string) string {
	ns, n := path.Split(module)
	return packageurl.NewPackageURL(packageurl.TypeGolang, strings.TrimSuffix(ns, "/"), n, version, nil, "").ToString()
}

// baseDisplayName is the base reference as written for registry images, and
// for local bases the transport and file name only: a host path says nothing
// to the reader of an SBOM and may leak a user name.
func baseDisplayName(s string) string {
	ref, err := images.ParseReference(s)
	if err != nil {
		return s
	}
	return ref.PublicName()
}

// ociPURL is pkg:oci/<name>@<digest>?repository_url=...&tag=... for a
// registry base, "" for a local one.
func ociPURL(base, digest string) (string, error) {
	ref, err := images.ParseReference(base)
	if err != nil {
		return "", err
	}
	if ref.Transport != images.TransportDocker {
		return "", nil
	}
	repo, err := name.NewRepository(ref.Name, name.WeakValidation)
	if err != nil {
		return "", err
	}
	registry := repo.RegistryStr()
	if registry == name.DefaultRegistry {
		registry = "docker.io"
	}
	if digest == "" {
		digest = ref.Digest
	}
	if ref.Digest != "" && digest != ref.Digest {
		return "", fmt.Errorf("the reference pins %s but the base digest is %s", ref.Digest, digest)
	}
	quals := packageurl.Qualifiers{{Key: "repository_url", Value: registry + "/" + repo.RepositoryStr()}}
	if ref.Tag != "" {
		quals = append(quals, packageurl.Qualifier{Key: "tag", Value: ref.Tag})
	}
	return packageurl.NewPackageURL(packageurl.TypeOCI, "", path.Base(repo.RepositoryStr()), digest, quals, "").ToString(), nil
}
