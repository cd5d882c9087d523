package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/spf13/cobra"

	"github.com/xtraefik/xtraefik/build"
	"github.com/xtraefik/xtraefik/images"
	"github.com/xtraefik/xtraefik/recipe"
	"github.com/xtraefik/xtraefik/source"
	"github.com/xtraefik/xtraefik/verify/provision"
)

// getenv is injected so tests can run commands with their own environment.
type getenv func(string) string

func newRoot(env getenv) *cobra.Command {
	root := &cobra.Command{
		Use:           "xtraefik",
		Short:         "Build Traefik images with pinned, verified local plugins, without a daemon",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version(),
	}
	root.SetVersionTemplate("xtraefik {{.Version}}\n")
	root.AddCommand(newLock(env), newBuild(env), newRebase(env), newVerify(env), newOutdated(env), newVersion(), newWorkers())
	return root
}

// commonFlags are shared by every command that reads a recipe.
type commonFlags struct {
	file       string
	cacheDir   string
	gitMirrors []string
	regMirrors []string
	insecure   []string
	platforms  []string
	timeout    time.Duration
}

func (c *commonFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVarP(&c.file, "file", "f", "recipe.yaml", "recipe file")
	f.StringVar(&c.cacheDir, "cache-dir", "", "cache for git repositories and the verification workers xtraefik builds (default $XDG_CACHE_HOME/xtraefik)")
	f.StringArrayVar(&c.gitMirrors, "git-mirror", nil, "rewrite git URLs: ORIGINAL_PREFIX=MIRROR_PREFIX (repeatable; also $XTRAEFIK_GIT_MIRRORS, comma-separated)")
	f.StringArrayVar(&c.regMirrors, "registry-mirror", nil, "pull registry references under PREFIX from LOCATION: PREFIX=LOCATION (repeatable; also $XTRAEFIK_REGISTRY_MIRRORS)")
	f.StringArrayVar(&c.insecure, "insecure-registry", nil, "registry host that may be reached over plain HTTP (loopback always may; also $XTRAEFIK_INSECURE_REGISTRIES)")
	f.StringArrayVar(&c.platforms, "platform", nil, "narrow a multi-platform base to these platforms (os/arch[/variant], repeatable)")
	f.DurationVar(&c.timeout, "registry-timeout", images.DefaultRequestTimeout, "how long a registry request may go without progress before it is tried again, three times in all (negative: no bound)")
}

// options turns flags, environment and recipe into build options. Recipe mirrors
// come first; flags and environment are added to them.
func (c *commonFlags) options(cmd *cobra.Command, env getenv) (*build.Options, error) {
	r, err := recipe.Load(c.file)
	if err != nil {
		return nil, err
	}
	lock, err := recipe.ReadLock(recipe.LockPath(c.file))
	if err != nil {
		return nil, err
	}
	o := &build.Options{Recipe: r, Lock: lock, CacheDir: c.cacheDir, Log: cmd.ErrOrStderr(), GitAuth: source.FromEnv(env)}
	if o.CacheDir == "" {
		o.CacheDir = env(provision.CacheEnv)
	}
	if o.CacheDir == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return nil, fmt.Errorf("no cache directory: %w (use --cache-dir)", err)
		}
		o.CacheDir = filepath.Join(dir, "xtraefik")
	}
	o.GitMirrors = append(o.GitMirrors, r.Mirrors.Git...)
	for _, s := range append(c.gitMirrors, splitList(env("XTRAEFIK_GIT_MIRRORS"))...) {
		m, err := recipe.ParseGitMirror(s)
		if err != nil {
			return nil, err
		}
		o.GitMirrors = append(o.GitMirrors, m)
	}
	var regs []recipe.RegistryMirror
	regs = append(regs, r.Mirrors.Registries...)
	for _, s := range append(c.regMirrors, splitList(env("XTRAEFIK_REGISTRY_MIRRORS"))...) {
		m, err := recipe.ParseRegistryMirror(s)
		if err != nil {
			return nil, err
		}
		regs = append(regs, m)
	}
	for _, m := range regs {
		o.Images.Mirrors = append(o.Images.Mirrors, images.Mirror{Prefix: m.Prefix, Location: m.Location})
	}
	o.Images.Insecure = append(append(append(o.Images.Insecure, r.Mirrors.Insecure...), c.insecure...), splitList(env("XTRAEFIK_INSECURE_REGISTRIES"))...)
	o.Images.Keychain = authn.DefaultKeychain
	plats := c.platforms
	if len(plats) == 0 {
		plats = r.Platforms
	}
	for _, p := range plats {
		pl, err := images.ParsePlatform(p)
		if err != nil {
			return nil, fmt.Errorf("--platform: %w", err)
		}
		o.Images.Platforms = append(o.Images.Platforms, *pl)
	}
	o.Images.RequestTimeout = c.timeout
	if o.Epoch, err = build.EpochFromEnv(env("SOURCE_DATE_EPOCH")); err != nil {
		return nil, err
	}
	return o, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
