package traefikcfg

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
	"gopkg.in/yaml.v3"

	"github.com/xtraefik/xtraefik/internal/yamlcheck"
)

// Kind is what a file given to Import is: a Traefik static configuration or
// values for Traefik's Helm chart.
type Kind string

const (
	// KindAuto decides from the file (ImportKind).
	KindAuto Kind = ""
	// KindStatic is a Traefik static configuration (YAML or TOML).
	KindStatic Kind = "static"
	// KindHelm is a values file of Traefik's Helm chart (traefik/traefik-helm-chart).
	KindHelm Kind = "helm"
)

// ParseKind accepts auto, static or helm.
func ParseKind(s string) (Kind, error) {
	switch k := Kind(s); k {
	case "auto", KindAuto:
		return KindAuto, nil
	case KindStatic, KindHelm:
		return k, nil
	}
	return "", fmt.Errorf("kind %q: want auto, static or helm", s)
}

// RemotePlugin is one plugin Traefik downloads at start-up
// (experimental.plugins.<Alias>), as Import carries it over.
type RemotePlugin struct {
	Alias   string `json:"alias"`
	Module  string `json:"module"`
	Version string `json:"version"`
	// UseUnsafe is settings.useUnsafe (Traefik v3.6 and later).
	UseUnsafe bool `json:"useUnsafe,omitempty"`
}

// Imported is what Import makes of a configuration file.
type Imported struct {
	Kind Kind
	// Format is "yaml" or "toml".
	Format string
	// Plugins are the plugins carried over, sorted by alias.
	Plugins []RemotePlugin
	// Config is the file rewritten: each plugin carried over is a local
	// plugin (experimental.localPlugins in a static configuration, a
	// --experimental.localPlugins flag in additionalArguments in Helm
	// values); everything else is kept.
	Config []byte
	// NotCarried says, one sentence each, what could not be carried over.
	NotCarried []string
	// Notes say what the user must do besides.
	Notes []string
	// Image is the Traefik image Helm values name (image.registry,
	// image.repository, image.tag); "" when they name no tag.
	Image string
}

// ImportLimits bound the files Import reads: real configurations are a few
// kilobytes.
func ImportLimits() yamlcheck.Limits {
	return yamlcheck.Limits{Kind: "configuration", MaxBytes: 1 << 20, MaxNodes: 100_000, MaxKeys: 1000}
}

// helmOnlyKeys are top-level keys of the Helm chart's values that a Traefik
// static configuration does not have (chart v30–v37 values.yaml).
var helmOnlyKeys = []string{"additionalArguments", "globalArguments", "image", "deployment", "ports", "service",
	"ingressRoute", "rbac", "serviceAccount", "resources", "securityContext", "podSecurityContext", "logs", "env",
	"envFrom", "volumes", "persistence", "autoscaling", "nodeSelector", "tolerations", "affinity", "updateStrategy",
	"extraObjects", "ingressClass", "podDisruptionBudget", "additionalVolumeMounts", "priorityClassName"}

// staticOnlyKeys are top-level keys of Traefik's static configuration that
// the chart's values do not have.
var staticOnlyKeys = []string{"entryPoints", "api", "log", "accessLog", "serversTransport", "tcpServersTransport",
	"global", "ping", "hostResolver", "spiffe", "core"}

