// Package manifest reads a plugin's .traefik.yml and applies the rules Traefik
// enforces on local plugins before it agrees to start. The rules follow
// pkg/plugins (SetupLocalPlugins, checkLocalPluginManifest, getWasmPath) of
// Traefik v3.6.12, with the differences of v2.11 where they exist.
package manifest

import (
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"reflect"
	"strings"

	"golang.org/x/mod/module"
	"gopkg.in/yaml.v3"

	"github.com/xtraefik/xtraefik/internal/fileset"
	"github.com/xtraefik/xtraefik/internal/yamlcheck"
)

// FileName is the manifest file Traefik reads at the root of a plugin.
const FileName = ".traefik.yml"

// Plugin types and runtimes, as spelled in manifests.
const (
	TypeMiddleware = "middleware"
	TypeProvider   = "provider"
	RuntimeYaegi   = "yaegi"
	RuntimeWasm    = "wasm"
)

// DefaultWasmPath is where Traefik v3 looks for the wasm binary when wasmPath is empty.
const DefaultWasmPath = "plugin.wasm"

// maxSize bounds the manifest read: a manifest is a few hundred bytes, and an
// oversized one is a mistake, not a reason to exhaust memory.
const maxSize = 1 << 20

// Manifest is a plugin's .traefik.yml. Field names match Traefik's own Manifest
// type so that decoding behaves the same (yaml.v3, unknown keys ignored).
type Manifest struct {
	DisplayName   string         `yaml:"displayName" json:"displayName"`
	Type          string         `yaml:"type" json:"type"`
	Import        string         `yaml:"import" json:"import"`
	BasePkg       string         `yaml:"basePkg" json:"basePkg,omitempty"`
	Compatibility string         `yaml:"compatibility" json:"compatibility,omitempty"`
	Summary       string         `yaml:"summary" json:"summary"`
	Runtime       string         `yaml:"runtime" json:"runtime,omitempty"`
	WasmPath      string         `yaml:"wasmPath" json:"wasmPath,omitempty"`
	UseUnsafe     bool           `yaml:"useUnsafe" json:"useUnsafe,omitempty"`
	TestData      map[string]any `yaml:"testData" json:"testData"`
	IconPath      string         `yaml:"iconPath" json:"iconPath,omitempty"`
	BannerPath    string         `yaml:"bannerPath" json:"bannerPath,omitempty"`
}

// Read decodes the .traefik.yml at the root of files. A manifest that is a
// symlink is followed inside the tree, as the filesystem would for Traefik.
func Read(files fileset.Set) (*Manifest, error) {
	f, err := resolve(files, FileName)
	if err != nil {
		return nil, err
	}
	if f.Size > maxSize {
		return nil, fmt.Errorf("%s: %d bytes is more than a manifest can reasonably hold (%d)", FileName, f.Size, maxSize)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", FileName, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", FileName, err)
	}
	return Parse(data)
}

// limits bound a manifest's YAML: a manifest is a few hundred bytes, and
// plugin code is untrusted, so a document that would keep yaml.v3 busy for
// minutes (100k keys, aliases expanding to billions of values) is refused.
// Unknown keys are ignored, as Traefik ignores them.
func limits() yamlcheck.Limits {
	return yamlcheck.Limits{Kind: "plugin manifest", MaxBytes: maxSize, MaxNodes: 100_000, MaxKeys: 1000}
}

// Parse decodes manifest bytes the way Traefik does (one yaml.v3 document).
// yaml.v3 errors carry the line number; a value of the wrong kind is named
// by its key ("line 3: testData: expected a mapping, got a list"); an empty
// document is refused, as Traefik refuses it (its decoder returns EOF).
func Parse(data []byte) (*Manifest, error) {
	if err := yamlcheck.CheckSize(FileName, data, limits()); err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("decode %s: %w", FileName, err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, fmt.Errorf("decode %s: the file is empty", FileName)
	}
	if err := yamlcheck.Check("", doc.Content[0], reflect.TypeFor[Manifest](), limits()); err != nil {
		return nil, fmt.Errorf("decode %s: %w", FileName, err)
	}
	m := &Manifest{}
	if err := doc.Content[0].Decode(m); err != nil {
		return nil, fmt.Errorf("decode %s: %w", FileName, err)
	}
	return m, nil
}

