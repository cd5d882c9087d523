package build

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/xtraefik/xtraefik/images"
	"github.com/xtraefik/xtraefik/internal/cacherepo"
	"github.com/xtraefik/xtraefik/internal/runcheck"
	"github.com/xtraefik/xtraefik/internal/traefikcfg"
	"github.com/xtraefik/xtraefik/recipe"
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

// result is what a command's stages made: the resolution, the verdicts
// and the images, which the outputs are written from.
type result struct {
	Resolution *resolution
	// Image is the full image: the base with the plugins; nil when only
	// the plugins image was asked for.
	Image *images.Result
	// PluginsImage is the plugins image (assemblePluginsImage), when one
	// was asked for.
	PluginsImage *images.Result
	Verify       []verify.Result
	// RuntimeChecked is set once the image's own Traefik ran every plugin.
	RuntimeChecked bool
	// Started is when the build's resolution began (the provenance
	// records it).
	Started time.Time
}

// wantImages says which images a build assembles: the full image, the
// plugins image, or both.
type wantImages struct{ full, plugins bool }

// job is one command as its stages fill it: the options it runs with,
// the report it fills, the runner, and what the stages made.
type job struct {
	s   *Session
	o   *options
	rep *Report
	r   *runner
	// vo and v verify: the options completed with the session's caches,
	// and the verifier, whose workers start before the resolution.
	vo       verify.Options
	v        *verify.Verifier
	verdicts *cacherepo.Verdicts
	res      *result
	// newLock is the lock a rebase or lock resolved, written by writeLock.
	newLock *recipe.Lock
}

func (s *Session) newJob(o *options, rep *Report) *job {
	return &job{s: s, o: o, rep: rep, r: &runner{st: o.Status}, res: &result{}}
}

// close stops the verification workers.
func (j *job) close() {
	if j.v != nil {
		j.v.Close()
	}
}

// finish ends the report with the stages' outcome, and what the cache
// repository's verdicts ignored.
func (j *job) finish(err error) (*Report, error) {
	noteVerdicts(j.verdicts, j.rep)
	if err != nil {
		return j.rep.fail(err)
	}
	return j.rep.done(), nil
}

// prepare opens the command's caches (base blobs and rendered layers,
// verdicts, the cache repository's verdicts), holds the runtime check's
// isolation (rt, when not nil) to what the verifier's containment allows,
// and, with verify, starts the verification workers while the base is
// resolved and the plugins fetched.
func (j *job) prepare(vo verify.Options, noCache bool, rt *runcheck.Options, verifies bool) stage {
	return stage{name: StagePrepare, run: func(ctx context.Context) error {
		// Sealed: the record of what the base's Traefik binary says is
		// kept.
		if err := j.s.withBlobCache(j.o, j.rep, true); err != nil {
			return err
		}
		if !verifies {
			return nil
		}
		j.vo, j.verdicts = j.s.verifyOptions(ctx, vo, noCache, j.rep)
		if rt != nil {
			iso, err := runtimeIsolation(rt.Isolation, j.vo.Sandbox)
			if err != nil {
				return err
			}
			rt.Isolation = iso
		}
		v, err := verify.NewVerifier(j.vo)
		if err != nil {
			return err
		}
		j.v = v
		// With a verdict cache, most plugins of a rebuild need no worker.
		if j.vo.Cache == nil {
			v.Prepare(len(j.o.Recipe.Plugins))
		}
		return nil
	}}
}

// resolve resolves the recipe as the options say, into the report.
func (j *job) resolve() stage {
	return stage{name: StageResolve, timing: &j.rep.Timings.Resolve, run: func(ctx context.Context) error {
		j.res.Started = time.Now().UTC()
		res, err := resolve(ctx, j.r, j.o)
		if err != nil {
			return err
		}
		j.res.Resolution = res
		j.rep.setResolution(res)
		j.rep.Warnings = append(j.rep.Warnings, res.Warnings...)
		return nil
	}}
}

// relock resolves the recipe for a new lock (Session.Lock, and a rebase
// with UpdateBase) and records in the report how it differs from the lock
// on disk; writeLock writes it.
func (j *job) relock(lockCommand bool) stage {
	return stage{name: StageResolve, timing: &j.rep.Timings.Resolve, run: func(ctx context.Context) error {
		o := j.o
		for _, a := range o.Update {
			if _, ok := o.Recipe.Plugins[a]; !ok {
				return fmt.Errorf("update %s: the recipe has no plugin with that alias (it has %s)", a, strings.Join(o.Recipe.Aliases(), ", "))
			}
		}
		res, err := resolve(ctx, j.r, o)
		if err != nil {
			return err
		}
		j.rep.Warnings = append(j.rep.Warnings, res.Warnings...)
		j.newLock = res.Lock()
		j.rep.Lock = &LockReport{File: j.s.LockFile, Changes: []string{}}
		if old := j.s.locked(); old != nil {
			j.rep.Lock.Changes = recipe.Diff(old, j.newLock)
		} else {
			j.rep.Lock.Changes = append(j.rep.Lock.Changes, "new lock")
		}
		if lockCommand {
			j.rep.setResolution(res)
			return nil
		}
		// A rebase builds on the new base; the lock moves only once the
		// image is built, checked and written (writeLock).
		o.Lock, o.UpdateBase = j.newLock, false
		return nil
	}}
}

