package sbom

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spdx/tools-golang/spdx"

	"github.com/xtraefik/xtraefik/internal/fileset"
	"github.com/xtraefik/xtraefik/internal/plugin"
	"github.com/xtraefik/xtraefik/internal/testenv"
)

// licenseText is a real licence text from licensecheck's own test corpus
// (testdata/<name>, after its expectation header).
func licenseText(t *testing.T, name string) string {
	t.Helper()
	dir := testenv.ModuleDir(t, "github.com/google/licensecheck", "v0.3.1")
	b, err := os.ReadFile(filepath.Join(dir, "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	_, text, ok := strings.Cut(string(b), "\n\n")
	if !ok {
		t.Fatalf("licensecheck testdata %s has no header", name)
	}
	return text
}

func file(p, content string) fileset.File {
	return fileset.File{Path: p, Size: int64(len(content)),
		Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(content)), nil }}
}

func symlink(p, target string) fileset.File {
	return fileset.File{Path: p, Kind: fileset.Symlink, Link: target, Size: int64(len(target))}
}

func set(t *testing.T, files ...fileset.File) fileset.Set {
	t.Helper()
	s, err := fileset.New(files)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func manifest(module string) fileset.File {
	return file(".traefik.yml", "displayName: X\ntype: middleware\nimport: "+module+"\nsummary: x\ntestData: {}\n")
}

func TestLicenseDeclarations(t *testing.T) {
	mit, apache, anti := licenseText(t, "MIT.t1"), licenseText(t, "Apache-2.0.t1"), licenseText(t, "Anti996.t1")
	tests := []struct {
		name        string
		files       []fileset.File
		declared    string
		fromFiles   []string
		commentHas  string
		noComment   bool
		dirForCheck string
	}{
		{name: "MIT", files: []fileset.File{file("LICENSE", mit)}, declared: "MIT", fromFiles: []string{"MIT"}, commentHas: "LICENSE: MIT"},
		{name: "British spelling and lower case", files: []fileset.File{file("licence.txt", mit)}, declared: "MIT", fromFiles: []string{"MIT"}},
		{name: "two licence files", files: []fileset.File{file("LICENSE-MIT", mit), file("LICENSE-APACHE", apache)},
			declared: "Apache-2.0 AND MIT", fromFiles: []string{"Apache-2.0", "MIT"}},
		{name: "COPYING", files: []fileset.File{file("COPYING", apache)}, declared: "Apache-2.0", fromFiles: []string{"Apache-2.0"}},
		{name: "no licence file", files: []fileset.File{file("README.md", mit)}, declared: "NOASSERTION", noComment: true},
		{name: "licence file in a subdirectory only", files: []fileset.File{file("docs/LICENSE", mit)}, declared: "NOASSERTION", noComment: true},
		{name: "unknown text", files: []fileset.File{file("LICENSE", "All rights reserved. Ask us before you use this.\n")},
			declared: "NOASSERTION", commentHas: "LICENSE: not identified"},
		{name: "MIT with a custom clause around it", files: []fileset.File{file("LICENSE", mit+strings.Repeat("But you must also send us a postcard every single day. ", 60))},
			declared: "NOASSERTION", fromFiles: []string{"MIT"}, commentHas: "not identified"},
		{name: "one known and one unknown file", files: []fileset.File{file("LICENSE", mit), file("COPYING.extra", "Private terms apply.\n")},
			declared: "NOASSERTION", fromFiles: []string{"MIT"}, commentHas: "COPYING.extra: not identified"},
		{name: "not on the SPDX list", files: []fileset.File{file("LICENSE", anti)}, declared: "NOASSERTION", commentHas: "Anti996, not on the SPDX licence list"},
		{name: "symlink to a licence", files: []fileset.File{symlink("LICENSE", "legal/MIT.txt"), file("legal/MIT.txt", mit)}, declared: "MIT", fromFiles: []string{"MIT"}},
		{name: "dangling symlink", files: []fileset.File{symlink("LICENSE", "legal/missing.txt")}, declared: "NOASSERTION", commentHas: "not a file of the plugin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const module = "example.com/acme/lic"
			files := set(t, append([]fileset.File{manifest(module), file("lic.go", "package lic\n")}, tt.files...)...)
			raw, err := SPDX(Input{BaseName: baseName, Plugins: []plugin.Plugin{{Module: module, Files: files}}})
			if err != nil {
				t.Fatal(err)
			}
			p := pkgByName(t, parse(t, raw), module)
			if p.PackageLicenseDeclared != tt.declared {
				t.Errorf("licenseDeclared %q, want %q (%s)", p.PackageLicenseDeclared, tt.declared, p.PackageLicenseComments)
			}
			if !slices.Equal(p.PackageLicenseInfoFromFiles, tt.fromFiles) {
				t.Errorf("licenseInfoFromFiles %v, want %v", p.PackageLicenseInfoFromFiles, tt.fromFiles)
			}
			if tt.noComment && p.PackageLicenseComments != "" {
				t.Errorf("licence comment %q, want none", p.PackageLicenseComments)
			}
			if !strings.Contains(p.PackageLicenseComments, tt.commentHas) {
				t.Errorf("licence comment %q lacks %q", p.PackageLicenseComments, tt.commentHas)
			}
		})
	}
}

