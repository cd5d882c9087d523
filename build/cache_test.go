package build

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/xtraefik/xtraefik/internal/filelock"
)

// TestPruneCache ages a cache directory's entries and prunes it: what was
// not used for MaxAge goes, under the locks builds take, the rest stays.
func TestPruneCache(t *testing.T) {
	dir := t.TempDir()
	old := time.Now().Add(-48 * time.Hour)
	write := func(rel string, age time.Time) string {
		t.Helper()
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(rel), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, age, age); err != nil {
			t.Fatal(err)
		}
		return p
	}
	repo := func(name string, age time.Time) string {
		t.Helper()
		p := filepath.Join(dir, name+".git")
		write(filepath.Join(name+".git", "HEAD"), age)
		if err := os.Chtimes(p, age, age); err != nil {
			t.Fatal(err)
		}
		return p
	}
	oldRepo, newRepo := repo("old-host_repo-0011", old), repo("new-host_repo-2233", time.Now())
	oldZip := write("mod/download/example.com/old/@v/v1.0.0.zip", old)
	oldInfo := write("mod/download/example.com/old/@v/v1.0.0.info", old)
	newZip := write("mod/download/example.com/new/@v/v1.0.0.zip", time.Now())
	oldVerdict := write("verdicts/aa.json", old)
	newVerdict := write("verdicts/bb.json", time.Now())

	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
	// A dry run counts and removes nothing.
	rep, err := PruneCache(t.Context(), dir, PruneOptions{MaxAge: 24 * time.Hour, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.GitRepositories != 1 || rep.Modules != 1 || !exists(oldRepo) || !exists(oldZip) || !exists(oldVerdict) {
		t.Fatalf("dry run: %+v", rep)
	}

	// A repository a build is fetching into is not removed under it.
	unlock, err := filelock.Lock(t.Context(), oldRepo+".lock", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	_, err = PruneCache(ctx, dir, PruneOptions{MaxAge: 24 * time.Hour})
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || !exists(oldRepo) {
		t.Fatalf("prune went past a held repository lock: %v", err)
	}
	unlock()

	rep, err = PruneCache(t.Context(), dir, PruneOptions{MaxAge: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{oldRepo: false, newRepo: true, oldZip: false, oldInfo: false, newZip: true, oldVerdict: false, newVerdict: true} {
		if exists(p) != want {
			t.Errorf("%s: present %v, want %v", p, exists(p), want)
		}
	}
	if rep.GitRepositories != 1 || rep.Modules != 1 { // verdicts went in the run that waited
		t.Errorf("report %+v", rep)
	}

	// No cache directory: nothing to do, nothing created.
	none := filepath.Join(t.TempDir(), "none")
	if _, err := PruneCache(t.Context(), none, PruneOptions{MaxAge: time.Hour}); err != nil || exists(none) {
		t.Errorf("prune of a missing cache: %v, created %v", err, exists(none))
	}
}
