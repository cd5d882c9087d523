package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/xtraefik/xtraefik/internal/outdated"
)

// exitOutdated is the exit status of `outdated --exit-code` when something is
// outdated and everything could be checked; errors exit with 1.
const exitOutdated = 2

func newOutdated(env getenv) *cobra.Command {
	var (
		c        commonFlags
		pre      bool
		exitCode bool
	)
	cmd := &cobra.Command{
		Use:   "outdated",
		Short: "List newer plugin releases and Traefik tags than the recipe and its lock stand for",
		Long: `For each plugin, the semantic-version tags of its git repository newer than its
ref (a tag) or than the release at its locked commit (a branch or a commit); for
the base, the Traefik tags of its repository newer than its tag, or than the
locked image's version label for a floating tag (v3.6, latest), in the same
minor and beyond. Nothing is written: take a newer version with xtraefik lock.

Exit status: 0 when everything was checked (outdated or not, unless
--exit-code), 1 when something could not be checked (the report still lists the
rest), 2 with --exit-code when something is outdated.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			output := c.output.String()
			// Bots reading --output json get a document even when there is
			// no report, shaped as every command's.
			fail := func(err error) error { return c.output.fail(cmd, "outdated", err) }
			s, err := c.open(cmd, env)
			if err != nil {
				return fail(err)
			}
			rep, err := s.Outdated(cmd.Context(), pre)
			if err != nil {
				return fail(err)
			}
			if err := outdated.WriteReport(cmd.OutOrStdout(), rep, output); err != nil {
				return err
			}
			if failed := rep.With(outdated.StatusError); len(failed) > 0 {
				return fmt.Errorf("could not check %s", strings.Join(failed, ", "))
			}
			if exitCode && rep.Outdated {
				return &exitError{code: exitOutdated, err: fmt.Errorf("outdated: %s", strings.Join(rep.With(outdated.StatusOutdated), ", "))}
			}
			return nil
		},
	}
	c.register(cmd)
	cmd.Flags().BoolVar(&pre, "pre", false, "count pre-releases (v1.0.0-rc.1) as newer versions")
	cmd.Flags().BoolVar(&exitCode, "exit-code", false, fmt.Sprintf("exit with status %d when something is outdated (1 stays for errors)", exitOutdated))
	return cmd
}