func TestVendoredModules(t *testing.T) {
	mit := licenseText(t, "MIT.t1")
	modulesTxt := `# example.com/lib v1.2.3
## explicit; go 1.21
example.com/lib
example.com/lib/sub
# example.com/testonly v0.9.0
## explicit
# example.com/old v1.0.0 => example.com/fork v1.0.1
## explicit
example.com/old
# example.com/local v0.0.0 => ./local
## explicit
example.com/local
# example.com/util v0.0.0-20240102030405-abcdefabcdef
example.com/util
`
	a := plugin.Plugin{Module: "example.com/acme/a", Source: plugin.Source{Ref: "main", Commit: commit, Git: "git@example.com:acme/a.git"}, Files: set(t,
		manifest("example.com/acme/a"), file("a.go", "package a\n"),
		file("vendor/modules.txt", modulesTxt),
		file("vendor/example.com/lib/LICENSE", mit), file("vendor/example.com/lib/lib.go", "package lib\n"),
		file("vendor/example.com/lib/sub/sub.go", "package sub\n"),
		file("vendor/example.com/old/old.go", "package old\n"),
		file("vendor/example.com/local/local.go", "package local\n"),
		file("vendor/example.com/util/util.go", "package util\n"),
	)}
	// b vendors the same lib version, and its own local replacement.
	b := plugin.Plugin{Module: "example.com/acme/b", Source: plugin.Source{Ref: "v1.0.0", Commit: commit, Git: "https://example.com/acme/b"}, Files: set(t,
		manifest("example.com/acme/b"), file("b.go", "package b\n"),
		file("vendor/modules.txt", "# example.com/lib v1.2.3\n## explicit\nexample.com/lib\n# example.com/local v0.0.0 => ./local\nexample.com/local\n"),
		file("vendor/example.com/lib/LICENSE", mit), file("vendor/example.com/lib/lib.go", "package lib\n"),
		file("vendor/example.com/local/local.go", "package local\n"),
	)}
	raw, err := SPDX(Input{BaseName: baseName, BaseDigest: baseDigest, Plugins: []plugin.Plugin{a, b}})
	if err != nil {
		t.Fatal(err)
	}
	doc := parse(t, raw)
	byName := map[string][]*spdx.Package{}
	for _, p := range doc.Packages {
		byName[p.PackageName] = append(byName[p.PackageName], p)
	}
	if _, ok := byName["example.com/testonly"]; ok {
		t.Error("a module with no vendored package is listed")
	}
	if n := len(byName["example.com/lib"]); n != 1 {
		t.Fatalf("example.com/lib is listed %d times, want once for both plugins", n)
	}
	if n := len(byName["example.com/local"]); n != 2 {
		t.Errorf("example.com/local (a local replacement in each plugin) is listed %d times, want 2", n)
	}
	lib := byName["example.com/lib"][0]
	if lib.PackageLicenseDeclared != "MIT" || strings.Join(purls(lib), "") != "pkg:golang/example.com/lib@v1.2.3" || lib.PackageVersion != "v1.2.3" {
		t.Errorf("lib: licence %q, purls %v, version %q", lib.PackageLicenseDeclared, purls(lib), lib.PackageVersion)
	}
	old := byName["example.com/old"][0]
	if old.PackageVersion != "v1.0.1" || strings.Join(purls(old), "") != "pkg:golang/example.com/fork@v1.0.1" || !strings.Contains(old.PackageComment, "replaced by example.com/fork v1.0.1") {
		t.Errorf("replaced module: version %q, purls %v, comment %q", old.PackageVersion, purls(old), old.PackageComment)
	}
	local := byName["example.com/local"][0]
	if len(local.PackageExternalReferences) != 0 || !strings.Contains(local.PackageComment, "local directory ./local") {
		t.Errorf("local replacement: refs %v, comment %q", purls(local), local.PackageComment)
	}
	if util := byName["example.com/util"][0]; util.PackageVersion != "v0.0.0-20240102030405-abcdefabcdef" {
		t.Errorf("pseudo-version %q", util.PackageVersion)
	}

	pa, pb := byName["example.com/acme/a"][0], byName["example.com/acme/b"][0]
	depsA, depsB := related(doc, pa.PackageSPDXIdentifier, "DEPENDS_ON"), related(doc, pb.PackageSPDXIdentifier, "DEPENDS_ON")
	if len(depsA) != 4 || len(depsB) != 2 {
		t.Fatalf("a depends on %v, b on %v", depsA, depsB)
	}
	if depsA[0] != lib.PackageSPDXIdentifier || depsB[0] != lib.PackageSPDXIdentifier || depsA[2] == depsB[1] {
		t.Errorf("shared and local modules are not wired right: a %v, b %v", depsA, depsB)
	}
	// Plugin a pins a branch: the purl uses the commit; b a release tag.
	if got := strings.Join(purls(pa), ""); got != "pkg:golang/example.com/acme/a@"+commit {
		t.Errorf("purl of a branch build %q", got)
	}
	if got := strings.Join(purls(pb), ""); got != "pkg:golang/example.com/acme/b@v1.0.0" {
		t.Errorf("purl of a tag build %q", got)
	}
	if pa.PackageDownloadLocation != "git+ssh://git@example.com/acme/a.git@"+commit {
		t.Errorf("scp-like remote: %q", pa.PackageDownloadLocation)
	}
}

