package build

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xtraefik/xtraefik/internal/filelock"
	"github.com/xtraefik/xtraefik/sandbox"
	"github.com/xtraefik/xtraefik/verify"
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
	oldRepo, newRepo := repo("old-host_repo-0011223344556677", old), repo("new-host_repo-8899aabbccddeeff", time.Now())
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
	if rep.GitRepositories != 1 || rep.Modules != 1 || rep.Verdicts != 1 || !exists(oldRepo) || !exists(oldZip) || !exists(oldVerdict) {
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

// TestPruneCacheOnlyOwn: in a directory shared with other things
// (--cache-dir . in a checkout), prune removes only xtraefik's own
// repositories, never a symbolic link, and nothing through a symbolically
// linked subdirectory; a verdict read recently stays; a repository is
// counted only once it is gone.
func TestPruneCacheOnlyOwn(t *testing.T) {
	dir, elsewhere := t.TempDir(), t.TempDir()
	old := time.Now().Add(-48 * time.Hour)
	write := func(p string) string {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(p), 0o600); err != nil {
			t.Fatal(err)
		}
		for q := p; q != filepath.Dir(dir) && q != filepath.Dir(elsewhere); q = filepath.Dir(q) {
			if err := os.Chtimes(q, old, old); err != nil {
				t.Fatal(err)
			}
		}
		return p
	}
	link := func(target, p string) string {
		t.Helper()
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	userGit := filepath.Join(write(filepath.Join(dir, ".git", "HEAD")), "..")
	project := filepath.Join(write(filepath.Join(dir, "project.git", "HEAD")), "..")
	own := filepath.Join(write(filepath.Join(dir, "host_repo-0123456789abcdef.git", "HEAD")), "..")
	// A link named as a cache repository, to someone's repository.
	theirs := filepath.Join(write(filepath.Join(elsewhere, "theirs.git", "HEAD")), "..")
	ownLink := link(theirs, filepath.Join(dir, "host_other-fedcba9876543210.git"))
	// Linked subdirectories: what they hold is not the cache's.
	linkedZip := write(filepath.Join(elsewhere, "mod", "download", "example.com", "m", "@v", "v1.0.0.zip"))
	link(filepath.Join(elsewhere, "mod"), filepath.Join(dir, "mod"))
	linkedVerdict := write(filepath.Join(elsewhere, "verdicts", "aa.json"))
	link(filepath.Join(elsewhere, "verdicts"), filepath.Join(dir, "verdicts"))
	linkedBlob := write(filepath.Join(elsewhere, "blobs", "sha256", "0123"))
	link(filepath.Join(elsewhere, "blobs"), filepath.Join(dir, "blobs"))

	rep, err := PruneCache(t.Context(), dir, PruneOptions{MaxAge: 24 * time.Hour, MaxSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	exists := func(p string) bool { _, err := os.Lstat(p); return err == nil }
	for p, want := range map[string]bool{
		userGit: true, project: true, own: false, ownLink: true, theirs: true,
		linkedZip: true, linkedVerdict: true, linkedBlob: true,
	} {
		if exists(p) != want {
			t.Errorf("%s: present %v, want %v", p, exists(p), want)
		}
	}
	if rep.GitRepositories != 1 || rep.Modules != 0 || rep.Verdicts != 0 || rep.Blobs.Removed != 0 {
		t.Errorf("report %+v", rep)
	}
}

// TestPruneCacheVerdicts: a verdict read since it was written stays; a dry
// run counts the others.
func TestPruneCacheVerdicts(t *testing.T) {
	dir := t.TempDir()
	vc, err := verify.NewDirCache(filepath.Join(dir, "verdicts"), filepath.Join(t.TempDir(), "key"))
	if err != nil {
		t.Fatal(err)
	}
	ok := verify.Result{Status: verify.StatusOK, OK: true, Containment: &sandbox.Report{Level: sandbox.LevelFull}}
	old := time.Now().Add(-48 * time.Hour)
	for _, k := range []string{"read", "unread"} {
		if err := vc.Put(k, ok); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(filepath.Join(vc.Dir, k+".json"), old, old); err != nil {
			t.Fatal(err)
		}
	}
	if _, hit := vc.Get("read"); !hit {
		t.Fatal("no verdict")
	}
	for _, dry := range []bool{true, false} {
		rep, err := PruneCache(t.Context(), dir, PruneOptions{MaxAge: 24 * time.Hour, DryRun: dry})
		if err != nil || rep.Verdicts != 1 {
			t.Fatalf("dry %v: %+v, %v; want 1 verdict", dry, rep, err)
		}
	}
	if _, hit := vc.Get("read"); !hit {
		t.Error("a verdict read a moment ago was pruned")
	}
	if _, hit := vc.Get("unread"); hit {
		t.Error("a verdict unused for two days was kept")
	}
}

// TestVerdictKeySources: the fleet's key from the environment or a file,
// never both, and nothing else than 32 or more hex-encoded bytes.
func TestVerdictKeySources(t *testing.T) {
	good := strings.Repeat("ab", 32)
	file := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(file, []byte(good+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	short := filepath.Join(t.TempDir(), "short")
	os.WriteFile(short, []byte("abcd"), 0o600)
	tests := []struct {
		name    string
		env     map[string]string
		want    bool   // a key
		wantErr string // "" for none
	}{
		{"unset", nil, false, ""},
		{"environment", map[string]string{EnvVerdictKey: good}, true, ""},
		{"file", map[string]string{EnvVerdictKeyFile: file}, true, ""},
		{"both", map[string]string{EnvVerdictKey: good, EnvVerdictKeyFile: file}, false, "both"},
		{"short", map[string]string{EnvVerdictKey: "abcd"}, false, "64 or more hex digits"},
		{"not hex", map[string]string{EnvVerdictKey: strings.Repeat("zz", 32)}, false, "not a verdict key"},
		{"short file", map[string]string{EnvVerdictKeyFile: short}, false, short + " is not a verdict key"},
		{"missing file", map[string]string{EnvVerdictKeyFile: filepath.Join(t.TempDir(), "none")}, false, "no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key, err := verdictKey(func(k string) string { return tc.env[k] })
			switch {
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
			case err != nil:
				t.Fatal(err)
			case (key != nil) != tc.want:
				t.Fatalf("key %x", key)
			}
		})
	}
}
