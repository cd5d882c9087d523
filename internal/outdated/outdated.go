// Package outdated finds newer releases of what a recipe pins: semantic-version
// tags of each plugin's git repository, and Traefik tags of the base image's
// repository, newer than the version the recipe (or its lock) stands for.
//
// It only reads: tags are listed (git's ref advertisement, the registry's tag
// list), nothing is fetched into a cache and the lock is never written;
// `xtraefik lock` takes a newer version once the recipe names it.
package outdated

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/mod/semver"

	"github.com/xtraefik/xtraefik/images"
	"github.com/xtraefik/xtraefik/internal/redact"
	"github.com/xtraefik/xtraefik/internal/source"
	"github.com/xtraefik/xtraefik/recipe"
)

// GitTagLister lists the tags of a git remote (a URL, mirrors applied).
type GitTagLister interface {
	ListTags(ctx context.Context, url string) ([]source.Tag, error)
}

// ImageTagLister reads a base image's registry.
type ImageTagLister interface {
	// ListTags lists the tags of the repository ref names.
	ListTags(ctx context.Context, ref images.Reference) ([]string, error)
	// Version is the Traefik version the image of ref at digest (at ref's
	// tag now when digest is "") says it holds (its version label),
	// normalised to "vX.Y.Z"; "" when it says none.
	Version(ctx context.Context, ref images.Reference, digest string) (string, error)
}

// Options configure Check.
type Options struct {
	// Git lists plugin tags (required; see NewGitLister).
	Git GitTagLister
	// Images lists base image tags (required; see NewImageLister).
	Images ImageTagLister
	// GitMirrors rewrite plugin URLs before listing, as in a build.
	GitMirrors []recipe.GitMirror
	// Pre counts pre-releases (v1.0.0-rc.1) as newer versions.
	Pre bool
	// Modules lists module-proxy plugins' versions (*modproxy.Client);
	// nil reports them unknown.
	Modules ModuleLister
	// Interpreter tells which Yaegi a Traefik release embeds, for the
	// base's entry to say whether an update changes the interpreter its
	// plugins run in; nil leaves that out. It must not pull base images.
	Interpreter InterpreterOf
}

// InterpreterOf returns the Yaegi version ("v0.16.1") Traefik release
// version ("v3.6.12") embeds; "" (and no error) when it cannot tell.
type InterpreterOf func(ctx context.Context, version string) (string, error)

// InterpreterChange compares the Yaegi of the base's current release with
// that of the update its entry proposes.
type InterpreterChange struct {
	// Release is the update compared: what a floating tag stands for now
	// when newer, else the newest release of the line, else the newest.
	Release string `json:"release"`
	// From is the Yaegi of the current release, To that of Release; ""
	// where unknown.
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
	// Changed is true when both are known and differ: the plugins run in
	// another interpreter after the update, so their verdicts do not
	// carry over (xtraefik rebase verifies them again).
	Changed bool `json:"changed"`
	// Error is why an interpreter could not be looked up.
	Error string `json:"error,omitempty"`
}

// String is the change as the text report shows it: "yaegi v0.16.1 ->
// v0.17.0", "yaegi v0.16.1" when unchanged, "?" for what is unknown.
func (c *InterpreterChange) String() string {
	if c == nil {
		return ""
	}
	from, to := orUnknown(c.From), orUnknown(c.To)
	if from == to && c.From != "" {
		return "yaegi " + from
	}
	return "yaegi " + from + " -> " + to
}

func orUnknown(s string) string {
	if s == "" {
		return "?"
	}
	return s
}

// ModuleLister lists a module's released versions.
type ModuleLister interface {
	Versions(ctx context.Context, module string) ([]string, error)
}

// Status says what Check found for one entry.
type Status string

// Statuses.
const (
	// StatusOutdated: a newer release exists.
	StatusOutdated Status = "outdated"
	// StatusUpToDate: no release is newer than the current version.
	StatusUpToDate Status = "up-to-date"
	// StatusUnknown: there is no current version to compare (a branch at an
	// untagged commit, a base pinned by digest only, a local base); Note
	// says why.
	StatusUnknown Status = "unknown"
	// StatusError: the tags or the version could not be read; Error says why.
	StatusError Status = "error"
)