// Import reads a static configuration or Helm values (name is the file's
// name, for messages and its format: .toml is TOML, anything else YAML) and
// carries every remote plugin with a module name and a version over to a
// local plugin of the same alias.
func Import(name string, data []byte, kind Kind) (*Imported, error) {
	lim := ImportLimits()
	if err := yamlcheck.CheckSize(name, data, lim); err != nil {
		return nil, err
	}
	if strings.EqualFold(filepath.Ext(name), ".toml") {
		if kind == KindHelm {
			return nil, fmt.Errorf("%s: Helm values are YAML, not TOML", name)
		}
		return importTOML(name, data)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, yamlcheck.Error(name, err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, fmt.Errorf("%s: empty file: no experimental.plugins to import", name)
	}
	root := doc.Content[0]
	if err := yamlcheck.Check(name, root, reflect.TypeFor[map[string]any](), lim); err != nil {
		return nil, err
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: the file is not a mapping of settings", name, root.Line)
	}
	var tree map[string]any
	if err := root.Decode(&tree); err != nil {
		return nil, yamlcheck.Error(name, err)
	}
	if kind == KindAuto {
		var err error
		if kind, err = guessKind(name, tree); err != nil {
			return nil, err
		}
	}
	im := &Imported{Kind: kind, Format: "yaml"}
	var found []entry
	if kind == KindHelm {
		args, err := helmArguments(name, tree)
		if err != nil {
			return nil, err
		}
		if found, err = collect(name, tree, args); err != nil {
			return nil, err
		}
		im.Image = helmImage(tree)
	} else {
		var err error
		if found, err = collect(name, tree, nil); err != nil {
			return nil, err
		}
		im.NotCarried = append(im.NotCarried, onlineSettings(tree)...)
	}
	carried, err := im.take(name, found)
	if err != nil {
		return nil, err
	}
	if kind == KindHelm {
		rewriteHelmNode(root, carried)
		im.Notes = append(im.Notes, "set image.registry, image.repository and image.tag in the values to the image built from the recipe: it carries the plugins")
	} else {
		if err := rewriteStaticNode(name, root, carried); err != nil {
			return nil, err
		}
		im.Notes = append(im.Notes, staticNote)
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, fmt.Errorf("%s: rendering the rewritten configuration: %w", name, err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("%s: rendering the rewritten configuration: %w", name, err)
	}
	im.Config = buf.Bytes()
	return im, nil
}

// staticNote is what a rewritten static configuration needs: Traefik reads
// one configuration file, and no flag, while it finds one.
const staticNote = "run the image built from the recipe with the rewritten file as its configuration file (e.g. mounted at /etc/traefik/traefik.yml): Traefik then ignores every flag and TRAEFIK_* variable"

// guessKind tells Helm values from a static configuration by their
// top-level keys.
func guessKind(name string, tree map[string]any) (Kind, error) {
	var helm, static []string
	for k := range tree {
		if slices.ContainsFunc(helmOnlyKeys, func(h string) bool { return strings.EqualFold(h, k) }) {
			helm = append(helm, k)
		}
		if slices.ContainsFunc(staticOnlyKeys, func(s string) bool { return strings.EqualFold(s, k) }) {
			static = append(static, k)
		}
	}
	sort.Strings(helm)
	sort.Strings(static)
	switch {
	case len(helm) > 0 && len(static) > 0:
		return "", fmt.Errorf("%s: has keys of Helm values (%s) and of a Traefik static configuration (%s): say which with --kind", name, strings.Join(helm, ", "), strings.Join(static, ", "))
	case len(helm) > 0:
		return KindHelm, nil
	}
	return KindStatic, nil
}

// entry is one remote plugin as the file declares it.
type entry struct {
	alias    string
	module   string
	version  string
	unsafe   bool
	dropped  []string // settings not carried over, as "settings.envs=[...]"
	where    string   // "experimental.plugins.x" or "additionalArguments"
	problems []string // why it cannot be carried over
}

// collect reads experimental.plugins (and, for Helm values, the plugin
// flags of additionalArguments), sorted by alias.
func collect(name string, tree map[string]any, args []pluginFlag) ([]entry, error) {
	byAlias := map[string]*entry{}
	get := func(alias, where string) *entry {
		e := byAlias[alias]
		if e == nil {
			e = &entry{alias: alias, where: where}
			byAlias[alias] = e
		}
		return e
	}
	exp, _ := lookupFold(tree, "experimental")
	expMap, isMap := exp.(map[string]any)
	if exp != nil && !isMap {
		return nil, fmt.Errorf("%s: experimental is not a mapping", name)
	}
	plugins, _ := lookupFold(expMap, "plugins")
	pluginsMap, isMap := plugins.(map[string]any)
	if plugins != nil && !isMap {
		return nil, fmt.Errorf("%s: experimental.plugins is not a mapping", name)
	}
	for alias, v := range pluginsMap {
		where := "experimental.plugins." + alias
		e := get(alias, where)
		m, ok := v.(map[string]any)
		if !ok {
			e.problems = append(e.problems, "it is not a mapping")
			continue
		}
		for k, val := range m {
			switch {
			case strings.EqualFold(k, "moduleName"):
				e.module = scalar(val)
			case strings.EqualFold(k, "version"):
				e.version = scalar(val)
			case strings.EqualFold(k, "settings"):
				sm, ok := val.(map[string]any)
				if !ok && val != nil {
					e.problems = append(e.problems, "settings is not a mapping")
					continue
				}
				for sk, sv := range sm {
					if strings.EqualFold(sk, "useUnsafe") {
						e.unsafe = scalar(sv) == "true"
						continue
					}
					e.dropped = append(e.dropped, fmt.Sprintf("settings.%s=%v", sk, sv))
				}
			default:
				e.dropped = append(e.dropped, fmt.Sprintf("%s=%v", k, val))
			}
		}
	}
	for _, f := range args {
		e := get(f.alias, "additionalArguments")
		switch field := strings.ToLower(f.field); field {
		case "modulename":
			if e.module != "" && e.module != f.value {
				return nil, fmt.Errorf("%s: plugin %s is %s in experimental.plugins and %s in additionalArguments", name, f.alias, e.module, f.value)
			}
			e.module = f.value
		case "version":
			if e.version != "" && e.version != f.value {
				return nil, fmt.Errorf("%s: plugin %s is version %s in experimental.plugins and %s in additionalArguments", name, f.alias, e.version, f.value)
			}
			e.version = f.value
		case "settings.useunsafe":
			e.unsafe = f.value == "true" || f.value == ""
		default:
			e.dropped = append(e.dropped, fmt.Sprintf("%s=%s", f.field, f.value))
		}
	}
	if len(byAlias) == 0 {
		where := "experimental.plugins"
		if args != nil || tree["additionalArguments"] != nil {
			where += " or --experimental.plugins flags in additionalArguments"
		}
		return nil, fmt.Errorf("%s: no plugins to import: the file has no %s", name, where)
	}
	out := make([]entry, 0, len(byAlias))
	for _, e := range byAlias {
		sort.Strings(e.dropped)
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].alias < out[j].alias })
	return out, nil
}

