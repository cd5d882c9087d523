package source

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xtraefik/xtraefik/internal/testenv"
)

// TestAttackGitCachePoisonedCommit: a cache directory restored from CI (an
// input anyone who could write that cache controls) holds a repository in
// which the object named by the remote's commit C is another commit, whose
// tree holds other files. The remote is honest. Does resolving the branch
// and reading C's tree (what `xtraefik lock`, a first build or --update do)
// check that the object read under C's name is C?
func TestAttackGitCachePoisonedCommit(t *testing.T) {
	root := t.TempDir()
	good := testenv.NewRepo(t, filepath.Join(root, "plug"))
	good.WriteFile("plugin.go", "package plug // honest\n")
	commit := good.Commit("honest")
	u := testenv.GitDaemon(t, root) + "plug"

	// The attacker's commit, made anywhere: an evil tree.
	evil := testenv.NewRepo(t, filepath.Join(t.TempDir(), "evil"))
	evil.WriteFile("plugin.go", "package plug // EVIL\n")
	evilCommit := evil.Commit("evil")
	evilTree := evil.Git("rev-parse", evilCommit+"^{tree}")
	evilBlob := evil.Git("rev-parse", evilCommit+":plugin.go")

	// The poisoned cache: an empty bare repository where xtraefik keeps
	// this remote's objects, holding the evil tree and blob under their own
	// names and the evil commit under the honest commit's name.
	cache := t.TempDir()
	f := newFetcher(t, cache)
	r, err := parseRemote(u)
	if err != nil {
		t.Fatal(err)
	}
	dir := f.repoDir(r)
	if err := initRepo(dir); err != nil {
		t.Fatal(err)
	}
	// Loose objects are zlib("<type> <len>\x00<content>"): copy the evil
	// repository's files, the commit's to the honest commit's name.
	plant := func(name, from string) {
		data, err := os.ReadFile(filepath.Join(evil.Dir, ".git", "objects", from[:2], from[2:]))
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
	plant(evilBlob, evilBlob)
	plant(evilTree, evilTree)
	plant(commit, evilCommit)

	ctx := context.Background()
	res, err := f.Resolve(ctx, u, "main")
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	if res.Commit != commit {
		t.Fatalf("Resolve = %s, want %s", res.Commit, commit)
	}
	tree, err := f.Tree(ctx, u, res.Commit)
	if err != nil {
		t.Logf("held: Tree refused the poisoned cache: %v", err)
		return
	}
	got := readFile(t, tree.Files, "plugin.go")
	if strings.Contains(got, "EVIL") {
		t.Fatalf("BROKEN: commit %s of %s read from the poisoned cache gives plugin.go = %q (the remote's is \"package plug // honest\")", commit, u, got)
	}
}