// Entry is what Check found for the base or one plugin.
type Entry struct {
	// Alias and Module name a plugin; both are empty for the base.
	Alias  string `json:"alias,omitempty"`
	Module string `json:"module,omitempty"`
	// Git is a plugin's repository URL as the recipe gives it (mirrors are
	// where it is listed from, never what is reported).
	Git string `json:"git,omitempty"`
	// Ref is the plugin ref, or the base image reference, as in the recipe.
	Ref string `json:"ref"`
	// Locked is the commit or base digest the lock pins for the recipe as
	// written; "" without a lock or when the lock does not match.
	Locked string `json:"locked,omitempty"`
	// Current is the version the recipe stands for: its tag, else the
	// release tag at the locked commit, else the locked base's version label.
	Current string `json:"current,omitempty"`
	// Floating is true when Ref follows new commits or images by itself (a
	// branch, a tag such as v3.6): `xtraefik lock --update` takes what it
	// stands for now.
	Floating bool `json:"floating,omitempty"`
	// Now is the release a floating base tag stands for today (its image's
	// version label): what `xtraefik lock --update-base` would take.
	Now string `json:"now,omitempty"`
	// Line is the current version's line: the Traefik minor for the base
	// ("v3.6"), the major version for plugins ("v1").
	Line string `json:"line,omitempty"`
	// LatestInLine is the newest release of Line newer than Current.
	LatestInLine string `json:"latestInLine,omitempty"`
	// Newest is the newest release of all, when newer than Current (or the
	// newest at all when Current is unknown).
	Newest string `json:"newest,omitempty"`
	// Newer lists every release newer than Current, oldest first, as
	// published (tag names a recipe can use).
	Newer []string `json:"newer"`
	// NewestPerLine is the newest of Newer in each line, oldest line first.
	NewestPerLine []string `json:"newestPerLine"`
	Status        Status   `json:"status"`
	// Note explains an unknown status or something worth knowing (a tag that
	// moved since the lock).
	Note string `json:"note,omitempty"`
	// Error is why this entry could not be checked.
	Error string `json:"error,omitempty"`
	// Interpreter says, for an outdated base, whether the update changes
	// the Yaegi its plugins run in (Options.Interpreter); nil otherwise.
	Interpreter *InterpreterChange `json:"interpreter,omitempty"`
}

// Name is how the entry is named to people: "base" or "plugin <alias>".
func (e *Entry) Name() string {
	if e.Alias == "" {
		return "base"
	}
	return "plugin " + e.Alias
}

// Report is the result of Check.
type Report struct {
	// Recipe is the recipe file checked.
	Recipe string `json:"recipe"`
	// Outdated is true when at least one entry is outdated.
	Outdated bool `json:"outdated"`
	// Errors counts the entries that could not be checked.
	Errors  int     `json:"errors"`
	Base    Entry   `json:"base"`
	Plugins []Entry `json:"plugins"`
}

// Entries returns the base, then the plugins in alias order.
func (r *Report) Entries() []*Entry {
	out := []*Entry{&r.Base}
	for i := range r.Plugins {
		out = append(out, &r.Plugins[i])
	}
	return out
}

// With lists the names of the entries with status s.
func (r *Report) With(s Status) []string {
	var out []string
	for _, e := range r.Entries() {
		if e.Status == s {
			out = append(out, e.Name())
		}
	}
	return out
}

// parallel bounds concurrent listings: a recipe has a handful of plugins, and
// a few requests at once keep a slow remote from adding up without flooding
// anyone.
const parallel = 4

// Check compares what the recipe and its lock (nil when there is none) stand
// for with the releases available now. Problems with one entry (a remote that
// does not answer) are reported in that entry; the error is for unusable
// arguments only.
func Check(ctx context.Context, r *recipe.Recipe, lock *recipe.Lock, opts Options) (*Report, error) {
	if r == nil {
		return nil, errors.New("outdated: no recipe")
	}
	if opts.Git == nil || opts.Images == nil {
		return nil, errors.New("outdated: Options.Git and Options.Images are required")
	}
	rep := &Report{Recipe: r.Path}
	aliases := r.Aliases()
	rep.Plugins = make([]Entry, len(aliases))
	var wg sync.WaitGroup
	sem := make(chan struct{}, parallel)
	run := func(f func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			f()
		}()
	}
	run(func() {
		rep.Base = checkBase(ctx, r, lock, opts)
		rep.Base.Interpreter = interpreterChange(ctx, &rep.Base, opts.Interpreter)
	})
	for i, alias := range aliases {
		run(func() { rep.Plugins[i] = checkPlugin(ctx, alias, r.Plugins[alias], lock, opts) })
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, e := range rep.Entries() {
		switch e.Status {
		case StatusOutdated:
			rep.Outdated = true
		case StatusError:
			rep.Errors++
		}
	}
	return rep, nil
}

// settle fills e from a comparison against current.
func (e *Entry) settle(current string, c comparison) {
	e.Current = current
	e.Line, e.LatestInLine, e.Newest, e.Newer, e.NewestPerLine = c.Line, c.LatestInLine, c.Newest, c.Newer, c.NewestPerLine
	e.Status = StatusUpToDate
	if len(c.Newer) > 0 {
		e.Status = StatusOutdated
	}
}

