package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/xtraefik/xtraefik/build"
	"github.com/xtraefik/xtraefik/verify"
)

// outputFormat is --output: checked when given, so that a typo fails first.
type outputFormat string

func (f *outputFormat) String() string {
	if *f == "" {
		return "text"
	}
	return string(*f)
}

func (f *outputFormat) Set(v string) error {
	if v != "text" && v != "json" {
		return fmt.Errorf("%q: use text or json", v)
	}
	*f = outputFormat(v)
	return nil
}

func (f *outputFormat) Type() string { return "format" }

// fail prints the report of a command that failed before it ran (in JSON
// mode, still one document) and returns err.
func (f outputFormat) fail(cmd *cobra.Command, command string, err error) error {
	return f.print(cmd, &build.Report{Command: command, Error: err.Error()}, err)
}

// print writes rep, as JSON or as text, and returns err. Text goes to
// standard output for results, standard error for the rest.
func (f outputFormat) print(cmd *cobra.Command, rep *build.Report, err error) error {
	if rep == nil {
		rep = &build.Report{}
	}
	if err != nil {
		// The CLI's own words (flag names) replace the library's.
		err = withWorkspaceHint(err)
		rep.OK, rep.Error = false, err.Error()
	}
	if f == "json" {
		return printJSON(cmd, rep, err)
	}
	errOut := diagnostics(cmd)
	printText(cmd.OutOrStdout(), errOut, rep)
	return err
}

// printJSON writes v to standard output as one indented JSON document and
// returns err, or the write's failure when err is nil.
func printJSON(cmd *cobra.Command, v any, err error) error {
	enc := json.NewEncoder(cmd.OutOrStdout())
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if jerr := enc.Encode(v); jerr != nil && err == nil {
		err = fmt.Errorf("write the JSON report: %w", jerr)
	}
	return err
}

func printText(out, errOut io.Writer, rep *build.Report) {
	if len(rep.Verify) > 0 {
		w := errOut
		if rep.Command == "verify" {
			w = out
		}
		verify.WriteReport(w, rep.Verify)
	}
	if c := rep.CacheRepo; c != nil {
		if c.ReadOnly {
			fmt.Fprintf(errOut, "cache repository %s: read only (no --cache-key): entries signed by %d trusted key(s) are read, nothing is written\n", c.Repository, len(c.Trusted))
		} else {
			fmt.Fprintf(errOut, "cache repository %s: entries written are signed with key %s; entries signed by %d trusted key(s) are read\n", c.Repository, c.Signer, len(c.Trusted))
		}
	}
	if t := rep.Traefik; t != nil && (t.Version != "" || t.InterpreterSource != "") {
		fmt.Fprintln(errOut, "target:", t.Summary())
	}
	for _, w := range rep.Warnings {
		fmt.Fprintln(errOut, "warning:", w)
	}
	if rt := rep.Runtime; rt != nil {
		if rt.Skipped == "" {
			fmt.Fprintf(errOut, "runtime check (%s, static configuration from %s):\n", rt.Isolation, rt.ConfigSource)
			for _, m := range rt.Missing {
				fmt.Fprintf(errOut, "  not contained under %s: %s\n", rt.Isolation, m)
			}
		}
		fmt.Fprint(errOut, rt.Summary)
	}
	if rep.Reproducible {
		fmt.Fprintln(errOut, "reproducible: a second build gave the same digest")
	}
	if l := rep.Lock; l != nil {
		if len(l.Changes) == 0 {
			fmt.Fprintf(out, "%s is up to date\n", l.File)
		}
		for _, c := range l.Changes {
			fmt.Fprintln(out, c)
		}
		if l.Written {
			fmt.Fprintf(errOut, "wrote %s\n", l.File)
		}
	}
	for _, f := range rep.Saved {
		fmt.Fprintf(errOut, "wrote %s\n", f)
	}
	if !rep.OK {
		return
	}
	printPluginsImage(out, rep)
	img := rep.Image
	if img == nil {
		return
	}
	printPublished(out, "", "image", img)
	for _, wd := range slices.Sorted(maps.Keys(img.Layers)) {
		fmt.Fprintf(out, "plugin layer: %s (WORKDIR %s)\n", img.Layers[wd], wd)
	}
	fmt.Fprintf(out, "Enable the plugins in Traefik (static configuration mode %q):\n", rep.Mode)
	fmt.Fprint(out, "  "+strings.Join(rep.Flags, "\n  ")+"\n")
}

// printPluginsImage tells what was made of the plugins image and how the
// unmodified base mounts it and enables its plugins.
func printPluginsImage(out io.Writer, rep *build.Report) {
	img := rep.PluginsImage
	if img == nil {
		return
	}
	printPublished(out, "plugins image ", "plugins image", img)
	ref := "PLUGINS_IMAGE@" + img.Digest
	if len(img.Pushed) > 0 {
		ref = img.Pushed[0]
	}
	for _, mount := range slices.Sorted(maps.Keys(img.Layers)) {
		fmt.Fprintf(out, "plugins image layer: %s (mount at %s)\n", img.Layers[mount], mount)
		fmt.Fprintf(out, "Mount it read-only at %s of the unmodified base and enable its plugins:\n", mount)
		fmt.Fprintf(out, "  podman run --mount type=image,source=%s,destination=%s BASE \\\n    %s\n", ref, mount, strings.Join(rep.Flags, " \\\n    "))
	}
}

// printPublished writes what was made of an image and where it went, each
// line starting with prefix; noun names the image in the SBOM line. (The
// plugins image is always OCI-typed, so its layout digest never differs.)
func printPublished(out io.Writer, prefix, noun string, img *build.ImageReport) {
	fmt.Fprintf(out, "%sdigest: %s\n", prefix, img.Digest)
	if img.LayoutDigest != "" {
		fmt.Fprintf(out, "%soci layout digest: %s (Docker media types rewritten as OCI)\n", prefix, img.LayoutDigest)
	}
	for _, p := range img.Pushed {
		fmt.Fprintf(out, "%spushed: %s\n", prefix, p)
	}
	for _, sgn := range img.Signed {
		fmt.Fprintf(out, "%ssigned: %s (signature, SLSA provenance and verification attestations)\n", prefix, sgn)
	}
	if img.SBOM != "" {
		fmt.Fprintf(out, "%ssbom: %s (OCI referrer of the pushed %s)\n", prefix, img.SBOM, noun)
	}
}
