package outdated

import (
	"reflect"
	"strings"
	"testing"

	"golang.org/x/mod/semver"
)

func TestOutdatedParseImageTag(t *testing.T) {
	for _, tc := range []struct {
		tag     string
		ok      bool
		sem     string
		pre     bool
		bare    bool
		variant string
	}{
		{tag: "v3.6.1", ok: true, sem: "v3.6.1"},
		{tag: "3.6.1", ok: true, sem: "v3.6.1", bare: true},
		{tag: "v3.0.0-rc1", ok: true, sem: "v3.0.0-rc1", pre: true},
		{tag: "v2.0.0-alpha8", ok: true, sem: "v2.0.0-alpha8", pre: true},
		{tag: "v3.0.0-beta.5", ok: true, sem: "v3.0.0-beta.5", pre: true},
		{tag: "v3.6.1-windowsservercore-ltsc2022", ok: true, sem: "v3.6.1", variant: "-windowsservercore-ltsc2022"},
		{tag: "3.0.0-rc1-nanoserver-ltsc2022", ok: true, sem: "v3.0.0-rc1", pre: true, bare: true, variant: "-nanoserver-ltsc2022"},
		{tag: "v1.7.34-alpine", ok: true, sem: "v1.7.34", variant: "-alpine"},
		{tag: "v3.6"},
		{tag: "v3"},
		{tag: "latest"},
		{tag: "ramequin"},
		{tag: "v3.6.01"},
	} {
		got, ok := parseImageTag(tc.tag)
		if ok != tc.ok {
			t.Errorf("%s: ok = %v, want %v", tc.tag, ok, tc.ok)
			continue
		}
		if !ok {
			continue
		}
		if got.sem != tc.sem || got.pre != tc.pre || got.bare != tc.bare || got.variant != tc.variant || got.tag != tc.tag {
			t.Errorf("%s: got %+v, want sem %s pre %v bare %v variant %q", tc.tag, got, tc.sem, tc.pre, tc.bare, tc.variant)
		}
	}
}

func TestOutdatedParseRelease(t *testing.T) {
	for _, tc := range []struct {
		tag string
		ok  bool
		sem string
		pre bool
	}{
		{tag: "v0.2.2", ok: true, sem: "v0.2.2"},
		{tag: "1.4.0", ok: true, sem: "v1.4.0"},
		{tag: "v1.0.0-rc.1", ok: true, sem: "v1.0.0-rc.1", pre: true},
		{tag: "v0.0.1-test", ok: true, sem: "v0.0.1-test", pre: true},
		{tag: "v1.0.0+meta", ok: true, sem: "v1.0.0+meta"},
		{tag: "v1.0"},
		{tag: "release-1.0.0"},
		{tag: "main"},
		{tag: "v1.0.0-"},
	} {
		got, ok := parseRelease(tc.tag)
		if ok != tc.ok || (ok && (got.sem != tc.sem || got.pre != tc.pre)) {
			t.Errorf("%s: got %+v %v, want sem %s pre %v ok %v", tc.tag, got, ok, tc.sem, tc.pre, tc.ok)
		}
	}
}

