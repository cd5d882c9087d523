package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/xtraefik/xtraefik/build"
	"github.com/xtraefik/xtraefik/images"
	"github.com/xtraefik/xtraefik/internal/status"
	"github.com/xtraefik/xtraefik/recipe"
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
	root.PersistentFlags().BoolP("quiet", "q", false, "print no progress and no warnings on standard error, only the error if there is one (results still go to standard output)")
	// A bad flag still gets its one JSON document when JSON was asked for.
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		// Say where the right flags are listed: cobra's message names only the wrong one.
		err = fmt.Errorf("%w (`%s --help` lists its flags)", err, cmd.CommandPath())
		if wantsJSON(cmd, os.Args[1:]) {
			// A subcommand's name includes its parent's: "cache prune".
			name := strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
			return outputFormat("json").fail(cmd, name, err)
		}
		return err
	})
	root.AddCommand(newLock(env), newBuild(env), newRebase(env), newVerify(env), newRun(env), newOutdated(env), newVersion(), newWorkers(), newCache(env), newImport(), newInstallPlugins(env))
	return root
}

// commonFlags are shared by every command that reads a recipe.
type commonFlags struct {
	file       string
	cacheDir   string
	gitMirrors []string
	regMirrors []string
	insecure   []string
	platforms  platformsFlag
	timeout    time.Duration
	offline    bool
	cacheRepo  string
	cacheKey   string
	cacheTrust []string
	output     outputFormat
	// quick is set on the commands that build without a recipe file.
	quick *quickFlags
	// printer is the progress display, once made (status).
	printer *status.Printer
}

// quickFlags are --base and --with: a recipe made from flags.
type quickFlags struct {
	base string
	with []string
}

func (q *quickFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&q.base, "base", "", "build without a recipe file: the Traefik base image (a registry reference, oci:DIR[:TAG] or docker-archive:FILE); plugins come from --with")
	f.StringArrayVar(&q.with, "with", nil, "with --base, a plugin (repeatable): MODULE[@VERSION] from the Go module proxy (default latest), MODULE[@VERSION]=PATH from a directory, MODULE=GIT-URL@REF from git; prefix ALIAS: to name it (default: the module's last path element)")
}

// recipe is the recipe --base and --with make, nil when neither is given.
func (q *quickFlags) recipe(cmd *cobra.Command) (*recipe.Recipe, error) {
	if q == nil || (q.base == "" && len(q.with) == 0) {
		return nil, nil
	}
	switch {
	case cmd.Flags().Changed("file"):
		return nil, fmt.Errorf("-f and --base/--with are two ways to say what to build: give a recipe file or --base with --with, not both")
	case q.base == "":
		return nil, fmt.Errorf("--with needs --base: the Traefik image to bake the plugins onto")
	case len(q.with) == 0:
		return nil, fmt.Errorf("--base needs at least one --with plugin")
	}
	r, err := recipe.FromWith(q.base, q.with)
	if err != nil {
		return nil, fmt.Errorf("--with: %w", err)
	}
	return r, nil
}

func (c *commonFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVarP(&c.file, "file", "f", "recipe.yaml", "recipe file")
	f.StringVar(&c.cacheDir, "cache-dir", "", "cache for git repositories, module downloads, base image blobs, verdicts and the verification workers xtraefik builds (default $XTRAEFIK_CACHE, else $XDG_CACHE_HOME/xtraefik)")
	f.StringArrayVar(&c.gitMirrors, "git-mirror", nil, "rewrite git URLs: ORIGINAL_PREFIX=MIRROR_PREFIX (repeatable; also $XTRAEFIK_GIT_MIRRORS, comma-separated)")
	f.StringArrayVar(&c.regMirrors, "registry-mirror", nil, "pull registry references under PREFIX from LOCATION: PREFIX=LOCATION (repeatable; also $XTRAEFIK_REGISTRY_MIRRORS)")
	f.StringArrayVar(&c.insecure, "insecure-registry", nil, "registry host that may be reached over plain HTTP (loopback always may; also $XTRAEFIK_INSECURE_REGISTRIES)")
	f.Var(&c.platforms, "platform", "narrow a multi-platform base to these platforms (os/arch[/variant], repeatable)")
	f.VarP(&c.output, "output", "o", "what to print on standard output: text, or json (one document, errors included, for CI)")
	f.StringVar(&c.cacheRepo, "cache-repo", "", "registry repository a fleet of runners shares: verified plugin trees and verdicts are stored there, signed, and read back, so a runner with an empty cache builds a locked recipe without the plugins' sources (also $"+build.EnvCacheRepo+"; needs --cache-key or --cache-trust)")
	f.StringVar(&c.cacheKey, "cache-key", "", "with --cache-repo: PEM private key (openssl genpkey -algorithm ed25519, ECDSA P-256, or a cosign key with its password in $COSIGN_PASSWORD) or KMS URI that signs what this runner writes there; without it the runner reads and never writes (also $"+build.EnvCacheKey+")")
	f.StringArrayVar(&c.cacheTrust, "cache-trust", nil, "with --cache-repo: PEM public key (openssl pkey -pubout, cosign.pub) whose entries are read; entries signed by any other key are ignored (repeatable, to rotate keys; also $"+build.EnvCacheTrust+", a path list; --cache-key's own public key is trusted)")
	f.BoolVar(&c.offline, "offline", false, "never touch the network: work from the lock and the cache directory alone (one error lists whatever is missing)")
	f.DurationVar(&c.timeout, "registry-timeout", images.DefaultRequestTimeout, "how long a registry request may go without progress before it is tried again, three times in all (negative: no bound)")
}