// resolve finds name in files, following symlinks that stay in the tree.
func resolve(files fileset.Set, name string) (fileset.File, error) {
	p := name
	for range 8 {
		f, ok := files.Lookup(p)
		if !ok {
			if p == name {
				return fileset.File{}, fmt.Errorf("no %s at the plugin root: Traefik cannot load a plugin without it", name)
			}
			return fileset.File{}, fmt.Errorf("%s is a symlink to %s, which is not in the plugin", name, p)
		}
		if f.Kind != fileset.Symlink {
			return f, nil
		}
		p = path.Join(path.Dir(p), f.Link)
	}
	return fileset.File{}, fmt.Errorf("%s: too many levels of symbolic links", name)
}

// IsYaegi reports whether Traefik interprets the plugin with Yaegi; an empty
// runtime means Yaegi, for manifests written before wasm existed.
func (m *Manifest) IsYaegi() bool {
	return m.Runtime == RuntimeYaegi || m.Runtime == ""
}

// IsWasm reports whether the plugin is a wasm plugin (Traefik v3).
func (m *Manifest) IsWasm() bool { return m.Runtime == RuntimeWasm }

// RuntimeName is the runtime Traefik will use, never empty.
func (m *Manifest) RuntimeName() string {
	if m.Runtime == "" {
		return RuntimeYaegi
	}
	return m.Runtime
}

// BasePackage is the package name Traefik evaluates New and CreateConfig in:
// basePkg when set, else the last element of the import path with '-' turned
// into '_' (Traefik v3.6.12 newYaegiMiddlewareBuilder / newProvider).
func (m *Manifest) BasePackage() string {
	if m.BasePkg != "" {
		return m.BasePkg
	}
	return strings.ReplaceAll(path.Base(m.Import), "-", "_")
}

// WasmFile is the wasm binary path inside the plugin, with Traefik's default.
func (m *Manifest) WasmFile() string {
	if m.WasmPath == "" {
		return DefaultWasmPath
	}
	return m.WasmPath
}

// Rule names one check Traefik makes on a local plugin.
type Rule string

// The rules. Their messages follow Traefik's own wording where it has one.
const (
	RuleModuleName   Rule = "module-name"
	RuleType         Rule = "type"
	RuleRuntime      Rule = "runtime"
	RuleImport       Rule = "import"
	RuleImportPrefix Rule = "import-prefix"
	RuleDisplayName  Rule = "display-name"
	RuleSummary      Rule = "summary"
	RuleTestData     Rule = "test-data"
	RuleWasmPath     Rule = "wasm-path"
)

// Violation is one broken rule.
type Violation struct {
	Rule    Rule
	Message string
}

func (v *Violation) Error() string { return v.Message }

// Violations is every rule a manifest breaks. Traefik reports them all at once
// and refuses to start; so do we.
type Violations []*Violation

func (vs Violations) Error() string {
	msgs := make([]string, len(vs))
	for i, v := range vs {
		msgs[i] = v.Message
	}
	return strings.Join(msgs, "; ")
}

// Unwrap lets errors.As find each Violation.
func (vs Violations) Unwrap() []error {
	errs := make([]error, len(vs))
	for i, v := range vs {
		errs[i] = v
	}
	return errs
}

// Rules lists the rules broken in err, in order; nil when err holds none.
func Rules(err error) []Rule {
	var vs Violations
	if errors.As(err, &vs) {
		out := make([]Rule, len(vs))
		for i, v := range vs {
			out[i] = v.Rule
		}
		return out
	}
	var v *Violation
	if errors.As(err, &v) {
		return []Rule{v.Rule}
	}
	return nil
}

