package verify

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// MarshalJSON adds the duration in milliseconds, to the microsecond (a
// fast plugin takes less than one), the one unit of durations in reports.
func (r Result) MarshalJSON() ([]byte, error) {
	type plain Result
	return json.Marshal(struct {
		plain
		DurationMS float64 `json:"durationMs"`
	}{plain(r), float64(r.Duration.Microseconds()) / 1000})
}

// WriteReport writes results as a table followed by the reasons, details
// and notes. The JSON document of a verification is build.Report's (its
// verify list holds these Results).
func WriteReport(w io.Writer, results []Result) error {
	return writeText(w, results)
}

func writeText(w io.Writer, results []Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ALIAS\tMODULE\tREVISION\tRUNTIME\tINTERPRETER\tCONTAINED\tRESULT\tTIME\tREASON")
	count := map[string]int{}
	warned := 0
	for _, r := range results {
		verdict := status(r)
		count[strings.TrimSuffix(verdict, approximateMark)]++
		if r.OK && len(r.Warnings) > 0 {
			warned++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", dash(r.Alias), dash(r.Module), dash(revision(r)),
			dash(r.Runtime), dash(r.Interpreter), containmentLevel(r), verdict, roundDuration(r.Duration), dash(rowReason(r)))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	var b strings.Builder
	for _, r := range results {
		partial := r.Containment != nil && !r.Containment.Full()
		if r.OK && len(r.Notes) == 0 && len(r.Warnings) == 0 && !partial {
			continue
		}
		fmt.Fprintf(&b, "\n%s (%s): %s\n", dash(r.Alias), dash(r.Module), status(r))
		if r.Reason != "" || !r.OK {
			fmt.Fprintf(&b, "  reason: %s\n", reason(r))
		}
		if r.Detail != "" {
			fmt.Fprintf(&b, "  detail:\n%s\n", indent(r.Detail, "    "))
		}
		for _, w := range r.Warnings {
			fmt.Fprintf(&b, "  warning: %s\n", w)
		}
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "  note: %s\n", n)
		}
		if partial {
			fmt.Fprintf(&b, "  containment: %s\n", r.Containment)
		}
	}
	fmt.Fprintf(&b, "\n%d plugin(s): %d OK", len(results), count[StatusOK])
	if warned > 0 {
		fmt.Fprintf(&b, " (%d with a warning)", warned)
	}
	fmt.Fprintf(&b, ", %d FAIL", count[StatusFail])
	if n := count[StatusUnverified]; n > 0 {
		fmt.Fprintf(&b, ", %d UNVERIFIED (no verdict: not checked with the interpreter Traefik uses)", n)
	}
	b.WriteString("\n")
	sources := map[string]bool{}
	for _, r := range results {
		sources[r.InterpreterSource] = true
	}
	if len(sources) == 1 {
		for src := range sources {
			if src != "" {
				fmt.Fprintf(&b, "interpreter source: %s (%s)\n", src, sourceText[src])
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

const approximateMark = " (APPROXIMATE)"

// sourceText says what each interpreter source is.
var sourceText = map[string]string{
	"binary": "the Go build info of the base's own Traefik binary",
	"go.mod": "Traefik's go.mod for that exact version, from the Go module proxy",
	"table":  "xtraefik's table of Traefik releases",
}

// status is r's status as reports show it: an accepted approximate verdict
// says so in the table too.
func status(r Result) string {
	s := r.Status
	if s == "" {
		s = StatusFail
		if r.OK {
			s = StatusOK
		}
	}
	if r.Approximate {
		s += approximateMark
	}
	return s
}

// reason is why r is not OK, never empty for a FAIL or an UNVERIFIED.
func reason(r Result) string {
	if r.Reason == "" && !r.OK {
		return "none given (the verifier stopped without one)"
	}
	return r.Reason
}

// reasonWidth bounds the REASON column; the full reason follows the table.
const reasonWidth = 72

// rowReason is the table's REASON cell: the reason of a result that is not
// OK, on one line and cut to reasonWidth; empty for an OK one.
func rowReason(r Result) string {
	if r.OK {
		return ""
	}
	s := strings.Join(strings.Fields(reason(r)), " ")
	if rs := []rune(s); len(rs) > reasonWidth {
		s = string(rs[:reasonWidth-1]) + "…"
	}
	return s
}

// containmentLevel is the sandbox level plugin code ran under, "-" when
// none ran.
func containmentLevel(r Result) string {
	if r.Containment == nil {
		return "-"
	}
	return r.Containment.Level
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// revision is the commit (12 characters) or the module version.
func revision(r Result) string {
	if r.Commit == "" {
		return r.Version
	}
	return shortCommit(r.Commit)
}

func shortCommit(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return c
}

func roundDuration(d time.Duration) string {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	default:
		return d.Round(time.Millisecond).String()
	}
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n")
}
