package outdated_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/xtraefik/xtraefik/images"
	"github.com/xtraefik/xtraefik/internal/outdated"
	"github.com/xtraefik/xtraefik/internal/plugin"
	"github.com/xtraefik/xtraefik/internal/testenv"
	"github.com/xtraefik/xtraefik/recipe"
)

// releases pushes a small Traefik-like image per version to repo (a loopback
// registry repository), labelled with that version, plus the floating tag
// v3.6 on v3.6.1, as Traefik's publishers do between patch releases. It
// returns the digest of v3.6.
func releases(t *testing.T, repo string) v1.Hash {
	t.Helper()
	var floating v1.Hash
	for _, v := range []string{"v3.6.1", "v3.6.4", "v3.7.0", "v4.0.0-rc1"} {
		testenv.PushBase(t, repo+":"+v, testenv.BaseOptions{Single: true, OCI: true, Version: v})
	}
	floating = testenv.PushBase(t, repo+":v3.6", testenv.BaseOptions{Single: true, OCI: true, Version: "v3.6.1"})
	return floating
}

// pluginReleases adds releases after plugindemo's own v0.2.2 (PluginRepo's
// head commit becomes v0.2.3), and returns the commit of v0.2.3.
func pluginReleases(p *testenv.Plugin) string {
	p.Repo.Tag("v0.2.3")
	p.Repo.WriteFile("CHANGELOG.md", "v0.3.0: a feature\n")
	p.Repo.Commit("feature")
	p.Repo.AnnotatedTag("v0.3.0", "Release v0.3.0")
	p.Repo.WriteFile("CHANGELOG.md", "v1.0.0-rc.1: a candidate\n")
	p.Repo.Commit("candidate")
	p.Repo.AnnotatedTag("v1.0.0-rc.1", "Release candidate")
	return p.HeadCommit
}

