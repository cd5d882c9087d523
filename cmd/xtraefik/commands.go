package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/xtraefik/xtraefik/build"
	"github.com/xtraefik/xtraefik/images"
	"github.com/xtraefik/xtraefik/internal/publish"
	"github.com/xtraefik/xtraefik/internal/sandbox"
	"github.com/xtraefik/xtraefik/internal/sign"
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
				return c.output.fail(cmd, "lock", fmt.Errorf("plugin aliases given without --update"))
			}
			s, err := c.open(cmd, env)
			if err != nil {
				return c.output.fail(cmd, "lock", err)
			}
			rep, err := s.Lock(cmd.Context(), build.LockRequest{
				UpdateBase: updateBase || (update && len(aliases) == 0),
				UpdateAll:  update && len(aliases) == 0,
				Update:     aliases,
			})
			return c.print(cmd, rep, flagError(err))
		},
	}
	c.register(cmd)
	cmd.Flags().BoolVar(&update, "update", false, "re-resolve pinned entries too: all of them, or the plugin aliases given as arguments")
	cmd.Flags().BoolVar(&updateBase, "update-base", false, "re-resolve the base image")
	return cmd
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
	f.StringVar(&b.out.SignKey, "sign-key", "", "with --push: sign every pushed image and attach its SLSA provenance and verification record as signed attestations, in the format cosign verifies: a cosign key file (password from $COSIGN_PASSWORD) or a KMS URI")
	f.BoolVar(&b.out.Overwrite, "overwrite", false, "replace what exists at an output path (put back if a later output fails)")
	f.BoolVar(&b.reproCheck, "check-reproducible", false, "resolve and assemble a second time from the first build's pins and fail unless the digests match")
	f.BoolVar(&b.runtime.enabled, "runtime-check", false, "start the built image's own Traefik (host platform) and send a request through every plugin before writing anything")
	b.runtime.register(cmd)
	f.StringVar(&b.out.ValuesFile, "values-file", "", "write the Traefik flags as a Helm values snippet to this file")
	f.StringArrayVar(&b.out.PluginsImage, "plugins-image", nil, "also (or only, without --push/--oci-layout/--tarball) push the plugins image to this registry reference (repeatable): the plugin tree alone, to mount at <WORKDIR>/plugins-local of the unmodified base (Kubernetes image volume, podman --mount type=image); --values-file then describes it")
	f.StringVar(&b.out.PluginsLayout, "plugins-layout", "", "write the plugins image (see --plugins-image) as an OCI image layout to this directory")
	f.StringVar(&b.out.SaveRecipe, "save-recipe", "", "write the recipe this build ran (e.g. from --base/--with) to this file, and its lock beside it, once the build has succeeded")
	b.vf.register(cmd)
}

// request parses the output flags into a build request. The session checks
// every output before anything is fetched.
func (b *buildFlags) request(cmd *cobra.Command, c *commonFlags, env getenv) (build.BuildRequest, error) {
	if b.platform != "" {
		p, err := images.ParsePlatform(b.platform)
		if err != nil {
			return build.BuildRequest{}, fmt.Errorf("--tarball-platform: %w", err)
		}
		b.out.TarballPlatform = p
	}
	if cmd.Flags().Changed("tag") && b.out.OCILayout == "" && b.out.Tarball == "" && b.out.PluginsLayout == "" {
		return build.BuildRequest{}, fmt.Errorf("--tag names the image in --oci-layout, --tarball and --plugins-layout, and none is given (a push is named by its --push reference)")
	}
	if b.out.SignKey != "" {
		b.out.SignPassword = sign.Password(env("COSIGN_PASSWORD"))
	}
	req := build.BuildRequest{Outputs: b.out, Frozen: b.frozen, Verify: b.vf.options(c.status(cmd, env), c.cacheDir), CheckReproducible: b.reproCheck,
		NoVerdictCache: b.vf.noCache}
	if b.runtime.enabled {
		req.Runtime = b.runtime.options(c.status(cmd, env))
	}
	return req, nil
}

// outputError points at the flag that lets an existing output be replaced.
func outputError(err error) error {
	if errors.Is(err, publish.ErrExists) {
		return fmt.Errorf("%w (pass --overwrite to replace it)", err)
	}
	return err
}

// flagError says in flag terms what the library says in its own.
func flagError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, publish.ErrExists):
		return outputError(err)
	case errors.Is(err, build.ErrFrozen):
		return fmt.Errorf("--frozen: %w", err)
	}
	return err
}

