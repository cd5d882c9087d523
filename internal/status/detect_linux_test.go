package status

import (
	"os"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// pty opens a pseudo-terminal and returns its terminal side, sized 100x30.
func pty(t *testing.T) *os.File {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { ptmx.Close() })
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	tty, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { tty.Close() })
	if err := unix.IoctlSetWinsize(int(tty.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Col: 100, Row: 30}); err != nil {
		t.Fatal(err)
	}
	return tty
}

// TestDetectTerminal: a terminal is Live at its size, unless TERM=dumb or
// NO_COLOR asks for no escapes.
func TestDetectTerminal(t *testing.T) {
	tty := pty(t)
	for _, tt := range []struct {
		env  map[string]string
		want Options
	}{
		{map[string]string{"TERM": "xterm-256color"}, Options{Mode: Live, Width: 100, Height: 30}},
		{map[string]string{"TERM": "dumb"}, Options{Mode: Plain}},
		{map[string]string{"TERM": "xterm", "NO_COLOR": "1"}, Options{Mode: Plain}},
	} {
		got := Detect(tty, func(k string) string { return tt.env[k] })
		if got.Mode != tt.want.Mode || got.Width != tt.want.Width || got.Height != tt.want.Height {
			t.Errorf("%v: %+v, want %+v", tt.env, got, tt.want)
		}
	}
}