// take carries over every entry that can be and records why the others
// cannot; it returns the plugins carried over by alias, and an error when
// there is none.
func (im *Imported) take(name string, found []entry) (map[string]RemotePlugin, error) {
	carried := map[string]RemotePlugin{}
	for _, e := range found {
		switch {
		case len(e.problems) > 0:
		case e.module == "":
			e.problems = append(e.problems, "it has no moduleName")
		case e.version == "":
			e.problems = append(e.problems, "it has no version (Traefik requires one; name it, then import again)")
		case !aliasRE.MatchString(e.alias):
			e.problems = append(e.problems, "its name cannot be a local plugin alias (letters, digits, '-' or '_')")
		}
		where := "experimental.plugins." + e.alias
		if e.where == "additionalArguments" {
			where = "--" + where + " (additionalArguments)"
		}
		if len(e.problems) > 0 {
			im.NotCarried = append(im.NotCarried, fmt.Sprintf("%s: left as it was: %s", where, strings.Join(e.problems, "; ")))
			continue
		}
		for _, d := range e.dropped {
			im.NotCarried = append(im.NotCarried, fmt.Sprintf("%s: %s is dropped: xtraefik verifies the plugin without it; add it back to experimental.localPlugins.%s if Traefik needs it", where, d, e.alias))
		}
		p := RemotePlugin{Alias: e.alias, Module: e.module, Version: e.version, UseUnsafe: e.unsafe}
		im.Plugins = append(im.Plugins, p)
		carried[e.alias] = p
	}
	if len(carried) == 0 {
		return nil, fmt.Errorf("%s: no plugin can be imported:\n  %s", name, strings.Join(im.NotCarried, "\n  "))
	}
	return carried, nil
}

// onlineSettings are the static configuration's settings for Traefik's
// online services, which a local plugin does not need.
func onlineSettings(tree map[string]any) []string {
	var out []string
	for k := range tree {
		switch strings.ToLower(k) {
		case "pilot":
			out = append(out, k+": Traefik Pilot (Traefik v2.3–v2.6; gone since v2.7) is kept as it was; local plugins do not need it")
		case "hub":
			out = append(out, k+": Traefik Hub settings are kept as they were; the recipe builds on the Traefik image, not Traefik Hub's")
		}
	}
	sort.Strings(out)
	return out
}