func newBuild(env getenv) *cobra.Command {
	var (
		c commonFlags
		b buildFlags
	)
	c.quick = &quickFlags{}
	cmd := &cobra.Command{
		Use:   "build [-f recipe.yaml | --base REF --with MODULE@VERSION...]",
		Short: "Fetch, verify and bake the recipe's plugins onto its Traefik base",
		Long: `Fetch, verify and bake the recipe's plugins onto its Traefik base, and write the outputs.

Without a recipe file, --base and --with say what to build, xcaddy-style:
  xtraefik build --base traefik:v3.6 --with github.com/traefik/plugindemo@v0.2.2 --oci-layout out
  --with MODULE[@VERSION]          from the Go module proxy (VERSION: exact, or a query such as latest)
  --with MODULE[@VERSION]=PATH     from a directory (a working copy)
  --with MODULE=GIT-URL@REF        from a git repository
  --with ALIAS:...                 names the plugin (default: the module's last path element)
--save-recipe FILE writes the equivalent recipe, and its lock beside it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return b.run(cmd, &c, env, false)
		},
	}
	c.register(cmd)
	b.register(cmd)
	c.quick.register(cmd)
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
succeeded. Plugins stay at their locked commits, so the plugin layer keeps its digest.
When the new release embeds the same interpreter (Yaegi version), the verdicts come
from the verdict cache; when it embeds another, the plugins are verified again with it
first, and a FAIL changes neither the lock nor the outputs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return b.run(cmd, &c, env, true)
		},
	}
	c.register(cmd)
	b.register(cmd)
	// rebase has no --base/--with: its recipe is the file it rebased.
	cmd.Flags().Lookup("save-recipe").Usage = "write the recipe this rebase ran to this file, and its new lock beside it, once the build has succeeded"
	return cmd
}

// run is the body of build and rebase.
func (b *buildFlags) run(cmd *cobra.Command, c *commonFlags, env getenv, rebase bool) error {
	name := "build"
	if rebase {
		name = "rebase"
	}
	req, err := b.request(cmd, c, env)
	if err != nil {
		return c.output.fail(cmd, name, err)
	}
	req.Rebase = rebase
	if b.frozen && c.quick != nil && (c.quick.base != "" || len(c.quick.with) > 0) {
		return c.output.fail(cmd, name, fmt.Errorf("--frozen checks a recipe file against its lock, and --base/--with have neither: save them with --save-recipe, then build -f with --frozen"))
	}
	s, err := c.open(cmd, env)
	if err != nil {
		return c.output.fail(cmd, name, err)
	}
	res, err := s.Build(cmd.Context(), req)
	if err != nil && rebase {
		err = fmt.Errorf("%w (%s left unchanged)", flagError(err), s.LockFile)
	}
	return c.print(cmd, res.Report, flagError(err))
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
	r.isolation = build.IsolationAuto
	f.Var(&r.isolation, "runtime-isolation", "how the runtime check isolates Traefik: auto, runc, chroot or none")
	f.DurationVar(&r.timeout, "runtime-timeout", 2*time.Minute, "bound on the runtime check")
	f.StringArrayVar(&r.extraArgs, "runtime-arg", nil, "extra argument passed to Traefik in the runtime check (repeatable), e.g. to see what a Helm chart's flags do to a file- or env-mode image")
}

// options are the runtime check's options; the build fills in its mode
// and plugins.
func (r *runtimeFlags) options(log io.Writer) *build.RuntimeCheck {
	return &build.RuntimeCheck{Isolation: string(r.isolation), Timeout: r.timeout, ExtraArgs: r.extraArgs, Log: log}
}

type verifyFlags struct {
	noCache           bool
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
	case build.IsolationAuto, build.IsolationRunc, build.IsolationChroot, build.IsolationNone:
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
	f.StringVar(&v.traefik, "traefik-version", "", "check for this Traefik version (e.g. v2.11.0) instead of the one the base image holds (its Traefik binary, else its labels)")
	f.StringArrayVar(&v.workers, "yaegi-worker", nil, "verification worker (xtraefik-yaegi-<version>) to interpret with when the base's Traefik embeds another Yaegi than xtraefik (repeatable; default: next to xtraefik, then $PATH, then built into --cache-dir or $"+provision.CacheEnv+" with the Go toolchain)")
	f.StringArrayVar(&v.workers, "yaegi-v2-worker", nil, "former name of --yaegi-worker")
	_ = f.MarkDeprecated("yaegi-v2-worker", "use --yaegi-worker")
	f.Var(&v.sandbox, "sandbox", "containment of plugin code during verification: auto (the strongest the host allows; each result names what was missing) or require (refuse to run plugin code without full containment; for CI)")
	f.BoolVar(&v.noCache, "no-verdict-cache", false, "verify every plugin again, even when the cache holds an OK verdict for the same files, configuration, interpreter (and Traefik major version) and xtraefik build")
	f.BoolVar(&v.acceptApproximate, "accept-approximate-verdict", false, "when the interpreter the base's Traefik embeds is unavailable or unknown, accept the verdict of another one (marked APPROXIMATE) instead of UNVERIFIED, which stops a build")
}

// options are the verification options, logging to log; workers are built
// into cacheDir (--cache-dir; "" for the session's cache directory).
func (v *verifyFlags) options(log io.Writer, cacheDir string) verify.Options {
	return verify.Options{AllowUnsafe: v.allowUnsafe, Timeout: v.timeout, Workers: v.workers, WorkerCache: cacheDir,
		AcceptApproximate: v.acceptApproximate, TraefikVersion: v.traefik, Sandbox: v.sandbox.m, Log: log}
}

func newVerify(env getenv) *cobra.Command {
	var (
		c      commonFlags
		vf     verifyFlags
		rt     runtimeFlags
		dir    string
		expect int
		base   string
	)
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check every plugin the way Traefik will load it (or one working copy with --dir)",
		Long: `Check every plugin of the recipe the way its base's Traefik will load it, or one
plugin working copy with --dir. Nothing is written.

--base REF checks the plugins as the lock pins them against another base (a tag
or a digest, e.g. traefik:v3.7 before moving to it), with the interpreter that
base's Traefik embeds, without building anything or changing the lock.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fail := func(err error) error { return c.output.fail(cmd, "verify", err) }
			switch {
			case dir != "" && rt.enabled:
				return fail(fmt.Errorf("--runtime needs a recipe (-f): it runs the image the recipe builds"))
			case dir != "" && cmd.Flags().Changed("file"):
				return fail(fmt.Errorf("--dir and -f are two ways to name what to verify: give one"))
			case dir != "" && base != "":
				return fail(fmt.Errorf("--base is for a recipe (-f): it checks the plugins its lock pins; for --dir, name the Traefik with --traefik-version"))
			case base != "" && vf.traefik != "":
				return fail(fmt.Errorf("--base and --traefik-version both name the Traefik to check for: give one"))
			case expect != 0 && dir == "":
				return fail(fmt.Errorf("--expect-status is for --dir; a recipe says expectStatus per plugin"))
			case vf.allowUnsafe && dir == "":
				return fail(fmt.Errorf("--allow-unsafe is for --dir; a recipe says allowUnsafe"))
			case expect != 0 && (expect < 100 || expect > 599):
				return fail(fmt.Errorf("--expect-status %d is not an HTTP status", expect))
			}
			if dir != "" {
				rep, err := build.VerifyDir(cmd.Context(), dir, expect, vf.options(c.status(cmd, env), c.cacheDir))
				return c.print(cmd, rep, err)
			}
			s, err := c.open(cmd, env)
			if err != nil {
				return fail(err)
			}
			req := build.VerifyRequest{Verify: vf.options(c.status(cmd, env), c.cacheDir), NoVerdictCache: vf.noCache, Base: base}
			if rt.enabled {
				req.Runtime = rt.options(c.status(cmd, env))
			}
			rep, err := s.Verify(cmd.Context(), req)
			return c.print(cmd, rep, err)
		},
	}
	c.register(cmd)
	vf.register(cmd)
	cmd.Flags().BoolVar(&rt.enabled, "runtime", false, "also assemble the image and run its own Traefik (host platform) with every plugin")
	rt.register(cmd)
	cmd.Flags().BoolVar(&vf.allowUnsafe, "allow-unsafe", false, "with --dir: let a plugin whose manifest says useUnsafe import unsafe/syscall (recipes use allowUnsafe)")
	cmd.Flags().StringVar(&dir, "dir", "", "verify a plugin working copy (module name from its go.mod) instead of a recipe")
	cmd.Flags().StringVar(&base, "base", "", "check the plugins the lock pins against this base image (tag or digest) instead of the recipe's, with its Traefik's interpreter; the lock is not changed")
	cmd.Flags().IntVar(&expect, "expect-status", 0, "with --dir: the HTTP status the middleware must answer the verification request with (default: any answer; a server error passes with a warning), as a recipe's expectStatus")
	return cmd
}

