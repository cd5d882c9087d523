// Package recipe holds the declarative description of a custom Traefik image and
// its lock: plain data with YAML tags, parsed strictly so that a misspelt field is
// an error with file:line, never a silently ignored setting.
package recipe

import (
	"fmt"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"

	"gopkg.in/yaml.v3"

	"github.com/xtraefik/xtraefik/internal/redact"
	"github.com/xtraefik/xtraefik/internal/yamlcheck"
)

// Recipe is the user's description of the image to build.
type Recipe struct {
	// Base is the Traefik image: a registry reference (plain or docker://),
	// oci:<dir>[:<tag>|@<digest>] or docker-archive:<file>.
	Base string `yaml:"base"`
	// Platforms narrows a multi-platform base ("linux/amd64"); empty keeps all.
	Platforms []string `yaml:"platforms,omitempty"`
	// Plugins by alias: the name used in experimental.localPlugins.<alias>.
	Plugins map[string]*Plugin `yaml:"plugins"`
	// AllowUnsafe lets plugins whose manifest says useUnsafe load unsafe/syscall;
	// the image's Traefik must then run with experimental.localPlugins.<alias>.settings.useUnsafe.
	AllowUnsafe bool `yaml:"allowUnsafe,omitempty"`
	// StaticConfig decides how the image tells Traefik to load the plugins.
	StaticConfig StaticConfig `yaml:"staticConfig,omitempty"`
	// Mirrors rewrite git URLs and registry hosts, for air-gapped builds.
	Mirrors Mirrors `yaml:"mirrors,omitempty"`
	// Labels are added to every platform's image config.
	Labels map[string]string `yaml:"labels,omitempty"`
	// Annotations are added to OCI manifests and the index, over the standard
	// ones xtraefik sets (created, version, source, revision, base name/digest).
	Annotations map[string]string `yaml:"annotations,omitempty"`

	// Path is the file the recipe was read from ("" when parsed from bytes).
	Path string `yaml:"-"`
	pos  positions
}

// Plugin is one plugin to bake into the image. It comes from exactly one
// source: git (Ref, with Git and Subdir), the Go module proxy (Version) or a
// directory (Path).
type Plugin struct {
	// Module is the Go module path; the plugin lands in plugins-local/src/<Module>.
	Module string `yaml:"module"`
	// Git is the repository URL; default https://<Module>.git.
	Git string `yaml:"git,omitempty"`
	// Ref is a tag, a branch or a full commit hash.
	Ref string `yaml:"ref,omitempty"`
	// Subdir is the plugin's directory inside the git repository, for
	// monorepos; default the repository root.
	Subdir string `yaml:"subdir,omitempty"`
	// Version takes the plugin from the Go module proxy (GOPROXY) instead:
	// an exact version or a query the go command accepts (latest, v1.6).
	Version string `yaml:"version,omitempty"`
	// Path takes the plugin from a directory, relative to the recipe.
	Path string `yaml:"path,omitempty"`
	// Exclude drops the files matching these patterns (slash-separated,
	// relative to the plugin root; ** matches any number of directories)
	// from the image and from verification.
	Exclude []string `yaml:"exclude,omitempty"`
	// Config is the middleware configuration used to verify the plugin; default
	// the manifest's testData.
	Config map[string]any `yaml:"config,omitempty"`
	// ExpectStatus is the HTTP status the verification request through the
	// middleware must get, in static verification and the runtime check alike;
	// 0 accepts any answer without a server error (see package probe).
	ExpectStatus int `yaml:"expectStatus,omitempty"`
}

// StaticConfig modes. See docs/recipe-and-lock.md, "Static configuration".
const (
	ModeFlags = "flags"
	ModeFile  = "file"
	ModeEnv   = "env"
)

// StaticConfig is how the image enables its plugins in Traefik's static configuration.
type StaticConfig struct {
	// Mode is flags (default), file or env.
	Mode string `yaml:"mode,omitempty"`
	// Config is the static configuration baked in file mode, merged with
	// experimental.localPlugins.
	Config map[string]any `yaml:"config,omitempty"`
	// Replace allows file mode to overwrite a config file the base already has.
	Replace bool `yaml:"replace,omitempty"`
}

// Mirrors are rewrite rules applied to every git URL and base reference.
type Mirrors struct {
	Git        []GitMirror      `yaml:"git,omitempty"`
	Registries []RegistryMirror `yaml:"registries,omitempty"`
	// Insecure registries may be reached over plain HTTP (loopback always may).
	Insecure []string `yaml:"insecure,omitempty"`
}

// GitMirror rewrites URLs starting with InsteadOf to start with URL, as git's
// url.<URL>.insteadOf does.
type GitMirror struct {
	URL       string `yaml:"url"`
	InsteadOf string `yaml:"insteadOf"`
}

// RegistryMirror pulls references under Prefix (a registry host, optionally with a
// repository path) from Location instead, as a registries.conf mirror does.
type RegistryMirror struct {
	Prefix   string `yaml:"prefix"`
	Location string `yaml:"location"`
}

