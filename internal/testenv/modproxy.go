package testenv

import (
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// ModuleDir downloads an exact module version through the Go module proxy
// (`go mod download -json`) and returns its directory in the module cache,
// which is read-only. Module zips keep vendor/modules.txt but drop every
// vendored package: a plugin with dependencies taken from here must be
// re-vendored before Yaegi can load it (plugindemo has none).
func ModuleDir(t testing.TB, module, version string) string {
	t.Helper()
	return goModDownload(t, module, version).Dir
}

// Plugin is a git repository built by PluginRepo from a real module version.
type Plugin struct {
	Module, Version string
	// Repo is the working repository at <root>/<module path>.
	Repo *Repo
	// Path is the repository's path relative to root (the module path):
	// server base URL + Path is its clone URL.
	Path string

	// EarlyCommit holds the module minus the file Omitted; the lightweight
	// tag EarlyTag points to it.
	EarlyCommit string
	EarlyTag    string
	Omitted     string
	// ReleaseCommit holds exactly the module's files; the annotated tag
	// Version points to it.
	ReleaseCommit string
	// HeadCommit changes Readme only; it is the tip of branch Branch.
	HeadCommit string
	Branch     string
	Readme     string
}

// PluginOption changes how PluginRepo builds the history.
type PluginOption func(*pluginConfig)

type pluginConfig struct{ omit string }

// OmitFile names the file (slash-separated, relative to the module root) left
// out of the early commit. The default is the module's readme, or its
// lexically last file when it has none.
func OmitFile(name string) PluginOption {
	return func(c *pluginConfig) { c.omit = name }
}

// PluginRepo turns module@version (downloaded with ModuleDir) into a git
// repository at <root>/<module path> (e.g. root/github.com/traefik/plugindemo)
// that GitDaemon(t, root) and GitHTTP(t, root, ...) serve at
// <base URL><module path>. Its history makes tag, branch and commit
// resolution all differ:
//
//	commit 1  module minus one file       lightweight tag v0.0.1-test
//	commit 2  exactly the module's files  annotated tag <version>
//	commit 3  readme changed              branch main (HEAD)
//
// Commit hashes are deterministic (see Repo).
func PluginRepo(t testing.TB, root, module, version string, opts ...PluginOption) *Plugin {
	t.Helper()
	var cfg pluginConfig
	for _, o := range opts {
		o(&cfg)
	}
	src := ModuleDir(t, module, version)
	files := moduleFiles(t, src)
	readme := ""
	for _, f := range files {
		if strings.EqualFold(f, "readme.md") || strings.EqualFold(f, "readme") {
			readme = f
			break
		}
	}
	if cfg.omit == "" {
		cfg.omit = readme
		if cfg.omit == "" {
			cfg.omit = files[len(files)-1]
		}
	}
	if i := sort.SearchStrings(files, cfg.omit); i == len(files) || files[i] != cfg.omit {
		t.Fatalf("PluginRepo: %s@%s has no file %q to omit", module, version, cfg.omit)
	}
	if readme == "" {
		readme = "README.md"
	}

	p := &Plugin{
		Module: module, Version: version, Path: module,
		EarlyTag: "v0.0.1-test", Omitted: cfg.omit, Branch: "main", Readme: readme,
	}
	p.Repo = NewRepo(t, filepath.Join(root, filepath.FromSlash(module)))
	for _, f := range files {
		if f != cfg.omit {
			moduleCopy(t, src, p.Repo, f)
		}
	}
	p.EarlyCommit = p.Repo.Commit("early " + module + " without " + cfg.omit)
	p.Repo.Tag(p.EarlyTag)

	moduleCopy(t, src, p.Repo, cfg.omit)
	p.ReleaseCommit = p.Repo.Commit("release " + module + " " + version)
	p.Repo.AnnotatedTag(version, "Release "+version)

	old, _ := os.ReadFile(filepath.Join(p.Repo.Dir, filepath.FromSlash(readme)))
	p.Repo.WriteFile(readme, string(old)+"\nBuilt by the xtraefik test harness.\n")
	p.HeadCommit = p.Repo.Commit("docs: readme after " + version)
	return p
}

// moduleFiles lists the regular files of a module directory, sorted.
func moduleFiles(t testing.TB, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		files = append(files, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatalf("list module %s: %v", dir, err)
	}
	if len(files) == 0 {
		t.Fatalf("module %s is empty", dir)
	}
	sort.Strings(files)
	return files
}

// moduleCopy copies one file; module cache files are read-only, the copy is
// 0644 (module zips record no modes).
func moduleCopy(t testing.TB, src string, r *Repo, name string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(src, filepath.FromSlash(name)))
	if err != nil {
		t.Fatalf("read module file: %v", err)
	}
	r.WriteFile(name, string(b))
}
