package build

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/xtraefik/xtraefik/images"
	"github.com/xtraefik/xtraefik/internal/traefikcfg"
	"github.com/xtraefik/xtraefik/verify"
)

// Labels recorded on every platform's config.
const (
	// LabelPluginPrefix starts the per-plugin labels: <prefix><alias>.module,
	// .commit and .content-hash.
	LabelPluginPrefix = "io.github.xtraefik.plugin."
	// LabelMode is the static configuration mode.
	LabelMode = "io.github.xtraefik.static-config.mode"
	// LabelFlags are the flags that enable the plugins, space-separated.
	LabelFlags = "io.github.xtraefik.static-config.flags"
)

// Result is a built (not yet published) image.
type Result struct {
	Resolution *Resolution
	// Image is the full image: the base with the plugins; nil when only
	// the plugins image was asked for.
	Image *images.Result
	// PluginsImage is the plugins image (AssemblePluginsImage), when one
	// was asked for.
	PluginsImage *images.Result
	Verify       []verify.Result
	// Flags enable the plugins in Traefik (flags mode: pass them; other modes:
	// informational).
	Flags []string
	// Warnings about the static configuration mode and the lock.
	Warnings []string
	// Timings of the stages Build ran (Resolve, Verify, Assemble).
	Timings Timings
	// RuntimeChecked is set once the image's own Traefik ran every plugin.
	RuntimeChecked bool
	// Started is when Build began (the provenance records it).
	Started time.Time
}

// Build resolves, verifies and assembles. A plugin that fails verification stops
// the build before anything is assembled. The resolution names the Traefik
// verified for (Options.TraefikVersion overrides the base's); vo's own
// TraefikVersion, Yaegi and AllowUnsafe are not used. Build writes nothing: check the
// outputs with Outputs.Validate before, and write them with Publish after.
func Build(ctx context.Context, o *Options, vo verify.Options) (*Result, error) {
	return buildImages(ctx, o, vo, wantImages{full: true})
}

// wantImages says which images a build assembles: the full image, the
// plugins image, or both.
type wantImages struct{ full, plugins bool }

// buildImages is Build assembling the images want names.
func buildImages(ctx context.Context, o *Options, vo verify.Options, want wantImages) (*Result, error) {
	// The contained verification workers start while the base is resolved
	// and the plugins are fetched.
	v, err := verify.NewVerifier(vo)
	if err != nil {
		return nil, err
	}
	defer v.Close()
	// With a verdict cache, most plugins of a rebuild need no worker.
	if o.Recipe != nil && vo.Cache == nil {
		v.Prepare(len(o.Recipe.Plugins))
	}
	start := time.Now()
	res, err := Resolve(ctx, o)
	if err != nil {
		return nil, err
	}
	out := &Result{Resolution: res, Warnings: res.Warnings, Started: start.UTC()}
	out.Timings.Resolve = ms(time.Since(start))
	start = time.Now()
	out.Verify, err = verifyWith(ctx, o, v, res)
	out.Timings.Verify = ms(time.Since(start))
	if err != nil {
		return out, err
	}
	if failed := Failed(out.Verify); len(failed) > 0 {
		return out, fmt.Errorf("verification failed, no image was built: %s", strings.Join(failed, "; "))
	}
	start = time.Now()
	if want.full {
		out.Image, err = assembleWith(ctx, o, res, &out.Warnings)
	}
	if err == nil && want.plugins {
		out.PluginsImage, err = assemblePluginsWith(ctx, o, res, &out.Warnings)
	}
	out.Timings.Assemble = ms(time.Since(start))
	if err != nil {
		return out, err
	}
	out.Flags = traefikcfg.Flags(res.Plugins)
	return out, nil
}

// assemblePluginsWith is AssemblePluginsImage telling o.Status (subject
// "plugins image"), adding its warnings to warnings that the full image
// has not given already.
func assemblePluginsWith(ctx context.Context, o *Options, res *Resolution, warnings *[]string) (*images.Result, error) {
	const subject = "plugins image"
	o.start(StageAssemble, subject)
	img, w, err := AssemblePluginsImage(ctx, res)
	if err != nil {
		o.done(StageAssemble, subject, "", err)
		return nil, err
	}
	o.done(StageAssemble, subject, img.Digest.String(), nil)
	for _, s := range w {
		if !slices.Contains(*warnings, s) {
			*warnings = append(*warnings, s)
		}
	}
	return img, nil
}

