package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/xtraefik/xtraefik/build"
)

func newCache(env getenv) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cache",
		Short: "Manage the cache directory",
	}
	cmd.AddCommand(newCachePrune(env))
	return cmd
}

func newCachePrune(env getenv) *cobra.Command {
	var (
		dir    string
		opts   build.PruneOptions
		size   byteSize
		output outputFormat
	)
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Remove what the cache directory has not used for a while, and bound its base blobs' size",
		Long: `Removes base image blobs (layers, configs, manifests) not used for --max-age,
then the least recently used ones until the rest fit in --max-size; and git
repositories, module versions and verdicts not used for --max-age. Builds may
run meanwhile: a repository or module is removed under the lock its fetches
take, and a build that needs something removed fetches it again (an --offline
build lists it as missing). Verification workers are kept.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := build.CacheDir(dir, env)
			if err != nil {
				return err
			}
			opts.MaxSize = int64(size)
			rep, err := build.PruneCache(cmd.Context(), d, opts)
			if err != nil {
				return err
			}
			if output.String() == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			verb := "removed"
			if opts.DryRun {
				verb = "would remove"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %s %d base blob(s) (%s, %d kept: %s), %d git repositories, %d module versions, %d verdicts\n",
				rep.Dir, verb, rep.Blobs.Removed, byteSize(rep.Blobs.RemovedBytes), rep.Blobs.Kept, byteSize(rep.Blobs.KeptBytes),
				rep.GitRepositories, rep.Modules, rep.Verdicts)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "cache-dir", "", "the cache directory (default $XTRAEFIK_CACHE, else $XDG_CACHE_HOME/xtraefik)")
	f.DurationVar(&opts.MaxAge, "max-age", 30*24*time.Hour, "remove what was not used for this long (0: no age limit)")
	f.Var(&size, "max-size", "bound the base image blobs to this size, least recently used removed first (10GB, 500MiB; default: no bound)")
	f.BoolVar(&opts.DryRun, "dry-run", false, "report what would be removed, remove nothing")
	f.VarP(&output, "output", "o", "what to print: text, or json")
	return cmd
}

// byteSize is a size flag: 10GB, 500MiB, 1024.
type byteSize int64

var sizeUnits = []struct {
	suffix string
	n      int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1},
}

func (b *byteSize) Set(v string) error {
	s := strings.TrimSpace(v)
	mult := int64(1)
	for _, u := range sizeUnits {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = strings.TrimSpace(rest), u.n
			break
		}
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("%q is not a size (10GB, 500MiB, 1024)", v)
	}
	*b = byteSize(n * float64(mult))
	return nil
}

func (b byteSize) String() string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%d B", int64(b))
}

func (b *byteSize) Type() string { return "size" }
