package outdated

import (
	"regexp"
	"sort"
	"strings"

	"golang.org/x/mod/semver"
)

// release is one tag read as a version.
type release struct {
	// tag is the name as published: what a recipe would write.
	tag string
	// sem is its semantic version with a "v" prefix and without any image
	// variant suffix, for golang.org/x/mod/semver.
	sem string
	pre bool
}

// reFull accepts complete versions only: "v3.6" is shorthand for v3.6.0 to
// x/mod/semver, but as a tag it is a floating one, not a release.
var reFull = regexp.MustCompile(`^v?\d+\.\d+\.\d+(?:[-+].*)?$`)

// parseRelease reads a git tag as a semantic version ("v1.2.3", "1.2.3",
// "v1.2.3-rc.1"); anything after the patch number other than a pre-release or
// build suffix makes it no release.
func parseRelease(tag string) (release, bool) {
	if !reFull.MatchString(tag) {
		return release{}, false
	}
	sem := tag
	if !strings.HasPrefix(sem, "v") {
		sem = "v" + sem
	}
	if !semver.IsValid(sem) {
		return release{}, false
	}
	return release{tag: tag, sem: sem, pre: semver.Prerelease(sem) != ""}, true
}

// rePreID is a pre-release identifier as Traefik's images use them (v3.0.0-rc1,
// v2.0.0-alpha8, v3.0.0-beta5, v3.0.0-ea); any other suffix names an image
// variant (v3.6.1-windowsservercore-ltsc2022), which is not a version at all.
var rePreID = regexp.MustCompile(`^(?i:alpha|beta|rc|ea|pre|preview)(?:\.?\d+)*$`)

// imageTag is a registry tag read as a Traefik version.
type imageTag struct {
	release
	// bare is true for tags without the "v" prefix (Traefik publishes both
	// "v3.6.1" and "3.6.1"); variant is a suffix such as
	// "-windowsservercore-ltsc2022", "" for the default image.
	bare    bool
	variant string
}

var reImageTag = regexp.MustCompile(`^(v?)(\d+\.\d+\.\d+)(?:-([0-9A-Za-z.-]+))?$`)

func parseImageTag(tag string) (imageTag, bool) {
	m := reImageTag.FindStringSubmatch(tag)
	if m == nil {
		return imageTag{}, false
	}
	t := imageTag{bare: m[1] == ""}
	pre := ""
	if m[3] != "" {
		first, rest, _ := strings.Cut(m[3], "-")
		if rePreID.MatchString(first) {
			pre, t.variant = first, rest
		} else {
			t.variant = m[3]
		}
		if t.variant != "" {
			t.variant = "-" + t.variant
		}
	}
	sem := "v" + m[2]
	if pre != "" {
		sem += "-" + pre
	}
	if !semver.IsValid(sem) {
		return imageTag{}, false
	}
	t.release = release{tag: tag, sem: sem, pre: pre != ""}
	return t, true
}

// reFloating is a tag that names a line of releases rather than one: "v3",
// "v3.6", "3.6-nanoserver-ltsc2022".
var reFloating = regexp.MustCompile(`^(v?)(\d+(?:\.\d+)?)(-[0-9A-Za-z.-]+)?$`)

// floatingLine is the line a floating tag follows ("v3.6" for "3.6"), its
// style and variant; ok is false for tags that name no line ("latest").
func floatingLine(tag string) (line string, bare bool, variant string, ok bool) {
	m := reFloating.FindStringSubmatch(tag)
	if m == nil {
		return "", false, "", false
	}
	return "v" + m[2], m[1] == "", m[3], true
}

// imageReleases keeps the tags of one style and variant, so that the versions
// offered are tags the recipe can name the same way it names the current one.
// When the style has no release at all, the other style is used.
func imageReleases(tags []string, bare bool, variant string) []release {
	var same, other []release
	for _, tag := range tags {
		t, ok := parseImageTag(tag)
		if !ok || t.variant != variant {
			continue
		}
		if t.bare == bare {
			same = append(same, t.release)
		} else {
			other = append(other, t.release)
		}
	}
	if len(same) == 0 {
		return other
	}
	return same
}

// gitReleases reads every tag that is a semantic version.
func gitReleases(tags []string) []release {
	var out []release
	for _, tag := range tags {
		if r, ok := parseRelease(tag); ok {
			out = append(out, r)
		}
	}
	return out
}

// comparison is what the releases hold for a current version.
type comparison struct {
	// Line is the current version's line ("v3.6" for a base, "v1" for a
	// plugin); LatestInLine its newest release if newer than current.
	Line, LatestInLine string
	// Newest is the newest release of all, if newer than current.
	Newest string
	// Newer lists every newer release, oldest first; NewestPerLine the
	// newest of each line among them ("v3.6.4", "v3.7.2", "v4.0.0").
	Newer, NewestPerLine []string
}

// lineFunc gives the line of a semantic version: semver.MajorMinor for Traefik
// (patch releases within a minor), semver.Major for plugins.
type lineFunc func(string) string

// compare finds the releases newer than current (a semantic version, "v"
// prefixed). Pre-releases count only when pre is set. Tags naming the same
// version (v1.0.0 and 1.0.0, or differing build metadata) count once, under
// the first name in sorted order, "v1.0.0" before "1.0.0".
func compare(current string, rels []release, line lineFunc, pre bool) comparison {
	c := comparison{Line: line(current), Newer: []string{}, NewestPerLine: []string{}}
	last := ""
	for _, r := range newerThan(current, rels, pre) {
		c.Newer = append(c.Newer, r.tag)
		c.Newest = r.tag
		l := line(r.sem)
		if l == c.Line {
			c.LatestInLine = r.tag
		}
		if n := len(c.NewestPerLine); n > 0 && l == last {
			c.NewestPerLine[n-1] = r.tag
		} else {
			c.NewestPerLine, last = append(c.NewestPerLine, r.tag), l
		}
	}
	return c
}

// newerThan returns the releases newer than current ("" for all of them),
// oldest first, one per version.
func newerThan(current string, rels []release, pre bool) []release {
	var out []release
	for _, r := range rels {
		if (r.pre && !pre) || (current != "" && semver.Compare(r.sem, current) <= 0) {
			continue
		}
		out = append(out, r)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if c := semver.Compare(out[i].sem, out[j].sem); c != 0 {
			return c < 0
		}
		// "v1.0.0" sorts before "1.0.0": the v-prefixed name is kept.
		return out[i].tag > out[j].tag
	})
	dedup := out[:0]
	for _, r := range out {
		if n := len(dedup); n > 0 && semver.Compare(dedup[n-1].sem, r.sem) == 0 {
			continue
		}
		dedup = append(dedup, r)
	}
	return dedup
}

// newestIn returns the newest release of line (all releases when line is ""),
// "" when there is none.
func newestIn(rels []release, line string, lineOf lineFunc, pre bool) string {
	newest := ""
	for _, r := range newerThan("", rels, pre) {
		if line == "" || lineOf(r.sem) == line {
			newest = r.tag
		}
	}
	return newest
}
