package outdated

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/xtraefik/xtraefik/images"
)

// WriteReport writes rep as "text" (a table, notes, and how to take the newer
// versions) or "json" (the Report, one document).
func WriteReport(w io.Writer, rep *Report, format string) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	case "text", "":
		return writeText(w, rep)
	}
	return fmt.Errorf("report format %q: use text or json", format)
}

func writeText(w io.Writer, rep *Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tCURRENT\tLINE\tLATEST IN LINE\tNEWEST\tSTATUS")
	for _, e := range rep.Entries() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Name(), cell(e.Current), cell(e.Line), cell(e.LatestInLine), cell(e.Newest), e.Status)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var notes []string
	for _, e := range rep.Entries() {
		switch {
		case e.Error != "":
			notes = append(notes, e.Name()+": "+e.Error)
		case e.Note != "":
			notes = append(notes, e.Name()+": "+e.Note)
		}
		// The table shows the newest in the current line and overall; the
		// lines in between are worth a mention too (v3.7 between v3.6 and v4.0).
		if between := linesBetween(e); len(between) > 0 {
			notes = append(notes, fmt.Sprintf("%s: also newest in their line: %s", e.Name(), strings.Join(between, ", ")))
		}
	}
	if len(notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range notes {
			fmt.Fprintln(w, n)
		}
	}
	var take []string
	for _, e := range rep.Entries() {
		if e.Status == StatusOutdated {
			take = append(take, "  "+howToTake(rep.Recipe, e))
		}
	}
	if len(take) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "To take a newer version:")
		for _, t := range take {
			fmt.Fprintln(w, t)
		}
	}
	return nil
}

func cell(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// linesBetween lists the newest of each line newer than the current one,
// except the newest overall, which the table already shows.
func linesBetween(e *Entry) []string {
	var out []string
	for _, v := range e.NewestPerLine {
		if v != e.LatestInLine && v != e.Newest {
			out = append(out, v)
		}
	}
	return out
}

// howToTake says which command moves an outdated entry: `xtraefik lock
// --update` when the recipe's ref follows releases by itself, else the
// recipe names the new tag and `xtraefik lock` resolves it.
func howToTake(recipePath string, e *Entry) string {
	file := "the recipe"
	if recipePath != "" {
		file = filepath.Base(recipePath)
	}
	if e.Alias == "" {
		want := e.Newest
		if e.LatestInLine != "" {
			want = e.LatestInLine
		}
		if e.Floating && e.LatestInLine != "" {
			return fmt.Sprintf("base: `xtraefik lock --update-base` (or `xtraefik rebase`, which also builds) resolves %s again (newest %s release: %s); for a newer line, write its tag in %s's base", e.Ref, e.Line, e.LatestInLine, file)
		}
		return fmt.Sprintf("base: write %s in %s's base, then run `xtraefik lock`", retag(e.Ref, want), file)
	}
	want := e.Newest
	if e.LatestInLine != "" {
		want = e.LatestInLine
	}
	if e.Floating {
		return fmt.Sprintf("plugin %s: `xtraefik lock --update %s` takes the head of %s; for release %s, set plugins.%s.ref: %s in %s, then run `xtraefik lock`", e.Alias, e.Alias, e.Ref, want, e.Alias, want, file)
	}
	return fmt.Sprintf("plugin %s: set plugins.%s.ref: %s in %s, then run `xtraefik lock`", e.Alias, e.Alias, want, file)
}

// retag is the base reference ref with tag instead of its own.
func retag(ref, tag string) string {
	r, err := images.ParseReference(ref)
	if err != nil || r.Name == "" {
		return tag
	}
	r.Tag, r.Digest = tag, ""
	return r.String()
}
