// Package buildid names the running xtraefik build for the caches keyed by
// it.
package buildid

import (
	"fmt"
	"os"
	"runtime/debug"
)

// Self names this xtraefik build: its module version and commit when it
// has them, else (a development build) its executable's size and time, so
// that what a cache keeps from one build (a verdict, a rendered layer) is
// never taken for another's.
func Self() string {
	id := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		id = bi.Main.Version
		revision, modified := "", true
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				revision = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		switch {
		case revision != "" && !modified:
			return id + "+" + revision
		case id != "(devel)" && id != "" && revision == "":
			return id // go install module@version
		}
	}
	if exe, err := os.Executable(); err == nil {
		if info, err := os.Stat(exe); err == nil {
			id += fmt.Sprintf("+exe:%d:%d", info.Size(), info.ModTime().UnixNano())
		}
	}
	return id
}