// writeLock writes the lock relock resolved; with unlessSame, a lock that
// did not move stays as it is (its time, its bytes).
func (j *job) writeLock(unlessSame bool) stage {
	return stage{name: StageLock, run: func(context.Context) error {
		if unlessSame && j.s.locked() != nil && len(j.rep.Lock.Changes) == 0 {
			return nil
		}
		return j.s.writeLock(j.newLock, j.rep)
	}}
}

// verify verifies the resolution's plugins; a plugin that is not OK stops
// the command (ErrVerificationFailed), before anything is assembled when
// images follow.
func (j *job) verify(imagesFollow bool) stage {
	return stage{name: StageVerify, timing: &j.rep.Timings.Verify, run: func(ctx context.Context) error {
		rs, err := verifyWith(ctx, j.r, j.v, j.res.Resolution)
		j.res.Verify, j.rep.Verify = rs, rs
		if err != nil {
			return err
		}
		return verdictsFailed(rs, imagesFollow)
	}}
}

// verdictsFailed is the error of verdicts that are not all OK: an
// UNVERIFIED one (no verdict from the interpreter Traefik uses) stops a
// command as a FAIL does, and says which it is. A single failing plugin is
// the StageError's plugin.
func verdictsFailed(rs []verify.Result, imagesFollow bool) error {
	var failed []string
	alias := ""
	for _, r := range rs {
		switch {
		case r.OK:
			continue
		case r.Status == verify.StatusUnverified:
			failed = append(failed, fmt.Sprintf("%s (%s): UNVERIFIED: %s", r.Alias, r.Module, r.Reason))
		default:
			failed = append(failed, fmt.Sprintf("%s (%s): %s", r.Alias, r.Module, r.Reason))
		}
		alias = r.Alias
	}
	if len(failed) == 0 {
		return nil
	}
	if len(failed) > 1 {
		alias = ""
	}
	err := fmt.Errorf("%w: %s", ErrVerificationFailed, strings.Join(failed, "; "))
	if imagesFollow {
		err = fmt.Errorf("%w, no image was built: %s", ErrVerificationFailed, strings.Join(failed, "; "))
	}
	return &StageError{Stage: StageVerify, Plugin: alias, Err: err}
}

// shareTrees gives the cache repository the verified plugin trees.
func (j *job) shareTrees() stage {
	return stage{name: StageVerify, run: func(ctx context.Context) error {
		shareTrees(ctx, j.o, j.res.Resolution, j.rep)
		return nil
	}}
}

// assemble assembles the images want names, telling the Status each.
func (j *job) assemble(want wantImages) stage {
	return stage{name: StageAssemble, timing: &j.rep.Timings.Assemble, run: func(ctx context.Context) error {
		res := j.res.Resolution
		if want.full {
			img, err := j.assembleFull(ctx, true)
			if err != nil {
				return err
			}
			j.res.Image, j.rep.Image = img, imageReport(img)
		}
		if want.plugins {
			const subject = "plugins image"
			err := j.r.step(ctx, StageAssemble, subject, func(ctx context.Context) (string, error) {
				img, w, err := assemblePluginsImage(ctx, res)
				if err != nil {
					return "", err
				}
				j.res.PluginsImage, j.rep.PluginsImage = img, imageReport(img)
				// The full image has given the same warnings already.
				for _, s := range w {
					if !slices.Contains(j.rep.Warnings, s) {
						j.rep.Warnings = append(j.rep.Warnings, s)
					}
				}
				return img.Digest.String(), nil
			})
			if err != nil {
				return err
			}
		}
		j.rep.Flags = traefikcfg.Flags(res.Plugins)
		return nil
	}}
}

// assembleFull assembles the full image, telling the Status, adding its
// warnings to the report's with warn.
func (j *job) assembleFull(ctx context.Context, warn bool) (*images.Result, error) {
	var img *images.Result
	err := j.r.step(ctx, StageAssemble, "", func(ctx context.Context) (string, error) {
		var w []string
		var err error
		if img, w, err = assemble(ctx, j.res.Resolution); err != nil {
			return "", err
		}
		if warn {
			j.rep.Warnings = append(j.rep.Warnings, w...)
		}
		return img.Digest.String(), nil
	})
	return img, err
}