// assembleWith is Assemble telling o.Status, adding its warnings to
// warnings when not nil.
func assembleWith(ctx context.Context, o *Options, res *Resolution, warnings *[]string) (*images.Result, error) {
	o.start(StageAssemble, "")
	img, w, err := Assemble(ctx, res)
	if err != nil {
		o.done(StageAssemble, "", "", err)
		return nil, err
	}
	o.done(StageAssemble, "", img.Digest.String(), nil)
	if warnings != nil {
		*warnings = append(*warnings, w...)
	}
	return img, nil
}

// Verify runs each plugin through the interpreter as Traefik would load it.
func Verify(ctx context.Context, res *Resolution, vo verify.Options) ([]verify.Result, error) {
	v, err := verify.NewVerifier(vo)
	if err != nil {
		return nil, err
	}
	defer v.Close()
	return verifyWith(ctx, &Options{}, v, res)
}

// verifyWith verifies the resolution's plugins with v, for the Traefik the
// resolution names, telling o.Status each plugin's verdict.
func verifyWith(ctx context.Context, o *Options, v *verify.Verifier, res *Resolution) ([]verify.Result, error) {
	// The recipe alone decides the trust given to plugin code: the image's
	// flags grant what verification allowed.
	v.Target(res.Traefik.Version, res.Traefik.Yaegi, res.Recipe.AllowUnsafe)
	v.Interpreter(res.Traefik.Yaegi, res.Traefik.Wazero, res.Traefik.HTTPWasm, res.Traefik.InterpreterSource)
	// The plugins are verified side by side: each line ends with its
	// verdict, as soon as it is known.
	for _, p := range res.Plugins {
		o.start(StageVerify, p.Alias)
	}
	told := make([]atomic.Bool, len(res.Plugins))
	v.OnVerdict(func(i int, r verify.Result) {
		told[i].Store(true)
		o.done(StageVerify, res.Plugins[i].Alias, verdict(r), nil)
	})
	// verify's errors name the verification already.
	rs, err := v.Verify(ctx, res.Plugins)
	for i, p := range res.Plugins {
		if told[i].Load() {
			continue
		}
		if err != nil {
			o.done(StageVerify, p.Alias, "", err)
		} else {
			o.done(StageVerify, p.Alias, "no verdict", nil)
		}
	}
	return rs, err
}

// Failed lists "alias (module): reason" of the results that are not OK; an
// UNVERIFIED one (no verdict from the interpreter Traefik uses) stops a build
// as a FAIL does, and says which it is.
func Failed(rs []verify.Result) []string {
	var out []string
	for _, r := range rs {
		switch {
		case r.OK:
		case r.Status == verify.StatusUnverified:
			out = append(out, fmt.Sprintf("%s (%s): UNVERIFIED: %s", r.Alias, r.Module, r.Reason))
		default:
			out = append(out, fmt.Sprintf("%s (%s): %s", r.Alias, r.Module, r.Reason))
		}
	}
	return out
}