func TestOutdatedCompare(t *testing.T) {
	// What a Traefik repository holds: both tag styles, floating tags,
	// pre-releases, Windows variants, codenames.
	traefik := []string{
		"latest", "v3", "3", "v3.6", "3.6", "v3.7", "ramequin", "chaource",
		"v3.5.4", "3.5.4", "v3.6.0", "3.6.0", "v3.6.1", "3.6.1", "v3.6.2", "v3.6.4", "3.6.4",
		"v3.6.4-windowsservercore-ltsc2022", "v3.6.5-windowsservercore-ltsc2022",
		"v3.7.0-rc1", "v3.7.0-rc2", "v3.7.0", "v3.7.1", "v3.8.0-rc1", "v4.0.0-rc1", "v2.11.30",
	}
	plugin := []string{"v0.0.1-test", "v0.1.0", "v0.2.1", "v0.2.2", "v0.2.3", "0.2.3", "v0.3.0", "v1.0.0-rc.1", "v1.0.0-rc.2", "release-candidate", "main"}

	type want struct {
		line, latestInLine, newest string
		newer, perLine             []string
	}
	for _, tc := range []struct {
		name     string
		current  string
		releases []release
		lineOf   lineFunc
		pre      bool
		want     want
	}{
		{
			name: "base patch behind, newer minors", current: "v3.6.1",
			releases: imageReleases(traefik, false, ""), lineOf: semver.MajorMinor,
			want: want{"v3.6", "v3.6.4", "v3.7.1", []string{"v3.6.2", "v3.6.4", "v3.7.0", "v3.7.1"}, []string{"v3.6.4", "v3.7.1"}},
		},
		{
			name: "base with pre-releases", current: "v3.6.1", pre: true,
			releases: imageReleases(traefik, false, ""), lineOf: semver.MajorMinor,
			want: want{"v3.6", "v3.6.4", "v4.0.0-rc1",
				[]string{"v3.6.2", "v3.6.4", "v3.7.0-rc1", "v3.7.0-rc2", "v3.7.0", "v3.7.1", "v3.8.0-rc1", "v4.0.0-rc1"},
				[]string{"v3.6.4", "v3.7.1", "v3.8.0-rc1", "v4.0.0-rc1"}},
		},
		{
			name: "base bare tags stay bare", current: "v3.6.1",
			releases: imageReleases(traefik, true, ""), lineOf: semver.MajorMinor,
			want: want{"v3.6", "3.6.4", "3.6.4", []string{"3.6.4"}, []string{"3.6.4"}},
		},
		{
			name: "base variant stays in its variant", current: "v3.6.4",
			releases: imageReleases(traefik, false, "-windowsservercore-ltsc2022"), lineOf: semver.MajorMinor,
			want: want{"v3.6", "v3.6.5-windowsservercore-ltsc2022", "v3.6.5-windowsservercore-ltsc2022",
				[]string{"v3.6.5-windowsservercore-ltsc2022"}, []string{"v3.6.5-windowsservercore-ltsc2022"}},
		},
		{
			name: "base up to date", current: "v3.7.1",
			releases: imageReleases(traefik, false, ""), lineOf: semver.MajorMinor,
			want: want{"v3.7", "", "", []string{}, []string{}},
		},
		{
			name: "base release candidate current, newer release without --pre", current: "v3.7.0-rc2",
			releases: imageReleases(traefik, false, ""), lineOf: semver.MajorMinor,
			want: want{"v3.7", "v3.7.1", "v3.7.1", []string{"v3.7.0", "v3.7.1"}, []string{"v3.7.1"}},
		},
		{
			name: "plugin: same major, one name per version", current: "v0.2.2",
			releases: gitReleases(plugin), lineOf: semver.Major,
			want: want{"v0", "v0.3.0", "v0.3.0", []string{"v0.2.3", "v0.3.0"}, []string{"v0.3.0"}},
		},
		{
			name: "plugin: pre-releases on request", current: "v0.2.2", pre: true,
			releases: gitReleases(plugin), lineOf: semver.Major,
			want: want{"v0", "v0.3.0", "v1.0.0-rc.2", []string{"v0.2.3", "v0.3.0", "v1.0.0-rc.1", "v1.0.0-rc.2"}, []string{"v0.3.0", "v1.0.0-rc.2"}},
		},
		{
			name: "plugin newest", current: "v0.3.0",
			releases: gitReleases(plugin), lineOf: semver.Major,
			want: want{"v0", "", "", []string{}, []string{}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := compare(tc.current, tc.releases, tc.lineOf, tc.pre)
			got := want{c.Line, c.LatestInLine, c.Newest, c.Newer, c.NewestPerLine}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestOutdatedFloatingLine(t *testing.T) {
	for _, tc := range []struct {
		tag, line, variant string
		bare, ok           bool
	}{
		{tag: "v3.6", line: "v3.6", ok: true},
		{tag: "3.6", line: "v3.6", bare: true, ok: true},
		{tag: "v3", line: "v3", ok: true},
		{tag: "3.6-nanoserver-ltsc2022", line: "v3.6", bare: true, variant: "-nanoserver-ltsc2022", ok: true},
		{tag: "latest"},
		{tag: "ramequin"},
	} {
		line, bare, variant, ok := floatingLine(tc.tag)
		if line != tc.line || bare != tc.bare || variant != tc.variant || ok != tc.ok {
			t.Errorf("%s: got %q %v %q %v", tc.tag, line, bare, variant, ok)
		}
	}
}

func TestOutdatedTextReport(t *testing.T) {
	rep := &Report{Recipe: "/work/recipes/edge.yaml", Outdated: true, Errors: 1,
		Base: Entry{Ref: "registry.example/traefik:v3.6", Current: "v3.6.1", Floating: true, Now: "v3.6.4", Line: "v3.6", LatestInLine: "v3.6.4", Newest: "v4.0.0",
			Newer: []string{"v3.6.4", "v3.7.0", "v3.7.2", "v3.8.0", "v4.0.0"}, NewestPerLine: []string{"v3.6.4", "v3.7.2", "v3.8.0", "v4.0.0"},
			Status: StatusOutdated, Note: "floating tag v3.6: the locked image is v3.6.1 (its version label); the tag stands for v3.6.4 now"},
		Plugins: []Entry{
			{Alias: "a", Ref: "main", Floating: true, Current: "v1.2.0", Line: "v1", Newest: "v2.0.1", Newer: []string{"v2.0.1"}, NewestPerLine: []string{"v2.0.1"}, Status: StatusOutdated},
			{Alias: "b", Ref: "v0.1.0", Status: StatusError, Error: "list tags of https://git.example/b.git: repository not found"},
			{Alias: "c", Ref: "main", Floating: true, Newest: "v0.3.0", Status: StatusUnknown, Note: "ref main is at commit cccccccccccc, which no release tag points to"},
			{Alias: "d", Ref: "v0.3.0", Current: "v0.3.0", Line: "v0", Status: StatusUpToDate},
		}}
	var out strings.Builder
	if err := WriteReport(&out, rep, "text"); err != nil {
		t.Fatal(err)
	}
	want := `NAME      CURRENT  LINE  LATEST IN LINE  NEWEST  STATUS
base      v3.6.1   v3.6  v3.6.4          v4.0.0  outdated
plugin a  v1.2.0   v1    -               v2.0.1  outdated
plugin b  -        -     -               -       error
plugin c  -        -     -               v0.3.0  unknown
plugin d  v0.3.0   v0    -               -       up-to-date

base: floating tag v3.6: the locked image is v3.6.1 (its version label); the tag stands for v3.6.4 now
base: also v3.7.2, v3.8.0 (the newest of each minor in between)
plugin b: list tags of https://git.example/b.git: repository not found
plugin c: ref main is at commit cccccccccccc, which no release tag points to

To take a newer version:
  base: ` + "`xtraefik lock --update-base` (or `xtraefik rebase`, which also builds)" + ` takes v3.6.4, what v3.6 stands for now; for v4.0.0, write registry.example/traefik:v4.0.0 in edge.yaml's base
  plugin a: ` + "`xtraefik lock --update a`" + ` takes the head of main; for release v2.0.1, set plugins.a.ref: v2.0.1 in edge.yaml, then run ` + "`xtraefik lock`" + `
`
	if out.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", out.String(), want)
	}
	if err := WriteReport(&out, rep, "yaml"); err == nil || err.Error() != `report format "yaml": use text or json` {
		t.Errorf("yaml: %v", err)
	}
}