// CheckModuleName applies Traefik's rules on a local plugin's moduleName (not
// empty, no leading or trailing '/'), plus what placing it at
// plugins-local/src/<module> and importing it requires: a clean relative path
// that is a valid Go import path.
func CheckModuleName(mod string) error {
	if mod == "" {
		return &Violation{RuleModuleName, "plugin name is missing"}
	}
	if strings.HasPrefix(mod, "/") || strings.HasSuffix(mod, "/") {
		return &Violation{RuleModuleName, fmt.Sprintf("plugin name %q should not start or end with a /", mod)}
	}
	if err := fileset.CheckPath(mod); err != nil {
		return &Violation{RuleModuleName, fmt.Sprintf("plugin name %q is not a clean relative path", mod)}
	}
	if err := module.CheckImportPath(mod); err != nil {
		return &Violation{RuleModuleName, fmt.Sprintf("plugin name %q is not a valid Go import path: %v", mod, err)}
	}
	return nil
}

// Check applies the local-plugin rules of Traefik v3 (v3.6.12) for a plugin
// placed at plugins-local/src/<mod>. It returns nil or a Violations.
func (m *Manifest) Check(mod string) error {
	return m.CheckFor(mod, "")
}

// CheckFor applies the rules of the given Traefik version ("v2.11.0",
// "v3.6.12"; "" means v3). Traefik v2 has no runtime field: any manifest is
// interpreted by Yaegi, so a wasm plugin cannot load there.
func (m *Manifest) CheckFor(mod, traefikVersion string) error {
	var vs Violations
	add := func(r Rule, format string, args ...any) {
		vs = append(vs, &Violation{r, fmt.Sprintf(format, args...)})
	}
	if err := CheckModuleName(mod); err != nil {
		var v *Violation
		errors.As(err, &v)
		vs = append(vs, v)
	}
	v2 := strings.HasPrefix(traefikVersion, "v2.") || traefikVersion == "v2"

	// pkg/plugins/plugins.go checkLocalPluginManifest; its messages name Go
	// fields (DisplayName), ours the YAML keys the author writes.
	switch m.Type {
	case TypeMiddleware:
		if m.Runtime != RuntimeYaegi && m.Runtime != RuntimeWasm && m.Runtime != "" {
			add(RuleRuntime, "%s: unsupported runtime %q", mod, m.Runtime)
		}
	case TypeProvider:
		if m.Runtime != RuntimeYaegi && m.Runtime != "" {
			add(RuleRuntime, "%s: unsupported runtime %q for a provider (only yaegi)", mod, m.Runtime)
		}
	default:
		add(RuleType, "%s: unsupported type %q (middleware or provider)", mod, m.Type)
	}
	if v2 && !m.IsYaegi() {
		add(RuleRuntime, "%s: Traefik %s has no %q runtime: it would interpret the plugin with Yaegi", mod, traefikVersion, m.Runtime)
	}

	if m.IsYaegi() || v2 {
		if m.Import == "" {
			add(RuleImport, "%s: missing import in %s", mod, FileName)
		}
		// Traefik compares plain string prefixes; so do we.
		if !strings.HasPrefix(m.Import, mod) {
			add(RuleImportPrefix, "the import %q must be related to the module name %q", m.Import, mod)
		}
	}
	if m.DisplayName == "" {
		add(RuleDisplayName, "%s: missing displayName in %s", mod, FileName)
	}
	if m.Summary == "" {
		add(RuleSummary, "%s: missing summary in %s", mod, FileName)
	}
	if m.TestData == nil {
		add(RuleTestData, "%s: missing testData in %s", mod, FileName)
	}
	// pkg/plugins/builder.go getWasmPath: refused when the middleware is built.
	if m.IsWasm() && !filepath.IsLocal(m.WasmFile()) {
		add(RuleWasmPath, "%s: wasmPath %q must be a local path", mod, m.WasmPath)
	}
	if len(vs) == 0 {
		return nil
	}
	return vs
}
