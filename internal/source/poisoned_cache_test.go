package source

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xtraefik/xtraefik/internal/testenv"
)

// A cache directory restored from CI is an input anyone who could write
// that cache controls. Here it holds the remote's repository with objects
// stored under other objects' names: the attacker's commit, tree, blob or
// annotated tag in place of the honest one. The remote is honest. Every
// object read from the cache is checked against its name: the mismatch is
// damage, the repository is fetched afresh, and the files are the remote's.
// Offline, the cache is refused with a clear error.
func TestPoisonedCacheIsFetchedAgain(t *testing.T) {
	big := func(s string) string { return strings.Repeat(s+"\n", 200) } // > 1 KiB: read through, not whole
	root := t.TempDir()
	good := testenv.NewRepo(t, filepath.Join(root, "plug"))
	good.WriteFile("plugin.go", "package plug // honest\n")
	good.WriteFile("data.txt", big("honest"))
	commit := good.Commit("honest")
	good.AnnotatedTag("v1", "release")
	u := testenv.GitDaemon(t, root) + "plug"

	// The attacker's objects, made anywhere.
	evil := testenv.NewRepo(t, filepath.Join(t.TempDir(), "evil"))
	evil.WriteFile("plugin.go", "package plug // EVIL\n")
	evil.WriteFile("data.txt", big("EVIL"))
	evilCommit := evil.Commit("evil")
	evil.AnnotatedTag("v1", "release")
	obj := func(r *testenv.Repo, rev string) string { return r.Git("rev-parse", rev) }

	// plant copies loose objects (zlib("<type> <len>\x00<content>")) into
	// the cache repository, each under the name given.
	plant := func(t *testing.T, dir string, from *testenv.Repo, objects map[string]string) {
		for name, src := range objects {
			data, err := os.ReadFile(filepath.Join(from.Dir, ".git", "objects", src[:2], src[2:]))
			if err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, "objects", name[:2], name[2:])
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, data, 0o444); err != nil {
				t.Fatal(err)
			}
		}
	}
	evilObjects := map[string]string{}
	for _, rev := range []string{evilCommit, evilCommit + "^{tree}", evilCommit + ":plugin.go", evilCommit + ":data.txt"} {
		evilObjects[obj(evil, rev)] = obj(evil, rev)
	}
	honest := func(rev string) string { return obj(good, rev) }

	for _, tc := range []struct {
		name string
		// swap plants an evil object under an honest name, besides the
		// evil objects under their own names.
		swap map[string]string
		// honestToo are honest objects planted under their own names.
		honestToo []string
		ref       string
	}{
		{"commit", map[string]string{commit: evilCommit}, nil, "main"},
		{"tree", map[string]string{honest(commit + "^{tree}"): obj(evil, evilCommit+"^{tree}")}, []string{commit}, "main"},
		{"blob", map[string]string{honest(commit + ":plugin.go"): obj(evil, evilCommit+":plugin.go")},
			[]string{commit, honest(commit + "^{tree}"), honest(commit + ":data.txt")}, "main"},
		{"large blob", map[string]string{honest(commit + ":data.txt"): obj(evil, evilCommit+":data.txt")},
			[]string{commit, honest(commit + "^{tree}"), honest(commit + ":plugin.go")}, "main"},
		{"annotated tag", map[string]string{honest("v1"): obj(evil, "v1")}, nil, "v1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cache := t.TempDir()
			var progress bytes.Buffer
			f, err := New(Options{CacheDir: cache, Auth: FromEnv(noEnv), Progress: &progress})
			if err != nil {
				t.Fatal(err)
			}
			dir := f.repoDir(mustRemote(t, u))
			if err := initRepo(dir); err != nil {
				t.Fatal(err)
			}
			plant(t, dir, evil, evilObjects)
			own := map[string]string{}
			for _, h := range tc.honestToo {
				own[h] = h
			}
			plant(t, dir, good, own)
			for name, src := range tc.swap {
				from := evil
				if src == name {
					from = good
				}
				plant(t, dir, from, map[string]string{name: src})
			}

			// Offline, the poisoned cache is refused, naming what is wrong.
			if tc.ref == "main" {
				_, err := newOfflineFetcher(t, cache).Tree(context.Background(), u, commit)
				if !errors.Is(err, ErrNotCached) || !strings.Contains(err.Error(), "the cache was tampered with or damaged") {
					t.Fatalf("offline Tree of the poisoned cache: %v; want ErrNotCached naming the tampered object", err)
				}
			}

			ctx := context.Background()
			res, err := f.Resolve(ctx, u, tc.ref)
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if res.Commit != commit {
				t.Fatalf("Resolve %s = %s, want the remote's %s", tc.ref, res.Commit, commit)
			}
			tree, err := f.Tree(ctx, u, res.Commit)
			if err != nil {
				t.Fatalf("Tree: %v", err)
			}
			if got := readFile(t, tree.Files, "plugin.go"); got != "package plug // honest\n" {
				t.Fatalf("plugin.go = %q, want the remote's", got)
			}
			if got := readFile(t, tree.Files, "data.txt"); got != big("honest") {
				t.Fatalf("data.txt = %.40q…, want the remote's", got)
			}
			if !strings.Contains(progress.String(), "is damaged: fetching "+u+" afresh") {
				t.Fatalf("the poisoned repository was not fetched afresh; progress:\n%s", progress.String())
			}
		})
	}
}
