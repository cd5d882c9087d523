package status

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// clock is a clock the test moves by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// ev is one call on a Printer; at moves the clock first.
type ev struct {
	at      time.Duration
	kind    string // start, progress, done, write, close
	stage   string
	subject string
	done    int64
	total   int64
	outcome string
	err     error
	text    string
}

func play(p *Printer, c *clock, evs []ev) {
	for _, e := range evs {
		c.t = c.t.Add(e.at)
		switch e.kind {
		case "start":
			p.Start(e.stage, e.subject)
		case "progress":
			p.Progress(e.stage, e.subject, e.done, e.total)
		case "done":
			p.Done(e.stage, e.subject, e.outcome, e.err)
		case "write":
			fmt.Fprint(p, e.text)
		case "close":
			p.Close()
		}
	}
}

const mib = 1 << 20

// build is a build's events: resolve, fetch and verify a plugin, a warning
// from another component, assemble, and a push of 8 MiB in 1 MiB steps one
// second apart.
func buildEvents() []ev {
	evs := []ev{
		{kind: "start", stage: "resolve", subject: "traefik:v3.6"},
		{at: time.Second, kind: "done", stage: "resolve", subject: "traefik:v3.6", outcome: "sha256:abc (3 platforms)"},
		{kind: "start", stage: "fetch", subject: "demo"},
		{kind: "write", text: "building the verification worker\n"},
		{at: time.Second, kind: "done", stage: "fetch", subject: "demo", outcome: "v0.2.2"},
		{kind: "start", stage: "verify", subject: "demo"},
		{at: time.Second, kind: "done", stage: "verify", subject: "demo", outcome: "OK"},
		{kind: "start", stage: "push", subject: "reg/x"},
	}
	for i := int64(1); i <= 8; i++ {
		evs = append(evs, ev{at: time.Second, kind: "progress", stage: "push", subject: "reg/x", done: i * mib, total: 8 * mib})
	}
	return append(evs, ev{kind: "done", stage: "push", subject: "reg/x", outcome: "sha256:def"}, ev{kind: "close"})
}

// TestPlain: one timestamped line per start and end, lines written in
// between stamped too, and push progress only at quarters (or after Every).
func TestPlain(t *testing.T) {
	c := &clock{time.Date(2026, 11, 26, 17, 0, 0, 0, time.FixedZone("CET", 3600))}
	var out bytes.Buffer
	p := New(&out, Options{Mode: Plain, Now: c.now})
	play(p, c, buildEvents())
	want := `2026-11-26T16:00:00Z resolve traefik:v3.6 ...
2026-11-26T16:00:01Z resolve traefik:v3.6: sha256:abc (3 platforms)
2026-11-26T16:00:01Z fetch demo ...
2026-11-26T16:00:01Z building the verification worker
2026-11-26T16:00:02Z fetch demo: v0.2.2
2026-11-26T16:00:02Z verify demo ...
2026-11-26T16:00:03Z verify demo: OK
2026-11-26T16:00:03Z push reg/x ...
2026-11-26T16:00:05Z push reg/x: 2.0 MiB / 8.0 MiB (25%)
2026-11-26T16:00:07Z push reg/x: 4.0 MiB / 8.0 MiB (50%)
2026-11-26T16:00:09Z push reg/x: 6.0 MiB / 8.0 MiB (75%)
2026-11-26T16:00:11Z push reg/x: sha256:def
`
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
}