// Aliases returns the plugin aliases in sorted order: every stage iterates in this
// order so that output never depends on map order.
func (r *Recipe) Aliases() []string {
	out := make([]string, 0, len(r.Plugins))
	for a := range r.Plugins {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// GitURL is the logical (un-mirrored) repository URL of a plugin.
func (p *Plugin) GitURL() string {
	if p.Git != "" {
		return p.Git
	}
	return "https://" + p.Module + ".git"
}

// Plugin sources.
const (
	SourceGit    = "git"
	SourceModule = "module"
	SourcePath   = "path"
)

// Source is where the plugin comes from: SourceGit, SourceModule or
// SourcePath.
func (p *Plugin) Source() string {
	switch {
	case p.Version != "":
		return SourceModule
	case p.Path != "":
		return SourcePath
	}
	return SourceGit
}

// Dir is a path plugin's directory: Path, relative to the recipe's
// directory unless absolute.
func (r *Recipe) Dir(p *Plugin) string {
	if filepath.IsAbs(p.Path) || r.Path == "" {
		return filepath.Clean(p.Path)
	}
	return filepath.Join(filepath.Dir(r.Path), p.Path)
}

// LockedGit is GitURL as the lock records it: without credentials, since
// the lock is committed and shared.
func (p *Plugin) LockedGit() string { return redact.URL(p.GitURL()) }

// Load reads and validates the recipe at path.
func Load(path string) (*Recipe, error) {
	data, err := yamlcheck.ReadFile(path, recipeLimits())
	if err != nil {
		return nil, fmt.Errorf("read recipe: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes and validates a recipe; name is used in error positions.
func Parse(name string, data []byte) (*Recipe, error) {
	if name == "" {
		name = "recipe"
	}
	root, err := parseTree(name, data, reflect.TypeFor[Recipe](), recipeLimits())
	if err != nil {
		return nil, err
	}
	if root == nil {
		return nil, fmt.Errorf("%s: empty recipe", name)
	}
	r := &Recipe{Path: name}
	if err := root.Decode(r); err != nil {
		return nil, yamlcheck.Error(name, err)
	}
	r.pos = positions{file: name, root: root}
	if err := r.validate(); err != nil {
		return nil, err
	}
	return r, nil
}

// Limits on the files xtraefik reads (docs/recipe-and-lock.md): real recipes and locks
// are a few kilobytes; these bounds make a malformed or hostile file fail at
// once instead of keeping the build busy.
const (
	MaxRecipeBytes = 1 << 20
	MaxLockBytes   = 16 << 20
	// MaxRecipeNodes and MaxLockNodes bound the YAML values of a document,
	// counting each use of an alias as a copy of its anchor.
	MaxRecipeNodes = 100_000
	MaxLockNodes   = 1 << 20
	// MaxKeys bounds the keys of one mapping.
	MaxKeys = 1000
)

func recipeLimits() yamlcheck.Limits {
	return yamlcheck.Limits{Kind: "recipe", MaxBytes: MaxRecipeBytes, MaxNodes: MaxRecipeNodes, MaxKeys: MaxKeys, UnknownFields: true}
}

func lockLimits() yamlcheck.Limits {
	return yamlcheck.Limits{Kind: "lock", MaxBytes: MaxLockBytes, MaxNodes: MaxLockNodes, MaxKeys: MaxKeys, UnknownFields: true}
}

// parseTree parses data into a node tree and checks it (yamlcheck.Check)
// for decoding into t; it returns nil for an empty document.
func parseTree(name string, data []byte, t reflect.Type, lim yamlcheck.Limits) (*yaml.Node, error) {
	if err := yamlcheck.CheckSize(name, data, lim); err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, yamlcheck.Error(name, err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, nil
	}
	if err := yamlcheck.Check(name, doc.Content[0], t, lim); err != nil {
		return nil, err
	}
	return doc.Content[0], nil
}

// positions finds the line of a value in the parsed document, for validation errors.
type positions struct {
	file string
	root *yaml.Node
}

// at returns "file:line" of the node reached by following the mapping keys in path,
// or of the deepest node found.
func (p positions) at(path ...string) string {
	n := p.root
	line := 0
	if n != nil {
		line = n.Line
	}
	for _, key := range path {
		if n == nil || n.Kind != yaml.MappingNode {
			break
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				line = n.Content[i].Line
				next = n.Content[i+1]
				break
			}
		}
		if next == nil {
			break
		}
		n = next
	}
	if line == 0 {
		return p.file
	}
	return p.file + ":" + strconv.Itoa(line)
}

// Errorf formats an error located at the recipe field reached by path.
func (r *Recipe) Errorf(path []string, format string, args ...any) error {
	at := r.pos.at(path...)
	if at == "" {
		// A recipe made in code has no file to point into.
		return fmt.Errorf(format, args...)
	}
	return fmt.Errorf("%s: %s", at, fmt.Sprintf(format, args...))
}