func TestSymlinksAreExcludedFromTheVerificationCode(t *testing.T) {
	const module = "example.com/acme/links"
	files := set(t, manifest(module), file("a.go", "package a\n"), symlink("README", "a.go"))
	raw, err := SPDX(Input{BaseName: baseName, Plugins: []plugin.Plugin{{Module: module, Files: files}}})
	if err != nil {
		t.Fatal(err)
	}
	code := pkgByName(t, parse(t, raw), module).PackageVerificationCode
	if code.Value != spdxVerificationCode(t, files) || !slices.Equal(code.ExcludedFiles, []string{"./README"}) {
		t.Errorf("verification code %+v", code)
	}
}

func TestGitLocation(t *testing.T) {
	tests := []struct{ url, commit, want, source string }{
		{"https://github.com/traefik/plugindemo", commit, "git+https://github.com/traefik/plugindemo@" + commit, "https://github.com/traefik/plugindemo"},
		{"https://ci:s3cret-token@git.example.com/team/p.git", commit, "git+https://git.example.com/team/p.git@" + commit, "https://git.example.com/team/p.git"},
		{"http://127.0.0.1:8080/p.git?x=1#frag", "", "git+http://127.0.0.1:8080/p.git", "http://127.0.0.1:8080/p.git"},
		{"git://127.0.0.1:9418/github.com/traefik/plugindemo", commit, "git+git://127.0.0.1:9418/github.com/traefik/plugindemo@" + commit, "git://127.0.0.1:9418/github.com/traefik/plugindemo"},
		{"ssh://git:pw@example.com:2222/acme/p.git", commit, "git+ssh://git@example.com:2222/acme/p.git@" + commit, "ssh://git@example.com:2222/acme/p.git"},
		{"git@github.com:acme/p.git", commit, "git+ssh://git@github.com/acme/p.git@" + commit, "ssh://git@github.com/acme/p.git"},
		{"file:///home/alice/src/p", commit, "NOASSERTION", "(local repository)"},
		{"/home/alice/src/p", commit, "NOASSERTION", "(local repository)"},
		{"./p:odd", commit, "NOASSERTION", "(local repository)"},
		{"", commit, "NOASSERTION", ""},
	}
	for _, tt := range tests {
		if got := gitLocation(tt.url, tt.commit); got != tt.want {
			t.Errorf("gitLocation(%q) = %q, want %q", tt.url, got, tt.want)
		}
		if got := redactURL(tt.url); got != tt.source {
			t.Errorf("redactURL(%q) = %q, want %q", tt.url, got, tt.source)
		}
	}
}

