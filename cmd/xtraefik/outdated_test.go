package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/xtraefik/xtraefik/internal/testenv"
	"github.com/xtraefik/xtraefik/outdated"
)

// TestOutdatedCommand runs `xtraefik outdated` on a recipe naming the public
// sources, sent by mirrors to a loopback registry with Traefik-like releases
// and a git daemon serving plugindemo with releases after v0.2.2.
func TestOutdatedCommand(t *testing.T) {
	w := &world{t: t, dir: t.TempDir(), gitRoot: t.TempDir(), env: map[string]string{}}
	w.registry = testenv.Registry(t, testenv.RegistryOptions{})
	for _, v := range []string{"v3.6.1", "v3.6.4", "v3.7.0", "v4.0.0-rc1"} {
		testenv.PushBase(t, w.registry+"/library/traefik:"+v, testenv.BaseOptions{Single: true, Version: v})
	}
	w.plugin = testenv.PluginRepo(t, w.gitRoot, demoModule, demoVersion)
	w.plugin.Repo.Tag("v0.2.3")
	w.plugin.Repo.WriteFile("CHANGELOG.md", "v0.3.0\n")
	w.plugin.Repo.Commit("feature")
	w.plugin.Repo.AnnotatedTag("v0.3.0", "Release v0.3.0")
	w.gitURL = testenv.GitDaemon(t, w.gitRoot)
	w.env["XTRAEFIK_GIT_MIRRORS"] = demoGit + "=" + w.gitURL + w.plugin.Path
	w.env["XTRAEFIK_REGISTRY_MIRRORS"] = "docker.io=" + w.registry
	w.env["HOME"] = w.dir

	behind := w.writeRecipe("behind.yaml", fmt.Sprintf("base: docker.io/library/traefik:v3.6.1\nplugins:\n  demo:\n    module: %s\n    git: %s\n    ref: v0.2.2\n", demoModule, demoGit))
	out := w.mustRun("outdated", "-f", behind)
	// The interpreter column: Traefik v3.6.4, the update, embeds the
	// same Yaegi as v3.6.1 (xtraefik's release table).
	want := "NAME         CURRENT  LINE  LATEST IN LINE  NEWEST  STATUS    INTERPRETER\n" +
		"base         v3.6.1   v3.6  v3.6.4          v3.7.0  outdated  yaegi v0.16.1\n" +
		"plugin demo  v0.2.2   v0    v0.3.0          v0.3.0  outdated  -\n" +
		"\n" +
		"To take a newer version:\n" +
		"  base: write docker.io/library/traefik:v3.6.4 in behind.yaml's base, then run `xtraefik lock`\n" +
		"  plugin demo: set plugins.demo.ref: v0.3.0 in behind.yaml, then run `xtraefik lock`\n"
	if out != want {
		t.Errorf("outdated:\n%s\nwant:\n%s", out, want)
	}

	// --exit-code: status 2, naming what is outdated; the report is printed all the same.
	stdout, _, err := w.run("outdated", "-f", behind, "--exit-code", "--output", "json")
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != exitOutdated || exitOutdated != 2 || err.Error() != "outdated: base, plugin demo" {
		t.Fatalf("--exit-code: %v (%#v), want exit status 2 and \"outdated: base, plugin demo\"", err, ee)
	}
	var rep outdated.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("JSON report: %v\n%s", err, stdout)
	}
	if !rep.Outdated || rep.Errors != 0 || rep.Base.Newest != "v3.7.0" || rep.Plugins[0].LatestInLine != "v0.3.0" || rep.Plugins[0].Status != outdated.StatusOutdated {
		t.Errorf("JSON report: %s", stdout)
	}

	// Up to date: --exit-code exits 0; with --pre the release candidate counts.
	current := w.writeRecipe("current.yaml", fmt.Sprintf("base: docker.io/library/traefik:v3.7.0\nplugins:\n  demo:\n    module: %s\n    git: %s\n    ref: v0.3.0\n", demoModule, demoGit))
	out = w.mustRun("outdated", "-f", current, "--exit-code")
	want = "NAME         CURRENT  LINE  LATEST IN LINE  NEWEST  STATUS\n" +
		"base         v3.7.0   v3.7  -               -       up-to-date\n" +
		"plugin demo  v0.3.0   v0    -               -       up-to-date\n"
	if out != want {
		t.Errorf("outdated (up to date):\n%s\nwant:\n%s", out, want)
	}
	if _, _, err := w.run("outdated", "-f", current, "--exit-code", "--pre"); !errors.As(err, &ee) || ee.code != 2 || err.Error() != "outdated: base" {
		t.Errorf("--pre --exit-code: %v, want exit status 2 for the base", err)
	}

	// No recipe: a JSON document all the same, with the error.
	stdout, _, err = w.run("outdated", "-f", w.dir+"/none.yaml", "--output", "json")
	var doc struct {
		Command, Error string
		OK             bool
	}
	if jerr := json.Unmarshal([]byte(stdout), &doc); err == nil || jerr != nil || doc.Command != "outdated" || doc.OK || doc.Error != err.Error() {
		t.Errorf("missing recipe: %v, JSON %q (%v)", err, stdout, jerr)
	}

	// A repository the mirror lacks: an error (status 1), the rest reported.
	w.env["XTRAEFIK_GIT_MIRRORS"] = demoGit + "=" + w.gitURL + "nothing.git"
	stdout, _, err = w.run("outdated", "-f", current, "--exit-code")
	if err == nil || errors.As(err, &ee) || err.Error() != "could not check plugin demo" {
		t.Errorf("unreachable plugin: %v, want \"could not check plugin demo\" (status 1)", err)
	}
	if want := "plugin demo  -        -     -               -       error\n"; !strings.Contains(stdout, want) {
		t.Errorf("unreachable plugin: report\n%s\nlacks %q", stdout, want)
	}
}
