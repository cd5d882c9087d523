package provision

import (
	"io/fs"
	"os/exec"
	"strings"
	"testing"

	xtraefik "github.com/xtraefik/xtraefik"
)

// TestWorkerSourceHoldsVerifyDeps: a worker is the verify package built from
// WorkerSource, so every package of this module that verify needs must be
// embedded; a missing one breaks every worker build, on users' machines.
func TestWorkerSourceHoldsVerifyDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", "github.com/xtraefik/xtraefik/verify").Output()
	if err != nil {
		t.Fatalf("go list -deps verify: %v", err)
	}
	const mod = "github.com/xtraefik/xtraefik"
	for _, pkg := range strings.Fields(string(out)) {
		if pkg != mod && !strings.HasPrefix(pkg, mod+"/") {
			continue
		}
		dir := strings.TrimPrefix(strings.TrimPrefix(pkg, mod), "/")
		if dir == "" {
			dir = "."
		}
		entries, err := fs.ReadDir(xtraefik.WorkerSource, dir)
		found := false
		for _, e := range entries {
			found = found || (strings.HasSuffix(e.Name(), ".go") && !e.IsDir())
		}
		if err != nil || !found {
			t.Errorf("verify imports %s, which WorkerSource (worker_source.go) does not embed", pkg)
		}
	}
}
