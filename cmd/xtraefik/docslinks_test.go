package main

import (
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// repoRoot is the repository, seen from this package's directory.
const repoRoot = "../.."

// setupCommands are the README's two set-up commands: one builds the bundled
// example, one runs the tests (.ci/run runs the same script).
var setupCommands = []string{
	"go run ./cmd/xtraefik build -f examples/plugindemo/recipe.yaml --oci-layout out/traefik-demo",
	"bash scripts/test",
}

// maxREADMELines bounds the README: the rest belongs in docs/.
const maxREADMELines = 250

// TestDocsLinks: every relative link in README.md and docs/ names a file or
// directory of the repository, and every #anchor a heading of its target
// (GitHub's heading ids), so moving or renaming a page or a section cannot
// leave a dangling link.
func TestDocsLinks(t *testing.T) {
	pages := docPages(t)
	headings := map[string][]string{}
	for _, p := range pages {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		headings[filepath.Clean(p)] = anchors(string(b))
	}
	links := 0
	for _, p := range pages {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range markdownLinks(string(b)) {
			links++
			if err := checkLink(p, l, headings); err != nil {
				t.Errorf("%s: link %q: %v", rel(p), l, err)
			}
		}
	}
	if links == 0 {
		t.Fatal("no links found: the link parser is broken")
	}
}

// maxTopLevel bounds the repository's top level (dot entries aside): the
// design card's entries and what a reader must see first, nothing else.
const maxTopLevel = 14

// TestTopLevel: the committed top level stays within maxTopLevel entries and
// the design notes' layout section names each of them, so a new entry is a
// decision written down, not drift.
func TestTopLevel(t *testing.T) {
	cmd := exec.Command("git", "ls-files")
	cmd.Dir = repoRoot
	out, err := cmd.Output()
	if err != nil {
		t.Skipf("not a git checkout (git ls-files: %v): the top level is checked in one", err)
	}
	entries := map[string]bool{}
	for _, f := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if top := strings.SplitN(f, "/", 2)[0]; top != "" && !strings.HasPrefix(top, ".") {
			entries[top] = true
		}
	}
	if len(entries) > maxTopLevel {
		t.Errorf("the top level has %d entries, at most %d: %s", len(entries), maxTopLevel, strings.Join(slices.Sorted(maps.Keys(entries)), " "))
	}
	design, err := os.ReadFile(filepath.Join(repoRoot, "docs", "design.md"))
	if err != nil {
		t.Fatal(err)
	}
	layout, ok := section(string(design), "The repository's layout")
	if !ok {
		t.Fatal(`docs/design.md has no "## The repository's layout" section`)
	}
	for e := range entries {
		if !strings.Contains(layout, "`"+e+"`") {
			t.Errorf("top-level %s is not named in docs/design.md's layout section", e)
		}
	}
}

// maxModules bounds the module graph (go list -m all): every module in it
// is one more to audit, fetch and keep current.
const maxModules = 200

// TestModuleGraph: the module graph stays small, and cosign's module, which
// pulls in some 240 others, stays out of it: internal/sign writes cosign's
// formats with sigstore's own libraries.
func TestModuleGraph(t *testing.T) {
	cmd := exec.Command("go", "list", "-m", "all")
	cmd.Dir = repoRoot
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -m all: %v", err)
	}
	mods := strings.Fields(string(out))
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) > maxModules {
		t.Errorf("the module graph has %d modules, at most %d", len(lines), maxModules)
	}
	for _, m := range mods {
		if strings.HasPrefix(m, "github.com/sigstore/cosign") {
			t.Errorf("%s is in the module graph", m)
		}
	}
}

