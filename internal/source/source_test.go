package source

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xtraefik/xtraefik/internal/fileset"
	"github.com/xtraefik/xtraefik/internal/memstat"
	"github.com/xtraefik/xtraefik/internal/place"
	"github.com/xtraefik/xtraefik/internal/testenv"
)

const (
	demoModule  = "github.com/traefik/plugindemo"
	demoVersion = "v0.2.2"
)

// noEnv keeps the developer's own XTRAEFIK_GIT_* variables out of tests.
func noEnv(string) string { return "" }

func newFetcher(t testing.TB, cache string) *Fetcher {
	t.Helper()
	if cache == "" {
		cache = t.TempDir()
	}
	f, err := New(Options{CacheDir: cache, Auth: FromEnv(noEnv)})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// demo serves a plugindemo repository (see testenv.PluginRepo) over git://.
func demo(t *testing.T) (*testenv.Plugin, *testenv.GitServer, string) {
	t.Helper()
	root := t.TempDir()
	p := testenv.PluginRepo(t, root, demoModule, demoVersion)
	srv := testenv.StartGitDaemon(t, root)
	return p, srv, srv.URL + p.Path
}

// demoHTTP is demo served over smart HTTP, whose server counts requests.
func demoHTTP(t *testing.T) (*testenv.Plugin, *testenv.GitServer, string) {
	t.Helper()
	root := t.TempDir()
	p := testenv.PluginRepo(t, root, demoModule, demoVersion)
	srv := testenv.StartGitHTTP(t, root, "", "")
	return p, srv, srv.URL + p.Path
}

// moduleHash is the content hash of the module as the proxy serves it.
func moduleHash(t testing.TB) string {
	t.Helper()
	set, err := fileset.FromDir(testenv.ModuleDir(t, demoModule, demoVersion))
	if err != nil {
		t.Fatal(err)
	}
	h, err := set.Hash()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func mustHash(t testing.TB, s fileset.Set) string {
	t.Helper()
	h, err := s.Hash()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestResolve(t *testing.T) {
	p, _, u := demo(t)
	// A branch named like a tag: the tag must win.
	p.Repo.Git("branch", p.EarlyTag, p.HeadCommit)
	f := newFetcher(t, "")
	for _, tc := range []struct {
		ref  string
		want Resolved
	}{
		{p.EarlyTag, Resolved{p.EarlyCommit, KindTag, "refs/tags/" + p.EarlyTag}},
		{demoVersion, Resolved{p.ReleaseCommit, KindTag, "refs/tags/" + demoVersion}}, // annotated, peeled
		{"main", Resolved{p.HeadCommit, KindBranch, "refs/heads/main"}},
		{"refs/heads/main", Resolved{p.HeadCommit, KindBranch, "refs/heads/main"}},
		{"refs/tags/" + demoVersion, Resolved{p.ReleaseCommit, KindTag, "refs/tags/" + demoVersion}},
		{"refs/heads/" + p.EarlyTag, Resolved{p.HeadCommit, KindBranch, "refs/heads/" + p.EarlyTag}},
		{p.EarlyCommit, Resolved{p.EarlyCommit, KindCommit, p.EarlyCommit}},
		{strings.ToUpper(p.ReleaseCommit), Resolved{p.ReleaseCommit, KindCommit, p.ReleaseCommit}},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			got, err := f.Resolve(context.Background(), u, tc.ref)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("Resolve(%q) = %+v, want %+v", tc.ref, got, tc.want)
			}
		})
	}
}