// TestOutdatedEndToEnd lists real tags: a Distribution registry on loopback
// holding Traefik-like images, and plugindemo's repository (built from its
// module) served by git daemon, with newer tags added.
func TestOutdatedEndToEnd(t *testing.T) {
	registry := testenv.Registry(t, testenv.RegistryOptions{})
	repo := registry + "/library/traefik"
	floating := releases(t, repo)
	root := t.TempDir()
	p := testenv.PluginRepo(t, root, "github.com/traefik/plugindemo", "v0.2.2")
	v023 := pluginReleases(p)
	gitURL := testenv.GitDaemon(t, root) + p.Path

	r, err := recipe.Parse("recipe.yaml", []byte(fmt.Sprintf(`base: %s:v3.6
plugins:
  demo:
    module: github.com/traefik/plugindemo
    git: %s
    ref: v0.2.2
  edge:
    module: example.com/edge
    git: %s
    ref: main
`, repo, gitURL, gitURL)))
	if err != nil {
		t.Fatal(err)
	}
	// As `xtraefik lock` wrote it before the newer releases: v3.6 was
	// v3.6.1, main was what is now v0.2.3.
	lock := &recipe.Lock{Version: 1,
		Base: recipe.BaseLock{Ref: repo + ":v3.6", Digest: floating.String()},
		Plugins: []recipe.PluginLock{
			{Alias: "demo", Module: "github.com/traefik/plugindemo", Source: plugin.Source{Git: gitURL, Ref: "v0.2.2", Commit: p.ReleaseCommit}},
			{Alias: "edge", Module: "example.com/edge", Source: plugin.Source{Git: gitURL, Ref: "main", Commit: v023}},
		}}
	opts := outdated.Options{
		Git:    outdated.NewGitLister(nil),
		Images: outdated.NewImageLister(images.Options{Keychain: authn.NewMultiKeychain()}),
	}
	rep, err := outdated.Check(context.Background(), r, lock, opts)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := outdated.WriteReport(&out, rep, "text"); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`NAME         CURRENT  LINE  LATEST IN LINE  NEWEST  STATUS
base         v3.6.1   v3.6  v3.6.4          v3.7.0  outdated
plugin demo  v0.2.2   v0    v0.3.0          v0.3.0  outdated
plugin edge  v0.2.3   v0    v0.3.0          v0.3.0  outdated

base: floating tag v3.6: the locked image is v3.6.1 (its version label)
plugin edge: ref main is at commit %s, release v0.2.3

To take a newer version:
  base: v3.6 still stands for v3.6.1; write %s:v3.6.4 in recipe.yaml's base, then run `+"`xtraefik lock`"+`
  plugin demo: set plugins.demo.ref: v0.3.0 in recipe.yaml, then run `+"`xtraefik lock`"+`
  plugin edge: `+"`xtraefik lock --update edge`"+` takes the head of main; for release v0.3.0, set plugins.edge.ref: v0.3.0 in recipe.yaml, then run `+"`xtraefik lock`"+`
`, v023[:12], repo)
	if out.String() != want {
		t.Errorf("text report:\n%s\nwant:\n%s", out.String(), want)
	}

	// The publisher moves v3.6 to v3.6.4: lock --update-base would take it.
	testenv.PushBase(t, repo+":v3.6", testenv.BaseOptions{Single: true, OCI: true, Version: "v3.6.4"})
	if rep, err = outdated.Check(context.Background(), r, lock, opts); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := outdated.WriteReport(&out, rep, "text"); err != nil {
		t.Fatal(err)
	}
	wantLine := "  base: `xtraefik lock --update-base` (or `xtraefik rebase`, which also builds) takes v3.6.4, what v3.6 stands for now; for v3.7.0, write " + repo + ":v3.7.0 in recipe.yaml's base\n"
	if !strings.Contains(out.String(), wantLine) {
		t.Errorf("text report after v3.6 moved:\n%s\nlacks\n%s", out.String(), wantLine)
	}

	// Pre-releases on request, as JSON.
	opts.Pre = true
	if rep, err = outdated.Check(context.Background(), r, lock, opts); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := outdated.WriteReport(&out, rep, "json"); err != nil {
		t.Fatal(err)
	}
	wantJSON := fmt.Sprintf(`{
  "recipe": "recipe.yaml",
  "outdated": true,
  "errors": 0,
  "base": {
    "ref": "%[1]s:v3.6",
    "locked": "%[2]s",
    "current": "v3.6.1",
    "floating": true,
    "now": "v3.6.4",
    "line": "v3.6",
    "latestInLine": "v3.6.4",
    "newest": "v4.0.0-rc1",
    "newer": [
      "v3.6.4",
      "v3.7.0",
      "v4.0.0-rc1"
    ],
    "newestPerLine": [
      "v3.6.4",
      "v3.7.0",
      "v4.0.0-rc1"
    ],
    "status": "outdated",
    "note": "floating tag v3.6: the locked image is v3.6.1 (its version label); the tag stands for v3.6.4 now"
  },
  "plugins": [
    {
      "alias": "demo",
      "module": "github.com/traefik/plugindemo",
      "git": "%[3]s",
      "ref": "v0.2.2",
      "locked": "%[4]s",
      "current": "v0.2.2",
      "line": "v0",
      "latestInLine": "v0.3.0",
      "newest": "v1.0.0-rc.1",
      "newer": [
        "v0.2.3",
        "v0.3.0",
        "v1.0.0-rc.1"
      ],
      "newestPerLine": [
        "v0.3.0",
        "v1.0.0-rc.1"
      ],
      "status": "outdated"
    },
    {
      "alias": "edge",
      "module": "example.com/edge",
      "git": "%[3]s",
      "ref": "main",
      "locked": "%[5]s",
      "current": "v0.2.3",
      "floating": true,
      "line": "v0",
      "latestInLine": "v0.3.0",
      "newest": "v1.0.0-rc.1",
      "newer": [
        "v0.3.0",
        "v1.0.0-rc.1"
      ],
      "newestPerLine": [
        "v0.3.0",
        "v1.0.0-rc.1"
      ],
      "status": "outdated",
      "note": "ref main is at commit %[6]s, release v0.2.3"
    }
  ]
}
`, repo, floating, gitURL, p.ReleaseCommit, v023, v023[:12])
	if out.String() != wantJSON {
		t.Errorf("JSON report:\n%s\nwant:\n%s", out.String(), wantJSON)
	}
}

// TestOutdatedListTagsErrors checks that an unreachable remote and an
// unknown repository are entry errors, reported with the rest.
func TestOutdatedListTagsErrors(t *testing.T) {
	registry := testenv.Registry(t, testenv.RegistryOptions{})
	root := t.TempDir()
	gitURL := testenv.GitDaemon(t, root)
	r, err := recipe.Parse("recipe.yaml", []byte(fmt.Sprintf(`base: %s/library/traefik:v3.6.1
plugins:
  missing:
    module: example.com/missing
    git: %smissing.git
    ref: v1.0.0
`, registry, gitURL)))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := outdated.Check(context.Background(), r, nil, outdated.Options{
		Git:    outdated.NewGitLister(nil),
		Images: outdated.NewImageLister(images.Options{Keychain: authn.NewMultiKeychain()}),
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Errors != 2 || rep.Base.Status != outdated.StatusError || rep.Plugins[0].Status != outdated.StatusError {
		t.Fatalf("report: %+v", rep)
	}
	wantBase := "list tags of " + registry + "/library/traefik: repository not found"
	if got := rep.Base.Error; !strings.HasPrefix(got, wantBase) {
		t.Errorf("base error %q, want it to start with %q", got, wantBase)
	}
	wantGit := "list tags of " + gitURL + "missing.git: "
	if got := rep.Plugins[0].Error; !strings.HasPrefix(got, wantGit) {
		t.Errorf("plugin error %q, want it to start with %q", got, wantGit)
	}
}