func scalar(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

// rewriteStaticNode moves each carried-over plugin from
// experimental.plugins to experimental.localPlugins in the YAML tree,
// keeping every other node (and its comments).
func rewriteStaticNode(name string, root *yaml.Node, carried map[string]RemotePlugin) error {
	exp := mappingChild(root, "experimental")
	if exp == nil {
		return fmt.Errorf("%s: experimental is not a mapping", name)
	}
	plugins := mappingChild(exp, "plugins")
	local := mappingChild(exp, "localPlugins")
	if local == nil {
		exp.Content = append(exp.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: "localPlugins"}, &yaml.Node{Kind: yaml.MappingNode})
		local = exp.Content[len(exp.Content)-1]
	}
	for _, alias := range sortedKeys(carried) {
		if mappingChild(local, alias) != nil || hasKey(local, alias) {
			return fmt.Errorf("%s: experimental.localPlugins.%s already exists beside experimental.plugins.%s (Traefik refuses an alias in both)", name, alias, alias)
		}
		removeKey(plugins, alias)
		p := carried[alias]
		e := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{
			{Kind: yaml.ScalarNode, Value: "moduleName"}, {Kind: yaml.ScalarNode, Value: p.Module}}}
		if p.UseUnsafe {
			e.Content = append(e.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: "settings"}, &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{
				{Kind: yaml.ScalarNode, Value: "useUnsafe"}, {Kind: yaml.ScalarNode, Tag: "!!bool", Value: "true"}}})
		}
		local.Content = append(local.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: alias}, e)
	}
	if plugins != nil && len(plugins.Content) == 0 {
		removeKey(exp, "plugins")
	}
	return nil
}

// mappingChild is the mapping under key (matched as Traefik matches field
// names, ignoring case) in the mapping m; nil when there is none.
func mappingChild(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if strings.EqualFold(m.Content[i].Value, key) && m.Content[i+1].Kind == yaml.MappingNode {
			return m.Content[i+1]
		}
	}
	return nil
}

func hasKey(m *yaml.Node, key string) bool {
	for i := 0; m != nil && i+1 < len(m.Content); i += 2 {
		if strings.EqualFold(m.Content[i].Value, key) {
			return true
		}
	}
	return false
}

func removeKey(m *yaml.Node, key string) {
	if m == nil {
		return
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if strings.EqualFold(m.Content[i].Value, key) {
			m.Content = append(m.Content[:i], m.Content[i+2:]...)
			return
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// pluginFlag is one --experimental.plugins.<alias>.<field>=<value> argument.
type pluginFlag struct {
	alias, field, value string
	index               int
}

// helmArguments reads the plugin flags of the values' additionalArguments.
func helmArguments(name string, tree map[string]any) ([]pluginFlag, error) {
	raw, ok := tree["additionalArguments"]
	if !ok || raw == nil {
		return []pluginFlag{}, nil
	}
	list, ok := raw.([]any)
	if !ok {
		return nil, fmt.Errorf("%s: additionalArguments is not a list", name)
	}
	out := []pluginFlag{}
	for i, a := range list {
		s, ok := a.(string)
		if !ok {
			continue
		}
		if f, ok := parsePluginFlag(s); ok {
			f.index = i
			out = append(out, f)
		}
	}
	return out, nil
}

// parsePluginFlag reads --experimental.plugins.<alias>.<field>[=<value>];
// Traefik matches flag names ignoring case.
func parsePluginFlag(s string) (pluginFlag, bool) {
	const prefix = "--experimental.plugins."
	if len(s) <= len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return pluginFlag{}, false
	}
	key, value, _ := strings.Cut(s[len(prefix):], "=")
	alias, field, ok := strings.Cut(key, ".")
	if !ok || alias == "" || field == "" {
		return pluginFlag{}, false
	}
	return pluginFlag{alias: alias, field: field, value: value}, true
}

// helmImage is the image the values name, when they name a tag.
func helmImage(tree map[string]any) string {
	img, _ := tree["image"].(map[string]any)
	tag := scalar(img["tag"])
	if tag == "" {
		return ""
	}
	registry, repo := scalar(img["registry"]), scalar(img["repository"])
	if registry == "" {
		registry = "docker.io"
	}
	if repo == "" {
		repo = "traefik"
	}
	if registry == "docker.io" && !strings.Contains(repo, "/") {
		repo = "library/" + repo
	}
	return registry + "/" + repo + ":" + tag
}

// rewriteHelmNode drops the carried-over plugins from experimental.plugins
// and their flags from additionalArguments, and appends the flags that
// enable them as local plugins (the chart passes additionalArguments to
// Traefik as they are).
func rewriteHelmNode(root *yaml.Node, carried map[string]RemotePlugin) {
	exp := mappingChild(root, "experimental")
	plugins := mappingChild(exp, "plugins")
	for _, alias := range sortedKeys(carried) {
		removeKey(plugins, alias)
	}
	if plugins != nil && len(plugins.Content) == 0 {
		removeKey(exp, "plugins")
	}
	if exp != nil && len(exp.Content) == 0 {
		removeKey(root, "experimental")
	}
	var args *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "additionalArguments" && root.Content[i+1].Kind == yaml.SequenceNode {
			args = root.Content[i+1]
		}
	}
	if args == nil {
		root.Content = append(root.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: "additionalArguments"}, &yaml.Node{Kind: yaml.SequenceNode})
		args = root.Content[len(root.Content)-1]
	}
	kept := args.Content[:0]
	for _, n := range args.Content {
		if f, ok := parsePluginFlag(n.Value); ok && n.Kind == yaml.ScalarNode {
			if _, done := carried[f.alias]; done {
				continue
			}
		}
		kept = append(kept, n)
	}
	args.Content = kept
	var ps []RemotePlugin
	for _, a := range sortedKeys(carried) {
		ps = append(ps, carried[a])
	}
	for _, f := range localFlags(ps) {
		args.Content = append(args.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: f})
	}
}

