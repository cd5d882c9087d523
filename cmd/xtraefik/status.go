package main

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/xtraefik/xtraefik/build"
	"github.com/xtraefik/xtraefik/internal/status"
)

// quiet reports whether --quiet was given: no progress, no warnings, only
// the error (and the results on standard output).
func quiet(cmd *cobra.Command) bool {
	q, _ := cmd.Flags().GetBool("quiet")
	return q
}

// diagnostics is where a command writes what is not its result: standard
// error, or nowhere with --quiet.
func diagnostics(cmd *cobra.Command) io.Writer {
	if quiet(cmd) {
		return io.Discard
	}
	return cmd.ErrOrStderr()
}

// status is the command's progress display on standard error, made once:
// live lines on a terminal, timestamped lines otherwise (CI), nothing with
// --quiet. It is also the writer for other components' lines (verification
// workers being built, the runtime check), so that they never break a
// live line.
func (c *commonFlags) status(cmd *cobra.Command, env getenv) *status.Printer {
	if c.printer == nil {
		o := status.Detect(cmd.ErrOrStderr(), env)
		if quiet(cmd) {
			o.Mode = status.Quiet
		}
		c.printer = status.New(cmd.ErrOrStderr(), o)
	}
	return c.printer
}

// print ends the progress display (its lines stay) and prints the report
// below it.
func (c *commonFlags) print(cmd *cobra.Command, rep *build.Report, err error) error {
	if c.printer != nil {
		c.printer.Close()
	}
	return c.output.print(cmd, rep, err)
}
