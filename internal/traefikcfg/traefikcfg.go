// Package traefikcfg renders the Traefik configuration an image needs to enable
// its local plugins, and refuses combinations Traefik would silently ignore.
//
// Traefik (v2.11, v3.6; cmd/traefik and pkg/cli) reads its static configuration
// from exactly one source: a configuration file if one is found, else command-line
// flags if any are given, else TRAEFIK_* environment variables. Sources are never
// merged. A recipe therefore picks one Mode, and everything here follows from it.
package traefikcfg

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/xtraefik/xtraefik/internal/manifest"
	"github.com/xtraefik/xtraefik/internal/plugin"
)

// Mode is how the image's static configuration enables its plugins.
type Mode string

const (
	// ModeFlags bakes nothing: whoever starts Traefik passes the plugin flags
	// (the Helm chart's additionalArguments). The default.
	ModeFlags Mode = "flags"
	// ModeFile bakes a complete static configuration at StaticFilePath.
	ModeFile Mode = "file"
	// ModeEnv bakes TRAEFIK_EXPERIMENTAL_LOCALPLUGINS_* environment variables.
	ModeEnv Mode = "env"
)

// StaticFilePath is where file mode bakes the static configuration: the first
// place Traefik's finder looks, so no other default location can shadow it.
const StaticFilePath = "/etc/traefik/traefik.yml"

// ParseMode accepts a recipe's value; empty means ModeFlags.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case "":
		return ModeFlags, nil
	case ModeFlags, ModeFile, ModeEnv:
		return m, nil
	default:
		return "", fmt.Errorf("static configuration mode %q: want %q, %q or %q", s, ModeFlags, ModeFile, ModeEnv)
	}
}

// Static is the recipe's choice of static configuration.
type Static struct {
	Mode Mode
	// Config is recipe-provided static configuration, baked in file mode only.
	Config map[string]any
	// Replace allows a base image's own configuration file to be replaced (file
	// mode) or removed (flags and env modes, where it would shadow them).
	Replace bool
}

