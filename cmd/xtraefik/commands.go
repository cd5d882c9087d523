package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/xtraefik/xtraefik/build"
	"github.com/xtraefik/xtraefik/images"
	"github.com/xtraefik/xtraefik/publish"
	"github.com/xtraefik/xtraefik/recipe"
	"github.com/xtraefik/xtraefik/runcheck"
	"github.com/xtraefik/xtraefik/sandbox"
	"github.com/xtraefik/xtraefik/verify"
	"github.com/xtraefik/xtraefik/verify/provision"
)

func newLock(env getenv) *cobra.Command {
	var (
		c          commonFlags
		update     bool
		updateBase bool
	)
	cmd := &cobra.Command{
		Use:   "lock [--update [alias...]] [--update-base]",
		Short: "Resolve the base and every plugin ref, and write <recipe>.lock",
		Long: `Resolve the base to digests and every plugin ref to a commit and content hash,
and write <recipe>.lock beside the recipe, printing what moved (old -> new).

Entries already in the lock that match the recipe are kept; --update re-resolves
every plugin and the base (or only the plugins named), --update-base the base.`,
		RunE: func(cmd *cobra.Command, aliases []string) error {
			if len(aliases) > 0 && !update {
				return fmt.Errorf("plugin aliases given without --update")
			}
			o, err := c.options(cmd, env)
			if err != nil {
				return err
			}
			o.UpdateBase = updateBase || (update && len(aliases) == 0)
			o.Update = aliases
			o.UpdateAll = update && len(aliases) == 0
			_, err = lockRecipe(cmd, o, c.file)
			return err
		},
	}
	c.register(cmd)
	cmd.Flags().BoolVar(&update, "update", false, "re-resolve pinned entries too: all of them, or the plugin aliases given as arguments")
	cmd.Flags().BoolVar(&updateBase, "update-base", false, "re-resolve the base image")
	return cmd
}

// lockRecipe resolves o, prints how the result differs from the lock on disk and
// writes the new lock.
func lockRecipe(cmd *cobra.Command, o *build.Options, file string) (*build.Resolution, error) {
	res, l, err := resolveLock(cmd, o, file)
	if err != nil {
		return nil, err
	}
	if err := writeLock(cmd, file, l); err != nil {
		return nil, err
	}
	return res, nil
}

// resolveLock resolves o and prints how the result differs from the lock on
// disk, without writing it.
func resolveLock(cmd *cobra.Command, o *build.Options, file string) (*build.Resolution, *recipe.Lock, error) {
	for _, a := range o.Update {
		if _, ok := o.Recipe.Plugins[a]; !ok {
			return nil, nil, fmt.Errorf("--update %s: the recipe has no plugin with that alias (it has %s)", a, strings.Join(o.Recipe.Aliases(), ", "))
		}
	}
	res, err := build.Resolve(cmd.Context(), o)
	if err != nil {
		return nil, nil, err
	}
	for _, w := range res.Warnings {
		fmt.Fprintln(cmd.ErrOrStderr(), "warning:", w)
	}
	l := res.Lock()
	if o.Lock != nil {
		diff := recipe.Diff(o.Lock, l)
		if len(diff) == 0 {
			fmt.Fprintf(cmd.OutOrStdout(), "%s is up to date\n", recipe.LockPath(file))
		}
		for _, d := range diff {
			fmt.Fprintln(cmd.OutOrStdout(), d)
		}
	}
	return res, l, nil
}