// localFlags are the flags that enable ps as local plugins (as Flags).
func localFlags(ps []RemotePlugin) []string {
	var out []string
	for _, p := range ps {
		out = append(out, fmt.Sprintf("--experimental.localPlugins.%s.moduleName=%s", p.Alias, p.Module))
		if p.UseUnsafe {
			out = append(out, fmt.Sprintf("--experimental.localPlugins.%s.settings.useUnsafe=true", p.Alias))
		}
	}
	return out
}

// importTOML is Import for a TOML static configuration, parsed as Traefik
// parses it (BurntSushi/toml, through paerser). The rewritten file has the
// same settings; TOML comments and key order are not kept.
func importTOML(name string, data []byte) (*Imported, error) {
	var tree map[string]any
	if _, err := toml.Decode(string(data), &tree); err != nil {
		var perr toml.ParseError
		if errors.As(err, &perr) {
			// The line of the error's first byte: the parser counts a newline
			// it stopped at as the next line.
			line := perr.Position.Line
			if s := perr.Position.Start; s > 0 && s <= len(data) {
				line = bytes.Count(data[:s], []byte("\n")) + 1
			}
			return nil, fmt.Errorf("%s:%d: %s", name, line, perr.Message)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	found, err := collect(name, tree, nil)
	if err != nil {
		return nil, err
	}
	im := &Imported{Kind: KindStatic, Format: "toml"}
	im.NotCarried = append(im.NotCarried, onlineSettings(tree)...)
	carried, err := im.take(name, found)
	if err != nil {
		return nil, err
	}
	exp, err := child(tree, "experimental")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	local, err := child(exp, "localPlugins")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	plugins, _ := lookupFold(exp, "plugins")
	pluginsMap, _ := plugins.(map[string]any)
	for _, alias := range sortedKeys(carried) {
		if _, ok := lookupFold(local, alias); ok {
			return nil, fmt.Errorf("%s: experimental.localPlugins.%s already exists beside experimental.plugins.%s (Traefik refuses an alias in both)", name, alias, alias)
		}
		deleteFold(pluginsMap, alias)
		p := carried[alias]
		e := map[string]any{"moduleName": p.Module}
		if p.UseUnsafe {
			e["settings"] = map[string]any{"useUnsafe": true}
		}
		local[alias] = e
	}
	if pluginsMap != nil && len(pluginsMap) == 0 {
		deleteFold(exp, "plugins")
	}
	var buf bytes.Buffer
	buf.WriteString("# Rewritten by xtraefik import: remote plugins carried over to local plugins.\n")
	if err := toml.NewEncoder(&buf).Encode(tree); err != nil {
		return nil, fmt.Errorf("%s: rendering the rewritten configuration: %w", name, err)
	}
	im.Config = buf.Bytes()
	im.Notes = append(im.Notes, staticNote, "the rewritten TOML file has the same settings, without the original's comments and key order")
	return im, nil
}
