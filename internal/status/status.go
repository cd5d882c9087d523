// Package status renders the progress of long work (resolve, fetch and verify
// each plugin, assemble, push, write) for a person watching: on a terminal one
// line per step, redrawn in place; in a log (CI) plain lines stamped with the
// time; or nothing at all.
package status

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/term"
)

// Mode is how a Printer renders.
type Mode int

const (
	// Plain writes one line per event of note, prefixed with its RFC 3339
	// UTC time: for logs and CI, where nothing is redrawn.
	Plain Mode = iota
	// Live keeps one line per step on a terminal, redrawn in place with
	// ANSI escapes; a finished step's line stays as it ended.
	Live
	// Quiet writes nothing: the caller prints the error.
	Quiet
)

// Options configure a Printer. The zero value is Plain mode.
type Options struct {
	Mode Mode
	// Width is the terminal's width in columns: Live lines are clipped to
	// one column less, so that none wraps and breaks the redraw. 0 means 80.
	Width int
	// Height is the terminal's height in lines: Live shows at most one line
	// less of running steps (the rest are counted on the last), since the
	// cursor cannot go back above the screen. 0 means no bound.
	Height int
	// Now reads the clock; nil means time.Now.
	Now func() time.Time
	// Redraw is the least time between two Live redraws caused by byte
	// progress alone (every other event redraws at once); 0 means 100ms.
	Redraw time.Duration
	// Every is the least time between two Plain progress lines of one step
	// that do not cross a quarter of its total; 0 means 5s.
	Every time.Duration
}

// Detect picks the options for writing to w: Live at the terminal's size
// when w is a terminal that takes escapes (TERM is not "dumb" and NO_COLOR
// is unset, which this package reads as "no escape sequences at all"),
// else Plain.
func Detect(w io.Writer, env func(string) string) Options {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) || env("TERM") == "dumb" || env("NO_COLOR") != "" {
		return Options{Mode: Plain}
	}
	o := Options{Mode: Live}
	if width, height, err := term.GetSize(int(f.Fd())); err == nil {
		o.Width, o.Height = width, height
	}
	return o
}

// Printer renders events to a writer. Its methods may be called from
// several goroutines. It is also an io.Writer: lines written to it (a
// warning, another component's log) are printed whole, above the live lines
// in Live mode and timestamped in Plain mode.
type Printer struct {
	mu    sync.Mutex
	w     io.Writer
	o     Options
	steps []*step // in the order they started; Live: those not yet settled
	drawn int     // Live: lines of steps currently on screen below the output
	dirty bool    // Live: a change not drawn yet (throttled)
	last  time.Time
	logs  []string // complete lines written, waiting for the next draw
	part  []byte   // an incomplete line written
}

type step struct {
	stage, subject string
	done, total    int64
	finished       bool
	outcome        string
	err            error
	// Plain: when progress was last printed, and the quarter it had reached.
	printedAt time.Time
	quarter   int64
}

// New returns a Printer writing to w.
func New(w io.Writer, o Options) *Printer {
	if o.Width <= 0 {
		o.Width = 80
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Redraw <= 0 {
		o.Redraw = 100 * time.Millisecond
	}
	if o.Every <= 0 {
		o.Every = 5 * time.Second
	}
	return &Printer{w: w, o: o}
}

// Start says a step began: stage is what is done ("fetch"), subject what to
// ("demo"; "" for the stage as a whole).
func (p *Printer) Start(stage, subject string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.o.Mode == Quiet {
		return
	}
	s := &step{stage: stage, subject: subject, printedAt: p.o.Now()}
	p.steps = append(p.steps, s)
	p.event(s)
}

// Progress says a step has moved done bytes of total (0: unknown).
func (p *Printer) Progress(stage, subject string, done, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.o.Mode == Quiet {
		return
	}
	s := p.find(stage, subject)
	s.done, s.total = done, total
	switch p.o.Mode {
	case Live:
		p.dirty = true
		if p.o.Now().Sub(p.last) >= p.o.Redraw {
			p.draw()
		}
	case Plain:
		now := p.o.Now()
		var q int64
		if total > 0 {
			q = min(done*4/total, 4)
		}
		// The end is the Done line's to say.
		if q < 4 && (q > s.quarter || now.Sub(s.printedAt) >= p.o.Every) {
			s.quarter, s.printedAt = q, now
			p.plain(s.text())
		}
	}
}

// Done says a step ended: outcome in a few words (a verdict, a digest), or
// the error that ended it.
func (p *Printer) Done(stage, subject, outcome string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.o.Mode == Quiet {
		return
	}
	s := p.find(stage, subject)
	s.finished, s.outcome, s.err = true, outcome, err
	p.event(s)
}

// Write prints the complete lines in b (keeping an incomplete one for the
// next Write or Close).
func (p *Printer) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.o.Mode == Quiet {
		return len(b), nil
	}
	p.part = append(p.part, b...)
	i := strings.LastIndexByte(string(p.part), '\n')
	if i < 0 {
		return len(b), nil
	}
	lines := strings.Split(string(p.part[:i]), "\n")
	p.part = append(p.part[:0], p.part[i+1:]...)
	for i, l := range lines {
		lines[i] = escape(l, true)
	}
	switch p.o.Mode {
	case Live:
		p.logs = append(p.logs, lines...)
		p.draw()
	case Plain:
		for _, l := range lines {
			p.plain(l)
		}
	}
	return len(b), nil
}