func writeLock(cmd *cobra.Command, file string, l *recipe.Lock) error {
	path := recipe.LockPath(file)
	if err := recipe.WriteLock(path, l); err != nil {
		return err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s\n", path)
	return nil
}

// buildFlags are the flags of build and rebase.
type buildFlags struct {
	out        build.Outputs
	frozen     bool
	reproCheck bool
	runtime    runtimeFlags
	platform   string
	vf         verifyFlags
}

func (b *buildFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&b.out.OCILayout, "oci-layout", "", "write an OCI image layout to this directory")
	f.StringVar(&b.out.Tarball, "tarball", "", "write a docker load / podman load archive to this file")
	f.StringVar(&b.out.Tag, "tag", build.DefaultTag, "image name recorded in the tarball (and its tag in the OCI layout)")
	f.StringVar(&b.platform, "tarball-platform", "", "platform written to the tarball from a multi-platform image, os/arch[/variant] (default: the host's)")
	f.StringArrayVar(&b.out.Push, "push", nil, "push to this registry reference (repeatable: blobs are uploaded once, then every tag is written)")
	f.StringVar(&b.out.DigestFile, "digest-file", "", "write the image (or index) digest to this file")
	f.StringVar(&b.out.SBOMDir, "sbom-dir", "", "write the SPDX SBOM (sbom.spdx.json) to this directory; with --push it is also attached to the image as an OCI referrer")
	f.BoolVar(&b.out.Overwrite, "overwrite", false, "replace what exists at an output path (put back if a later output fails)")
	f.BoolVar(&b.reproCheck, "check-reproducible", false, "resolve and assemble a second time from the first build's pins and fail unless the digests match")
	f.BoolVar(&b.runtime.enabled, "runtime-check", false, "start the built image's own Traefik (host platform) and send a request through every plugin before writing anything")
	b.runtime.register(cmd)
	f.StringVar(&b.out.ValuesFile, "values-file", "", "write the Traefik flags as a Helm values snippet to this file")
	b.vf.register(cmd)
}

// prepare parses the output flags and checks every output before anything is
// fetched: a bad path should not wait for a build of several minutes.
func (b *buildFlags) prepare(cmd *cobra.Command, o *build.Options) error {
	if b.platform != "" {
		p, err := images.ParsePlatform(b.platform)
		if err != nil {
			return fmt.Errorf("--tarball-platform: %w", err)
		}
		b.out.TarballPlatform = p
	}
	return outputError(b.out.Validate(cmd.Context(), o.Images))
}

// outputError points at the flag that lets an existing output be replaced.
func outputError(err error) error {
	if errors.Is(err, publish.ErrExists) {
		return fmt.Errorf("%w (pass --overwrite to replace it)", err)
	}
	return err
}

// run builds and publishes: the body of build and rebase.
func (b *buildFlags) run(cmd *cobra.Command, o *build.Options) error {
	o.Frozen = b.frozen
	res, err := build.Build(cmd.Context(), o, b.vf.options(o.CacheDir))
	if res != nil && len(res.Verify) > 0 {
		verify.WriteReport(cmd.ErrOrStderr(), res.Verify, "text")
	}
	if err != nil {
		return err
	}
	for _, w := range res.Warnings {
		fmt.Fprintln(cmd.ErrOrStderr(), "warning:", w)
	}
	if b.runtime.enabled {
		if err := b.runtime.run(cmd, res, b.vf.sandbox.m); err != nil {
			return err
		}
	}
	if b.reproCheck {
		if err := build.CheckReproducible(cmd.Context(), o, res); err != nil {
			return err
		}
		fmt.Fprintln(cmd.ErrOrStderr(), "reproducible: a second build gave the same digest")
	}
	pub, err := build.Publish(cmd.Context(), res, b.out, o.Images)
	if err != nil {
		return outputError(err)
	}
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "digest: %s\n", pub.Digest)
	if pub.LayoutDigest != (v1.Hash{}) && pub.LayoutDigest != pub.Digest {
		fmt.Fprintf(w, "oci layout digest: %s (Docker media types rewritten as OCI)\n", pub.LayoutDigest)
	}
	for _, p := range pub.Pushed {
		fmt.Fprintf(w, "pushed: %s\n", p)
	}
	if pub.SBOMDigest != (v1.Hash{}) {
		fmt.Fprintf(w, "sbom: %s (OCI referrer of the pushed image)\n", pub.SBOMDigest)
	}
	for _, wd := range slices.Sorted(maps.Keys(res.Image.Layers)) {
		fmt.Fprintf(w, "plugin layer: %s (WORKDIR %s)\n", res.Image.Layers[wd], wd)
	}
	fmt.Fprintf(w, "Enable the plugins in Traefik (static configuration mode %q):\n", res.Resolution.Recipe.Mode())
	for _, f := range res.Flags {
		fmt.Fprintf(w, "  %s\n", f)
	}
	return nil
}

