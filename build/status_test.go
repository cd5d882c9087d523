package build

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/xtraefik/xtraefik/internal/fileset"
	"github.com/xtraefik/xtraefik/recipe"
	"github.com/xtraefik/xtraefik/verify"
)

// events records what a Status hears, one line per call.
type events struct {
	mu    sync.Mutex
	lines []string
}

func (e *events) add(s string) { e.mu.Lock(); e.lines = append(e.lines, s); e.mu.Unlock() }

func (e *events) Start(stage, subject string) { e.add("start " + stage + " " + subject) }
func (e *events) Progress(stage, subject string, done, total int64) {
	e.add(fmt.Sprintf("progress %s %s %d/%d", stage, subject, done, total))
}
func (e *events) Done(stage, subject, outcome string, err error) {
	e.add(fmt.Sprintf("done %s %s %q %v", stage, subject, outcome, err))
}

// TestResolveTellsLogAndStatus: a Go caller's Log still gets its lines,
// and Status hears each stage and plugin start and end, in order, with the
// error that ended one.
func TestResolveTellsLogAndStatus(t *testing.T) {
	const module = "example.com/demo"
	r, err := recipe.Parse("recipe.yaml", []byte("base: traefik:v3.6\nplugins:\n  demo:\n    module: "+module+"\n    ref: v1\n  gone:\n    module: example.com/gone\n    ref: v9\n"))
	if err != nil {
		t.Fatal(err)
	}
	git := &fakeGit{refs: map[string]string{"v1": "c1"}, trees: map[string]fileset.Set{"c1": pluginTree(t, module, "")}}
	var log bytes.Buffer
	ev := &events{}
	_, err = resolve(t.Context(), &runner{st: ev}, &options{Recipe: r, Fetcher: git, Bases: &fakeBases{now: layoutBase(t)}, Log: &log})
	if err == nil || !strings.Contains(err.Error(), "gone") {
		t.Fatalf("resolve: %v", err)
	}
	if l := log.String(); !strings.HasPrefix(l, "base traefik:v3.6 -> sha256:") || !strings.Contains(l, "\nplugin demo: "+module+" -> c1 (") {
		t.Errorf("log:\n%s", l)
	}
	// Reading the base's Traefik binary is a step of its own, within
	// the base's resolution, with the bytes of the layer it streams.
	var lines, binary []string
	for _, l := range ev.lines {
		if strings.Contains(l, " traefik traefik:v3.6") {
			binary = append(binary, l)
		} else {
			lines = append(lines, l)
		}
	}
	if len(binary) < 3 || binary[0] != "start traefik traefik:v3.6" || !strings.HasPrefix(binary[1], "progress traefik traefik:v3.6 ") ||
		binary[len(binary)-1] != `done traefik traefik:v3.6 "no Traefik binary found" <nil>` || ev.lines[1] != binary[0] {
		t.Errorf("binary step:\n%s", strings.Join(ev.lines, "\n"))
	}
	ev.lines = lines
	if len(ev.lines) != 6 {
		t.Fatalf("events:\n%s", strings.Join(ev.lines, "\n"))
	}
	want := []string{"start resolve traefik:v3.6", "done resolve traefik:v3.6 \"sha256:", "start fetch demo", `done fetch demo "example.com/demo c1" <nil>`,
		"start fetch gone", `done fetch gone "" plugin gone (example.com/gone)`}
	for i, w := range want {
		if !strings.HasPrefix(ev.lines[i], w) {
			t.Errorf("event %d: %s, want %s...", i, ev.lines[i], w)
		}
	}
}

func TestVerdict(t *testing.T) {
	for _, tt := range []struct {
		r    verify.Result
		want string
	}{
		{verify.Result{Status: verify.StatusOK, OK: true}, "OK"},
		{verify.Result{Status: verify.StatusOK, OK: true, Cached: true}, "OK (cached)"},
		{verify.Result{Status: verify.StatusOK, OK: true, Approximate: true}, "OK (approximate)"},
		{verify.Result{Status: verify.StatusFail, Reason: "not vendored: x"}, "FAIL: not vendored: x"},
		{verify.Result{Status: verify.StatusUnverified, Reason: "no worker"}, "UNVERIFIED: no worker"},
	} {
		if got := verdict(tt.r); got != tt.want {
			t.Errorf("verdict(%+v) = %q, want %q", tt.r, got, tt.want)
		}
	}
}