func newWorkers() *cobra.Command {
	var out, cacheDir string
	cmd := &cobra.Command{
		Use:   "workers",
		Short: "Build the verification workers for the Traefik releases whose Yaegi xtraefik does not link (v2.9.8–v2.11.0) into a directory, e.g. next to xtraefik in a release archive; needs a Go toolchain",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Checked here rather than marked required, so that the error says what to pass.
			if out == "" {
				return fmt.Errorf("workers needs --out DIR, the directory to put them in: next to xtraefik is where it looks first (--out \"$(dirname \"$(command -v xtraefik)\")\")")
			}
			if cacheDir == "" {
				d, err := provision.DefaultCacheDir()
				if err != nil {
					return err
				}
				cacheDir = d
			}
			// A bad output directory fails before minutes of building.
			if err := os.MkdirAll(out, 0o755); err != nil {
				return fmt.Errorf("--out: %w", err)
			}
			// A cached worker is copied out only when its record is sealed
			// with this host's key (the verdict cache's).
			keyFile, err := verify.DefaultKeyFile()
			if err != nil {
				return err
			}
			key, err := verify.LoadKey(keyFile)
			if err != nil {
				return err
			}
			warn := func(msg string) { fmt.Fprintln(cmd.ErrOrStderr(), "warning: "+msg) }
			paths, err := provision.Install(cmd.Context(), cacheDir, out, key, warn)
			for _, p := range paths {
				fmt.Fprintln(cmd.OutOrStdout(), p)
			}
			return err
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "directory to put the workers in (required)")
	cmd.Flags().StringVar(&cacheDir, "cache-dir", "", "where workers are built (default $"+provision.CacheEnv+", else $XDG_CACHE_HOME/xtraefik)")
	return cmd
}
