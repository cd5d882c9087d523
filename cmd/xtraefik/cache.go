package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/xtraefik/xtraefik/build"
	"github.com/xtraefik/xtraefik/internal/status"
)

func newCache(env getenv) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cache",
		Short: "Manage the cache directory",
	}
	cmd.AddCommand(newCachePrune(env))
	return cmd
}

// defaultMaxAge is cache prune's --max-age: 30 days.
const defaultMaxAge = 30 * 24 * time.Hour

// cachePruneReport is cache prune's JSON document: shaped as every
// command's (command, ok), with the prune report's fields.
type cachePruneReport struct {
	Command string `json:"command"`
	OK      bool   `json:"ok"`
	DryRun  bool   `json:"dryRun"`
	*build.PruneReport
}

func newCachePrune(env getenv) *cobra.Command {
	var (
		dir    string
		opts   build.PruneOptions
		size   byteSize
		age    = ageFlag(defaultMaxAge)
		output outputFormat
	)
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Remove what the cache directory has not used for a while, and bound its base blobs' size",
		Long: `Removes base image blobs (layers, configs, manifests) not used for --max-age,
then the least recently used ones until the rest fit in --max-size; and git
repositories, module versions and verdicts not used for --max-age (a verdict
read counts as used). Builds may run meanwhile: a repository or module is
removed under the lock its fetches take (prune waits for a fetch in progress),
and a build that needs something removed fetches it again (an --offline build
lists it as missing). Verification workers are kept. Only what xtraefik puts in
the directory is removed: not another git repository, nor anything reached
through a symbolic link.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fail := func(err error) error { return output.fail(cmd, "cache prune", err) }
			d, err := build.CacheDir(dir, env)
			if err != nil {
				return fail(err)
			}
			opts.MaxAge, opts.MaxSize = time.Duration(age), int64(size)
			rep, err := build.PruneCache(cmd.Context(), d, opts)
			if err != nil {
				return fail(err)
			}
			if output == "json" {
				return printJSON(cmd, cachePruneReport{Command: "cache prune", OK: true, DryRun: opts.DryRun, PruneReport: rep}, nil)
			}
			writePruneReport(cmd.OutOrStdout(), rep, opts.DryRun)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "cache-dir", "", "the cache directory (default $XTRAEFIK_CACHE, else $XDG_CACHE_HOME/xtraefik)")
	f.Var(&age, "max-age", "remove what was not used for this long: days (30d) or a Go duration (36h, 90m); 0 for no age limit")
	// The help says 30 days beside the flag's own spelling.
	f.Lookup("max-age").DefValue = age.String() + " (30 days)"
	f.Var(&size, "max-size", "bound the base image blobs to this size, least recently used removed first: 10GB, 500MiB or a number of bytes; KB, MB, GB, TB are powers of 1000, K, M, G, T and KiB, MiB, GiB, TiB powers of 1024, in any case (default: no bound)")
	f.BoolVar(&opts.DryRun, "dry-run", false, "report what would be removed, remove nothing")
	f.VarP(&output, "output", "o", "what to print: text, or json")
	return cmd
}

// writePruneReport is cache prune's text: one line.
func writePruneReport(w io.Writer, rep *build.PruneReport, dry bool) {
	if rep.Missing {
		fmt.Fprintf(w, "%s: no cache here, nothing to prune\n", rep.Dir)
		return
	}
	verb := "removed"
	if dry {
		verb = "would remove"
	}
	b := rep.Blobs
	fmt.Fprintf(w, "%s: %s %s (%s; %d kept, %s), %s, %s, %s\n", rep.Dir, verb,
		plural(b.Removed, "base blob", "base blobs"), status.Bytes(b.RemovedBytes), b.Kept, status.Bytes(b.KeptBytes),
		plural(rep.GitRepositories, "git repository", "git repositories"),
		plural(rep.Modules, "module version", "module versions"),
		plural(rep.Verdicts, "verdict", "verdicts"))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// errNotSize is the whole error of a bad --max-size: pflag already names
// the flag and quotes the value.
var errNotSize = errors.New("not a size: use 10GB, 500MiB or a number of bytes")

// byteSize is a size flag: a number of bytes, optionally fractional with a
// unit. KB, MB, GB, TB are decimal (as disks are sold); KiB, MiB, GiB, TiB
// and the bare K, M, G, T (as docker reads them) binary; units in any case.
type byteSize int64

var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"k": 1 << 10, "ki": 1 << 10, "kib": 1 << 10, "kb": 1e3,
	"m": 1 << 20, "mi": 1 << 20, "mib": 1 << 20, "mb": 1e6,
	"g": 1 << 30, "gi": 1 << 30, "gib": 1 << 30, "gb": 1e9,
	"t": 1 << 40, "ti": 1 << 40, "tib": 1 << 40, "tb": 1e12,
}

func (b *byteSize) Set(v string) error {
	s := strings.TrimSpace(v)
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(s)
	}
	num, unit := s[:i], strings.ToLower(strings.TrimSpace(s[i:]))
	mult, ok := sizeUnits[unit]
	// Digits and at most one point: no sign, exponent, NaN or Inf.
	if !ok || num == "" || num == "." || strings.Count(num, ".") > 1 {
		return errNotSize
	}
	if !strings.Contains(num, ".") {
		n, err := strconv.ParseInt(num, 10, 64)
		if errors.Is(err, strconv.ErrRange) || err == nil && n > math.MaxInt64/mult {
			return fmt.Errorf("too large: at most %d bytes", int64(math.MaxInt64))
		}
		if err != nil {
			return errNotSize
		}
		*b = byteSize(n * mult)
		return nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return errNotSize
	}
	f *= float64(mult)
	if f >= math.MaxInt64 { // float64(MaxInt64) is 2^63, one past it
		return fmt.Errorf("too large: at most %d bytes", int64(math.MaxInt64))
	}
	*b = byteSize(f)
	return nil
}

// String is the number of bytes; none (no bound) prints as no default.
func (b *byteSize) String() string {
	if *b == 0 {
		return ""
	}
	return strconv.FormatInt(int64(*b), 10)
}

func (b *byteSize) Type() string { return "size" }

// ageFlag is a duration flag that also takes days (30d) and refuses a
// negative age.
type ageFlag time.Duration

func (a *ageFlag) Set(v string) error {
	s := strings.TrimSpace(v)
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseInt(days, 10, 64)
		if err != nil || n > math.MaxInt64/int64(24*time.Hour) {
			return errors.New("not an age: use 30d, 36h or 90m")
		}
		d = time.Duration(n) * 24 * time.Hour // negative refused below
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return errors.New("not an age: use 30d, 36h or 90m")
		}
	}
	if d < 0 {
		return errors.New("a negative age: use 0 for no age limit")
	}
	*a = ageFlag(d)
	return nil
}

// String is the age without Go's zero units: 720h, not 720h0m0s.
func (a *ageFlag) String() string {
	s := time.Duration(*a).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func (a *ageFlag) Type() string { return "age" }
