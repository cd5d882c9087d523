package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/xtraefik/xtraefik/images"
	"github.com/xtraefik/xtraefik/internal/fileset"
	"github.com/xtraefik/xtraefik/internal/plugin"
	"github.com/xtraefik/xtraefik/internal/source"
	"github.com/xtraefik/xtraefik/recipe"
)

// fakeGit is a Fetcher over fixed refs and trees: what a remote says today.
// Plugins resolve concurrently: the count is locked.
type fakeGit struct {
	refs    map[string]string // ref -> commit
	trees   map[string]fileset.Set
	mu      sync.Mutex
	resolve int // calls to Resolve
}

func (g *fakeGit) Resolve(_ context.Context, url, ref string) (source.Resolved, error) {
	g.mu.Lock()
	g.resolve++
	g.mu.Unlock()
	c, ok := g.refs[ref]
	if !ok {
		return source.Resolved{}, fmt.Errorf("%s %s: %w", url, ref, source.ErrNotFound)
	}
	return source.Resolved{Commit: c, Kind: source.KindTag, Ref: "refs/tags/" + ref}, nil
}

func (g *fakeGit) Tree(_ context.Context, url, commit string) (*source.Tree, error) {
	files, ok := g.trees[commit]
	if !ok {
		return nil, fmt.Errorf("%s %s: %w", url, commit, source.ErrNotFound)
	}
	return &source.Tree{Commit: commit, Time: time.Unix(1700000000, 0), Files: files}, nil
}

// fakeBases serves whatever image the tag points to today, from an OCI
// layout on disk (no registry), and counts lookups by tag.
type fakeBases struct {
	now    images.Reference // what Resolve reads
	byTag  int
	pinned int
}

func (b *fakeBases) Resolve(ctx context.Context, _ images.Reference, opts images.Options) (*images.Base, error) {
	b.byTag++
	return images.Resolve(ctx, b.now, opts)
}

func (b *fakeBases) ResolveDigest(ctx context.Context, _ images.Reference, d v1.Hash, opts images.Options) (*images.Base, error) {
	b.pinned++
	base, err := images.Resolve(ctx, b.now, opts)
	if err != nil {
		return nil, err
	}
	if base.Digest != d {
		return nil, fmt.Errorf("base is %s, expected %s: the base changed since it was locked", base.Digest, d)
	}
	return base, nil
}

// hermeticEnv is the environment of tests that give options a cache
// directory (and so a module proxy client): GOPROXY=off, so that nothing
// asks the public proxy for Traefik's go.mod.
func hermeticEnv(k string) string {
	if k == "GOPROXY" {
		return "off"
	}
	return ""
}

func layoutBase(t *testing.T) images.Reference {
	t.Helper()
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.ConfigFile(img, &v1.ConfigFile{OS: "linux", Architecture: "amd64", Config: v1.Config{WorkingDir: "/"}})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "base")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	return images.Reference{Transport: images.TransportOCI, Path: dir}
}

func pluginTree(t *testing.T, module, extra string) fileset.Set {
	t.Helper()
	content := map[string]string{
		".traefik.yml": "displayName: Demo\ntype: middleware\nimport: " + module + "\nsummary: a demo\ntestData: {}\n",
		"go.mod":       "module " + module + "\n\ngo 1.22\n",
		"demo.go":      "package demo\n" + extra,
	}
	var files []fileset.File
	for name, c := range content {
		c := c
		files = append(files, fileset.File{Path: name, Kind: fileset.Regular, Size: int64(len(c)),
			Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(c)), nil }})
	}
	set, err := fileset.New(files)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// TestResolveLockLifecycle: what a lock pins is kept, --update and
