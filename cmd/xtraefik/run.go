package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/xtraefik/xtraefik/build"
	"github.com/xtraefik/xtraefik/internal/runcheck"
)

func newRun(env getenv) *cobra.Command {
	var (
		c           commonFlags
		vf          verifyFlags
		rt          runtimeFlags
		dynamic     string
		entryPoints []string
		watch       bool
		interval    time.Duration
	)
	c.quick = &quickFlags{}
	cmd := &cobra.Command{
		Use:   "run [-f recipe.yaml | --base REF --with MODULE=PATH...] [--dynamic FILE|DIR] [--entrypoint NAME=[HOST]:PORT...] [--watch]",
		Short: "Build the image and run its own Traefik locally with your dynamic configuration, rebuilding on changes with --watch",
		Long: `Build the image (nothing is written) and run its own Traefik on this machine, as the
runtime check does (runc, else chroot, else none; --runtime-isolation), with the
plugins enabled, your dynamic configuration (--dynamic, a file or a directory for
Traefik's file provider) and your entry points (--entrypoint web=:8080, the default;
an address without a host is the host's loopback). Traefik shares the host's
network, so its entry points are reached there and the services of your dynamic
configuration can be local servers. Traefik's log goes to standard error until
Ctrl-C or SIGTERM, which stop it.

With --watch, a change to a directory plugin (--with MODULE=PATH, or path: in the
recipe), the recipe, its lock or the dynamic configuration rebuilds the image and
restarts Traefik; a rebuild that fails leaves the running Traefik as it was.

  xtraefik run --base traefik:v3.6 --with example.com/my-plugin=. --dynamic dynamic.yml --watch`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fail := func(err error) error { return c.output.fail(cmd, "run", err) }
			var eps []build.EntryPoint
			for _, s := range entryPoints {
				ep, err := runcheck.ParseEntryPoint(s)
				if err != nil {
					return fail(fmt.Errorf("--entrypoint: %w", err))
				}
				eps = append(eps, build.EntryPoint{Name: ep.Name, Address: ep.Address})
			}
			cfg, err := c.config(cmd, env)
			if err != nil {
				return fail(err)
			}
			// --quiet drops the build's progress; what run says of the
			// server it runs (and Traefik's log) is what run is for.
			progress := diagnostics(cmd)
			cfg.Log = progress
			req := build.RunRequest{Verify: vf.options(progress, c.cacheDir), Watch: watch, Interval: interval, Log: cmd.ErrOrStderr(),
				Serve: build.ServeOptions{Dynamic: dynamic, EntryPoints: eps, ExtraArgs: rt.extraArgs,
					Isolation: string(rt.isolation), Timeout: rt.timeout, Log: cmd.ErrOrStderr()}}
			if err := build.Run(cmd.Context(), cfg, req); err != nil {
				return fail(c.missingRecipe(cmd, cfg.RecipeFile, err))
			}
			return nil
		},
	}
	c.register(cmd)
	c.quick.register(cmd)
	vf.register(cmd)
	rt.register(cmd)
	f := cmd.Flags()
	// The runtime check's flags, as run uses them.
	f.Lookup("runtime-timeout").Usage = "bound on Traefik's start, until every entry point accepts connections"
	f.Lookup("runtime-arg").Usage = "extra argument passed to Traefik (repeatable), e.g. --runtime-arg=--log.level=DEBUG"
	f.Lookup("runtime-isolation").Usage = "how Traefik is isolated: auto, runc, chroot or none (Traefik shares the host's network under each)"
	f.StringVar(&dynamic, "dynamic", "", "your dynamic configuration: a file, or a directory, for Traefik's file provider (routers using the plugins as middlewares)")
	f.StringArrayVar(&entryPoints, "entrypoint", nil, "an entry point, NAME=[HOST]:PORT (repeatable; default web=:8080; no HOST: the host's loopback)")
	f.BoolVar(&watch, "watch", false, "rebuild and restart Traefik when a directory plugin, the recipe, its lock or the dynamic configuration changes")
	f.DurationVar(&interval, "watch-interval", 300*time.Millisecond, "how often --watch looks for changes")
	return cmd
}