func TestResolveErrors(t *testing.T) {
	p, _, u := demo(t)
	f := newFetcher(t, "")
	ctx := context.Background()
	for _, tc := range []struct {
		name, ref string
		notFound  bool
		want      []string
	}{
		{"unknown name", "v0.2.3", true, []string{`neither a tag nor a branch named "v0.2.3"`, u, "similar: v0.2.2"}},
		{"unknown qualified", "refs/tags/v9", true, []string{"refs/tags/v9 does not exist on " + u}},
		{"short hash", p.ReleaseCommit[:8], true, []string{"40 hex digits"}},
		{"unknown commit", strings.Repeat("ab", 20), true, []string{"commit " + strings.Repeat("ab", 20) + " not found on " + u}},
		{"invalid name", "a..b", false, []string{"not a valid git ref name"}},
		{"other namespace", "refs/pull/1/head", false, []string{"only refs/tags/ and refs/heads/"}},
		{"empty", "", false, []string{"empty ref"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.Resolve(ctx, u, tc.ref)
			if err == nil {
				t.Fatalf("Resolve(%q) succeeded", tc.ref)
			}
			t.Log(err)
			if errors.Is(err, ErrNotFound) != tc.notFound {
				t.Errorf("errors.Is(ErrNotFound) = %v, want %v: %v", !tc.notFound, tc.notFound, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	if _, err := f.Tree(ctx, u, strings.Repeat("cd", 20)); !errors.Is(err, ErrNotFound) {
		t.Errorf("Tree of an unknown commit: %v, want ErrNotFound", err)
	}
	if _, err := f.Tree(ctx, u, p.ReleaseCommit[:12]); err == nil || !strings.Contains(err.Error(), "full 40-hex") {
		t.Errorf("Tree of a short hash: %v", err)
	}
}

func TestTreeMatchesModule(t *testing.T) {
	p, _, u := demo(t)
	f := newFetcher(t, "")
	ctx := context.Background()
	tree, err := f.Tree(ctx, u, p.ReleaseCommit)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := mustHash(t, tree.Files), moduleHash(t); got != want {
		t.Errorf("release tree hash %s, module %s", got, want)
	}
	// Each file's content was hashed as the tree was read (Sum), and the
	// hash is the content's: the tree hashes the same read afresh.
	fresh := append(fileset.Set(nil), tree.Files...)
	for i := range fresh {
		if fresh[i].Kind != fileset.Symlink && fresh[i].Sum == "" {
			t.Errorf("%s: no sum kept from reading the tree", fresh[i].Path)
		}
		fresh[i].Sum = ""
	}
	if got, want := mustHash(t, fresh), mustHash(t, tree.Files); got != want {
		t.Errorf("hashed from the kept sums %s, from the content %s", want, got)
	}
	if tree.Commit != p.ReleaseCommit {
		t.Errorf("Commit = %s, want %s", tree.Commit, p.ReleaseCommit)
	}
	ct, err := time.Parse(time.RFC3339, p.Repo.Git("show", "-s", "--format=%cI", p.ReleaseCommit))
	if err != nil {
		t.Fatal(err)
	}
	if !tree.Time.Equal(ct) {
		t.Errorf("Time = %v, want committer time %v", tree.Time, ct)
	}
	if _, ok := tree.Files.Lookup(".git"); ok {
		t.Error(".git in the tree")
	}

	early, err := f.Tree(ctx, u, p.EarlyCommit)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := early.Files.Lookup(p.Omitted); ok {
		t.Errorf("early commit has %s", p.Omitted)
	}
	if len(early.Files) != len(tree.Files)-1 {
		t.Errorf("early commit has %d files, release %d", len(early.Files), len(tree.Files))
	}
}

// TestTransports fetches the same release over every transport.
func TestTransports(t *testing.T) {
	root := t.TempDir()
	p := testenv.PluginRepo(t, root, demoModule, demoVersion)
	httpBase := testenv.GitHTTP(t, root, "", "")
	rel, err := filepath.Rel(mustGetwd(t), p.Repo.Dir)
	if err != nil {
		t.Fatal(err)
	}
	want := moduleHash(t)
	for name, u := range map[string]string{
		"git":        testenv.GitDaemon(t, root) + p.Path,
		"http":       httpBase + p.Path,
		"file":       "file://" + p.Repo.Dir,
		"path":       p.Repo.Dir,
		"relative":   rel,
		"git suffix": httpBase + p.Path + "/.git",
	} {
		t.Run(name, func(t *testing.T) {
			f := newFetcher(t, "")
			res, err := f.Resolve(context.Background(), u, demoVersion)
			if err != nil {
				t.Fatal(err)
			}
			if res.Commit != p.ReleaseCommit {
				t.Fatalf("resolved %s, want %s", res.Commit, p.ReleaseCommit)
			}
			tree, err := f.Tree(context.Background(), u, res.Commit)
			if err != nil {
				t.Fatal(err)
			}
			if got := mustHash(t, tree.Files); got != want {
				t.Errorf("hash %s, want %s", got, want)
			}
		})
	}
}

func mustGetwd(t testing.TB) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return wd
}

// TestMovedTag re-points a tag after the first resolution, to a commit on a
// rewritten branch, so the old commit disappears from the remote.
func TestMovedTag(t *testing.T) {
	root := t.TempDir()
	r := testenv.NewRepo(t, filepath.Join(root, "moving"))
	r.WriteFile("plugin.go", "package moving\n")
	a := r.Commit("a")
	r.WriteFile("plugin.go", "package moving // b\n")
	b := r.Commit("b")
	r.Tag("v1")
	r.Tag("gone")
	srv := testenv.StartGitDaemon(t, root)
	u := srv.URL + "moving"
	f := newFetcher(t, "")
	ctx := context.Background()

	res, err := f.Resolve(ctx, u, "v1")
	if err != nil || res.Commit != b {
		t.Fatalf("first Resolve = %+v, %v; want %s", res, err, b)
	}
	if _, err := f.Tree(ctx, u, b); err != nil {
		t.Fatal(err)
	}
	if res, err := f.Resolve(ctx, u, "gone"); err != nil || res.Commit != b {
		t.Fatalf("Resolve(gone) = %+v, %v", res, err)
	}

	r.Git("reset", "--quiet", "--hard", a)
	r.WriteFile("plugin.go", "package moving // c\n")
	c := r.Commit("c")
	r.MoveTag("v1", c)
	r.Git("tag", "-d", "gone")

	res, err = f.Resolve(ctx, u, "v1")
	if err != nil || res.Commit != c || res.Kind != KindTag {
		t.Fatalf("Resolve after the move = %+v, %v; want tag at %s", res, err, c)
	}
	// main was rewritten (not a fast-forward) and the deleted tag is pruned.
	if res, err := f.Resolve(ctx, u, "main"); err != nil || res.Commit != c {
		t.Errorf("Resolve(main) after the rewrite = %+v, %v; want %s", res, err, c)
	}
	if _, err := f.Resolve(ctx, u, "gone"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Resolve of a deleted tag: %v, want ErrNotFound", err)
	}
	// b is still in the cache but no longer on the remote.
	if _, err := f.Resolve(ctx, u, b); !errors.Is(err, ErrNotFound) {
		t.Errorf("Resolve of the orphaned commit: %v, want ErrNotFound", err)
	}
	srv.Stop()
	tree, err := f.Tree(ctx, u, b)
	if err != nil {
		t.Fatalf("Tree of the old commit from the cache: %v", err)
	}
	if got := readFile(t, tree.Files, "plugin.go"); got != "package moving // b\n" {
		t.Errorf("old commit content %q", got)
	}
}

func readFile(t testing.TB, s fileset.Set, p string) string {
	t.Helper()
	f, ok := s.Lookup(p)
	if !ok {
		t.Fatalf("%s not in tree", p)
	}
	rc, err := f.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(b)) != f.Size {
		t.Errorf("%s: Size %d, content %d bytes", p, f.Size, len(b))
	}
	return string(b)
}

func TestModesKept(t *testing.T) {
	root := t.TempDir()
	r := testenv.NewRepo(t, filepath.Join(root, "modes"))
	r.WriteFile("a/b.txt", "hello\n")
	r.WriteExecutable("bin/run.sh", "#!/bin/sh\necho hi\n")
	r.Symlink("link", "a/b.txt")
	r.Symlink("a/up", "../bin/run.sh")
	r.Symlink("dirlink", "a")
	big := strings.Repeat("0123456789abcdef", 8192) // beyond go-git's in-memory threshold
	r.WriteFile("big.txt", big)
	commit := r.Commit("modes")
	f := newFetcher(t, "")
	tree, err := f.Tree(context.Background(), "file://"+r.Dir, commit)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		kind fileset.Kind
		link string
	}{
		"a/b.txt":    {fileset.Regular, ""},
		"a/up":       {fileset.Symlink, "../bin/run.sh"},
		"big.txt":    {fileset.Regular, ""},
		"bin/run.sh": {fileset.Executable, ""},
		"dirlink":    {fileset.Symlink, "a"},
		"link":       {fileset.Symlink, "a/b.txt"},
	}
	if len(tree.Files) != len(want) {
		t.Errorf("%d entries, want %d", len(tree.Files), len(want))
	}
	for _, file := range tree.Files {
		w, ok := want[file.Path]
		if !ok {
			t.Errorf("unexpected entry %s", file.Path)
			continue
		}
		if file.Kind != w.kind || file.Link != w.link {
			t.Errorf("%s: kind %v link %q, want %v %q", file.Path, file.Kind, file.Link, w.kind, w.link)
		}
	}
	if got := readFile(t, tree.Files, "bin/run.sh"); got != "#!/bin/sh\necho hi\n" {
		t.Errorf("run.sh = %q", got)
	}
	if got := readFile(t, tree.Files, "big.txt"); got != big {
		t.Errorf("big.txt differs (%d bytes)", len(got))
	}
	// The set materialises to the same tree, modes included.
	dir := t.TempDir()
	if err := tree.Files.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	back, err := fileset.FromDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if mustHash(t, back) != mustHash(t, tree.Files) {
		t.Error("WriteDir/FromDir round trip changed the tree")
	}
}

// TestConcurrentOpen reads every file of one Tree from many goroutines (run
// with -race).
func TestConcurrentOpen(t *testing.T) {
	p, _, u := demo(t)
	tree, err := newFetcher(t, "").Tree(context.Background(), u, p.ReleaseCommit)
	if err != nil {
		t.Fatal(err)
	}
	want := mustHash(t, tree.Files)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			h, err := tree.Files.Hash()
			if err == nil && h != want {
				err = fmt.Errorf("hash %s, want %s", h, want)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func TestRefusedContent(t *testing.T) {
	lfs := "version https://git-lfs.github.com/spec/v1\noid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n"
	for _, tc := range []struct {
		name  string
		build func(r *testenv.Repo) string
		is    error
		want  string
	}{
		{"submodule", func(r *testenv.Repo) string {
			r.Gitlink("vendor/github.com/x/lib", strings.Repeat("1", 40))
			return r.Commit("submodule")
		}, ErrUnsupported, "plugin uses git submodules (vendor/github.com/x/lib)"},
		{"lfs pointer", func(r *testenv.Repo) string {
			r.WriteFile("assets/model.bin", lfs)
			return r.Commit("lfs")
		}, ErrUnsupported, "assets/model.bin is a Git LFS pointer"},
		{"symlink escape", func(r *testenv.Repo) string {
			r.Symlink("sub/evil", "../../etc/passwd")
			return r.Commit("escape")
		}, fileset.ErrUnsafePath, "sub/evil"},
		{"absolute symlink", func(r *testenv.Repo) string {
			r.Symlink("abs", "/etc/passwd")
			return r.Commit("absolute")
		}, fileset.ErrUnsafePath, "abs"},
		{"dot-dot entry", func(r *testenv.Repo) string {
			return handMadeCommit(r, "..")
		}, fileset.ErrUnsafePath, `".."`},
		{"dot-git entry", func(r *testenv.Repo) string {
			return handMadeCommit(r, ".GIT")
		}, ErrUnsupported, ".GIT"},
		// git allows any byte but NUL and "/" in a name; a newline would let
		// one path pass for several lines of the content hash.
		{"newline in a name", func(r *testenv.Repo) string {
			r.WriteFile("a.go\n"+strings.Repeat("0", 64)+" 644 b.go", "package bad\n")
			return r.Commit("newline")
		}, fileset.ErrUnsafePath, `"a.go\n` + strings.Repeat("0", 64) + ` 644 b.go" holds the control character '\n'`},
		{"escape in a directory name", func(r *testenv.Repo) string {
			r.WriteFile("sub\x1b]0;owned\x07/x.go", "package bad\n")
			return r.Commit("escape")
		}, fileset.ErrUnsafePath, `"sub\x1b]0;owned\a" holds the control character '\x1b'`},
		{"newline in a symlink target", func(r *testenv.Repo) string {
			r.Symlink("l", "plugin.go\nx")
			return r.Commit("link")
		}, fileset.ErrUnsafePath, `symlink "l" points to "plugin.go\nx", which holds the control character '\n'`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			r := testenv.NewRepo(t, filepath.Join(root, "bad"))
			r.WriteFile("plugin.go", "package bad\n")
			commit := tc.build(r)
			r.Git("update-ref", "refs/heads/main", commit)
			u := testenv.GitDaemon(t, root) + "bad"
			f := newFetcher(t, "")
			res, err := f.Resolve(context.Background(), u, "main")
			if err != nil || res.Commit != commit {
				t.Fatalf("Resolve = %+v, %v", res, err)
			}
			_, err = f.Tree(context.Background(), u, commit)
			if err == nil {
				t.Fatal("Tree accepted the commit")
			}
			t.Log(err)
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q: want %v mentioning %q", err, tc.is, tc.want)
			}
			if !strings.Contains(err.Error(), u) {
				t.Errorf("error %q does not name the remote", err)
			}
		})
	}
}

// handMadeCommit commits a tree with an entry git's porcelain refuses to
// create, as a hostile remote could serve.
func handMadeCommit(r *testenv.Repo, name string) string {
	blob := r.Git("hash-object", "-w", "plugin.go")
	tree := r.GitStdin("100644 blob "+blob+"\t"+name+"\n", "mktree")
	return r.Git("commit-tree", "-m", "hand made", tree)
}

func TestUnreachableRemote(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there any more
	f := newFetcher(t, "")
	for _, u := range []string{"git://" + addr + "/plugin", "http://" + addr + "/plugin"} {
		_, err := f.Resolve(context.Background(), u, "main")
		if err == nil {
			t.Fatalf("Resolve on %s succeeded", u)
		}
		t.Log(err)
		if !strings.Contains(err.Error(), "fetch "+u) || !strings.Contains(err.Error(), "connection refused") {
			t.Errorf("error %q should name %s and the cause", err, u)
		}
	}
	_, err = f.Resolve(context.Background(), "http://bob:hunter2@"+addr+"/plugin", "main")
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error leaks the password or is nil: %v", err)
	}
}

func TestHTTPCredentials(t *testing.T) {
	root := t.TempDir()
	p := testenv.PluginRepo(t, root, demoModule, demoVersion)
	const user, pass, wrong = "alice", "s3cret-pa55", "Wr0ng-pa55"
	base := testenv.GitHTTP(t, root, user, pass)
	u := base + p.Path
	withCreds, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	withCreds.User = url.UserPassword(user, pass)
	env := func(m map[string]string) func(string) string {
		return func(k string) string { return m[k] }
	}
	for _, tc := range []struct {
		name string
		url  string
		env  map[string]string
		ok   bool
	}{
		{"anonymous", u, nil, false},
		{"wrong password", u, map[string]string{EnvUsername: user, EnvPassword: wrong}, false},
		{"wrong token", u, map[string]string{EnvToken: wrong}, false},
		{"username and password", u, map[string]string{EnvUsername: user, EnvPassword: pass}, true},
		{"token with username", u, map[string]string{EnvUsername: user, EnvToken: pass}, true},
		{"URL userinfo wins", withCreds.String(), map[string]string{EnvUsername: user, EnvPassword: wrong}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cache := t.TempDir()
			f, err := New(Options{CacheDir: cache, Auth: FromEnv(env(tc.env))})
			if err != nil {
				t.Fatal(err)
			}
			res, err := f.Resolve(context.Background(), tc.url, demoVersion)
			if tc.ok {
				if err != nil || res.Commit != p.ReleaseCommit {
					t.Fatalf("Resolve = %+v, %v", res, err)
				}
				if _, err := f.Tree(context.Background(), tc.url, res.Commit); err != nil {
					t.Fatal(err)
				}
			} else {
				if err == nil {
					t.Fatal("Resolve succeeded with bad credentials")
				}
				t.Log(err)
				if !strings.Contains(err.Error(), "authentication required") || !strings.Contains(err.Error(), u) {
					t.Errorf("error %q should say authentication failed on %s", err, u)
				}
			}
			if err != nil && (strings.Contains(err.Error(), wrong) || strings.Contains(err.Error(), pass)) {
				t.Errorf("error leaks a secret: %v", err)
			}
			assertNoSecret(t, cache, pass)
		})
	}
}