func TestBaseImages(t *testing.T) {
	const module = "example.com/acme/x"
	plugins := func() []plugin.Plugin {
		return []plugin.Plugin{{Module: module, Files: set(t, manifest(module))}}
	}
	tests := []struct {
		base, digest, wantName, wantPURL string
	}{
		{"traefik:v3.6", baseDigest, "traefik:v3.6", "pkg:oci/traefik@sha256:" + baseDigest[7:] + "?repository_url=docker.io%2Flibrary%2Ftraefik&tag=v3.6"},
		{"127.0.0.1:5000/team/traefik@" + baseDigest, baseDigest, "127.0.0.1:5000/team/traefik@" + baseDigest, "pkg:oci/traefik@sha256:" + baseDigest[7:] + "?repository_url=127.0.0.1:5000%2Fteam%2Ftraefik"},
		{"ghcr.io/acme/traefik:v3", "", "ghcr.io/acme/traefik:v3", "pkg:oci/traefik?repository_url=ghcr.io%2Facme%2Ftraefik&tag=v3"},
		{"oci:/home/alice/layouts/traefik:v3", baseDigest, "oci:traefik:v3", ""},
		{"docker-archive:/tmp/build/traefik.tar", baseDigest, "docker-archive:traefik.tar", ""},
	}
	for _, tt := range tests {
		raw, err := SPDX(Input{BaseName: tt.base, BaseDigest: tt.digest, Plugins: plugins()})
		if err != nil {
			t.Errorf("%s: %v", tt.base, err)
			continue
		}
		if strings.Contains(string(raw), "/home/alice") || strings.Contains(string(raw), "/tmp/build") {
			t.Errorf("%s: a host path is in the SBOM", tt.base)
		}
		doc := parse(t, raw)
		base := doc.Packages[1]
		if base.PackageName != tt.wantName || strings.Join(purls(base), "") != tt.wantPURL {
			t.Errorf("%s: name %q purls %v, want %q %q", tt.base, base.PackageName, purls(base), tt.wantName, tt.wantPURL)
		}
	}
}

func TestInputErrors(t *testing.T) {
	const module = "example.com/acme/x"
	good := func() Input {
		return Input{BaseName: baseName, BaseDigest: baseDigest, Plugins: []plugin.Plugin{{Module: module, Source: plugin.Source{Commit: commit}, Files: set(t, manifest(module))}}}
	}
	tests := []struct {
		name string
		edit func(*Input)
		want string
	}{
		{"no base", func(in *Input) { in.BaseName = "" }, "no base image name"},
		{"bad base digest", func(in *Input) { in.BaseDigest = "sha256:abc" }, "base digest"},
		{"bad image digest", func(in *Input) { in.ImageDigest = "md5:00" }, "image digest"},
		{"base pins another digest", func(in *Input) { in.BaseName = "traefik@sha256:" + strings.Repeat("1", 64) }, "pins"},
		{"bad module path", func(in *Input) { in.Plugins[0].Module = "/abs" }, "module path"},
		{"duplicate plugin", func(in *Input) { in.Plugins = append(in.Plugins, in.Plugins[0]) }, "appears twice"},
		{"bad commit", func(in *Input) { in.Plugins[0].Source.Commit = "main" }, "not a hexadecimal"},
		{"before 1970", func(in *Input) { in.Created = in.Created.AddDate(-100, 0, 0).Add(-1) }, "before 1970"},
		{"bad modules.txt", func(in *Input) {
			in.Plugins[0].Files = set(t, manifest(module), file("vendor/modules.txt", "example.com/pkg\n"))
		}, "before any module line"},
		{"unreadable file", func(in *Input) {
			bad := file("x.go", "")
			bad.Open = func() (io.ReadCloser, error) { return nil, os.ErrPermission }
			in.Plugins[0].Files = set(t, manifest(module), bad)
		}, "permission denied"},
	}
	for _, tt := range tests {
		in := good()
		tt.edit(&in)
		_, err := SPDX(in)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want one containing %q", tt.name, err, tt.want)
		}
	}
	// The given content hash, when right, is accepted; without files the
	// plugin is described from its pins only.
	in := good()
	h, err := in.Plugins[0].Files.Hash()
	if err != nil {
		t.Fatal(err)
	}
	in.Plugins[0].Hash = h
	if _, err := SPDX(in); err != nil {
		t.Errorf("matching content hash refused: %v", err)
	}
	in.Plugins[0].Files = nil
	raw, err := SPDX(in)
	if err != nil {
		t.Fatal(err)
	}
	p := pkgByName(t, parse(t, raw), module)
	if p.FilesAnalyzed || p.PackageVerificationCode != nil || !strings.Contains(p.PackageComment, h) {
		t.Errorf("plugin without files: analysed %v, code %v, comment %q", p.FilesAnalyzed, p.PackageVerificationCode, p.PackageComment)
	}
}