func (e *Entry) fail(err error) Entry {
	e.Status, e.Error = StatusError, redact.Error(err).Error()
	return *e
}

// unknown reports the newest release when there is no current version to
// compare it with.
func (e *Entry) unknown(newest, note string) Entry {
	e.Status, e.Newest, e.Note = StatusUnknown, newest, note
	return *e
}

func checkBase(ctx context.Context, r *recipe.Recipe, lock *recipe.Lock, opts Options) Entry {
	e := Entry{Ref: r.Base, Newer: []string{}, NewestPerLine: []string{}}
	ref, err := images.ParseReference(r.Base)
	if err != nil {
		return e.fail(err)
	}
	if lock != nil && lock.Base.Ref == r.Base {
		e.Locked = lock.Base.Digest
	}
	if ref.Transport != images.TransportDocker && ref.Transport != "" {
		return e.unknown("", "not in a registry: there are no tags to compare")
	}
	if ref.Tag == "" {
		return e.unknown("", "pinned by digest only: there is no tag to compare")
	}
	minor := semver.MajorMinor
	if t, ok := parseImageTag(ref.Tag); ok {
		tags, err := opts.Images.ListTags(ctx, ref)
		if err != nil {
			return e.fail(err)
		}
		e.settle(t.sem, compare(t.sem, imageReleases(tags, t.bare, t.variant), minor, opts.Pre))
		e.Current = ref.Tag
		return e
	}

	// A floating tag (v3.6, latest) stands for whatever it pointed to when
	// it was locked: the locked image's version label says which release.
	e.Floating = true
	line, bare, variant, named := floatingLine(ref.Tag)
	if !named {
		bare, variant = false, ""
	}
	tags, err := opts.Images.ListTags(ctx, ref)
	if err != nil {
		return e.fail(err)
	}
	rels := imageReleases(tags, bare, variant)

	// Without a current version, say at least what the tag would move to
	// (its line: v3.x for v3, v3.6.x for v3.6) and what is newest.
	unknown := func(note string) Entry {
		e.unknown(newestIn(rels, "", minor, opts.Pre), note)
		if named {
			lineOf := semver.MajorMinor
			if !strings.Contains(line, ".") {
				lineOf = semver.Major
			}
			e.Line, e.LatestInLine = line, newestIn(rels, line, lineOf, opts.Pre)
		}
		return e
	}
	// What the tag stands for today is what `xtraefik lock --update-base`
	// would take; without a lock it is also what a build would use.
	if e.Now, err = opts.Images.Version(ctx, ref, ""); err != nil {
		return e.fail(err)
	}
	current, note := e.Now, fmt.Sprintf("floating tag %s is not locked: compared with %s, what it stands for now", ref.Tag, e.Now)
	if e.Locked != "" {
		if current, err = opts.Images.Version(ctx, ref, e.Locked); err != nil {
			return e.fail(err)
		}
		note = fmt.Sprintf("floating tag %s: the locked image is %s (its version label)", ref.Tag, current)
		if e.Now != "" && e.Now != current {
			note += fmt.Sprintf("; the tag stands for %s now", e.Now)
		}
	}
	if current == "" {
		what := "its image"
		if e.Locked != "" {
			what = fmt.Sprintf("the locked image (%s)", e.Locked)
		}
		return unknown(fmt.Sprintf("floating tag %s: %s has no version label to compare", ref.Tag, what))
	}
	e.settle(current, compare(current, rels, minor, opts.Pre))
	e.Note = note
	return e
}

// interpreterChange compares the Yaegi of an outdated base's current
// release with that of the update howToTake proposes; nil when there is
// no update or no way to tell.
func interpreterChange(ctx context.Context, e *Entry, of InterpreterOf) *InterpreterChange {
	if of == nil || e.Status != StatusOutdated {
		return nil
	}
	current, update := baseSemver(e.Current), baseSemver(proposed(e))
	if current == "" || update == "" {
		return nil
	}
	c := &InterpreterChange{Release: proposed(e)}
	var errs []error
	var err error
	if c.From, err = of(ctx, current); err != nil {
		errs = append(errs, fmt.Errorf("the interpreter of Traefik %s: %w", current, err))
	}
	if c.To, err = of(ctx, update); err != nil {
		errs = append(errs, fmt.Errorf("the interpreter of Traefik %s: %w", update, err))
	}
	if err := errors.Join(errs...); err != nil {
		c.Error = redact.Error(err).Error()
	}
	c.Changed = c.From != "" && c.To != "" && c.From != c.To
	return c
}

// proposed is the release an outdated entry's update takes: what a
// floating tag stands for now when newer, else the newest of the current
// line, else the newest (as howToTake says).
func proposed(e *Entry) string {
	if e.Floating && e.Now != "" && semver.Compare(baseSemver(e.Now), baseSemver(e.Current)) > 0 {
		return e.Now
	}
	if e.LatestInLine != "" {
		return e.LatestInLine
	}
	return e.Newest
}