// Close prints what is left (an incomplete line, a throttled redraw) and
// leaves the live lines on screen as they are: later output goes below them.
func (p *Printer) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.o.Mode == Quiet {
		return nil
	}
	if len(p.part) > 0 {
		line := escape(string(p.part), true)
		p.part = nil
		if p.o.Mode == Plain {
			p.plain(line)
		} else {
			p.logs = append(p.logs, line)
		}
	}
	if p.o.Mode == Live && (p.dirty || len(p.logs) > 0) {
		p.draw()
	}
	p.steps, p.drawn = nil, 0
	return nil
}

// find is the running step of stage and subject; one is added if none is.
func (p *Printer) find(stage, subject string) *step {
	for _, s := range p.steps {
		if s.stage == stage && s.subject == subject && !s.finished {
			return s
		}
	}
	s := &step{stage: stage, subject: subject, printedAt: p.o.Now()}
	p.steps = append(p.steps, s)
	return s
}

// event renders a step's start or end.
func (p *Printer) event(s *step) {
	switch p.o.Mode {
	case Live:
		p.dirty = true
		p.draw()
	case Plain:
		p.plain(s.text())
		if s.finished {
			p.remove(s)
		}
	}
}

func (p *Printer) remove(s *step) {
	for i, t := range p.steps {
		if t == s {
			p.steps = append(p.steps[:i], p.steps[i+1:]...)
			return
		}
	}
}

func (p *Printer) plain(line string) {
	fmt.Fprintf(p.w, "%s %s\n", p.o.Now().UTC().Format(time.RFC3339), line)
}

// draw rewrites the live lines in one write: back to the first, clear to
// the end of the screen, then the finished steps at the top (printed for
// good), the lines written meanwhile, and the steps still live.
func (p *Printer) draw() {
	var b strings.Builder
	if p.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", p.drawn)
	}
	b.WriteString("\r\x1b[J")
	for len(p.steps) > 0 && p.steps[0].finished {
		b.WriteString(clip(p.steps[0].text(), p.o.Width-1) + "\n")
		p.steps = p.steps[1:]
	}
	for _, l := range p.logs {
		b.WriteString(l + "\n")
	}
	p.logs = nil
	shown := p.steps
	if p.o.Height > 2 && len(shown) > p.o.Height-1 {
		shown = shown[:p.o.Height-2]
	}
	for _, s := range shown {
		b.WriteString(clip(s.text(), p.o.Width-1) + "\n")
	}
	p.drawn = len(shown)
	if more := len(p.steps) - len(shown); more > 0 {
		b.WriteString(clip(fmt.Sprintf("... and %d more", more), p.o.Width-1) + "\n")
		p.drawn++
	}
	p.dirty = false
	p.last = p.o.Now()
	io.WriteString(p.w, b.String())
}

// text is a step's line: "fetch demo ...", "push reg/x: 1.0 MiB / 4.0 MiB
// (25%)", "verify demo: OK", "fetch demo: failed: <why>".
//
// Subjects, outcomes and errors may carry a plugin's words (a verifier's
// panic message): their control characters are shown escaped, so that
// none moves the cursor, retitles the terminal or starts a CI command line.
func (s *step) text() string {
	name := escape(s.stage, false)
	if s.subject != "" {
		name += " " + escape(s.subject, false)
	}
	switch {
	case s.err != nil:
		return name + ": failed: " + escape(s.err.Error(), false)
	case s.finished && s.outcome != "":
		return name + ": " + escape(s.outcome, false)
	case s.finished:
		return name + ": done"
	case s.total > 0:
		return fmt.Sprintf("%s: %s / %s (%d%%)", name, Bytes(s.done), Bytes(s.total), min(s.done*100/s.total, 100))
	case s.done > 0:
		return name + ": " + Bytes(s.done)
	}
	return name + " ..."
}

// escape writes the C0 and C1 control characters of s, DEL, and bytes that
// are not UTF-8 (a lone 0x9b is CSI to some terminals) as Go escapes them
// ("\x1b", "\n", "\u009b"); keepTab keeps tabs, which a log line may hold.
func escape(s string, keepTab bool) string {
	isControl := func(r rune) bool {
		return (r < 0x20 && !(keepTab && r == '\t')) || (r >= 0x7f && r <= 0x9f)
	}
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || isControl(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case isControl(r):
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// clip cuts s to n runes, marking the cut, and flattens it to one line.
func clip(s string, n int) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " …"
	}
	if n < 1 || utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// Bytes is n in binary units, one decimal: "512 B", "1.5 KiB", "40.0 MiB".
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}