// TestREADMEShape: the README stays short, its Set-up section holds exactly
// the two commands a newcomer copies, and docs/README.md indexes every
// page, each of which opens with a title and an introduction.
func TestREADMEShape(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	if n := strings.Count(readme, "\n"); n > maxREADMELines {
		t.Errorf("README.md has %d lines, at most %d: move detail to docs/", n, maxREADMELines)
	}
	setup, ok := section(readme, "Set-up")
	if !ok {
		t.Fatal(`README.md has no "## Set-up" section`)
	}
	if got := codeLines(setup); !slices.Equal(got, setupCommands) {
		t.Errorf("README.md's Set-up code blocks hold %q, want exactly %q", got, setupCommands)
	}

	index, err := os.ReadFile(filepath.Join(repoRoot, "docs", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	linked := map[string]bool{}
	for _, l := range markdownLinks(string(index)) {
		linked[strings.SplitN(l, "#", 2)[0]] = true
	}
	pages, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) < 7 { // the index and at least six pages
		t.Errorf("docs/ has %d pages, want the index and at least 6", len(pages))
	}
	for _, p := range pages {
		name := filepath.Base(p)
		if name != "README.md" && !linked[name] {
			t.Errorf("docs/README.md does not link docs/%s", name)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := titled(string(b)); err != nil {
			t.Errorf("docs/%s: %v", name, err)
		}
	}
}

// TestDocsHelpers: the parsers the documentation tests rely on, on inputs
// whose answers are known.
func TestDocsHelpers(t *testing.T) {
	md := "# Title\n\nSee [a](a.md#x-y) and [web](https://example.com), `[not](code.md)`.\n\n" +
		"```sh\n[no](fenced.md)\ncmd one\n```\n\n## Quick builds (`--with`), xcaddy-style\n\n## Security model: plugin code\n\n## Security model: plugin code\n"
	if got, want := markdownLinks(md), []string{"a.md#x-y", "https://example.com"}; !slices.Equal(got, want) {
		t.Errorf("markdownLinks = %q, want %q", got, want)
	}
	want := []string{"title", "quick-builds---with-xcaddy-style", "security-model-plugin-code", "security-model-plugin-code-1"}
	if got := anchors(md); !slices.Equal(got, want) {
		t.Errorf("anchors = %q, want %q", got, want)
	}
	if got := codeLines(md); !slices.Equal(got, []string{"[no](fenced.md)", "cmd one"}) {
		t.Errorf("codeLines = %q", got)
	}
	if s, ok := section("# T\n\n## Set-up\n\nx\n\n## Next\n\ny\n", "Set-up"); !ok || strings.Contains(s, "y") || !strings.Contains(s, "x") {
		t.Errorf("section = %q, %v", s, ok)
	}
	if titled("# T\n\nAn introduction.\n\n## A\n") != nil || titled("# T\n\n## A\n") == nil || titled("Text\n") == nil {
		t.Error("titled accepts a page without an introduction, or refuses one with it")
	}
}

// docPages are README.md and every Markdown file under docs/.
func docPages(t *testing.T) []string {
	t.Helper()
	pages := []string{filepath.Join(repoRoot, "README.md")}
	err := filepath.WalkDir(filepath.Join(repoRoot, "docs"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".md") {
			pages = append(pages, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return pages
}

// checkLink resolves a link found in page: external links are not followed;
// a path must exist inside the repository, and an anchor must be a heading
// of the Markdown page it points into.
func checkLink(page, link string, headings map[string][]string) error {
	if strings.Contains(link, "://") || strings.HasPrefix(link, "mailto:") {
		return nil
	}
	target, anchor, _ := strings.Cut(link, "#")
	path := filepath.Clean(page)
	if target != "" {
		path = filepath.Join(filepath.Dir(page), filepath.FromSlash(target))
		root, err := filepath.Abs(repoRoot)
		if err != nil {
			return err
		}
		abs, err := filepath.Abs(path)
		if err != nil {
			return err
		}
		if r, err := filepath.Rel(root, abs); err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
			return fmt.Errorf("leaves the repository")
		}
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("no such file or directory")
		}
	}
	if anchor == "" {
		return nil
	}
	ids, ok := headings[filepath.Clean(path)]
	if !ok {
		return fmt.Errorf("anchor #%s into a file that is not a checked Markdown page", anchor)
	}
	if !slices.Contains(ids, anchor) {
		return fmt.Errorf("no heading with id %q in %s", anchor, rel(path))
	}
	return nil
}

var (
	fence      = regexp.MustCompile("(?ms)^ *```.*?^ *```[^\n]*$")
	codeSpan   = regexp.MustCompile("`[^`\n]*`")
	inlineLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)
)

// markdownLinks are the targets of the inline links outside code.
func markdownLinks(md string) []string {
	md = codeSpan.ReplaceAllString(fence.ReplaceAllString(md, ""), "")
	var out []string
	for _, m := range inlineLink.FindAllStringSubmatch(md, -1) {
		out = append(out, m[1])
	}
	return out
}

// anchors are the ids GitHub gives the page's headings: lowercased, every
// character but letters, digits, spaces, '-' and '_' dropped, spaces made
// '-', and a repeated id suffixed -1, -2...
func anchors(md string) []string {
	md = fence.ReplaceAllString(md, "")
	seen := map[string]int{}
	var out []string
	for _, line := range strings.Split(md, "\n") {
		text, ok := heading(line)
		if !ok {
			continue
		}
		var b strings.Builder
		for _, r := range strings.ToLower(text) {
			switch {
			case unicode.IsLetter(r), unicode.IsDigit(r), r == '-', r == '_':
				b.WriteRune(r)
			case r == ' ':
				b.WriteRune('-')
			}
		}
		id := b.String()
		if n := seen[id]; n > 0 {
			seen[id] = n + 1
			id = fmt.Sprintf("%s-%d", id, n)
		} else {
			seen[id] = 1
		}
		out = append(out, id)
	}
	return out
}

// heading is the text of an ATX heading line ("## Text").
func heading(line string) (string, bool) {
	hashes := len(line) - len(strings.TrimLeft(line, "#"))
	if hashes == 0 || hashes > 6 || !strings.HasPrefix(line[hashes:], " ") {
		return "", false
	}
	return strings.TrimSpace(strings.TrimRight(line[hashes:], "# ")), true
}

// section is the body of the "## name" section, up to the next heading of
// level 2 or above.
func section(md, name string) (string, bool) {
	_, after, ok := strings.Cut(md, "\n## "+name+"\n")
	if !ok {
		return "", false
	}
	for _, end := range []string{"\n## ", "\n# "} {
		if i := strings.Index(after, end); i >= 0 {
			after = after[:i]
		}
	}
	return after, true
}

// codeLines are the non-empty lines inside the fenced code blocks of md.
func codeLines(md string) []string {
	var out []string
	for _, block := range fence.FindAllString(md, -1) {
		lines := strings.Split(block, "\n")
		for _, l := range lines[1 : len(lines)-1] {
			if l = strings.TrimSpace(l); l != "" {
				out = append(out, l)
			}
		}
	}
	return out
}

// titled says whether a page opens with a "# Title" and a paragraph of
// introduction before its first section.
func titled(md string) error {
	lines := strings.Split(md, "\n")
	if !strings.HasPrefix(lines[0], "# ") {
		return fmt.Errorf("does not open with a \"# Title\" line")
	}
	for _, l := range lines[1:] {
		switch {
		case strings.TrimSpace(l) == "":
		case strings.HasPrefix(l, "#"):
			return fmt.Errorf("has no introduction between its title and its first section")
		default:
			return nil
		}
	}
	return fmt.Errorf("has nothing but a title")
}

func rel(p string) string {
	if r, err := filepath.Rel(repoRoot, p); err == nil {
		return filepath.ToSlash(r)
	}
	return p
}