// baseSemver reads a Traefik image tag or version ("3.6.12",
// "v3.6.12-windowsservercore-ltsc2022") as the release it names
// ("v3.6.12"); "" for anything else.
func baseSemver(tag string) string {
	if t, ok := parseImageTag(tag); ok {
		return t.sem
	}
	return ""
}

func checkPlugin(ctx context.Context, alias string, p *recipe.Plugin, lock *recipe.Lock, opts Options) Entry {
	e := Entry{Alias: alias, Module: p.Module, Git: p.LockedGit(), Ref: p.Ref, Newer: []string{}, NewestPerLine: []string{}}
	switch p.Source() {
	case recipe.SourceModule:
		e.Git, e.Ref = "", p.Version
		return checkModule(ctx, alias, p, lock, opts, e)
	case recipe.SourcePath:
		e.Git, e.Ref = "", p.Path
		return e.unknown("", "a directory plugin has no releases to compare")
	}
	if pl, ok := lock.Plugin(alias); ok && p.Matches(pl) {
		e.Locked = pl.Commit
	}
	url := recipe.RewriteGit(opts.GitMirrors, p.GitURL())
	tags, err := opts.Git.ListTags(ctx, url)
	if err != nil {
		return e.fail(err)
	}
	names := make([]string, len(tags))
	for i, t := range tags {
		names[i] = t.Name
	}
	rels := gitReleases(names)
	major := semver.Major

	if name := strings.TrimPrefix(p.Ref, "refs/tags/"); name != "" {
		if cur, ok := parseRelease(name); ok {
			e.settle(cur.sem, compare(cur.sem, rels, major, opts.Pre))
			e.Current = name
			e.Note = fmt.Sprintf("tag %s is not on the remote (any more)", name)
			for _, t := range tags {
				switch {
				case t.Name != name:
				case e.Locked != "" && !strings.EqualFold(t.Commit, e.Locked):
					e.Note = fmt.Sprintf("tag %s now points to %s, the lock has %s: it moved since it was locked", name, t.Commit, e.Locked)
				default:
					e.Note = ""
				}
			}
			return e
		}
	}

	// A branch or a commit: its version is the release tagged at the commit
	// it is locked at (or is, for a full hash), if any.
	commit := e.Locked
	isHash := len(p.Ref) == 40 && strings.Trim(strings.ToLower(p.Ref), "0123456789abcdef") == ""
	if isHash {
		commit = p.Ref
	} else {
		e.Floating = true
	}
	if commit == "" {
		return e.unknown(newestIn(rels, "", major, opts.Pre), fmt.Sprintf("ref %s is not a release and is not locked: run xtraefik lock to record its commit", p.Ref))
	}
	var at []release
	for _, t := range tags {
		if r, ok := parseRelease(t.Name); ok && strings.EqualFold(t.Commit, commit) {
			at = append(at, r)
		}
	}
	// Pre-releases included: the commit is what it is, --pre or not.
	if tagged := newerThan("", at, true); len(tagged) > 0 {
		cur := tagged[len(tagged)-1]
		e.settle(cur.sem, compare(cur.sem, rels, major, opts.Pre))
		e.Current = cur.tag
		e.Note = fmt.Sprintf("ref %s is at commit %s, release %s", p.Ref, short(commit), cur.tag)
		return e
	}
	return e.unknown(newestIn(rels, "", major, opts.Pre), fmt.Sprintf("ref %s is at commit %s, which no release tag points to", p.Ref, short(commit)))
}

// checkModule compares a module-proxy plugin's locked version (or its exact
// version query) with the versions the proxy lists.
func checkModule(ctx context.Context, alias string, p *recipe.Plugin, lock *recipe.Lock, opts Options, e Entry) Entry {
	if opts.Modules == nil {
		return e.unknown("", "module-proxy plugins are not checked here")
	}
	versions, err := opts.Modules.Versions(ctx, p.Module)
	if err != nil {
		return e.fail(err)
	}
	rels := gitReleases(versions)
	current := ""
	if pl, ok := lock.Plugin(alias); ok && p.Matches(pl) {
		current, e.Locked = pl.Version, pl.Version
	} else if semver.IsValid(p.Version) && semver.Canonical(p.Version) == p.Version {
		current = p.Version
	}
	if current == "" {
		return e.unknown(newestIn(rels, "", semver.Major, opts.Pre), fmt.Sprintf("version %s is a query and is not locked: run xtraefik lock to record what it resolves to", p.Version))
	}
	e.Floating = current != p.Version
	e.settle(current, compare(current, rels, semver.Major, opts.Pre))
	e.Current = current
	return e
}

func short(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	return commit
}
