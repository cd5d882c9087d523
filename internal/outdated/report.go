package outdated

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"golang.org/x/mod/semver"

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
	// The interpreter column is there when an update was compared.
	interp := rep.Base.Interpreter != nil
	head := "NAME\tCURRENT\tLINE\tLATEST IN LINE\tNEWEST\tSTATUS"
	if interp {
		head += "\tINTERPRETER"
	}
	fmt.Fprintln(tw, head)
	for _, e := range rep.Entries() {
		row := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s", e.Name(), cell(e.Current), cell(e.Line), cell(e.LatestInLine), cell(e.Newest), e.Status)
		if interp {
			row += "\t" + cell(e.Interpreter.String())
		}
		fmt.Fprintln(tw, row)
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
		if c := e.Interpreter; c != nil && c.Changed {
			notes = append(notes, fmt.Sprintf("%s: interpreter: %s embeds yaegi %s, the current release yaegi %s: the plugins' verdicts do not carry over (rebase verifies them again); check them first with `xtraefik verify --base %s`",
				e.Name(), c.Release, c.To, c.From, retag(e.Ref, c.Release)))
		} else if c != nil && c.Error != "" {
			notes = append(notes, e.Name()+": "+c.Error)
		}
		// The table shows the newest in the current line and overall; the
		// lines in between are worth a mention too (v3.7 between v3.6 and v4.0).
		if between := linesBetween(e); len(between) > 0 {
			kind := "major"
			if e.Alias == "" {
				kind = "minor"
			}
			notes = append(notes, fmt.Sprintf("%s: also %s (the newest of each %s in between)", e.Name(), strings.Join(between, ", "), kind))
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
// --update` takes what a floating ref stands for now; otherwise the recipe
// names the new tag and `xtraefik lock` resolves it.
func howToTake(recipePath string, e *Entry) string {
	file := "the recipe"
	if recipePath != "" {
		file = filepath.Base(recipePath)
	}
	want := e.Newest
	if e.LatestInLine != "" {
		want = e.LatestInLine
	}
	if e.Alias == "" {
		write := fmt.Sprintf("write %s in %s's base, then run `xtraefik lock`", retag(e.Ref, want), file)
		if !e.Floating {
			return "base: " + write
		}
		tag := tagOf(e.Ref)
		if e.Now == "" || semver.Compare(e.Now, e.Current) <= 0 {
			return fmt.Sprintf("base: %s still stands for %s; %s", tag, e.Current, write)
		}
		s := fmt.Sprintf("base: `xtraefik lock --update-base` (or `xtraefik rebase`, which also builds) takes %s, what %s stands for now", e.Now, tag)
		if e.Newest != "" && e.Newest != e.Now {
			s += fmt.Sprintf("; for %s, write %s in %s's base", e.Newest, retag(e.Ref, e.Newest), file)
		}
		return s
	}
	set := fmt.Sprintf("set plugins.%s.ref: %s in %s, then run `xtraefik lock`", e.Alias, want, file)
	if e.Floating {
		return fmt.Sprintf("plugin %s: `xtraefik lock --update %s` takes the head of %s; for release %s, %s", e.Alias, e.Alias, e.Ref, want, set)
	}
	return fmt.Sprintf("plugin %s: %s", e.Alias, set)
}

// tagOf is the tag of a base reference.
func tagOf(ref string) string {
	if r, err := images.ParseReference(ref); err == nil && r.Tag != "" {
		return r.Tag
	}
	return ref
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