// TestPlainProgress: without a total, or between quarters, a progress line
// comes at most every Every; an error ends the step with its words.
func TestPlainProgress(t *testing.T) {
	c := &clock{time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	var out bytes.Buffer
	p := New(&out, Options{Mode: Plain, Now: c.now, Every: 5 * time.Second})
	evs := []ev{{kind: "start", stage: "push", subject: "r"}}
	for i := int64(1); i <= 12; i++ {
		evs = append(evs, ev{at: time.Second, kind: "progress", stage: "push", subject: "r", done: i * 1000})
	}
	evs = append(evs, ev{kind: "done", stage: "push", subject: "r", err: errors.New("denied")}, ev{kind: "write", text: "half a "}, ev{kind: "close"})
	play(p, c, evs)
	want := `2026-01-02T03:04:05Z push r ...
2026-01-02T03:04:10Z push r: 4.9 KiB
2026-01-02T03:04:15Z push r: 9.8 KiB
2026-01-02T03:04:17Z push r: failed: denied
2026-01-02T03:04:17Z half a 
`
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
}

// TestLive: the byte stream on a terminal. Each draw goes back over the
// live lines and clears below; a finished step at the top is printed for
// good; a line written meanwhile goes above the live lines, whole; progress
// redraws at most every Redraw; lines are clipped to the width.
func TestLive(t *testing.T) {
	c := &clock{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	var out bytes.Buffer
	p := New(&out, Options{Mode: Live, Now: c.now, Width: 24, Redraw: 1500 * time.Millisecond})
	play(p, c, []ev{
		{kind: "start", stage: "fetch", subject: "a"},
		{kind: "start", stage: "fetch", subject: "b"},
		{kind: "write", text: "warning: a very long warning that is not clipped\n"},
		{kind: "done", stage: "fetch", subject: "b", outcome: "v1.0.0"},
		{kind: "done", stage: "fetch", subject: "a", outcome: "0123456789abcdef0123456789"},
		{kind: "start", stage: "push", subject: "r"},
		{at: time.Second, kind: "progress", stage: "push", subject: "r", done: 1 * mib, total: 4 * mib}, // 1s after the last draw: throttled
		{at: time.Second, kind: "progress", stage: "push", subject: "r", done: 2 * mib, total: 4 * mib}, // 2s: drawn
		{at: time.Second, kind: "progress", stage: "push", subject: "r", done: 3 * mib, total: 4 * mib}, // throttled, drawn by Close
		{kind: "close"},
	})
	const clear = "\r\x1b[J"
	want := clear + "fetch a ...\n" +
		"\x1b[1A" + clear + "fetch a ...\nfetch b ...\n" +
		"\x1b[2A" + clear + "warning: a very long warning that is not clipped\nfetch a ...\nfetch b ...\n" +
		"\x1b[2A" + clear + "fetch a ...\nfetch b: v1.0.0\n" +
		"\x1b[2A" + clear + "fetch a: 0123456789abc…\nfetch b: v1.0.0\n" +
		clear + "push r ...\n" +
		"\x1b[1A" + clear + "push r: 2.0 MiB / 4.0 …\n" +
		"\x1b[1A" + clear + "push r: 3.0 MiB / 4.0 …\n"
	if got := out.String(); got != want {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
	// After Close the lines stay: new output starts below them.
	out.Reset()
	fmt.Fprintln(p, "after")
	if got := out.String(); got != clear+"after\n" {
		t.Errorf("after Close: %q", got)
	}
}

// TestQuiet: nothing at all, whatever happens.
func TestQuiet(t *testing.T) {
	c := &clock{time.Unix(0, 0)}
	var out bytes.Buffer
	p := New(&out, Options{Mode: Quiet, Now: c.now})
	evs := append(buildEvents(), ev{kind: "start", stage: "write", subject: "out"}, ev{kind: "done", stage: "write", subject: "out", err: errors.New("no")})
	play(p, c, evs)
	if out.Len() != 0 {
		t.Errorf("quiet printed %q", out.String())
	}
}

// TestDetect: a buffer, TERM=dumb or NO_COLOR give plain lines.
func TestDetect(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	for _, tt := range []struct {
		name string
		env  map[string]string
	}{{"buffer", nil}, {"dumb", map[string]string{"TERM": "dumb"}}, {"no-color", map[string]string{"NO_COLOR": "1"}}} {
		if o := Detect(&bytes.Buffer{}, env(tt.env)); o.Mode != Plain || o.Width != 0 || o.Height != 0 {
			t.Errorf("%s: %+v", tt.name, o)
		}
	}
}

func TestBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 40 * mib: "40.0 MiB", 3 << 30: "3.0 GiB"} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
	if got := clip("ab\ncd", 10); !strings.HasPrefix(got, "ab") || strings.Contains(got, "\n") {
		t.Errorf("clip kept a newline: %q", got)
	}
}

// TestLiveHeight: more running steps than the terminal has lines are
// counted on one line, so that the redraw never goes above the screen.
func TestLiveHeight(t *testing.T) {
	c := &clock{time.Unix(0, 0)}
	var out bytes.Buffer
	p := New(&out, Options{Mode: Live, Now: c.now, Height: 4})
	for _, a := range []string{"a", "b", "c", "d"} {
		p.Start("verify", a)
	}
	out.Reset()
	p.Done("verify", "a", "OK", nil)
	p.Start("verify", "e")
	want := "\x1b[3A\r\x1b[Jverify a: OK\nverify b ...\nverify c ...\nverify d ...\n" +
		"\x1b[3A\r\x1b[Jverify b ...\nverify c ...\n... and 2 more\n"
	if got := out.String(); got != want {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
}

// TestControlCharactersEscaped: a plugin's words (a verifier's panic message
// as the error, an outcome, a subject, a line written) reach the terminal or
// the CI log with their control characters escaped: none can clear the
// line, retitle the terminal or start a GitHub Actions command line. A
// written line keeps its tabs.
func TestControlCharactersEscaped(t *testing.T) {
	evs := []ev{
		{kind: "done", stage: "verify", subject: "demo", err: errors.New("\r\x1b[2K\x1b]0;owned\x07verify demo: OK")},
		{kind: "done", stage: "verify", subject: "x\x1b[1Ay", outcome: "OK\n::error file=a::forged"},
		{kind: "done", stage: "fetch", subject: "c1", outcome: "\u009b2J\x7f\xff é"},
		{kind: "write", text: "warn\x1b[31m\tred\r\n::error file=a::forged\n"},
		{kind: "write", text: "half\x07"},
		{kind: "close"},
	}
	lines := []string{
		`verify demo: failed: \r\x1b[2K\x1b]0;owned\averify demo: OK`,
		`verify x\x1b[1Ay: OK\n::error file=a::forged`,
		`fetch c1: \u009b2J\x7f\xff é`,
		"warn\\x1b[31m\tred\\r",
		"::error file=a::forged",
		`half\a`,
	}
	for _, mode := range []Mode{Plain, Live} {
		c := &clock{time.Unix(0, 0)}
		var out bytes.Buffer
		p := New(&out, Options{Mode: mode, Now: c.now, Width: 200})
		play(p, c, evs)
		var want string
		switch mode {
		case Plain:
			for _, l := range lines {
				want += "1970-01-01T00:00:00Z " + l + "\n"
			}
		case Live:
			for i, l := range lines[:3] {
				want += "\r\x1b[J" + l + "\n"
				if i == 2 {
					want += "\r\x1b[J" + lines[3] + "\n" + lines[4] + "\n" + "\r\x1b[J" + lines[5] + "\n"
				}
			}
		}
		if got := out.String(); got != want {
			t.Errorf("mode %d: got\n%q\nwant\n%q", mode, got, want)
		}
	}
}