// Assemble appends the plugins, and what the static configuration mode bakes, to
// every platform of the base.
func Assemble(ctx context.Context, res *Resolution) (*images.Result, []string, error) {
	r := res.Recipe
	ps := res.Plugins
	static := traefikcfg.Static{Mode: traefikcfg.Mode(r.Mode()), Config: r.StaticConfig.Config, Replace: r.StaticConfig.Replace}

	add := images.Addition{
		Epoch:     res.Epoch,
		Labels:    map[string]string{LabelMode: string(static.Mode), LabelFlags: strings.Join(traefikcfg.Flags(ps), " ")},
		CreatedBy: "xtraefik: plugins-local " + pluginSummary(res),
	}
	add.Annotations = provenance(res)
	for k, v := range add.Annotations {
		add.Labels[k] = v // Docker v2 manifests carry no annotations: keep provenance in the config too
	}
	for k, v := range r.Labels {
		add.Labels[k] = v
	}
	add.Plugins = res.Plugins
	for _, p := range res.Plugins {
		add.Labels[LabelPluginPrefix+p.Alias+".module"] = p.Module
		add.Labels[LabelPluginPrefix+p.Alias+".commit"] = p.Source.Commit
		add.Labels[LabelPluginPrefix+p.Alias+".content-hash"] = p.Hash
	}

	warnings, remove, err := checkBase(ctx, res, static)
	if err != nil {
		return nil, nil, r.Errorf([]string{"staticConfig"}, "%v", err)
	}
	for _, f := range remove {
		// In file mode the baked file takes the place of one at the same path.
		if static.Mode != traefikcfg.ModeFile || f != traefikcfg.StaticFilePath {
			add.Files = append(add.Files, images.ExtraFile{Path: f, Whiteout: true})
		}
	}
	switch static.Mode {
	case traefikcfg.ModeFile:
		data, err := traefikcfg.StaticFile(static, ps)
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
	return img, append(warnings, traefikcfg.Warnings(static.Mode)...), nil
}

// checkBase refuses a static configuration mode the base would silently defeat.
// Finding a baked config file means reading the base's layers: done for local
// bases, and for registry bases only in file mode, so that a registry-to-registry
// build never pulls base layers it does not push.
//
// It returns the warnings and, with replace, the config files to remove.
func checkBase(ctx context.Context, res *Resolution, static traefikcfg.Static) (warnings, remove []string, err error) {
	for i := range res.Base.Platforms {
		cf, err := res.Base.ConfigFile(i)
		if err != nil {
			return nil, nil, err
		}
		tb := traefikcfg.Base{Env: cf.Config.Env, Entrypoint: cf.Config.Entrypoint, Cmd: cf.Config.Cmd}
		if res.Base.Local() || static.Mode == traefikcfg.ModeFile {
			paths := traefikcfg.ImageConfigFilePaths(cf.Config.WorkingDir, cf.Config.Env)
			if tb.ConfigFiles, err = res.Base.FindFiles(ctx, i, paths); err != nil {
				return nil, nil, err
			}
		}
		w, err := traefikcfg.CheckBaseImage(static, tb)
		if err != nil {
			return nil, nil, fmt.Errorf("base %s (%s): %w", res.Recipe.Base, res.Base.Platforms[i].Platform, err)
		}
		for _, s := range w {
			if !slices.Contains(warnings, s) {
				warnings = append(warnings, s)
			}
		}
		if static.Replace {
			for _, f := range tb.ConfigFiles {
				if !slices.Contains(remove, f) {
					remove = append(remove, f)
				}
			}
		}
	}
	return warnings, remove, nil
}

func pluginSummary(res *Resolution) string {
	var parts []string
	for _, p := range res.Plugins {
		parts = append(parts, fmt.Sprintf("%s=%s@%s", p.Alias, p.Module, p.Source.Commit))
	}
	return strings.Join(parts, " ")
}

// CheckReproducible resolves and assembles the image a second time, pinned by
// the first build's resolution (the git cache is reused), and fails naming what differs. It catches
// anything in the pipeline that leaks time, order or host state into the image.
func CheckReproducible(ctx context.Context, o *Options, first *Result) error {
	again := *o
	again.Lock = first.Resolution.Lock()
	again.Frozen = false
	again.Status = nil // the second build is one step to the caller (StageReproducible)
	res, err := Resolve(ctx, &again)
	if err != nil {
		return fmt.Errorf("reproducibility check: %w", err)
	}
	if p := first.PluginsImage; p != nil {
		img, _, err := AssemblePluginsImage(ctx, res)
		if err != nil {
			return fmt.Errorf("reproducibility check: %w", err)
		}
		if img.Digest != p.Digest {
			return fmt.Errorf("not reproducible: two builds gave plugins images %s and %s (plugin layers %v then %v)", p.Digest, img.Digest, p.Layers, img.Layers)
		}
	}
	if first.Image == nil {
		return nil
	}
	img, _, err := Assemble(ctx, res)
	if err != nil {
		return fmt.Errorf("reproducibility check: %w", err)
	}
	if img.Digest == first.Image.Digest {
		return nil
	}
	var diffs []string
	for wd, d := range first.Image.Layers {
		if img.Layers[wd] != d {
			diffs = append(diffs, fmt.Sprintf("plugin layer for WORKDIR %s: %s then %s", wd, d, img.Layers[wd]))
		}
	}
	for i, p := range first.Image.Platforms {
		if i < len(img.Platforms) && img.Platforms[i].Digest != p.Digest {
			diffs = append(diffs, fmt.Sprintf("%s: %s then %s", p.Platform, p.Digest, img.Platforms[i].Digest))
		}
	}
	if len(diffs) == 0 {
		diffs = append(diffs, "same platform manifests, different index")
	}
	return fmt.Errorf("not reproducible: two builds gave %s and %s (%s)", first.Image.Digest, img.Digest, strings.Join(diffs, "; "))
}
