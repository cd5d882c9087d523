package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/xtraefik/xtraefik/internal/fileset"
	"github.com/xtraefik/xtraefik/internal/outdated"
	"github.com/xtraefik/xtraefik/internal/testenv"
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

// serveTraefikGoMod serves data as github.com/traefik/traefik/v3@version
// (its go.mod, in a zip holding only that file) from the loopback proxy p.
func serveTraefikGoMod(t *testing.T, p *testenv.GoProxyServer, version string, data []byte) {
	t.Helper()
	gomod := fileset.File{Path: "go.mod", Size: int64(len(data)), Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }}
	files, err := fileset.New([]fileset.File{gomod})
	if err != nil {
		t.Fatal(err)
	}
	p.AddTree(t, "github.com/traefik/traefik/v3", version, files, time.Date(2026, 7, 24, 0, 0, 0, 0, time.UTC))
}

// TestOutdatedInterpreterFromGoMod: the update outdated proposes, v3.8.1,
// is in no table; its interpreter comes from Traefik's own go.mod for that
// release, through GOPROXY and checked against GOSUMDB (the .mod alone: no
// module zip, no base layer). Here it requires yaegi v0.15.1, so the
// update changes the interpreter. With GOPROXY=off the change is unknown,
// with the reason; a go.mod the checksum database does not vouch for is
// refused.
func TestOutdatedInterpreterFromGoMod(t *testing.T) {
	w := newWorld(t)
	registry, log := testenv.RecordingProxy(t, w.registry)
	for _, v := range []string{"v3.6.12", "v3.8.1"} {
		testenv.PushBase(t, registry+"/library/traefik:"+v, testenv.BaseOptions{OCI: true, Single: true, Version: v,
			Platforms: []v1.Platform{{OS: "linux", Architecture: "amd64"}}})
	}
	w.env["XTRAEFIK_REGISTRY_MIRRORS"] = "docker.io=" + registry
	real := goModOf(t, "github.com/traefik/traefik/v3", "v3.6.12")
	crafted := bytes.Replace(real, []byte("github.com/traefik/yaegi v0.16.1"), []byte("github.com/traefik/yaegi v0.15.1"), 1)
	if bytes.Equal(crafted, real) {
		t.Fatalf("Traefik v3.6.12's go.mod does not require yaegi v0.16.1:\n%s", real)
	}
	p := testenv.GoProxy(t)
	db := testenv.SumDB(t, p)
	p.ServeSumDB(db)
	serveTraefikGoMod(t, p, "v3.8.1", crafted)
	w.env["GOPROXY"], w.env["GOSUMDB"] = p.URL, db.GOSUMDB
	rp := w.writeRecipe("outdated.yaml", w.demoRecipe("docker.io/library/traefik:v3.6.12", ""))

	check := func(cache string) outdated.Report {
		t.Helper()
		out, errOut, err := w.runIn(cache, "outdated", "-f", rp, "--output", "json")
		var rep outdated.Report
		if jerr := json.Unmarshal([]byte(out), &rep); jerr != nil {
			t.Fatalf("outdated: %v / %v\n%s\n%s", err, jerr, out, errOut)
		}
		return rep
	}
	log.Reset()
	rep := check(filepath.Join(w.dir, "cache"))
	want := &outdated.InterpreterChange{Release: "v3.8.1", From: "v0.16.1", To: "v0.15.1", Changed: true}
	if !reflect.DeepEqual(rep.Base.Interpreter, want) {
		t.Fatalf("interpreter change %+v, want %+v (base entry %+v)", rep.Base.Interpreter, want, rep.Base)
	}
	var modAsked bool
	for _, r := range p.Requests() {
		modAsked = modAsked || strings.HasSuffix(r, "/github.com/traefik/traefik/v3/@v/v3.8.1.mod")
		if strings.Contains(r, "traefik/v3/@v/") && !strings.HasSuffix(r, ".mod") {
			t.Errorf("outdated asked the proxy for %s: only the go.mod is needed", r)
		}
	}
	if !modAsked {
		t.Errorf("the proxy was not asked for v3.8.1's go.mod: %q", p.Requests())
	}
	for _, r := range log.Requests() {
		if r.Blob() != "" {
			t.Errorf("outdated read a blob of the base: %s %s", r.Method, r.Path)
		}
	}
	out := w.mustRun("outdated", "-f", rp)
	if !strings.Contains(out, "yaegi v0.16.1 -> v0.15.1\n") || !strings.Contains(out, "base: interpreter: v3.8.1 embeds yaegi v0.15.1") {
		t.Errorf("text report:\n%s", out)
	}

	// No module proxy: the change is unknown, and the report says why.
	w.env["GOPROXY"] = "off"
	rep = check(filepath.Join(w.dir, "cache-off"))
	if c := rep.Base.Interpreter; c == nil || c.From != "v0.16.1" || c.To != "" || c.Changed || !strings.Contains(c.Error, "GOPROXY=off") {
		t.Errorf("GOPROXY=off: interpreter change %+v, want v0.16.1 -> unknown, naming GOPROXY=off", c)
	}

	// The proxy now serves another go.mod for v3.8.1 than the checksum
	// database recorded: refused, never read as the release's.
	serveTraefikGoMod(t, p, "v3.8.1", real)
	w.env["GOPROXY"] = p.URL
	rep = check(filepath.Join(w.dir, "cache-tampered"))
	if c := rep.Base.Interpreter; c == nil || c.To != "" || c.Changed || !strings.Contains(c.Error, "checksum") {
		t.Errorf("tampered go.mod: interpreter change %+v, want unknown with a checksum error", c)
	}
}
