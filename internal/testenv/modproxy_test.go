package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestModuleDir(t *testing.T) {
	dir := ModuleDir(t, "github.com/traefik/plugindemo", "v0.2.2")
	b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "module github.com/traefik/plugindemo") {
		t.Errorf("unexpected go.mod in %s:\n%s", dir, b)
	}
}

func TestPluginRepoHistory(t *testing.T) {
	root := t.TempDir()
	p := PluginRepo(t, root, "github.com/traefik/plugindemo", "v0.2.2")
	r := p.Repo
	if want := filepath.Join(root, "github.com", "traefik", "plugindemo"); r.Dir != want {
		t.Errorf("repository at %s, want %s", r.Dir, want)
	}
	if p.EarlyCommit == p.ReleaseCommit || p.ReleaseCommit == p.HeadCommit || p.EarlyCommit == p.HeadCommit {
		t.Fatalf("commits are not distinct: %s %s %s", p.EarlyCommit, p.ReleaseCommit, p.HeadCommit)
	}
	refs := map[string]string{"refs/tags/" + p.EarlyTag: p.EarlyCommit, "refs/tags/v0.2.2": p.ReleaseCommit, "refs/heads/main": p.HeadCommit}
	for ref, want := range refs {
		if got := r.Rev(ref); got != want {
			t.Errorf("%s -> %s, want %s", ref, got, want)
		}
	}
	if got := r.Git("cat-file", "-t", "refs/tags/v0.2.2"); got != "tag" {
		t.Errorf("release tag is a %s object, want an annotated tag", got)
	}
	if got := r.Git("cat-file", "-t", "refs/tags/"+p.EarlyTag); got != "commit" {
		t.Errorf("early tag is a %s object, want lightweight", got)
	}

	// The release commit holds exactly the module's files.
	want := strings.Join(moduleFiles(t, ModuleDir(t, p.Module, p.Version)), "\n")
	if got := r.Git("ls-tree", "-r", "--name-only", p.ReleaseCommit); got != want {
		t.Errorf("release tree:\n%s\nwant module files:\n%s", got, want)
	}
	if p.Omitted != "readme.md" {
		t.Errorf("omitted %q, want plugindemo's readme.md", p.Omitted)
	}
	if _, err := r.TryGit("cat-file", "-e", p.EarlyCommit+":"+p.Omitted); err == nil {
		t.Errorf("early commit contains %s", p.Omitted)
	}
	if got := r.Git("diff", "--name-only", p.ReleaseCommit, p.HeadCommit); got != p.Readme {
		t.Errorf("head changes %q, want only %s", got, p.Readme)
	}

	// Same module, same steps: same hashes (lockfile tests may rely on it).
	again := PluginRepo(t, t.TempDir(), p.Module, p.Version, OmitFile(p.Omitted))
	if again.HeadCommit != p.HeadCommit {
		t.Errorf("history not deterministic: %s vs %s", again.HeadCommit, p.HeadCommit)
	}
}

func TestPluginRepoOmitFile(t *testing.T) {
	p := PluginRepo(t, t.TempDir(), "github.com/traefik/plugindemo", "v0.2.2", OmitFile(".traefik.yml"))
	if _, err := p.Repo.TryGit("cat-file", "-e", p.EarlyCommit+":.traefik.yml"); err == nil {
		t.Error("early commit contains .traefik.yml")
	}
	if _, err := p.Repo.TryGit("cat-file", "-e", p.EarlyCommit+":readme.md"); err != nil {
		t.Errorf("early commit lacks readme.md: %v", err)
	}
}