// aliasRE is what every mode can carry: no dots (flags and labels split on
// them), nothing a YAML key or a flag value would need quoting for.
var aliasRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*$`)

// envAliasRE: Traefik lowercases environment variable names and turns every
// "_" into a path separator (paerser env.Decode), so only lowercase letters and
// digits survive the round trip to the alias the dynamic configuration uses.
var envAliasRE = regexp.MustCompile(`^[a-z0-9]+$`)

// Validate checks the recipe's choices against each other and against the
// plugin list, before anything is built.
func Validate(s Static, ps []plugin.Plugin) error {
	mode, err := ParseMode(string(s.Mode))
	if err != nil {
		return err
	}
	if mode != ModeFile && len(s.Config) > 0 {
		return fmt.Errorf("static configuration is given but mode is %q: it is only baked in %q mode, and would be lost", mode, ModeFile)
	}
	aliases := map[string]string{}
	modules := map[string]string{}
	var errs []error
	for _, p := range ps {
		if !aliasRE.MatchString(p.Alias) {
			errs = append(errs, fmt.Errorf("plugin alias %q: want letters, digits, '-' or '_', starting with a letter or digit", p.Alias))
		} else if mode == ModeEnv && !envAliasRE.MatchString(p.Alias) {
			errs = append(errs, fmt.Errorf("plugin alias %q cannot be set in %q mode: Traefik lowercases environment variable names and splits them at '_', so only lowercase letters and digits keep the alias intact", p.Alias, ModeEnv))
		}
		if err := manifest.CheckModuleName(p.Module); err != nil {
			errs = append(errs, fmt.Errorf("plugin %q: %w", p.Alias, err))
		}
		if prev, ok := aliases[p.Alias]; ok {
			errs = append(errs, fmt.Errorf("plugin alias %q is used twice (modules %s and %s)", p.Alias, prev, p.Module))
		}
		if prev, ok := modules[p.Module]; ok {
			errs = append(errs, fmt.Errorf("module %s appears twice (aliases %q and %q): Traefik allows one version of a plugin", p.Module, prev, p.Alias))
		}
		aliases[p.Alias] = p.Module
		modules[p.Module] = p.Alias
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if mode == ModeFile {
		if _, err := StaticFile(s, ps); err != nil {
			return err
		}
	}
	return nil
}

// Flags are the command-line flags that enable the plugins, sorted by alias.
func Flags(ps []plugin.Plugin) []string {
	out := make([]string, 0, len(ps))
	for _, p := range sorted(ps) {
		out = append(out, fmt.Sprintf("--experimental.localPlugins.%s.moduleName=%s", p.Alias, p.Module))
		if p.UseUnsafe {
			out = append(out, fmt.Sprintf("--experimental.localPlugins.%s.settings.useUnsafe=true", p.Alias))
		}
	}
	return out
}

// HelmValues is a values snippet for the Traefik Helm chart, which starts
// Traefik with flags: its additionalArguments are appended to the chart's own.
func HelmValues(ps []plugin.Plugin) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString("# Enables the image's local plugins; the chart passes these as flags.\n")
	b, err := yaml.Marshal(map[string]any{"additionalArguments": Flags(ps)})
	if err != nil {
		return nil, fmt.Errorf("rendering Helm values: %w", err)
	}
	buf.Write(b)
	return buf.Bytes(), nil
}

// EnvVars are the environment variables that enable the plugins, as NAME=value.
// Valid only for aliases that Validate accepts in ModeEnv.
func EnvVars(ps []plugin.Plugin) []string {
	out := make([]string, 0, len(ps))
	for _, p := range sorted(ps) {
		out = append(out, fmt.Sprintf("TRAEFIK_EXPERIMENTAL_LOCALPLUGINS_%s_MODULENAME=%s", strings.ToUpper(p.Alias), p.Module))
		if p.UseUnsafe {
			out = append(out, fmt.Sprintf("TRAEFIK_EXPERIMENTAL_LOCALPLUGINS_%s_SETTINGS_USEUNSAFE=true", strings.ToUpper(p.Alias)))
		}
	}
	return out
}

// StaticFile renders the file-mode static configuration: the recipe's Config
// with experimental.localPlugins added. A recipe entry for the same alias must
// name the same module, and an alias may not also be a remote plugin (Traefik
// refuses both). Keys match Traefik's case-insensitive field names.
func StaticFile(s Static, ps []plugin.Plugin) ([]byte, error) {
	cfg, err := normalize(s.Config)
	if err != nil {
		return nil, fmt.Errorf("static configuration: %w", err)
	}
	root, _ := cfg.(map[string]any)
	if root == nil {
		root = map[string]any{}
	}
	exp, err := child(root, "experimental")
	if err != nil {
		return nil, err
	}
	local, err := child(exp, "localPlugins")
	if err != nil {
		return nil, err
	}
	remote, _ := lookupFold(exp, "plugins")
	remoteMap, _ := remote.(map[string]any)
	for _, p := range sorted(ps) {
		if _, ok := remoteMap[p.Alias]; ok {
			return nil, fmt.Errorf("static configuration: alias %q is both a remote plugin (experimental.plugins) and a local plugin; Traefik refuses that", p.Alias)
		}
		entry := map[string]any{}
		if prev, ok := local[p.Alias]; ok {
			m, isMap := prev.(map[string]any)
			if !isMap {
				return nil, fmt.Errorf("static configuration: experimental.localPlugins.%s is not a mapping", p.Alias)
			}
			if mod, ok := lookupFold(m, "moduleName"); ok && mod != p.Module {
				return nil, fmt.Errorf("static configuration: experimental.localPlugins.%s.moduleName is %v, but the recipe's plugin is %s", p.Alias, mod, p.Module)
			}
			entry = m
			deleteFold(entry, "moduleName")
		}
		entry["moduleName"] = p.Module
		if p.UseUnsafe {
			settings, err := child(entry, "settings")
			if err != nil {
				return nil, err
			}
			deleteFold(settings, "useUnsafe")
			settings["useUnsafe"] = true
		}
		local[p.Alias] = entry
	}
	// An entry naming no plugin of the image makes Traefik (v3.6 SetupLocalPlugins)
	// fail to read its manifest and disable every plugin.
	for alias := range local {
		if !slices.ContainsFunc(ps, func(p plugin.Plugin) bool { return p.Alias == alias }) {
			return nil, fmt.Errorf("static configuration: experimental.localPlugins.%s is not a plugin of the recipe; Traefik would find no manifest for it and disable every plugin", alias)
		}
	}
	var buf bytes.Buffer
	buf.WriteString("# Static configuration baked by xtraefik. Traefik reads this file and\n# ignores every command-line flag and TRAEFIK_* variable while it exists.\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return nil, fmt.Errorf("rendering static configuration: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("rendering static configuration: %w", err)
	}
	return buf.Bytes(), nil
}

// Warnings tell the user what the mode costs at run time.
func Warnings(mode Mode) []string {
	switch mode {
	case ModeFile:
		return []string{
			"static configuration is baked at " + StaticFilePath + ": Traefik then ignores every command-line flag (a Helm chart's arguments included) and every TRAEFIK_* variable; change settings by replacing the file, e.g. with a mounted ConfigMap",
		}
	case ModeEnv:
		return []string{
			"plugins are enabled by baked TRAEFIK_* variables: as soon as one command-line flag is passed (a Helm chart passes many), Traefik ignores them all and the plugins are not loaded; pass settings as TRAEFIK_* variables too",
		}
	default:
		return nil
	}
}

func sorted(ps []plugin.Plugin) []plugin.Plugin {
	out := append([]plugin.Plugin(nil), ps...)
	sort.Slice(out, func(i, j int) bool { return out[i].Alias < out[j].Alias })
	return out
}

// normalize deep-copies v, turning map[any]any (other YAML decoders) into
// map[string]any so that the result marshals the same whatever decoded it.
func normalize(v any) (any, error) {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			n, err := normalize(e)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			out[k] = n
		}
		return out, nil
	case map[any]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			ks, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("key %v is not a string", k)
			}
			n, err := normalize(e)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", ks, err)
			}
			out[ks] = n
		}
		return out, nil
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			n, err := normalize(e)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out[i] = n
		}
		return out, nil
	default:
		return v, nil
	}
}

// lookupFold finds key in m the way Traefik matches field names: ignoring case.
func lookupFold(m map[string]any, key string) (any, bool) {
	if v, ok := m[key]; ok {
		return v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return nil, false
}

func deleteFold(m map[string]any, key string) {
	for k := range m {
		if strings.EqualFold(k, key) {
			delete(m, k)
		}
	}
}

// child returns the mapping under key (matched case-insensitively), creating
// it when absent; it refuses two spellings of one field.
func child(m map[string]any, key string) (map[string]any, error) {
	var found []string
	for k := range m {
		if strings.EqualFold(k, key) {
			found = append(found, k)
		}
	}
	switch len(found) {
	case 0:
		c := map[string]any{}
		m[key] = c
		return c, nil
	case 1:
		switch c := m[found[0]].(type) {
		case map[string]any:
			return c, nil
		case nil:
			n := map[string]any{}
			m[found[0]] = n
			return n, nil
		default:
			return nil, fmt.Errorf("static configuration: %s is not a mapping", found[0])
		}
	default:
		sort.Strings(found)
		return nil, fmt.Errorf("static configuration: %s are one Traefik field spelled twice", strings.Join(found, " and "))
	}
}

// Setting replaces the value at Path in a static configuration.
type Setting struct {
	Path  []string
	Value any
}

// Amend applies settings to a YAML static configuration file and returns the
// new file. Field names match case-insensitively, as Traefik matches them, and
// a setting replaces every spelling of its last field. Comments are not kept.
func Amend(file []byte, settings []Setting) ([]byte, error) {
	var doc any
	if err := yaml.Unmarshal(file, &doc); err != nil {
		return nil, fmt.Errorf("parsing static configuration: %w", err)
	}
	doc, err := normalize(doc)
	if err != nil {
		return nil, fmt.Errorf("static configuration: %w", err)
	}
	root, ok := doc.(map[string]any)
	if doc != nil && !ok {
		return nil, errors.New("static configuration is not a mapping")
	}
	if root == nil {
		root = map[string]any{}
	}
	for _, s := range settings {
		if len(s.Path) == 0 {
			return nil, errors.New("amending static configuration: empty setting path")
		}
		m := root
		for _, key := range s.Path[:len(s.Path)-1] {
			if m, err = child(m, key); err != nil {
				return nil, err
			}
		}
		last := s.Path[len(s.Path)-1]
		deleteFold(m, last)
		m[last] = s.Value
	}
	b, err := yaml.Marshal(root)
	if err != nil {
		return nil, fmt.Errorf("rendering static configuration: %w", err)
	}
	return b, nil
}