// open reads the recipe and its lock, merged with the flags and the
// environment (the library decides how: build.Open).
func (c *commonFlags) open(cmd *cobra.Command, env getenv) (*build.Session, error) {
	cfg, err := c.config(cmd, env)
	if err != nil {
		return nil, err
	}
	cfg.Status = c.status(cmd, env)
	s, err := build.Open(cfg)
	if err != nil {
		return nil, c.missingRecipe(cmd, cfg.RecipeFile, err)
	}
	return s, nil
}

// missingRecipe turns "open recipe.yaml: no such file" into what to do: a
// newcomer running a command in a directory without a recipe meets it first.
func (c *commonFlags) missingRecipe(cmd *cobra.Command, file string, err error) error {
	var pe *fs.PathError
	if file == "" || !errors.As(err, &pe) || !errors.Is(err, fs.ErrNotExist) || filepath.Clean(pe.Path) != filepath.Clean(file) {
		return err
	}
	other := "make one with `xtraefik import` from a Traefik configuration that downloads plugins"
	switch {
	case c.quick != nil:
		other = "say what to build with --base REF --with MODULE@VERSION"
	case cmd.Flags().Lookup("dir") != nil:
		other = "check a plugin's working copy with --dir DIR"
	}
	if cmd.Flags().Changed("file") {
		return fmt.Errorf("no recipe file %s (given with -f): check the path, or %s", file, other)
	}
	return fmt.Errorf("no recipe file %s (the default -f): name yours with -f FILE, or %s", file, other)
}

// config is the session configuration the flags say (progress aside).
func (c *commonFlags) config(cmd *cobra.Command, env getenv) (build.Config, error) {
	r, err := c.quick.recipe(cmd)
	if err != nil {
		return build.Config{}, err
	}
	cfg := build.Config{
		RecipeFile: c.file, Recipe: r, CacheDir: c.cacheDir, Env: env,
		GitMirrors: c.gitMirrors, RegistryMirrors: c.regMirrors, InsecureRegistries: c.insecure,
		Platforms: c.platforms, RegistryTimeout: c.timeout, Offline: c.offline, CacheRepo: c.cacheRepo,
		CacheKey: c.cacheKey, CacheTrust: c.cacheTrust,
	}
	if r != nil {
		cfg.RecipeFile = ""
	}
	if f := cmd.Flags().Lookup("traefik-version"); f != nil {
		cfg.TraefikVersion = f.Value.String()
	}
	return cfg, nil
}

// platformsFlag is --platform: each value checked when given, so that
// "linux" alone fails before anything is fetched, naming the flag.
type platformsFlag []string

func (p *platformsFlag) String() string { return strings.Join(*p, ",") }

func (p *platformsFlag) Set(v string) error {
	if _, err := images.ParsePlatform(v); err != nil {
		return err
	}
	*p = append(*p, v)
	return nil
}

func (p *platformsFlag) Type() string { return "os/arch[/variant]" }

// wantsJSON reports whether the command line asks for --output json: the
// flag when it was parsed before the bad one, else the raw arguments.
func wantsJSON(cmd *cobra.Command, args []string) bool {
	if f := cmd.Flags().Lookup("output"); f != nil && f.Value.String() == "json" {
		return true
	}
	for i, a := range args {
		switch {
		case a == "--output=json" || a == "-o=json" || a == "-ojson":
			return true
		case (a == "--output" || a == "-o") && i+1 < len(args) && args[i+1] == "json":
			return true
		}
	}
	return false
}