// runtime runs the image's own Traefik (rt nil: no stage), assembling the
// full image first when the command made none (a verify, a plugins image
// alone: its tree, on the base, is what the full image holds, so the
// base's Traefik runs that). It fails unless every plugin passed (a check
// skipped for another platform is reported, not failed).
func (j *job) runtime(rt *runcheck.Options) stage {
	if rt == nil {
		return stage{}
	}
	return stage{name: StageRuntime, timing: &j.rep.Timings.Runtime, run: func(ctx context.Context) error {
		img := j.res.Image
		if img == nil {
			var err error
			if img, err = j.assembleFull(ctx, false); err != nil {
				return err
			}
		}
		return j.r.step(ctx, StageRuntime, "", func(ctx context.Context) (string, error) {
			rep, err := runtimeCheck(ctx, &result{Resolution: j.res.Resolution, Image: img}, *rt)
			if err != nil {
				return "", err
			}
			j.rep.setRuntime(rep)
			switch {
			case rep.Skipped != "":
				return "skipped: " + rep.Skipped, nil
			case !rep.OK():
				return "", errors.New("runtime check failed: not every plugin passed")
			}
			j.res.RuntimeChecked = true
			return "every plugin passed", nil
		})
	}}
}

// reproducible builds a second time from the first build's pins (ok
// false: no stage).
func (j *job) reproducible(ok bool) stage {
	if !ok {
		return stage{}
	}
	return stage{name: StageReproducible, run: func(ctx context.Context) error {
		return j.r.step(ctx, StageReproducible, "", func(ctx context.Context) (string, error) {
			if err := checkReproducible(ctx, j.o, j.res); err != nil {
				return "", err
			}
			j.rep.Reproducible = true
			return "a second build gave the same digest", nil
		})
	}}
}

// publish writes every output, all or nothing.
func (j *job) publish(out Outputs) stage {
	return stage{name: StagePublish, timing: &j.rep.Timings.Publish, run: func(ctx context.Context) error {
		pub, err := publishResult(ctx, j.res, out, j.o.Images, j.r)
		if err != nil {
			return err
		}
		j.rep.setPublished(pub)
		if f := out.SaveRecipe; f != "" {
			j.rep.Saved = []string{f, recipe.LockPath(f)}
		}
		return nil
	}}
}

// verifyWith verifies the resolution's plugins with v, for the Traefik the
// resolution names, telling r each plugin's verdict.
func verifyWith(ctx context.Context, r *runner, v *verify.Verifier, res *resolution) ([]verify.Result, error) {
	// The recipe alone decides the trust given to plugin code: the image's
	// flags grant what verification allowed.
	v.Target(res.Traefik.Version, res.Traefik.Yaegi, res.Recipe.AllowUnsafe)
	v.Interpreter(res.Traefik.Yaegi, res.Traefik.Wazero, res.Traefik.HTTPWasm, res.Traefik.InterpreterSource)
	// The plugins are verified side by side: each line ends with its
	// verdict, as soon as it is known.
	for _, p := range res.Plugins {
		r.Start(StageVerify, p.Alias)
	}
	told := make([]atomic.Bool, len(res.Plugins))
	v.OnVerdict(func(i int, vr verify.Result) {
		told[i].Store(true)
		r.Done(StageVerify, res.Plugins[i].Alias, verdict(vr), nil)
	})
	// verify's errors name the verification already.
	rs, err := v.Verify(ctx, res.Plugins)
	for i, p := range res.Plugins {
		if told[i].Load() {
			continue
		}
		if err != nil {
			r.Done(StageVerify, p.Alias, "", err)
		} else {
			r.Done(StageVerify, p.Alias, "no verdict", nil)
		}
	}
	return rs, err
}

// assemble appends the plugins, and what the static configuration mode bakes, to
// every platform of the base.
func assemble(ctx context.Context, res *resolution) (*images.Result, []string, error) {
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
func checkBase(ctx context.Context, res *resolution, static traefikcfg.Static) (warnings, remove []string, err error) {
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

func pluginSummary(res *resolution) string {
	var parts []string
	for _, p := range res.Plugins {
		parts = append(parts, fmt.Sprintf("%s=%s@%s", p.Alias, p.Module, p.Source.Commit))
	}
	return strings.Join(parts, " ")
}

// checkReproducible resolves and assembles the image a second time, pinned by
// the first build's resolution (the git cache is reused), and fails naming what differs. It catches
// anything in the pipeline that leaks time, order or host state into the image.
func checkReproducible(ctx context.Context, o *options, first *result) error {
	again := *o
	again.Lock = first.Resolution.Lock()
	again.Frozen = false
	// The second build is one step to the caller (StageReproducible): a
	// nil runner tells nobody of its own.
	res, err := resolve(ctx, nil, &again)
	if err != nil {
		return fmt.Errorf("reproducibility check: %w", err)
	}
	if p := first.PluginsImage; p != nil {
		img, _, err := assemblePluginsImage(ctx, res)
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
	img, _, err := assemble(ctx, res)
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
