package build

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xtraefik/xtraefik/internal/cacherepo"
	"github.com/xtraefik/xtraefik/internal/place"
	"github.com/xtraefik/xtraefik/internal/sandbox"
	"github.com/xtraefik/xtraefik/internal/sign"
	"github.com/xtraefik/xtraefik/internal/testenv"
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
	unlock, err := place.Lock(t.Context(), oldRepo+".lock", nil)
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

// TestFleetKeys: a Go caller and the environment name the cache
// repository's keys alike (Config first, the environment's trusted keys
// besides); the fleet secret of old is refused with the commands that
// replace it; a cache repository without any key, or keys without a
// repository, are refused.
func TestFleetKeys(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "recipe.yaml")
	if err := os.WriteFile(file, []byte("base: traefik:v3.6\nplugins:\n  demo: {module: example.com/demo, ref: v1}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	keyA, pubA := testenv.OpenSSLKeyPair(t, testenv.KeyEd25519)
	_, pubB := testenv.OpenSSLKeyPair(t, testenv.KeyP256)
	_, pubC := testenv.OpenSSLKeyPair(t, testenv.KeyEd25519)
	id := func(pub string) string {
		v, err := sign.LoadPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		fp, err := cacherepo.Fingerprint(v)
		if err != nil {
			t.Fatal(err)
		}
		return fp
	}
	const repo = "127.0.0.1:5000/fleet/cache"
	open := func(cfg Config, env map[string]string) (*Session, error) {
		cfg.RecipeFile = file
		cfg.Env = func(k string) string {
			if k == "XTRAEFIK_CACHE" {
				return filepath.Join(dir, "cache")
			}
			return env[k]
		}
		return Open(cfg)
	}
	sorted := func(ids ...string) []string { return slices.Sorted(slices.Values(ids)) }

	// A writer from Config, trusting B besides (and C from the environment).
	s, err := open(Config{CacheRepo: repo, CacheKey: keyA, CacheTrust: []string{pubB}}, map[string]string{EnvCacheTrust: pubC})
	if err != nil {
		t.Fatal(err)
	}
	if s.fleet == nil || s.fleet.ReadOnly() || s.fleet.Signer() != id(pubA) || !slices.Equal(s.fleet.Trusted(), sorted(id(pubA), id(pubB), id(pubC))) {
		t.Fatalf("fleet: %+v", s.fleet)
	}
	rep := s.newReport("build")
	if c := rep.CacheRepo; c == nil || c.ReadOnly || c.Signer != id(pubA) || len(c.Trusted) != 3 {
		t.Errorf("report: %+v", rep.CacheRepo)
	}
	// A reader from the environment alone: two trusted keys, a path list.
	s, err = open(Config{}, map[string]string{EnvCacheRepo: repo, EnvCacheTrust: pubB + string(os.PathListSeparator) + pubC})
	if err != nil {
		t.Fatal(err)
	}
	if !s.fleet.ReadOnly() || !slices.Equal(s.fleet.Trusted(), sorted(id(pubB), id(pubC))) {
		t.Fatalf("reader: read-only %v, trusted %v", s.fleet.ReadOnly(), s.fleet.Trusted())
	}
	if c := s.newReport("build").CacheRepo; c == nil || !c.ReadOnly || c.Signer != "" {
		t.Errorf("reader's report: %+v", c)
	}

	for _, tc := range []struct {
		name string
		cfg  Config
		env  map[string]string
		want []string
	}{
		{"fleet secret", Config{CacheRepo: repo, CacheKey: keyA}, map[string]string{EnvVerdictKey: strings.Repeat("ab", 32)},
			[]string{"$XTRAEFIK_VERDICT_KEY is no longer read", "openssl genpkey -algorithm ed25519", "--cache-key", "--cache-trust"}},
		{"fleet secret file", Config{}, map[string]string{EnvVerdictKeyFile: pubA}, []string{"$XTRAEFIK_VERDICT_KEY_FILE is no longer read"}},
		{"no key", Config{CacheRepo: repo}, nil, []string{"give a key", "--cache-key", "--cache-trust", "openssl genpkey"}},
		{"keys without a repository", Config{CacheTrust: []string{pubB}}, nil, []string{"name one too"}},
		{"missing trust file", Config{CacheRepo: repo, CacheTrust: []string{filepath.Join(dir, "none.pub")}}, nil, []string{"none.pub", "no such file"}},
		{"private key as trust", Config{CacheRepo: repo, CacheTrust: []string{keyA}}, nil, []string{keyA}},
		{"public key as signing key", Config{CacheRepo: repo, CacheKey: pubA}, nil, []string{"--cache-key", pubA}},
		{"signing key from the environment", Config{CacheRepo: repo}, map[string]string{EnvCacheKey: pubA}, []string{"$XTRAEFIK_CACHE_KEY", pubA}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := open(tc.cfg, tc.env)
			if err == nil {
				t.Fatal("opened")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
	// Offline, the cache repository is not used and its keys not loaded.
	if s, err := open(Config{CacheRepo: repo, Offline: true}, nil); err != nil || s.fleet != nil {
		t.Errorf("offline: %v, fleet %v", err, s)
	}
}
