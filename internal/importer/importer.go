// Package importer turns a Traefik setup that downloads plugins at start-up
// (experimental.plugins in a static configuration or in Helm values) into a
// recipe that bakes the same plugins, at the same versions, into an image,
// and the configuration rewritten to load them as local plugins. It is
// `xtraefik import`; traefikcfg reads and rewrites the configuration, recipe
// renders the recipe.
package importer

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/xtraefik/xtraefik/internal/traefikcfg"
	"github.com/xtraefik/xtraefik/internal/yamlcheck"
	"github.com/xtraefik/xtraefik/recipe"
)

// Options say what to import and where to write.
type Options struct {
	// Input is the static configuration or Helm values file.
	Input string
	// Kind is traefikcfg.KindAuto unless the user says.
	Kind traefikcfg.Kind
	// Base is the recipe's Traefik image; "" takes the one Helm values
	// name, and is an error for a static configuration.
	Base string
	// Recipe is the recipe file to write ("recipe.yaml" when empty).
	Recipe string
	// Config is the rewritten configuration's file; "" puts it beside the
	// recipe, named after the input with ".local" before its extension
	// (traefik.yml -> traefik.local.yml).
	Config string
	// Overwrite allows replacing existing output files.
	Overwrite bool
}

// Report is what Run did, as `xtraefik import --output json` prints it.
type Report struct {
	Command string `json:"command"`
	OK      bool   `json:"ok"`
	Error   string `json:"error,omitempty"`
	Input   string `json:"input,omitempty"`
	// Kind is "static" or "helm"; Format "yaml" or "toml".
	Kind   string `json:"kind,omitempty"`
	Format string `json:"format,omitempty"`
	Base   string `json:"base,omitempty"`
	// Recipe and Config are the files written.
	Recipe  string                    `json:"recipe,omitempty"`
	Config  string                    `json:"config,omitempty"`
	Plugins []traefikcfg.RemotePlugin `json:"plugins,omitempty"`
	// NotCarried says what could not be carried over, one sentence each.
	NotCarried []string `json:"notCarried,omitempty"`
	Notes      []string `json:"notes,omitempty"`
}

// Run imports opts.Input; it writes nothing unless every output can be
// written.
func Run(ctx context.Context, opts Options) (*Report, error) {
	rep := &Report{Command: "import", Input: opts.Input}
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	data, err := yamlcheck.ReadFile(opts.Input, traefikcfg.ImportLimits())
	if err != nil {
		return rep, fmt.Errorf("read the configuration: %w", err)
	}
	im, err := traefikcfg.Import(opts.Input, data, opts.Kind)
	if err != nil {
		return rep, err
	}
	rep.Kind, rep.Format, rep.Plugins = string(im.Kind), im.Format, im.Plugins
	rep.NotCarried, rep.Notes = im.NotCarried, im.Notes

	base := opts.Base
	if base == "" {
		base = im.Image
	}
	if base == "" {
		what := "a static configuration does not name one"
		if im.Kind == traefikcfg.KindHelm {
			what = "the values set no image.tag"
		}
		return rep, fmt.Errorf("--base is required: the Traefik image to bake the plugins onto (e.g. docker.io/library/traefik:v3.6); %s", what)
	}
	rep.Base = base

	recipeFile := opts.Recipe
	if recipeFile == "" {
		recipeFile = "recipe.yaml"
	}
	configFile := opts.Config
	if configFile == "" {
		configFile = filepath.Join(filepath.Dir(recipeFile), localName(opts.Input))
	}
	if same(configFile, opts.Input) || same(recipeFile, opts.Input) {
		return rep, fmt.Errorf("the output would replace the input %s: choose another file", opts.Input)
	}
	if same(configFile, recipeFile) {
		return rep, fmt.Errorf("the recipe and the rewritten configuration are both %s: choose another file for one", recipeFile)
	}

	r := &recipe.Recipe{Base: base, Plugins: map[string]*recipe.Plugin{}}
	for _, p := range im.Plugins {
		r.Plugins[p.Alias] = &recipe.Plugin{Module: p.Module, Version: p.Version}
		r.AllowUnsafe = r.AllowUnsafe || p.UseUnsafe
	}
	recipeData, err := r.Marshal()
	if err != nil {
		return rep, err
	}
	header := "# Made by xtraefik import from " + filepath.Base(opts.Input) + ": each plugin Traefik downloaded\n" +
		"# (experimental.plugins) is taken from the Go module proxy at the same version.\n" +
		"# Pin it with `xtraefik lock`, then build it.\n"
	recipeData = append([]byte(header), recipeData...)
	// The recipe is read back as a recipe file is: what is written builds.
	if _, err := recipe.Parse(recipeFile, recipeData); err != nil {
		return rep, fmt.Errorf("the recipe made from %s is not valid: %w", opts.Input, err)
	}

	if !opts.Overwrite {
		for _, f := range []string{recipeFile, configFile} {
			if _, err := os.Lstat(f); err == nil {
				return rep, fmt.Errorf("%s exists: pass --overwrite to replace it", f)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return rep, err
			}
		}
	}
	for _, f := range []string{recipeFile, configFile} {
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			return rep, fmt.Errorf("write %s: %w", f, err)
		}
	}
	if err := write(recipeFile, recipeData, opts.Overwrite); err != nil {
		return rep, err
	}
	rep.Recipe = recipeFile
	if err := write(configFile, im.Config, opts.Overwrite); err != nil {
		return rep, err
	}
	rep.Config = configFile
	rep.OK = true
	return rep, nil
}

// localName is the rewritten configuration's default name: the input's,
// with ".local" before its extension.
func localName(input string) string {
	b := filepath.Base(input)
	ext := filepath.Ext(b)
	return strings.TrimSuffix(b, ext) + ".local" + ext
}

func same(a, b string) bool {
	aa, err1 := filepath.Abs(a)
	bb, err2 := filepath.Abs(b)
	if err1 != nil || err2 != nil {
		return filepath.Clean(a) == filepath.Clean(b)
	}
	return aa == bb
}

// write writes data to file; without overwrite it refuses a file that
// appeared since the check.
func write(file string, data []byte, overwrite bool) error {
	flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	if !overwrite {
		flags = os.O_WRONLY | os.O_CREATE | os.O_EXCL
	}
	f, err := os.OpenFile(file, flags, 0o644)
	if err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", file, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	return nil
}
