package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/xtraefik/xtraefik/internal/importer"
	"github.com/xtraefik/xtraefik/internal/traefikcfg"
)

// kindFlag is --kind: checked when given.
type kindFlag struct{ k traefikcfg.Kind }

func (f *kindFlag) String() string {
	if f.k == traefikcfg.KindAuto {
		return "auto"
	}
	return string(f.k)
}

func (f *kindFlag) Set(v string) error {
	k, err := traefikcfg.ParseKind(v)
	f.k = k
	return err
}

func (f *kindFlag) Type() string { return "kind" }

func newImport() *cobra.Command {
	var (
		opts   importer.Options
		kind   kindFlag
		output outputFormat
	)
	cmd := &cobra.Command{
		Use:   "import FILE",
		Short: "Make a recipe from a Traefik static configuration or Helm values that download plugins at start-up (experimental.plugins)",
		Long: `Reads a Traefik static configuration (YAML or TOML) or values for Traefik's Helm
chart (experimental.plugins, and --experimental.plugins flags in
additionalArguments), and writes:

  - a recipe (-f, default recipe.yaml) taking each plugin from the Go module
    proxy at the version Traefik downloaded, under the same alias;
  - the configuration rewritten to load them as local plugins (--config-out,
    default beside the recipe: traefik.yml -> traefik.local.yml): in a static
    configuration experimental.localPlugins, in Helm values
    --experimental.localPlugins flags in additionalArguments. Everything else
    is kept.

What cannot be carried over (a plugin without a version, settings.envs and
settings.mounts, Pilot and Hub settings) is listed on standard error and in
--output json. Existing files are kept unless --overwrite.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Input, opts.Kind = args[0], kind.k
			rep, err := importer.Run(cmd.Context(), opts)
			return printImport(cmd, output, rep, err)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&opts.Recipe, "file", "f", "recipe.yaml", "recipe file to write")
	f.StringVar(&opts.Config, "config-out", "", "where to write the rewritten configuration (default: beside the recipe, the input's name with .local before its extension)")
	f.StringVar(&opts.Base, "base", "", "the Traefik image the recipe bakes the plugins onto (default: the image Helm values name; required for a static configuration)")
	f.Var(&kind, "kind", "what FILE is: auto, static (a Traefik static configuration) or helm (values for Traefik's Helm chart)")
	f.BoolVar(&opts.Overwrite, "overwrite", false, "replace the recipe and configuration files if they exist")
	f.VarP(&output, "output", "o", "what to print on standard output: text, or json (one document, errors included)")
	return cmd
}

// printImport prints the report as JSON or text and returns err.
func printImport(cmd *cobra.Command, output outputFormat, rep *importer.Report, err error) error {
	if rep == nil {
		rep = &importer.Report{Command: "import"}
	}
	if err != nil {
		rep.OK, rep.Error = false, err.Error()
	}
	if output == "json" {
		return printJSON(cmd, rep, err)
	}
	errOut := diagnostics(cmd)
	for _, n := range rep.NotCarried {
		fmt.Fprintln(errOut, "not carried over:", n)
	}
	for _, n := range rep.Notes {
		fmt.Fprintln(errOut, "note:", n)
	}
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "wrote %s: %d plugin(s) on %s\n", rep.Recipe, len(rep.Plugins), rep.Base)
	for _, p := range rep.Plugins {
		fmt.Fprintf(out, "  %s: %s@%s\n", p.Alias, p.Module, p.Version)
	}
	what := "the static configuration"
	if rep.Kind == string(traefikcfg.KindHelm) {
		what = "the Helm values"
	}
	fmt.Fprintf(out, "wrote %s: %s, loading them as local plugins\n", rep.Config, what)
	fmt.Fprintf(out, "next: xtraefik lock -f %s && xtraefik build -f %s --push REF\n", rep.Recipe, rep.Recipe)
	return nil
}
