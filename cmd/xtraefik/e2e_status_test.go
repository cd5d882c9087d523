package main

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// stamped is a progress line without a terminal: RFC 3339 UTC time, message.
var stamped = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (.*)$`)

// pushProgress is a push's byte count, printed at quarters (how many depends
// on how the registry's answers interleave).
var pushProgress = regexp.MustCompile(`^push \S+: [\d.]+ [KMG]?i?B / [\d.]+ [KMG]?i?B \(\d+%\)$`)

// TestStatusWithoutTerminal: with standard error not a terminal, build
// prints one timestamped line as each stage, plugin and output starts and
// ends, in order, with the verdict, the digests and the bytes pushed; with
// --quiet a failing build prints nothing at all (main prints the error), or
// with --output json its one document.
func TestStatusWithoutTerminal(t *testing.T) {
	w := newWorld(t)
	rp := w.exampleRecipe()
	layout := filepath.Join(w.dir, "out")
	repo := w.registry + "/team/traefik"
	out, errOut, err := w.run("build", "-f", rp, "--oci-layout", layout, "--push", repo+":v1")
	if err != nil {
		t.Fatalf("build: %v\n%s", err, errOut)
	}
	digest := digestLine(t, out)
	var got []string
	quarters := 0
	for _, l := range strings.Split(errOut, "\n") {
		m := stamped.FindStringSubmatch(l)
		switch {
		case m == nil:
			continue // the report below the progress
		case pushProgress.MatchString(m[1]):
			quarters++
			continue
		}
		got = append(got, m[1])
	}
	want := []string{
		"resolve docker.io/library/traefik:v3.6 ...",
		// The base's Traefik binary is read (here a shell script).
		"traefik docker.io/library/traefik:v3.6 ...",
		"traefik docker.io/library/traefik:v3.6: /usr/local/bin/traefik: not a Go executable with build info: unrecognized file format",
		"resolve docker.io/library/traefik:v3.6: " + w.base.String() + " (3 platform(s))",
		"fetch demo ...",
		"fetch demo: github.com/traefik/plugindemo " + w.plugin.ReleaseCommit,
		"verify demo ...",
		"verify demo: OK",
		"assemble ...",
		"assemble: " + digest,
		"write " + layout + " ...",
		"write " + layout + ": written",
		"push " + repo + " ...",
		"push " + repo + ": pushed",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("progress lines:\n%s\nwant:\n%s\nstderr:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"), errOut)
	}
	if quarters > 3 {
		t.Errorf("%d push progress lines, want at most one per quarter:\n%s", quarters, errOut)
	}

	// A build that fails at its output, after every stage before it ran.
	args := []string{"build", "-f", rp, "--tarball", filepath.Join(w.dir, "x.tar"), "--tarball-platform", "linux/s390x"}
	out, errOut, err = w.run(append(args, "--quiet")...)
	if err == nil || !strings.Contains(err.Error(), "s390x") || out != "" || errOut != "" {
		t.Errorf("--quiet: error %v\nstdout %q\nstderr %q", err, out, errOut)
	}
	out, errOut, err = w.run(append(args, "-q", "-o", "json")...)
	if rep := decodeReport(t, out); err == nil || rep.OK || !strings.Contains(rep.Error, "s390x") || errOut != "" {
		t.Errorf("-q -o json: error %v, report %+v, stderr %q", err, rep, errOut)
	}
	_, errOut, err = w.run(args...)
	if err == nil || !stamped.MatchString(strings.SplitN(errOut, "\n", 2)[0]) || !strings.Contains(errOut, "s390x") {
		t.Errorf("without --quiet the same build prints its progress and the failed write: %v\n%s", err, errOut)
	}
}
