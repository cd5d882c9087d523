package build

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/xtraefik/xtraefik/images"
	"github.com/xtraefik/xtraefik/recipe"
	"github.com/xtraefik/xtraefik/traefikcfg"
	"github.com/xtraefik/xtraefik/verify"
)

// Label keys recorded on every image config.
const (
	LabelPrefix     = "io.xtraefik."
	LabelArgs       = LabelPrefix + "traefik.args"
	LabelMode       = LabelPrefix + "static-config.mode"
	labelPluginBase = LabelPrefix + "plugin."
)

// Result is a built (not yet published) image.
type Result struct {
	Resolution *Resolution
	Image      *images.Result
	Verify     []verify.Result
	// Flags enable the plugins in Traefik (flags mode: pass them; other modes:
	// informational).
	Flags []string
	// Warnings about the static configuration mode and the lock.
	Warnings []string
}

// Build resolves, verifies and assembles. A plugin that fails verification stops
// the build before anything is assembled.
func Build(ctx context.Context, o *Options, vo verify.Options) (*Result, error) {
	res, err := Resolve(ctx, o)
	if err != nil {
		return nil, err
	}
	out := &Result{Resolution: res, Warnings: res.Warnings}
	if out.Verify, err = Verify(ctx, res, vo); err != nil {
		return nil, err
	}
	if failed := Failed(out.Verify); len(failed) > 0 {
		return out, fmt.Errorf("verification failed for %s: no image was built", strings.Join(failed, ", "))
	}
	img, warnings, err := Assemble(ctx, o, res)
	if err != nil {
		return out, err
	}
	out.Image = img
	out.Flags = traefikcfg.Flags(localPlugins(res))
	out.Warnings = append(out.Warnings, warnings...)
	return out, nil
}

// Verify runs each plugin through the interpreter as Traefik would load it.
func Verify(ctx context.Context, res *Resolution, vo verify.Options) ([]verify.Result, error) {
	if vo.TraefikVersion == "" {
		vo.TraefikVersion = res.Base.TraefikVersion()
	}
	vo.AllowUnsafe = vo.AllowUnsafe || res.Recipe.AllowUnsafe
	var ps []verify.Plugin
	for _, p := range res.Plugins {
		ps = append(ps, verify.Plugin{Alias: p.Alias, Module: p.Spec.Module, Commit: p.Commit, Files: p.Files, Config: p.Spec.Config})
	}
	rs, err := verify.Verify(ctx, ps, vo)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	return rs, nil
}

// Failed lists "alias (module)" of the failed results.
func Failed(rs []verify.Result) []string {
	var out []string
	for _, r := range rs {
		if !r.OK {
			out = append(out, fmt.Sprintf("%s (%s)", r.Alias, r.Module))
		}
	}
	return out
}

func localPlugins(res *Resolution) []traefikcfg.LocalPlugin {
	var ps []traefikcfg.LocalPlugin
	for _, p := range res.Plugins {
		ps = append(ps, traefikcfg.LocalPlugin{Alias: p.Alias, Module: p.Spec.Module})
	}
	return ps
}

// Assemble appends the plugins, and what the static configuration mode bakes, to
// every platform of the base.
func Assemble(ctx context.Context, o *Options, res *Resolution) (*images.Result, []string, error) {
	r := res.Recipe
	ps := localPlugins(res)
	mode := traefikcfg.Mode(r.Mode())
	flags := traefikcfg.Flags(ps)

	add := images.Addition{
		Epoch:     res.Epoch(o),
		Labels:    map[string]string{},
		CreatedBy: "xtraefik: plugins-local " + pluginSummary(res),
	}
	for k, v := range r.Labels {
		add.Labels[k] = v
	}
	add.Labels[LabelMode] = string(mode)
	add.Labels[LabelArgs] = strings.Join(flags, " ")
	for _, p := range res.Plugins {
		add.Plugins = append(add.Plugins, images.Plugin{Module: p.Spec.Module, Files: p.Files})
		add.Labels[labelPluginBase+p.Alias+".module"] = p.Spec.Module
		add.Labels[labelPluginBase+p.Alias+".commit"] = p.Commit
		add.Labels[labelPluginBase+p.Alias+".content-hash"] = p.Hash
	}

	if err := traefikcfg.CheckBase(mode, r.StaticConfig.Replace, res.Base.ConfigFiles(traefikcfg.ConfigFilePaths())); err != nil {
		return nil, nil, r.Errorf([]string{"staticConfig", "mode"}, "%v", err)
	}
	switch mode {
	case traefikcfg.ModeFile:
		data, err := traefikcfg.StaticFile(traefikcfg.Static{Mode: mode, Config: r.StaticConfig.Config, Replace: r.StaticConfig.Replace}, ps)
		if err != nil {
			return nil, nil, r.Errorf([]string{"staticConfig", "config"}, "%v", err)
		}
		add.Files = append(add.Files, images.ExtraFile{Path: traefikcfg.StaticFilePath, Mode: 0o644, Content: data})
	case traefikcfg.ModeEnv:
		add.Env = traefikcfg.EnvVars(ps)
	}

	img, err := images.Assemble(ctx, res.Base, add)
	if err != nil {
		return nil, nil, fmt.Errorf("assemble: %w", err)
	}
	return img, traefikcfg.Warnings(mode), nil
}

func pluginSummary(res *Resolution) string {
	var parts []string
	for _, p := range res.Plugins {
		parts = append(parts, fmt.Sprintf("%s=%s@%s", p.Alias, p.Spec.Module, p.Commit))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// SortedLabels is handy for printing.
func SortedLabels(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

var _ = recipe.ModeFile
