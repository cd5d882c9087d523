package outdated

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/xtraefik/xtraefik/images"
	xplugin "github.com/xtraefik/xtraefik/internal/plugin"
	"github.com/xtraefik/xtraefik/internal/source"
	"github.com/xtraefik/xtraefik/recipe"
	"github.com/xtraefik/xtraefik/verify/interpreters"
)

// fakeGit serves fixed tag lists per URL and records the URLs asked for.
type fakeGit struct {
	mu    sync.Mutex
	tags  map[string][]source.Tag
	asked []string
}

func (f *fakeGit) ListTags(_ context.Context, url string) ([]source.Tag, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, url)
	tags, ok := f.tags[url]
	if !ok {
		return nil, fmt.Errorf("list tags of %s: repository not found", url)
	}
	return tags, nil
}

// fakeImages serves repositories' tags and version labels.
type fakeImages struct {
	tags     map[string][]string // by repository name as written
	versions map[string]string   // by digest, or name:tag
}

func (f *fakeImages) ListTags(_ context.Context, ref images.Reference) ([]string, error) {
	tags, ok := f.tags[ref.Name]
	if !ok {
		return nil, errors.New("list tags of " + ref.Name + ": repository not found")
	}
	return tags, nil
}

func (f *fakeImages) Version(_ context.Context, ref images.Reference, digest string) (string, error) {
	if digest == "" {
		digest = ref.Name + ":" + ref.Tag
	}
	v, ok := f.versions[digest]
	if !ok {
		return "", fmt.Errorf("base image %s (%s) not found", ref.Name, digest)
	}
	return v, nil
}

const (
	commitA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	commitB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	commitC = "cccccccccccccccccccccccccccccccccccccccc"
	commitD = "dddddddddddddddddddddddddddddddddddddddd"
	digestX = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	digestY = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
)

func testTags() []source.Tag {
	return []source.Tag{
		{Name: "v0.1.0", Commit: commitA},
		{Name: "v0.2.2", Commit: commitB},
		{Name: "v0.2.3", Commit: commitC},
		{Name: "v0.3.0", Commit: commitC},
		{Name: "v1.0.0-rc.1", Commit: commitD},
		{Name: "nightly", Commit: commitD},
	}
}

func traefikTags() []string {
	return []string{"latest", "v3.6", "v3.6.1", "v3.6.4", "v3.7.0", "v4.0.0-rc1", "3.6.4"}
}

