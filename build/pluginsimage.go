package build

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/xtraefik/xtraefik/images"
	"github.com/xtraefik/xtraefik/internal/plugin"
	"github.com/xtraefik/xtraefik/internal/traefikcfg"
)

// AnnotationPlugins names, on a plugins image's manifests and index, each
// plugin as alias=module@revision (the commit; the module version for a
// module-proxy plugin; the content hash for a directory), space-separated
// and sorted by alias: what an admission policy or `crane manifest` reads.
const AnnotationPlugins = "xtraefik.dev/plugins"

// DefaultPluginsName names a plugins image written only to an OCI layout
// (no --plugins-image to name it) in the Helm values.
const DefaultPluginsName = "localhost/xtraefik/traefik-plugins"

// assemblePluginsImage builds the plugins image of a resolution (see
// images.PluginsImage): the plugin tree alone, for the unmodified base. The
// base is left as it is, so the plugins are enabled by flags: a recipe in
// file or env mode, which bakes its settings into the base, is refused, and
// so is a base that would defeat the flags (checkBase).
func assemblePluginsImage(ctx context.Context, res *resolution) (*images.Result, []string, error) {
	r := res.Recipe
	mode := traefikcfg.Mode(r.Mode())
	if mode != traefikcfg.ModeFlags {
		return nil, nil, r.Errorf([]string{"staticConfig", "mode"},
			"the plugins image leaves the base unmodified, so its plugins are enabled by flags; static configuration mode %q bakes settings into the base: use mode flags (the default) for a plugins image", mode)
	}
	warnings, _, err := checkBase(ctx, res, traefikcfg.Static{Mode: mode, Replace: r.StaticConfig.Replace})
	if err != nil {
		return nil, nil, r.Errorf([]string{"staticConfig"}, "%v", err)
	}
	if r.StaticConfig.Replace {
		return nil, nil, r.Errorf([]string{"staticConfig", "replace"}, "the plugins image cannot remove files from the base it leaves unmodified; drop replace")
	}
	flags := traefikcfg.Flags(res.Plugins)
	spec := images.PluginsSpec{
		Plugins:     res.Plugins,
		Epoch:       res.Epoch,
		Labels:      map[string]string{LabelMode: string(mode), LabelFlags: strings.Join(flags, " ")},
		Annotations: provenance(res),
	}
	// The recipe's own annotations are in provenance already; its labels
	// describe the full image (and may name an entrypoint's behaviour): the
	// plugins image gets the plugin labels only.
	spec.Annotations[AnnotationPlugins] = pluginRevisions(res.Plugins)
	for _, p := range res.Plugins {
		spec.Labels[LabelPluginPrefix+p.Alias+".module"] = p.Module
		spec.Labels[LabelPluginPrefix+p.Alias+".commit"] = p.Source.Commit
		spec.Labels[LabelPluginPrefix+p.Alias+".content-hash"] = p.Hash
	}
	img, err := images.PluginsImage(ctx, res.Base, spec)
	if err != nil {
		return nil, nil, err
	}
	return img, warnings, nil
}

// pluginRevisions is AnnotationPlugins' value.
func pluginRevisions(ps []plugin.Plugin) string {
	sorted := slices.SortedFunc(slices.Values(ps), func(a, b plugin.Plugin) int { return strings.Compare(a.Alias, b.Alias) })
	parts := make([]string, 0, len(sorted))
	for _, p := range sorted {
		rev := p.Source.Commit
		if rev == "" {
			rev = p.Source.Version
		}
		if rev == "" {
			rev = p.Hash
		}
		parts = append(parts, fmt.Sprintf("%s=%s@%s", p.Alias, p.Module, rev))
	}
	return strings.Join(parts, " ")
}
