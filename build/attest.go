package build

import (
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/xtraefik/xtraefik/images"
	"github.com/xtraefik/xtraefik/internal/attest"
	"github.com/xtraefik/xtraefik/internal/redact"
	"github.com/xtraefik/xtraefik/recipe"
)

// provenanceFor is the SLSA provenance of a built image: the base and every
// plugin as resolved, the recipe (and lock) the build read, the epoch.
func provenanceFor(res *result, started time.Time) *attest.Build {
	r := res.Resolution
	b := &attest.Build{
		Base:               provenanceBase(r),
		BuilderVersion:     toolVersion(),
		ExternalParameters: map[string]any{},
		InternalParameters: map[string]any{"epoch": r.Epoch.UTC().Format(time.RFC3339)},
		StartedOn:          started,
		FinishedOn:         time.Now().UTC(),
	}
	if r.Recipe.Path != "" {
		b.ExternalParameters["recipe"] = fileParam(r.Recipe.Path)
		b.ExternalParameters["lock"] = fileParam(recipe.LockPath(r.Recipe.Path))
	}
	var plats []string
	for _, p := range r.Base.Platforms {
		plats = append(plats, p.Platform.String())
	}
	b.ExternalParameters["platforms"] = plats
	for _, p := range r.Plugins {
		// Signed metadata travels: no credentials, no host paths.
		src := p.Source
		src.Git, src.Path = provenanceGit(src.Git), ""
		b.Plugins = append(b.Plugins, attest.Plugin{Alias: p.Alias, Module: p.Module, Source: src, ContentHash: p.Hash})
	}
	return b
}

// provenanceBase names the base as signed metadata may: a registry
// reference as the recipe writes it; a base on this machine by the base
// name of its path (never a host path), located by its digest.
func provenanceBase(r *resolution) attest.Base {
	b := attest.Base{Ref: r.Recipe.Base, Digest: r.Base.Digest.String()}
	if !r.Base.Local() {
		return b
	}
	b.Ref = r.Base.Ref.PublicName()
	scheme := "oci-layout:"
	if r.Base.Ref.Transport == images.TransportDockerArchive {
		scheme = "docker-archive:"
	}
	b.URI = scheme + filepath.Base(r.Base.Ref.Path) + "@" + b.Digest
	return b
}

// provenanceGit is a plugin repository as signed metadata may name it:
// its URL without credentials, or for a repository on this machine
// (file://, a path) "local:<base name>", which the commit pins all the
// same. "" when it is neither.
func provenanceGit(raw string) string {
	if git, ok := redact.Public(raw); ok {
		return git
	}
	if raw == "" {
		return ""
	}
	p := raw
	if u, err := url.Parse(raw); err == nil && u.Scheme != "" {
		if u.Scheme != "file" {
			return ""
		}
		p = u.Path
	}
	name := path.Base(strings.TrimSuffix(filepath.ToSlash(p), "/"))
	if name == "." || name == "/" || name == "" {
		name = "repository"
	}
	return "local:" + name
}

// fileParam names a file the build read by its base name (a host path
// would travel with the image) and content hash.
func fileParam(path string) map[string]string {
	out := map[string]string{"name": filepath.Base(path)}
	if data, err := os.ReadFile(path); err == nil {
		sum := sha256.Sum256(data)
		out["sha256"] = hex.EncodeToString(sum[:])
	}
	return out
}

// verificationFor is the verification record of a built image: each
// plugin's verdict, interpreter and containment, and whether the image's own
// Traefik ran it.
func verificationFor(res *result) *attest.Verification {
	t := res.Resolution.Traefik
	v := &attest.Verification{TraefikVersion: t.Version, InterpreterSource: t.InterpreterSource, VerifierVersion: toolVersion(),
		RuntimeCheck: res.RuntimeChecked, VerifiedOn: time.Now().UTC()}
	if t.Yaegi != "" {
		v.Interpreter = "yaegi " + t.Yaegi
	}
	hashes := map[string]string{}
	for _, p := range res.Resolution.Plugins {
		hashes[p.Alias] = p.Hash
	}
	for _, r := range res.Verify {
		pv := attest.PluginVerdict{Alias: r.Alias, Module: r.Module, Commit: r.Commit, Version: r.Version, ContentHash: hashes[r.Alias],
			Type: r.Type, Runtime: r.Runtime, Interpreter: r.Interpreter, Status: r.Status, OK: r.OK, Approximate: r.Approximate,
			Reason: r.Reason, Cached: r.Cached}
		if c := r.Containment; c != nil {
			pv.Containment = &attest.Containment{Level: c.Level, Applied: c.Applied, Missing: c.Missing}
		}
		v.Plugins = append(v.Plugins, pv)
	}
	return v
}