// --update-base move it, --frozen re-resolves and names what moved, and
// a changed tree for the same commit is refused — against fake sources.
func TestResolveLockLifecycle(t *testing.T) {
	const module = "example.com/demo"
	r, err := recipe.Parse("recipe.yaml", []byte("base: traefik:v3.6\nplugins:\n  demo:\n    module: "+module+"\n    ref: v1\n"))
	if err != nil {
		t.Fatal(err)
	}
	oldBase, newBase := layoutBase(t), layoutBase(t)
	git := &fakeGit{refs: map[string]string{"v1": "c1"}, trees: map[string]fileset.Set{
		"c1": pluginTree(t, module, ""), "c2": pluginTree(t, module, "// two\n"),
	}}
	bases := &fakeBases{now: oldBase}
	opts := func(lock *recipe.Lock) *options {
		return &options{Recipe: r, Lock: lock, Fetcher: git, Bases: bases}
	}
	first, err := resolve(t.Context(), nil, opts(nil))
	if err != nil {
		t.Fatal(err)
	}
	lock := first.Lock()
	if lock.Plugins[0].Commit != "c1" || lock.Plugins[0].Git != "https://"+module+".git" {
		t.Fatalf("lock %+v", lock.Plugins[0])
	}
	if p := first.Plugins[0]; p.Manifest == nil || p.Manifest.Type != "middleware" || p.Hash != lock.Plugins[0].ContentHash {
		t.Fatalf("resolved plugin %+v", p)
	}
	if want := time.Unix(1700000000, 0).UTC(); !first.Epoch.Equal(want) {
		t.Errorf("epoch %s, want the commit time %s", first.Epoch, want)
	}

	// Upstream moves: the tag points to c2 and the base tag to another image.
	git.refs["v1"], bases.now = "c2", newBase

	for _, tt := range []struct {
		name       string
		edit       func(o *options)
		wantCommit string
		wantBase   *images.Reference // nil: the locked one
		wantErr    string
		frozenErr  bool
	}{
		{name: "locked", wantCommit: "c1", wantErr: "base changed since it was locked"},
		{name: "update plugin", edit: func(o *options) { o.Update = []string{"demo"} }, wantErr: "base changed since it was locked"},
		{name: "update all", edit: func(o *options) { o.UpdateAll, o.UpdateBase = true, true }, wantCommit: "c2", wantBase: &newBase},
		{name: "update base", edit: func(o *options) { o.UpdateBase = true }, wantCommit: "c1", wantBase: &newBase},
		{name: "frozen", edit: func(o *options) { o.Frozen = true }, wantErr: "moved: the lock has", frozenErr: true},
		{name: "frozen without lock", edit: func(o *options) { o.Lock, o.Frozen = nil, true }, wantErr: "no lock file", frozenErr: true},
		{name: "frozen, stale lock", edit: func(o *options) {
			l := *lock
			l.Plugins = []recipe.PluginLock{{Alias: "other"}}
			o.Lock, o.Frozen = &l, true
		}, wantErr: "does not match the recipe", frozenErr: true},
		{name: "same commit, other files", edit: func(o *options) {
			l := *lock
			l.Plugins = append([]recipe.PluginLock(nil), lock.Plugins...)
			l.Plugins[0].ContentHash = "sha256:" + strings.Repeat("0", 64)
			o.Lock, o.UpdateBase = &l, true
		}, wantErr: "the files that go into the image changed for the same commit"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := opts(lock)
			if tt.edit != nil {
				tt.edit(o)
			}
			res, err := resolve(t.Context(), nil, o)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				if errors.Is(err, ErrFrozen) != tt.frozenErr {
					t.Errorf("errors.Is(ErrFrozen) = %v for %v", !tt.frozenErr, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := res.Plugins[0].Source.Commit; got != tt.wantCommit {
				t.Errorf("commit %s, want %s", got, tt.wantCommit)
			}
			if tt.wantBase != nil && res.Base.Ref.Path != tt.wantBase.Path {
				t.Errorf("base %s, want %s", res.Base.Ref.Path, tt.wantBase.Path)
			}
		})
	}

	// With the base back where the lock pins it, a locked resolve asks the
	// remote nothing about the plugin.
	bases.now = oldBase
	git.resolve = 0
	res, err := resolve(t.Context(), nil, opts(lock))
	if err != nil {
		t.Fatal(err)
	}
	if git.resolve != 0 || res.Plugins[0].Source.Commit != "c1" || res.Base.Digest.String() != lock.Base.Digest {
		t.Errorf("locked resolve: %d ref lookups, commit %s, base %s", git.resolve, res.Plugins[0].Source.Commit, res.Base.Digest)
	}
}

// TestResolveDecidesUseUnsafeOnce: settings.useUnsafe is granted only when
// the recipe allows it, the manifest asks for it and Traefik is v3; every
// stage then reads Plugin.UseUnsafe.
func TestResolveDecidesUseUnsafeOnce(t *testing.T) {
	const module = "example.com/unsafe"
	tree := pluginTree(t, module, "")
	manifest := ".traefik.yml"
	var files []fileset.File
	for _, f := range tree {
		if f.Path == manifest {
			c := "displayName: U\ntype: middleware\nimport: " + module + "\nsummary: s\ntestData: {}\nuseUnsafe: true\n"
			f.Size, f.Open = int64(len(c)), func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(c)), nil }
		}
		files = append(files, f)
	}
	git := &fakeGit{refs: map[string]string{"v1": "c1"}, trees: map[string]fileset.Set{"c1": files}}
	for _, tt := range []struct {
		allow   bool
		traefik string
		want    bool
	}{
		{true, "v3.6.12", true},
		{false, "v3.6.12", false},
		{true, "v2.11.0", false},
	} {
		r, err := recipe.Parse("recipe.yaml", []byte(fmt.Sprintf("base: traefik:v3.6\nallowUnsafe: %v\nplugins:\n  u:\n    module: %s\n    ref: v1\n", tt.allow, module)))
		if err != nil {
			t.Fatal(err)
		}
		res, err := resolve(t.Context(), nil, &options{Recipe: r, Fetcher: git, Bases: &fakeBases{now: layoutBase(t)}, TraefikVersion: tt.traefik})
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Plugins[0].UseUnsafe; got != tt.want {
			t.Errorf("allowUnsafe %v on %s: UseUnsafe %v, want %v", tt.allow, tt.traefik, got, tt.want)
		}
		if res.Traefik.Version != tt.traefik {
			t.Errorf("target %q, want the caller's %q", res.Traefik.Version, tt.traefik)
		}
	}
}