func parseRecipe(t *testing.T, body string) *recipe.Recipe {
	t.Helper()
	r, err := recipe.Parse("recipe.yaml", []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func plugin(alias, ref string) string {
	return fmt.Sprintf("  %s:\n    module: example.com/%s\n    git: https://git.example/%s.git\n    ref: %s\n", alias, alias, alias, ref)
}

func TestOutdatedCheckPlugins(t *testing.T) {
	r := parseRecipe(t, "base: registry.example/traefik:v3.7.0\nplugins:\n"+
		plugin("tagged", "v0.2.2")+
		plugin("moved", "v0.2.2")+
		plugin("branch", "main")+
		plugin("untagged", "main")+
		plugin("unlocked", "main")+
		plugin("commit", commitC)+
		plugin("latest", "refs/tags/v0.3.0")+
		plugin("gone", "v1.0.0")+
		plugin("untold", "v0.9.0")+
		"mirrors:\n  git:\n    - url: https://mirror.example/\n      insteadOf: https://git.example/\n")
	lock := &recipe.Lock{Version: 1, Plugins: []recipe.PluginLock{
		{Alias: "tagged", Module: "example.com/tagged", Source: xplugin.Source{Git: "https://git.example/tagged.git", Ref: "v0.2.2", Commit: commitB}},
		{Alias: "moved", Module: "example.com/moved", Source: xplugin.Source{Git: "https://git.example/moved.git", Ref: "v0.2.2", Commit: commitA}},
		{Alias: "branch", Module: "example.com/branch", Source: xplugin.Source{Git: "https://git.example/branch.git", Ref: "main", Commit: commitB}},
		{Alias: "untagged", Module: "example.com/untagged", Source: xplugin.Source{Git: "https://git.example/untagged.git", Ref: "main", Commit: commitA + "0"}},
		// Locked for another ref: the lock does not apply.
		{Alias: "unlocked", Module: "example.com/unlocked", Source: xplugin.Source{Git: "https://git.example/unlocked.git", Ref: "dev", Commit: commitB}},
	}}
	git := &fakeGit{tags: map[string][]source.Tag{}}
	for _, a := range []string{"tagged", "moved", "branch", "untagged", "unlocked", "commit", "latest", "untold"} {
		git.tags["https://mirror.example/"+a+".git"] = testTags()
	}
	imgs := &fakeImages{tags: map[string][]string{"registry.example/traefik": traefikTags()}}
	rep, err := Check(context.Background(), r, lock, Options{Git: git, Images: imgs, GitMirrors: r.Mirrors.Git})
	if err != nil {
		t.Fatal(err)
	}
	newer := []string{"v0.2.3", "v0.3.0"}
	want := []Entry{
		{Alias: "branch", Ref: "main", Locked: commitB, Current: "v0.2.2", Floating: true, Line: "v0", LatestInLine: "v0.3.0", Newest: "v0.3.0",
			Newer: newer, NewestPerLine: []string{"v0.3.0"}, Status: StatusOutdated, Note: "ref main is at commit bbbbbbbbbbbb, release v0.2.2"},
		{Alias: "commit", Ref: commitC, Current: "v0.3.0", Line: "v0", Newer: []string{}, NewestPerLine: []string{},
			Status: StatusUpToDate, Note: "ref " + commitC + " is at commit cccccccccccc, release v0.3.0"},
		{Alias: "gone", Ref: "v1.0.0", Newer: []string{}, NewestPerLine: []string{}, Status: StatusError,
			Error: "list tags of https://mirror.example/gone.git: repository not found"},
		{Alias: "latest", Ref: "refs/tags/v0.3.0", Current: "v0.3.0", Line: "v0", Newer: []string{}, NewestPerLine: []string{}, Status: StatusUpToDate},
		{Alias: "moved", Ref: "v0.2.2", Locked: commitA, Current: "v0.2.2", Line: "v0", LatestInLine: "v0.3.0", Newest: "v0.3.0",
			Newer: newer, NewestPerLine: []string{"v0.3.0"}, Status: StatusOutdated,
			Note: "tag v0.2.2 now points to " + commitB + ", the lock has " + commitA + ": it moved since it was locked"},
		{Alias: "tagged", Ref: "v0.2.2", Locked: commitB, Current: "v0.2.2", Line: "v0", LatestInLine: "v0.3.0", Newest: "v0.3.0",
			Newer: newer, NewestPerLine: []string{"v0.3.0"}, Status: StatusOutdated},
		{Alias: "unlocked", Ref: "main", Floating: true, Newest: "v0.3.0", Newer: []string{}, NewestPerLine: []string{}, Status: StatusUnknown,
			Note: "ref main is not a release and is not locked: run xtraefik lock to record its commit"},
		{Alias: "untagged", Ref: "main", Locked: commitA + "0", Floating: true, Newest: "v0.3.0", Newer: []string{}, NewestPerLine: []string{}, Status: StatusUnknown,
			Note: "ref main is at commit aaaaaaaaaaaa, which no release tag points to"},
		{Alias: "untold", Ref: "v0.9.0", Current: "v0.9.0", Line: "v0", Newer: []string{}, NewestPerLine: []string{}, Status: StatusUpToDate,
			Note: "tag v0.9.0 is not on the remote (any more)"},
	}
	for i := range want {
		want[i].Module = "example.com/" + want[i].Alias
		want[i].Git = "https://git.example/" + want[i].Alias + ".git"
	}
	if len(rep.Plugins) != len(want) {
		t.Fatalf("%d plugins, want %d", len(rep.Plugins), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(rep.Plugins[i], want[i]) {
			t.Errorf("plugin %s:\n got %+v\nwant %+v", want[i].Alias, rep.Plugins[i], want[i])
		}
	}
	if !rep.Outdated || rep.Errors != 1 {
		t.Errorf("outdated %v errors %d, want true 1", rep.Outdated, rep.Errors)
	}
	for _, u := range git.asked {
		if !strings.HasPrefix(u, "https://mirror.example/") {
			t.Errorf("listed %s, not through the mirror", u)
		}
	}

	// With --pre, the release candidate counts.
	rep, err = Check(context.Background(), r, lock, Options{Git: git, Images: imgs, GitMirrors: r.Mirrors.Git, Pre: true})
	if err != nil {
		t.Fatal(err)
	}
	got := rep.Plugins[5]
	if got.Newest != "v1.0.0-rc.1" || got.LatestInLine != "v0.3.0" || !reflect.DeepEqual(got.Newer, []string{"v0.2.3", "v0.3.0", "v1.0.0-rc.1"}) {
		t.Errorf("--pre: %+v", got)
	}
}

func TestOutdatedCheckBase(t *testing.T) {
	imgs := &fakeImages{
		tags: map[string][]string{"registry.example/traefik": traefikTags(), "bare.example/traefik": {"3.6", "3.6.1", "3.6.4", "v3.7.0"}},
		versions: map[string]string{digestX: "v3.6.1", digestY: "",
			"registry.example/traefik:v3.6": "v3.6.4", "registry.example/traefik:latest": "", "bare.example/traefik:3.6": "v3.6.1"},
	}
	git := &fakeGit{tags: map[string][]source.Tag{"https://git.example/p.git": testTags()}}
	for _, tc := range []struct {
		name, base, lockRef, digest string
		want                        Entry
	}{
		{name: "exact tag", base: "registry.example/traefik:v3.6.1", want: Entry{
			Current: "v3.6.1", Line: "v3.6", LatestInLine: "v3.6.4", Newest: "v3.7.0",
			Newer: []string{"v3.6.4", "v3.7.0"}, NewestPerLine: []string{"v3.6.4", "v3.7.0"}, Status: StatusOutdated}},
		{name: "exact tag, bare style", base: "bare.example/traefik:3.6.1", want: Entry{
			Current: "3.6.1", Line: "v3.6", LatestInLine: "3.6.4", Newest: "3.6.4",
			Newer: []string{"3.6.4"}, NewestPerLine: []string{"3.6.4"}, Status: StatusOutdated}},
		{name: "tag and digest", base: "registry.example/traefik:v3.7.0@" + digestX, want: Entry{
			Current: "v3.7.0", Line: "v3.7", Newer: []string{}, NewestPerLine: []string{}, Status: StatusUpToDate}},
		{name: "floating tag, locked, moved since", base: "registry.example/traefik:v3.6", lockRef: "registry.example/traefik:v3.6", digest: digestX, want: Entry{
			Locked: digestX, Current: "v3.6.1", Floating: true, Now: "v3.6.4", Line: "v3.6", LatestInLine: "v3.6.4", Newest: "v3.7.0",
			Newer: []string{"v3.6.4", "v3.7.0"}, NewestPerLine: []string{"v3.6.4", "v3.7.0"}, Status: StatusOutdated,
			Note: "floating tag v3.6: the locked image is v3.6.1 (its version label); the tag stands for v3.6.4 now"}},
		{name: "floating tag, locked, bare style", base: "bare.example/traefik:3.6", lockRef: "bare.example/traefik:3.6", digest: digestX, want: Entry{
			Locked: digestX, Current: "v3.6.1", Floating: true, Now: "v3.6.1", Line: "v3.6", LatestInLine: "3.6.4", Newest: "3.6.4",
			Newer: []string{"3.6.4"}, NewestPerLine: []string{"3.6.4"}, Status: StatusOutdated,
			Note: "floating tag 3.6: the locked image is v3.6.1 (its version label)"}},
		{name: "floating tag, lock for another base", base: "registry.example/traefik:v3.6", lockRef: "registry.example/traefik:v3.5", digest: digestX, want: Entry{
			Current: "v3.6.4", Floating: true, Now: "v3.6.4", Line: "v3.6", Newest: "v3.7.0", Newer: []string{"v3.7.0"}, NewestPerLine: []string{"v3.7.0"}, Status: StatusOutdated,
			Note: "floating tag v3.6 is not locked: compared with v3.6.4, what it stands for now"}},
		{name: "floating tag, no label", base: "registry.example/traefik:latest", lockRef: "registry.example/traefik:latest", digest: digestY, want: Entry{
			Locked: digestY, Floating: true, Newest: "v3.7.0", Newer: []string{}, NewestPerLine: []string{}, Status: StatusUnknown,
			Note: "floating tag latest: the locked image (" + digestY + ") has no version label to compare"}},
		{name: "floating tag, lookup fails", base: "registry.example/traefik:v3.6", lockRef: "registry.example/traefik:v3.6", digest: "sha256:3333333333333333333333333333333333333333333333333333333333333333", want: Entry{
			Locked: "sha256:3333333333333333333333333333333333333333333333333333333333333333", Floating: true, Now: "v3.6.4", Newer: []string{}, NewestPerLine: []string{}, Status: StatusError,
			Error: "base image registry.example/traefik (sha256:3333333333333333333333333333333333333333333333333333333333333333) not found"}},
		{name: "floating tag, unlocked, no label", base: "registry.example/traefik:latest", want: Entry{
			Floating: true, Newest: "v3.7.0", Newer: []string{}, NewestPerLine: []string{}, Status: StatusUnknown,
			Note: "floating tag latest: its image has no version label to compare"}},
		{name: "digest only", base: "registry.example/traefik@" + digestX, want: Entry{
			Newer: []string{}, NewestPerLine: []string{}, Status: StatusUnknown, Note: "pinned by digest only: there is no tag to compare"}},
		{name: "layout", base: "oci:/tmp/layout:v3.6.1", want: Entry{
			Newer: []string{}, NewestPerLine: []string{}, Status: StatusUnknown, Note: "not in a registry: there are no tags to compare"}},
		{name: "unknown repository", base: "other.example/traefik:v3.6.1", want: Entry{
			Newer: []string{}, NewestPerLine: []string{}, Status: StatusError, Error: "list tags of other.example/traefik: repository not found"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := parseRecipe(t, "base: "+tc.base+"\nplugins:\n  p:\n    module: example.com/p\n    git: https://git.example/p.git\n    ref: v0.3.0\n")
			var lock *recipe.Lock
			if tc.lockRef != "" {
				lock = &recipe.Lock{Version: 1, Base: recipe.BaseLock{Ref: tc.lockRef, Digest: tc.digest}}
			}
			rep, err := Check(context.Background(), r, lock, Options{Git: git, Images: imgs})
			if err != nil {
				t.Fatal(err)
			}
			tc.want.Ref = tc.base
			if !reflect.DeepEqual(rep.Base, tc.want) {
				t.Errorf("\n got %+v\nwant %+v", rep.Base, tc.want)
			}
		})
	}
}

// TestOutdatedKeepsSecretsAndSources: a git URL's credentials reach neither
// the entry nor its error, and module-proxy and directory plugins are not
// taken for git repositories.
func TestOutdatedKeepsSecretsAndSources(t *testing.T) {
	git := &fakeGit{tags: map[string][]source.Tag{}}
	for _, tt := range []struct {
		plugin *recipe.Plugin
		status Status
		asked  bool
	}{
		{&recipe.Plugin{Module: "example.com/a", Git: "https://ci:ghp_SECRET@git.example.com/a.git", Ref: "v1.0.0"}, StatusError, true},
		{&recipe.Plugin{Module: "example.com/b", Version: "v1.2"}, StatusUnknown, false},
		{&recipe.Plugin{Module: "example.com/c", Path: "./c"}, StatusUnknown, false},
	} {
		git.asked = nil
		e := checkPlugin(t.Context(), "x", tt.plugin, nil, Options{Git: git})
		data, _ := json.Marshal(e)
		if strings.Contains(string(data), "ghp_SECRET") {
			t.Errorf("%s: the entry shows the token: %s", tt.plugin.Module, data)
		}
		if e.Status != tt.status || (len(git.asked) > 0) != tt.asked {
			t.Errorf("%s: status %s, asked git %v; want %s, %v", tt.plugin.Module, e.Status, git.asked, tt.status, tt.asked)
		}
	}
}

type fakeModules map[string][]string

func (f fakeModules) Versions(_ context.Context, mod string) ([]string, error) {
	vs, ok := f[mod]
	if !ok {
		return nil, fmt.Errorf("list versions of %s: not found", mod)
	}
	return vs, nil
}

// TestOutdatedModulePlugins: a module-proxy plugin is compared by the
// version its lock pins (or its exact query) with the versions the proxy
// lists; a query that is not locked says so.
func TestOutdatedModulePlugins(t *testing.T) {
	mods := fakeModules{"example.com/m": {"v1.0.0", "v1.1.0", "v1.2.0-rc.1", "v2.0.0"}}
	lock := &recipe.Lock{Plugins: []recipe.PluginLock{{Alias: "m", Module: "example.com/m", Source: xplugin.Source{Query: "v1", Version: "v1.0.0"}}}}
	for _, tt := range []struct {
		name    string
		plugin  *recipe.Plugin
		lock    *recipe.Lock
		status  Status
		current string
		newest  string
	}{
		{"locked query", &recipe.Plugin{Module: "example.com/m", Version: "v1"}, lock, StatusOutdated, "v1.0.0", "v2.0.0"},
		{"exact version", &recipe.Plugin{Module: "example.com/m", Version: "v2.0.0"}, nil, StatusUpToDate, "v2.0.0", ""},
		{"unlocked query", &recipe.Plugin{Module: "example.com/m", Version: "latest"}, nil, StatusUnknown, "", "v2.0.0"},
	} {
		e := checkPlugin(t.Context(), "m", tt.plugin, tt.lock, Options{Git: &fakeGit{}, Modules: mods})
		if e.Status != tt.status || e.Current != tt.current || e.Newest != tt.newest {
			t.Errorf("%s: %+v; want %s, current %q, newest %q", tt.name, e, tt.status, tt.current, tt.newest)
		}
	}
}

// TestOutdatedInterpreterChange: an outdated base says whether the update
// it proposes (what a floating tag stands for now, else the newest of the
// line, else the newest) embeds another Yaegi than the current release,
// in the JSON entry and the text table, with a note on what to do; the
// update's interpreter may be unknown, and a failed lookup is said.
func TestOutdatedInterpreterChange(t *testing.T) {
	imgs := &fakeImages{
		tags:     map[string][]string{"registry.example/traefik": {"v3.6", "v3.6.12", "v3.6.13", "v3.8.1", "v3.9.0"}},
		versions: map[string]string{digestX: "v3.6.12", "registry.example/traefik:v3.6": "v3.6.13"},
	}
	git := &fakeGit{tags: map[string][]source.Tag{"https://git.example/p.git": testTags()}}
	// The release table, and past it what Traefik's go.mod says (as the
	// module proxy would tell).
	goMod := map[string]string{"v3.8.1": "v0.17.0"}
	of := func(_ context.Context, v string) (string, error) {
		if v == "v3.9.0" {
			return "", errors.New("go.mod of Traefik v3.9.0: not found")
		}
		if in, ok := interpreters.ForTraefik(v); ok {
			return in.Yaegi, nil
		}
		return goMod[v], nil
	}
	for _, tc := range []struct {
		name, base, lockRef string
		tags                []string
		want                *InterpreterChange
		text                string
	}{
		{name: "patch, same Yaegi", base: "registry.example/traefik:v3.6.12", tags: []string{"v3.6.12", "v3.6.13"},
			want: &InterpreterChange{Release: "v3.6.13", From: "v0.16.1", To: "v0.16.1"}, text: "yaegi v0.16.1"},
		{name: "another Yaegi", base: "registry.example/traefik:v3.6.13", tags: []string{"v3.6.13", "v3.8.1"},
			want: &InterpreterChange{Release: "v3.8.1", From: "v0.16.1", To: "v0.17.0", Changed: true}, text: "yaegi v0.16.1 -> v0.17.0"},
		{name: "floating tag: what it stands for now", base: "registry.example/traefik:v3.6", lockRef: "registry.example/traefik:v3.6",
			tags: []string{"v3.6", "v3.6.12", "v3.6.13", "v3.8.1"},
			want: &InterpreterChange{Release: "v3.6.13", From: "v0.16.1", To: "v0.16.1"}, text: "yaegi v0.16.1"},
		{name: "unknown interpreter", base: "registry.example/traefik:v3.6.13", tags: []string{"v3.6.13", "v3.8.2"},
			want: &InterpreterChange{Release: "v3.8.2", From: "v0.16.1"}, text: "yaegi v0.16.1 -> ?"},
		{name: "lookup fails", base: "registry.example/traefik:v3.6.13", tags: []string{"v3.6.13", "v3.9.0"},
			want: &InterpreterChange{Release: "v3.9.0", From: "v0.16.1", Error: "the interpreter of Traefik v3.9.0: go.mod of Traefik v3.9.0: not found"}, text: "yaegi v0.16.1 -> ?"},
		{name: "up to date", base: "registry.example/traefik:v3.6.13", tags: []string{"v3.6.13"}, text: "STATUS\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			imgs.tags["registry.example/traefik"] = tc.tags
			r := parseRecipe(t, "base: "+tc.base+"\nplugins:\n"+plugin("p", "v0.3.0"))
			var lock *recipe.Lock
			if tc.lockRef != "" {
				lock = &recipe.Lock{Version: 1, Base: recipe.BaseLock{Ref: tc.lockRef, Digest: digestX}}
			}
			rep, err := Check(context.Background(), r, lock, Options{Git: git, Images: imgs, Interpreter: of})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(rep.Base.Interpreter, tc.want) {
				t.Errorf("interpreter %+v, want %+v", rep.Base.Interpreter, tc.want)
			}
			if rep.Plugins[0].Interpreter != nil {
				t.Errorf("a plugin entry has an interpreter: %+v", rep.Plugins[0].Interpreter)
			}
			var text, doc strings.Builder
			if err := WriteReport(&text, rep, "text"); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(text.String(), tc.text) {
				t.Errorf("text report lacks %q:\n%s", tc.text, text.String())
			}
			note := "base: interpreter: v3.8.1 embeds yaegi v0.17.0, the current release yaegi v0.16.1: the plugins' verdicts do not carry over (rebase verifies them again); check them first with `xtraefik verify --base registry.example/traefik:v3.8.1`"
			if changed := tc.want != nil && tc.want.Changed; strings.Contains(text.String(), note) != changed {
				t.Errorf("note shown = %v, want %v:\n%s", !changed, changed, text.String())
			}
			if err := WriteReport(&doc, rep, "json"); err != nil {
				t.Fatal(err)
			}
			var back Report
			if err := json.Unmarshal([]byte(doc.String()), &back); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back.Base.Interpreter, tc.want) {
				t.Errorf("JSON interpreter %+v, want %+v:\n%s", back.Base.Interpreter, tc.want, doc.String())
			}
		})
	}
	// Without a way to tell, nothing is said.
	rep, err := Check(context.Background(), parseRecipe(t, "base: registry.example/traefik:v3.6.12\nplugins:\n"+plugin("p", "v0.3.0")), nil, Options{Git: git, Images: imgs})
	if err != nil || rep.Base.Status != StatusOutdated || rep.Base.Interpreter != nil {
		t.Errorf("no Interpreter option: %+v, %v", rep.Base, err)
	}
}