// assertNoSecret checks no file of the cache holds secret (the URL's
// userinfo must not end up in a git config).
func assertNoSecret(t *testing.T, dir, secret string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("%s contains the password", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestWarmCache proves a rebuild from a warm cache never touches the network.
func TestWarmCache(t *testing.T) {
	p, srv, u := demoHTTP(t)
	cache := t.TempDir()
	ctx := context.Background()
	f := newFetcher(t, cache)
	res, err := f.Resolve(ctx, u, "main")
	if err != nil {
		t.Fatal(err)
	}
	before := srv.Requests()
	first, err := f.Tree(ctx, u, res.Commit)
	if err != nil {
		t.Fatal(err)
	}
	if n := srv.Requests(); n != before {
		t.Errorf("Tree of a cached commit made %d requests", n-before)
	}
	srv.Stop()

	// Another process, same cache, server gone.
	g := newFetcher(t, cache)
	for _, c := range []string{p.HeadCommit, p.ReleaseCommit, p.EarlyCommit} {
		tree, err := g.Tree(ctx, u, c)
		if err != nil {
			t.Fatalf("Tree(%s) offline: %v", c, err)
		}
		if c == p.HeadCommit && mustHash(t, tree.Files) != mustHash(t, first.Files) {
			t.Error("offline tree differs")
		}
	}
	if _, err := g.Resolve(ctx, u, "main"); err == nil || !strings.Contains(err.Error(), u) {
		t.Errorf("Resolve with the server stopped: %v, want an error naming %s", err, u)
	}
}

// TestSharedCache runs fetchers of "different processes" on one cache at once.
func TestSharedCache(t *testing.T) {
	p, _, u := demo(t)
	cache := t.TempDir()
	want := moduleHash(t)
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for range 6 {
		wg.Go(func() {
			errs <- func() error {
				f, err := New(Options{CacheDir: cache, Auth: FromEnv(noEnv)})
				if err != nil {
					return err
				}
				res, err := f.Resolve(context.Background(), u, demoVersion)
				if err != nil {
					return err
				}
				if res.Commit != p.ReleaseCommit {
					return fmt.Errorf("resolved %s", res.Commit)
				}
				tree, err := f.Tree(context.Background(), u, res.Commit)
				if err != nil {
					return err
				}
				if h, err := tree.Files.Hash(); err != nil || h != want {
					return fmt.Errorf("hash %s, %v", h, err)
				}
				return nil
			}()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	entries, err := os.ReadDir(cache)
	if err != nil {
		t.Fatal(err)
	}
	var repos []string
	for _, e := range entries {
		if e.IsDir() {
			repos = append(repos, e.Name())
		}
	}
	if len(repos) != 1 || !strings.HasPrefix(repos[0], "127.0.0.1_") || !strings.HasSuffix(repos[0], ".git") {
		t.Errorf("cache holds %v, want one repository", repos)
	}
}

// TestSharedCacheProcesses runs real processes (this test binary, see
// TestMain) fetching into one cache at once: the lock must hold across
// processes, not only goroutines. Then they meet a damaged cache
// repository at once, and last they read the repaired cache offline with
// the server stopped.
func TestSharedCacheProcesses(t *testing.T) {
	p, srv, u := demo(t)
	cache := t.TempDir()
	want := p.ReleaseCommit + " " + moduleHash(t)
	runChildren(t, u, cache, demoVersion, false, want)
	damageRepo(t, newFetcher(t, cache), u, "zeroed pack", "")
	runChildren(t, u, cache, demoVersion, false, want)
	srv.Stop()
	runChildren(t, u, cache, p.ReleaseCommit, true, want)
}

// runChildren runs four fetchChild processes at once; each must print want.
func runChildren(t *testing.T, u, cache, ref string, offline bool, want string) {
	t.Helper()
	env := []string{childURL + "=" + u, childCache + "=" + cache, childRef + "=" + ref}
	if offline {
		env = append(env, childOffline+"=1")
	}
	for i, got := range testenv.Children(t, 4, env...) {
		if got != want {
			t.Errorf("child %d printed %q, want %q", i, got, want)
		}
	}
}

const (
	childURL     = "XTRAEFIK_SOURCE_TEST_CHILD_URL"
	childCache   = "XTRAEFIK_SOURCE_TEST_CHILD_CACHE"
	childRef     = "XTRAEFIK_SOURCE_TEST_CHILD_REF"
	childOffline = "XTRAEFIK_SOURCE_TEST_CHILD_OFFLINE"
)

func TestMain(m *testing.M) {
	if u := os.Getenv(childURL); u != "" {
		os.Exit(fetchChild(u, os.Getenv(childCache), os.Getenv(childRef), os.Getenv(childOffline) != ""))
	}
	os.Exit(m.Run())
}

// fetchChild is the body of a TestSharedCacheProcesses child: resolve
// (offline, ref is the commit), read the tree, print the commit and
// content hash.
func fetchChild(u, cache, ref string, offline bool) int {
	err := func() error {
		f, err := New(Options{CacheDir: cache, Auth: FromEnv(noEnv), Offline: offline})
		if err != nil {
			return err
		}
		ctx := context.Background()
		res := Resolved{Commit: ref}
		if !offline {
			if res, err = f.Resolve(ctx, u, ref); err != nil {
				return err
			}
		}
		tree, err := f.Tree(ctx, u, res.Commit)
		if err != nil {
			return err
		}
		h, err := tree.Files.Hash()
		if err != nil {
			return err
		}
		fmt.Println(res.Commit, h)
		return nil
	}()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// TestLockExcludes holds a repository's lock: a fetch must wait for it.
func TestLockExcludes(t *testing.T) {
	p, _, u := demo(t)
	f := newFetcher(t, "")
	r, err := parseRemote(u)
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := place.Lock(context.Background(), f.repoDir(r)+".lock", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := f.Resolve(ctx, u, "main"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Resolve while locked: %v, want a deadline error", err)
	}
	unlock()
	if res, err := f.Resolve(context.Background(), u, "main"); err != nil || res.Commit != p.HeadCommit {
		t.Errorf("Resolve after unlock = %+v, %v", res, err)
	}
}

func TestParseRemote(t *testing.T) {
	wd := mustGetwd(t)
	for _, tc := range []struct {
		in, display, key string
		creds            bool
	}{
		{"https://github.com/traefik/plugindemo", "https://github.com/traefik/plugindemo", "https://github.com/traefik/plugindemo", false},
		{"https://u:tok@github.com/traefik/plugindemo/", "https://github.com/traefik/plugindemo", "https://github.com/traefik/plugindemo", true},
		{"ssh://git@example.com/x/y.git", "ssh://git@example.com/x/y.git", "ssh://git@example.com/x/y.git", false},
		{"git@example.com:x/y.git", "git@example.com:x/y.git", "git@example.com:x/y.git", false},
		{"file:///srv/git/p", "file:///srv/git/p", "file:///srv/git/p", false},
		{"repos/p", "repos/p", "file://" + filepath.ToSlash(filepath.Join(wd, "repos/p")), false},
	} {
		r, err := parseRemote(tc.in)
		if err != nil {
			t.Errorf("parseRemote(%q): %v", tc.in, err)
			continue
		}
		if r.display != tc.display || r.key != tc.key || (r.basic != nil) != tc.creds {
			t.Errorf("parseRemote(%q) = display %q key %q creds %v; want %q %q %v", tc.in, r.display, r.key, r.basic != nil, tc.display, tc.key, tc.creds)
		}
	}
	if _, err := parseRemote("https://u:hunter2@exa mple.com/%zz"); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("bad URL error leaks or is nil: %v", err)
	}
	f := newFetcher(t, "")
	a, _ := parseRemote("https://github.com/traefik/plugindemo")
	b, _ := parseRemote("https://github.com/traefik/plugindemo.git")
	da, db := f.repoDir(a), f.repoDir(b)
	if da == db || !strings.HasPrefix(filepath.Base(da), "github.com_traefik_plugindemo-") {
		t.Errorf("cache dirs %s and %s", da, db)
	}
}

// BenchmarkTreeHash measures a warm-cache rebuild: read plugindemo's tree
// from the cache and hash it.
func BenchmarkTreeHash(b *testing.B) {
	root := b.TempDir()
	p := testenv.PluginRepo(b, root, demoModule, demoVersion)
	u := testenv.GitDaemon(b, root) + p.Path
	f := newFetcher(b, "")
	ctx := context.Background()
	if _, err := f.Tree(ctx, u, p.ReleaseCommit); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		tree, err := f.Tree(ctx, u, p.ReleaseCommit)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := tree.Files.Hash(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestLargeBlobStreams: a 64 MiB blob is read from the pack as a stream, by
// several readers at once, never decoded into memory whole.
func TestLargeBlobStreams(t *testing.T) {
	const size = 64 << 20
	r := testenv.NewRepo(t, filepath.Join(t.TempDir(), "large"))
	chunk := make([]byte, 1<<20)
	var big strings.Builder
	for i := range size / len(chunk) {
		for j := range chunk {
			chunk[j] = byte(j*7 + i*13 + j>>9)
		}
		big.Write(chunk)
	}
	want := sha256.Sum256([]byte(big.String()))
	r.WriteFile("data.bin", big.String())
	r.WriteFile("main.go", "package main\n")
	commit := r.Commit("large")
	big.Reset()
	tree, err := newFetcher(t, "").Tree(context.Background(), "file://"+r.Dir, commit)
	if err != nil {
		t.Fatal(err)
	}
	f, ok := tree.Files.Lookup("data.bin")
	if !ok || f.Size != size {
		t.Fatalf("data.bin: %+v, %v", f, ok)
	}
	var wg sync.WaitGroup
	sums := make([]string, 2)
	n := memstat.Allocated(func() {
		for i := range sums {
			wg.Go(func() {
				rc, err := f.Open()
				if err != nil {
					sums[i] = err.Error()
					return
				}
				defer rc.Close()
				h := sha256.New()
				if _, err := io.Copy(h, rc); err != nil {
					sums[i] = err.Error()
					return
				}
				sums[i] = hex.EncodeToString(h.Sum(nil))
			})
		}
		wg.Wait()
	})
	if n > 8<<20 {
		t.Errorf("reading a %d-byte blob twice allocated %d bytes", size, n)
	}
	for i, s := range sums {
		if s != hex.EncodeToString(want[:]) {
			t.Errorf("reader %d: sha256 %s, want %x", i, s, want)
		}
	}
}

// TestReadFilesKeepsLittle: once a tree's files have all been read (an SBOM,
// a layer), the reopened repository keeps little of them in memory: a build
// holds one such repository per plugin until it ends.
func TestReadFilesKeepsLittle(t *testing.T) {
	const files, size = 64, 64 << 10
	r := testenv.NewRepo(t, filepath.Join(t.TempDir(), "many"))
	rnd := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, size)
	for i := range files {
		for j := range buf {
			buf[j] = byte(rnd.Uint32())
		}
		r.WriteFile(fmt.Sprintf("f%02d.go", i), string(buf))
	}
	commit := r.Commit("many")
	tree, err := newFetcher(t, "").Tree(context.Background(), "file://"+r.Dir, commit)
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for _, f := range tree.Files {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, rc); err != nil {
			t.Fatalf("%s: %v", f.Path, err)
		}
		rc.Close()
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if n := int64(after.HeapAlloc) - int64(before.HeapAlloc); n > 1<<20 {
		t.Errorf("reading %d files of %d bytes each left %d bytes live", files, size, n)
	}
	runtime.KeepAlive(tree)
}

// TestWarmTreeClosesPacks: reading a tree from the cache holds the pack
// files open for the walk (one open per pack, not per object) and closes
// them after: a long-lived caller reading many trees does not run out of
// file descriptors.
func TestWarmTreeClosesPacks(t *testing.T) {
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		t.Skip("no /proc/self/fd to count open files")
	}
	root := t.TempDir()
	p := testenv.PluginRepo(t, root, demoModule, demoVersion)
	u := "file://" + filepath.Join(root, p.Path)
	f := newFetcher(t, "")
	ctx := context.Background()
	if _, err := f.Tree(ctx, u, p.ReleaseCommit); err != nil {
		t.Fatal(err)
	}
	packs := func() int {
		n := 0
		fds, _ := os.ReadDir("/proc/self/fd")
		for _, fd := range fds {
			if target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil && strings.HasSuffix(target, ".pack") {
				n++
			}
		}
		return n
	}
	before := packs()
	for range 3 {
		if _, err := f.Tree(ctx, u, p.ReleaseCommit); err != nil {
			t.Fatal(err)
		}
	}
	if after := packs(); after != before {
		t.Errorf("three warm tree reads left %d pack files open (%d before)", after, before)
	}
}

// TestTreeKeepsSmallContents: the contents of small blobs, read and checked
// against their names by the walk, are kept with the tree, so reading them
// again (go.mod, .traefik.yml) opens no repository; larger ones are read
// from the cache repository again.
func TestTreeKeepsSmallContents(t *testing.T) {
	r := testenv.NewRepo(t, filepath.Join(t.TempDir(), "kept"))
	small, mid := "module example.com/kept\n", strings.Repeat("mid\n", 512) // 2 KiB: read through
	big := strings.Repeat("big\n", keptBlob/4+1)
	r.WriteFile("go.mod", small)
	r.WriteFile("mid.txt", mid)
	r.WriteFile("big.txt", big)
	commit := r.Commit("kept")
	cache := t.TempDir()
	tree, err := newFetcher(t, cache).Tree(context.Background(), "file://"+r.Dir, commit)
	if err != nil {
		t.Fatal(err)
	}
	// With the cache repository gone, only the kept contents can be read.
	if err := os.RemoveAll(cache); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, tree.Files, "go.mod"); got != small {
		t.Errorf("go.mod = %q, want %q", got, small)
	}
	if got := readFile(t, tree.Files, "mid.txt"); got != mid {
		t.Errorf("mid.txt = %.20q…, want the committed content", got)
	}
	f, _ := tree.Files.Lookup("big.txt")
	if rc, err := f.Open(); err == nil {
		rc.Close()
		t.Errorf("big.txt (%d bytes) was kept in memory, over the %d-byte bound", len(big), keptBlob)
	}
}

// TestStreamedBlobsAndDeltas: a walk streams the blobs over streamObject
// stored whole and leaves deltas to go-git's decoding; both read back as
// committed, at the commit whose blob is the delta base and at the one
// whose blob is a delta on it.
func TestStreamedBlobsAndDeltas(t *testing.T) {
	r := testenv.NewRepo(t, filepath.Join(t.TempDir(), "deltas"))
	rnd := rand.New(rand.NewPCG(3, 4))
	line := func() string {
		b := make([]byte, 60)
		for i := range b {
			b[i] = 'a' + byte(rnd.IntN(26))
		}
		return string(b) + "\n"
	}
	var lines []string
	for range 1500 { // about 90 KiB
		lines = append(lines, line())
	}
	v1 := strings.Join(lines, "")
	r.WriteFile("data.txt", v1)
	c1 := r.Commit("v1")
	lines[700], lines[10] = lines[10], line()                // a copy that goes backwards, and an edit
	v2 := strings.Join(append(lines, lines[200:400]...), "") // and a block copied again
	r.WriteFile("data.txt", v2)
	c2 := r.Commit("v2")
	u := "file://" + r.Dir
	cache := t.TempDir()
	f := newFetcher(t, cache)
	ctx := context.Background()
	for _, tc := range []struct{ commit, want string }{{c2, v2}, {c1, v1}} {
		tree, err := f.Tree(ctx, u, tc.commit)
		if err != nil {
			t.Fatal(err)
		}
		if got := readFile(t, tree.Files, "data.txt"); got != tc.want {
			t.Errorf("data.txt at %s: %d bytes, not the committed %d", tc.commit, len(got), len(tc.want))
		}
	}
	// One of the two blobs is stored as a delta on the other in the
	// cache's pack: both ways were read.
	idx, err := filepath.Glob(filepath.Join(f.repoDir(mustRemote(t, u)), "objects", "pack", "*.idx"))
	if err != nil || len(idx) != 1 {
		t.Fatalf("cache packs: %v %v", idx, err)
	}
	out := r.Git("verify-pack", "-v", idx[0])
	deltas := 0
	for _, c := range []string{c1, c2} {
		for _, l := range strings.Split(out, "\n") {
			if fields := strings.Fields(l); len(fields) == 7 && fields[0] == r.Git("rev-parse", c+":data.txt") {
				deltas++ // "<name> blob <size> <packed> <offset> <depth> <base>"
			}
		}
	}
	if deltas != 1 {
		t.Fatalf("git verify-pack: %d of the two blobs are deltas, want 1:\n%s", deltas, out)
	}
}

// TestOneFetchAtATime: a Fetcher runs one fetch at a time (callers read
// cached trees side by side meanwhile), and a fetch waiting its turn ends
// with its context, having fetched nothing.
func TestOneFetchAtATime(t *testing.T) {
	p, srv, u := demoHTTP(t)
	f := newFetcher(t, "")
	f.fetching <- struct{}{} // another fetch runs
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := f.Tree(ctx, u, p.ReleaseCommit); !errors.Is(err, context.Canceled) {
		t.Fatalf("Tree waiting for another fetch, cancelled: %v; want context.Canceled", err)
	}
	if n := srv.Requests(); n != 0 {
		t.Errorf("a fetch waiting its turn made %d requests", n)
	}
	<-f.fetching
	if _, err := f.Tree(context.Background(), u, p.ReleaseCommit); err != nil {
		t.Fatalf("Tree once the other fetch ended: %v", err)
	}
	if srv.Requests() == 0 {
		t.Error("the server counted no request")
	}
}