// TestFetchAllOrder: plugins resolve side by side, at most fetchParallel at
// once, and their results are handed on in the recipe's order whichever
// finishes first ("a" finishes only after "b" has).
func TestFetchAllOrder(t *testing.T) {
	aliases := []string{"a", "b", "c", "d", "e"}
	bDone := make(chan struct{})
	var (
		mu             sync.Mutex
		inFlight, most int
	)
	fetch := func(_ context.Context, alias string) fetched {
		mu.Lock()
		inFlight++
		most = max(most, inFlight)
		mu.Unlock()
		defer func() {
			mu.Lock()
			inFlight--
			mu.Unlock()
		}()
		switch alias {
		case "a":
			<-bDone // one at a time would wait here for ever
		case "b":
			defer close(bDone)
		}
		return fetched{plugin: &plugin.Plugin{Alias: alias}, warnings: []string{"w " + alias}}
	}
	var events []string
	start := func(alias string) { events = append(events, "start "+alias) }
	err := fetchAll(t.Context(), aliases, fetch, start, func(alias string, f fetched) error {
		events = append(events, "done "+alias+" "+f.plugin.Alias+" "+strings.Join(f.warnings, ","))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, a := range aliases {
		want = append(want, "start "+a, "done "+a+" "+a+" w "+a)
	}
	if strings.Join(events, "\n") != strings.Join(want, "\n") {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(events, "\n"), strings.Join(want, "\n"))
	}
	if most > fetchParallel {
		t.Errorf("%d plugins resolved at once, more than %d", most, fetchParallel)
	}
}

// TestFetchAllFirstError: the error returned is the first plugin's in the
// recipe's order, even when a later one failed first; a fetch still running
// sees its context cancelled, and all have returned when fetchAll does.
func TestFetchAllFirstError(t *testing.T) {
	aliases := []string{"a", "b", "c", "d"}
	errA, errB := errors.New("a failed"), errors.New("b failed")
	bFailed := make(chan struct{})
	var (
		mu       sync.Mutex
		returned = map[string]error{} // what each fetch saw of its context
	)
	fetch := func(ctx context.Context, alias string) fetched {
		var f fetched
		switch alias {
		case "a":
			<-bFailed
			f.err = errA
		case "b":
			close(bFailed)
			f.err = errB
		case "c":
			<-ctx.Done() // running when "a" fails
			f.err = ctx.Err()
		default:
			f.err = ctx.Err()
		}
		mu.Lock()
		returned[alias] = ctx.Err()
		mu.Unlock()
		return f
	}
	var done []string
	err := fetchAll(t.Context(), aliases, fetch, func(string) {}, func(alias string, f fetched) error {
		done = append(done, alias)
		return f.err
	})
	if !errors.Is(err, errA) {
		t.Fatalf("error %v, want the first plugin's (%v)", err, errA)
	}
	if strings.Join(done, ",") != "a" {
		t.Errorf("results handed on: %v, want a only", done)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(returned) != len(aliases) {
		t.Errorf("fetchAll returned before every fetch did: %v", returned)
	}
	if !errors.Is(returned["c"], context.Canceled) {
		t.Errorf("fetch c saw its context %v, want it cancelled", returned["c"])
	}
}

// cancellingGit is fakeGit whose Tree of commit cancels the caller's
// context, as a user's Ctrl-C would, and fails as a git transport does
// then: with an error of its own, not the context's.
type cancellingGit struct {
	*fakeGit
	commit string
	cancel context.CancelFunc
}

func (g cancellingGit) Tree(ctx context.Context, url, commit string) (*source.Tree, error) {
	if commit != g.commit {
		return g.fakeGit.Tree(ctx, url, commit)
	}
	g.cancel()
	<-ctx.Done()
	return nil, errors.New("read: connection closed")
}

// TestResolveCancelled: a resolution cancelled while plugins are fetched
// side by side fails with context.Canceled (errors.Is), as a StageError
// naming the plugin in the recipe's order that was being fetched.
func TestResolveCancelled(t *testing.T) {
	r, err := recipe.Parse("recipe.yaml", []byte("base: traefik:v3.6\nplugins:\n  a:\n    module: example.com/a\n    ref: v1\n  b:\n    module: example.com/b\n    ref: v2\n  c:\n    module: example.com/c\n    ref: v3\n"))
	if err != nil {
		t.Fatal(err)
	}
	git := &fakeGit{refs: map[string]string{"v1": "c1", "v2": "c2", "v3": "c3"}, trees: map[string]fileset.Set{
		"c1": pluginTree(t, "example.com/a", ""), "c2": pluginTree(t, "example.com/b", ""), "c3": pluginTree(t, "example.com/c", ""),
	}}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	o := &options{Recipe: r, Fetcher: cancellingGit{fakeGit: git, commit: "c1", cancel: cancel}, Bases: &fakeBases{now: layoutBase(t)}}
	_, err = resolve(ctx, nil, o)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	var se *StageError
	if !errors.As(err, &se) || se.Stage != StageFetch || se.Plugin != "a" || !strings.Contains(err.Error(), "plugin a (example.com/a)") {
		t.Errorf("error %#v (%v), want a fetch StageError of plugin a", se, err)
	}
}