func newBuild(env getenv) *cobra.Command {
	var (
		c commonFlags
		b buildFlags
	)
	cmd := &cobra.Command{
		Use:   "build",
		Short: "Fetch, verify and bake the recipe's plugins onto its Traefik base",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, err := c.options(cmd, env)
			if err != nil {
				return err
			}
			if err := b.prepare(cmd, o); err != nil {
				return err
			}
			return b.run(cmd, o)
		},
	}
	c.register(cmd)
	b.register(cmd)
	cmd.Flags().BoolVar(&b.frozen, "frozen", false, "fail if anything resolves differently from the lock (moved tag, new base digest, changed content)")
	return cmd
}

func newRebase(env getenv) *cobra.Command {
	var (
		c commonFlags
		b buildFlags
	)
	cmd := &cobra.Command{
		Use:   "rebase",
		Short: "Move the image onto the base's current digest (a new Traefik patch release), keeping the plugins as locked",
		Long: `Re-resolve the recipe's base (e.g. traefik:v3.6 after a patch release), build,
and record the new digests in the lock (printing old -> new) once the build has
succeeded. Plugins stay at their locked commits, so the plugin layer keeps its digest.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, err := c.options(cmd, env)
			if err != nil {
				return err
			}
			if o.Lock == nil {
				return fmt.Errorf("rebase needs a lock: run `xtraefik lock -f %s` first", c.file)
			}
			if err := b.prepare(cmd, o); err != nil {
				return err
			}
			o.UpdateBase = true
			_, l, err := resolveLock(cmd, o, c.file)
			if err != nil {
				return err
			}
			// The lock moves only once the image on the new base is built,
			// verified and written: a failed rebase leaves it as it was.
			o.Lock, o.UpdateBase = l, false
			if err := b.run(cmd, o); err != nil {
				return fmt.Errorf("%w (%s left unchanged)", err, recipe.LockPath(c.file))
			}
			return writeLock(cmd, c.file, l)
		},
	}
	c.register(cmd)
	b.register(cmd)
	return cmd
}

// runtimeFlags configure the runtime check of build --runtime-check and verify --runtime.
type runtimeFlags struct {
	enabled   bool
	isolation isolationFlag
	timeout   time.Duration
	extraArgs []string
}

func (r *runtimeFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	r.isolation = runcheck.IsolationAuto
	f.Var(&r.isolation, "runtime-isolation", "how the runtime check isolates Traefik: auto, runc, chroot or none")
	f.DurationVar(&r.timeout, "runtime-timeout", 2*time.Minute, "bound on the runtime check")
	f.StringArrayVar(&r.extraArgs, "runtime-arg", nil, "extra argument passed to Traefik in the runtime check (repeatable), e.g. to see what a Helm chart's flags do to a file- or env-mode image")
}

// run performs the runtime check and fails unless every plugin passed; a check
// skipped for another platform is reported, not failed. --sandbox=require
// holds the runtime check to runc, the one isolation with the verifier's
// guarantees.
func (r *runtimeFlags) run(cmd *cobra.Command, res *build.Result, mode sandbox.Mode) error {
	isolation := string(r.isolation)
	if mode == sandbox.ModeRequire {
		switch isolation {
		case runcheck.IsolationAuto:
			isolation = runcheck.IsolationRunc
		case runcheck.IsolationChroot, runcheck.IsolationNone:
			return fmt.Errorf("--sandbox=require: the runtime check would run plugin code under --runtime-isolation=%s, which does not contain it; use runc", isolation)
		}
	}
	rep, err := build.RuntimeCheck(cmd.Context(), res, runcheck.Options{
		Isolation: isolation, Timeout: r.timeout, ExtraArgs: r.extraArgs, Log: cmd.ErrOrStderr(),
	})
	if err != nil {
		return err
	}
	w := cmd.ErrOrStderr()
	if rep.Skipped == "" {
		fmt.Fprintf(w, "runtime check (%s, static configuration from %s):\n", rep.Isolation, rep.ConfigSource)
		for _, m := range rep.Missing {
			fmt.Fprintf(w, "  not contained under %s: %s\n", rep.Isolation, m)
		}
	}
	fmt.Fprint(w, rep.Summary())
	if rep.Skipped == "" && !rep.OK() {
		return fmt.Errorf("runtime check failed: not every plugin passed (see above)")
	}
	return nil
}

type verifyFlags struct {
	allowUnsafe       bool
	timeout           time.Duration
	workers           []string
	acceptApproximate bool
	traefik           string
	sandbox           sandboxMode
}

// isolationFlag is --runtime-isolation: checked when given, so that a typo
// fails before anything is fetched.
type isolationFlag string

func (f *isolationFlag) String() string { return string(*f) }

func (f *isolationFlag) Set(v string) error {
	switch v {
	case runcheck.IsolationAuto, runcheck.IsolationRunc, runcheck.IsolationChroot, runcheck.IsolationNone:
		*f = isolationFlag(v)
		return nil
	}
	return fmt.Errorf("unknown isolation %q (want auto, runc, chroot or none)", v)
}

func (f *isolationFlag) Type() string { return "isolation" }

// sandboxMode is the --sandbox flag: parsed when given, so a typo fails
// before anything is fetched.
type sandboxMode struct{ m sandbox.Mode }

func (s *sandboxMode) String() string {
	if s.m == "" {
		return string(sandbox.ModeAuto)
	}
	return string(s.m)
}

func (s *sandboxMode) Set(v string) error {
	m, err := sandbox.ParseMode(v)
	s.m = m
	return err
}

func (s *sandboxMode) Type() string { return "mode" }

func (v *verifyFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.DurationVar(&v.timeout, "verify-timeout", verify.DefaultTimeout, "bound on interpreting and exercising one plugin")
	f.StringVar(&v.traefik, "traefik-version", "", "check for this Traefik version (e.g. v2.11.0) instead of the one the base image's labels name")
	f.StringArrayVar(&v.workers, "yaegi-worker", nil, "verification worker (xtraefik-yaegi-<version>) to interpret with when the base's Traefik embeds another Yaegi than xtraefik (repeatable; default: next to xtraefik, then $PATH, then built into --cache-dir or $"+provision.CacheEnv+" with the Go toolchain)")
	f.StringArrayVar(&v.workers, "yaegi-v2-worker", nil, "former name of --yaegi-worker")
	_ = f.MarkDeprecated("yaegi-v2-worker", "use --yaegi-worker")
	f.Var(&v.sandbox, "sandbox", "containment of plugin code during verification: auto (the strongest the host allows; each result names what was missing) or require (refuse to run plugin code without full containment; for CI)")
	f.BoolVar(&v.acceptApproximate, "accept-approximate-verdict", false, "when the interpreter the base's Traefik embeds is unavailable or unknown, accept the verdict of another one (marked APPROXIMATE) instead of UNVERIFIED, which stops a build")
}

// options are the verification options; workers are built into cacheDir
// (--cache-dir; "" for the default).
func (v *verifyFlags) options(cacheDir string) verify.Options {
	return verify.Options{AllowUnsafe: v.allowUnsafe, Timeout: v.timeout, Workers: v.workers, WorkerCache: cacheDir,
		AcceptApproximate: v.acceptApproximate, TraefikVersion: v.traefik, Sandbox: v.sandbox.m}
}

func newVerify(env getenv) *cobra.Command {
	var (
		c      commonFlags
		vf     verifyFlags
		rt     runtimeFlags
		dir    string
		expect int
		output string
	)
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check every plugin the way Traefik will load it (or one working copy with --dir)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "text" && output != "json" {
				return fmt.Errorf("--output %q: use text or json", output)
			}
			if dir != "" && rt.enabled {
				return fmt.Errorf("--runtime needs a recipe (-f): it runs the image the recipe builds")
			}
			var (
				rs  []verify.Result
				res *build.Resolution
				o   *build.Options
				err error
			)
			if expect != 0 && dir == "" {
				return fmt.Errorf("--expect-status is for --dir; a recipe says expectStatus per plugin")
			}
			if dir != "" {
				rs, err = verifyDir(cmd.Context(), dir, expect, vf.options(c.cacheDir))
			} else {
				if o, err = c.options(cmd, env); err != nil {
					return err
				}
				if res, err = build.Resolve(cmd.Context(), o); err == nil {
					rs, err = build.Verify(cmd.Context(), res, vf.options(o.CacheDir))
				}
			}
			if err != nil {
				return err
			}
			if err := verify.WriteReport(cmd.OutOrStdout(), rs, output); err != nil {
				return err
			}
			if failed := build.Failed(rs); len(failed) > 0 {
				return fmt.Errorf("verification failed: %s", strings.Join(failed, "; "))
			}
			if !rt.enabled {
				return nil
			}
			img, _, err := build.Assemble(cmd.Context(), o, res)
			if err != nil {
				return err
			}
			return rt.run(cmd, &build.Result{Resolution: res, Image: img}, vf.sandbox.m)
		},
	}
	c.register(cmd)
	vf.register(cmd)
	cmd.Flags().BoolVar(&rt.enabled, "runtime", false, "also assemble the image and run its own Traefik (host platform) with every plugin")
	rt.register(cmd)
	cmd.Flags().BoolVar(&vf.allowUnsafe, "allow-unsafe", false, "with --dir: let a plugin whose manifest says useUnsafe import unsafe/syscall (recipes use allowUnsafe)")
	cmd.Flags().StringVar(&dir, "dir", "", "verify a plugin working copy (module name from its go.mod) instead of a recipe")
	cmd.Flags().IntVar(&expect, "expect-status", 0, "with --dir: the HTTP status the middleware must answer the verification request with (default: any answer that is not a server error), as a recipe's expectStatus")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "report format: text or json")
	return cmd
}

func newWorkers() *cobra.Command {
	var out, cacheDir string
	cmd := &cobra.Command{
		Use:   "workers",
		Short: "Build the verification workers for the Traefik releases whose Yaegi xtraefik does not link (v2.9.8–v2.11.0) into a directory, e.g. next to xtraefik in a release archive; needs a Go toolchain",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cacheDir == "" {
				d, err := provision.DefaultCacheDir()
				if err != nil {
					return err
				}
				cacheDir = d
			}
			paths, err := provision.Install(cmd.Context(), cacheDir, out)
			for _, p := range paths {
				fmt.Fprintln(cmd.OutOrStdout(), p)
			}
			return err
		},
	}
	cmd.Flags().StringVarP(&out, "out", "o", "", "directory to put the workers in (required)")
	_ = cmd.MarkFlagRequired("out")
	cmd.Flags().StringVar(&cacheDir, "cache-dir", "", "where workers are built (default $"+provision.CacheEnv+", else $XDG_CACHE_HOME/xtraefik)")
	return cmd
}

// verifyDir verifies the working copy at dir, its answer held to expect
// (checked here, so that the error names the flag).
func verifyDir(ctx context.Context, dir string, expect int, opts verify.Options) ([]verify.Result, error) {
	if expect != 0 && (expect < 100 || expect > 599) {
		return nil, fmt.Errorf("--expect-status %d is not an HTTP status", expect)
	}
	return verify.VerifyDir(ctx, dir, expect, opts)
}
