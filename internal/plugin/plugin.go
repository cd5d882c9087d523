// Package plugin is the resolved plugin every stage shares — verification,
// the image layer, the runtime check, the SBOM and the static configuration
// — and the one place that knows where Traefik looks for local plugins.
//
// Resolution computes each fact once (the manifest, the content hash, the
// useUnsafe setting); the stages read them and never derive them again.
package plugin

import (
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/xtraefik/xtraefik/internal/fileset"
	"github.com/xtraefik/xtraefik/internal/manifest"
)

// LocalDir is the directory, relative to Traefik's working directory, that
// experimental.localPlugins reads: Traefik finds module M at
// LocalDir/src/M (pkg/plugins, v2.11 and v3.x), as Yaegi's GOPATH.
const LocalDir = "plugins-local"

// Path is where module's tree sits under root (Traefik's working directory
// in the image; any directory standing for it elsewhere), slash-separated.
func Path(root, module string) string { return path.Join(root, LocalDir, "src", module) }

// FilePath is Path in the host's separators, for trees laid out on disk.
func FilePath(root, module string) string {
	return filepath.Join(root, LocalDir, "src", filepath.FromSlash(module))
}

// Plugin is one plugin as resolved: what the image holds and what decides
// how Traefik loads it.
type Plugin struct {
	// Alias is the name in experimental.localPlugins.<alias> and in dynamic
	// configuration (http.middlewares.X.plugin.<alias>).
	Alias string
	// Module is the Go module path; the tree sits at Path(workdir, Module).
	Module string
	// Source says where the files came from.
	Source Source
	// Files are exactly the files placed in the image.
	Files fileset.Set
	// Hash is Files.Hash(), the content hash the lock records.
	Hash string
	// Manifest is the parsed .traefik.yml; nil only for a caller that has
	// not read it (verification then reads it, and fails the plugin if it
	// cannot).
	Manifest *manifest.Manifest
	// UseUnsafe is settings.useUnsafe as the image grants it: see
	// GrantsUnsafe.
	UseUnsafe bool
	// Config is the middleware or provider configuration to exercise it
	// with; nil means the manifest's testData.
	Config map[string]any
	// ExpectStatus is the HTTP status a middleware must answer the probe
	// request with; 0 accepts any answer without a server error.
	ExpectStatus int
}

// Source is where a plugin's files came from: a git commit, a module
// version from a Go module proxy, or a directory. It is the one record of
// a plugin's source: the lock (YAML, inlined in recipe.PluginLock), the
// JSON report (build.PluginReport) and the provenance (attest.Plugin)
// embed it. The tags keep both formats as they were: the report has never
// carried the exclusions or the time.
type Source struct {
	// Git is the repository URL without credentials; Ref the tag, branch or
	// commit the recipe names; Subdir the plugin's directory in the
	// repository; Commit what Ref resolved to.
	Git    string `yaml:"git,omitempty" json:"git,omitempty"`
	Ref    string `yaml:"ref,omitempty" json:"ref,omitempty"`
	Subdir string `yaml:"subdir,omitempty" json:"subdir,omitempty"`
	Commit string `yaml:"commit,omitempty" json:"commit,omitempty"`
	// Query is the recipe's version (latest, v1.6, v1.6.0); Version what it
	// resolved to; Sum the module zip's hash exactly as go.sum writes it;
	// Vendored the modules restored into vendor/ ("path@version h1:...").
	Query    string   `yaml:"query,omitempty" json:"query,omitempty"`
	Version  string   `yaml:"version,omitempty" json:"version,omitempty"`
	Sum      string   `yaml:"sum,omitempty" json:"sum,omitempty"`
	Vendored []string `yaml:"vendored,omitempty" json:"vendored,omitempty"`
	// Path is a directory plugin's path as the recipe writes it.
	Path string `yaml:"path,omitempty" json:"path,omitempty"`
	// Exclude are the recipe's exclude patterns, applied to the files:
	// they change what the content hash covers.
	Exclude []string `yaml:"exclude,omitempty" json:"-"`
	// Time is the commit's committer time or the version's time (zero when
	// unknown): the default image timestamp derives from it.
	Time time.Time `yaml:"commitTime,omitempty" json:"-"`
}

// Revision names what the files are, for people: the commit, the module
// version, or the directory as the recipe names it.
func (s Source) Revision() string {
	switch {
	case s.Commit != "":
		return s.Commit
	case s.Version != "":
		return s.Version
	case s.Path != "":
		return s.Path
	}
	return "working copy"
}

// GrantsUnsafe decides settings.useUnsafe for a plugin: Traefik v3 loads
// unsafe and syscall for a plugin only when its manifest asks for them and
// the static configuration allows them (allow: the recipe's allowUnsafe).
// Traefik v2 has no such setting and never provides them.
func GrantsUnsafe(allow bool, m *manifest.Manifest, traefikVersion string) bool {
	return allow && m != nil && m.UseUnsafe && TraefikMajor(traefikVersion) != 2
}

// Type is the manifest's type (middleware or provider), "" without one.
func (p *Plugin) Type() string {
	if p.Manifest == nil {
		return ""
	}
	return p.Manifest.Type
}

// TraefikMajor is 2 for a Traefik v2 version and 3 otherwise: an unknown
// version is taken as the current major.
func TraefikMajor(version string) int {
	v := strings.TrimPrefix(version, "v")
	if v == "2" || strings.HasPrefix(v, "2.") {
		return 2
	}
	return 3
}
