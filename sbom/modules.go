package sbom

import (
	"bufio"
	"bytes"
	"fmt"
	"sort"
	"strings"

	"github.com/spdx/tools-golang/spdx"
	"github.com/spdx/tools-golang/spdx/v2/common"
	"golang.org/x/mod/module"

	"github.com/xtraefik/xtraefik/fileset"
	"github.com/xtraefik/xtraefik/plugin"
)

// vendoredModule is one "# module" entry of vendor/modules.txt that has at
// least one package vendored.
type vendoredModule struct {
	Path, Version string
	// Replacement, if any: a module path and version, or a local directory
	// (ReplaceVersion empty).
	ReplacePath, ReplaceVersion string
	Packages                    []string
}

func (m vendoredModule) local() bool { return m.ReplacePath != "" && m.ReplaceVersion == "" }

// key identifies the vendored content: modules shared by several plugins are
// listed once. A local replacement is the plugin's own directory, never
// shared.
func (m vendoredModule) key(plugin string) string {
	k := m.Path + "@" + m.Version + "=>" + m.ReplacePath + "@" + m.ReplaceVersion
	if m.local() {
		k += " in " + plugin
	}
	return k
}

// vendoredModules reads vendor/modules.txt of a plugin (the format cmd/go
// writes: "# path version [=> path version | => dir]", "## " annotations,
// then package lines). Modules without a package listed are requirements
// only; nothing of them is in the image, so they are left out.
func vendoredModules(p plugin.Plugin) ([]vendoredModule, error) {
	f, ok := p.Files.Lookup("vendor/modules.txt")
	if !ok || f.Kind == fileset.Symlink {
		return nil, nil
	}
	text, err := readLimited(f)
	if err != nil {
		return nil, err
	}
	var (
		out []vendoredModule
		cur *vendoredModule
	)
	flush := func() {
		if cur != nil && len(cur.Packages) > 0 {
			out = append(out, *cur)
		}
		cur = nil
	}
	sc := bufio.NewScanner(bytes.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "## "):
		case strings.HasPrefix(line, "# "):
			flush()
			m, err := parseModuleLine(strings.TrimPrefix(line, "# "))
			if err != nil {
				return nil, fmt.Errorf("vendor/modules.txt:%d: %w", n, err)
			}
			cur = &m
		case strings.HasPrefix(line, "#"):
			return nil, fmt.Errorf("vendor/modules.txt:%d: unexpected line %q", n, line)
		default:
			if cur == nil {
				return nil, fmt.Errorf("vendor/modules.txt:%d: package %s before any module line", n, line)
			}
			cur.Packages = append(cur.Packages, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("vendor/modules.txt: %w", err)
	}
	flush()
	return out, nil
}

func parseModuleLine(s string) (vendoredModule, error) {
	var m vendoredModule
	left, right, replaced := strings.Cut(s, "=>")
	lf := strings.Fields(left)
	switch len(lf) {
	case 1:
		m.Path = lf[0]
	case 2:
		m.Path, m.Version = lf[0], lf[1]
	default:
		return m, fmt.Errorf("bad module line %q", s)
	}
	if err := module.CheckImportPath(m.Path); err != nil {
		return m, fmt.Errorf("bad module line %q: %w", s, err)
	}
	if !replaced {
		if m.Version == "" {
			return m, fmt.Errorf("bad module line %q: no version", s)
		}
		return m, nil
	}
	rf := strings.Fields(right)
	switch len(rf) {
	case 1:
		m.ReplacePath = rf[0]
	case 2:
		m.ReplacePath, m.ReplaceVersion = rf[0], rf[1]
	default:
		return m, fmt.Errorf("bad module line %q", s)
	}
	return m, nil
}

// modulePackage describes one vendored module. The vendored tree holds only
// some of its files, so files are not analysed; the licence is read from the
// licence files go mod vendor copies to vendor/<module path>/.
func modulePackage(sc *licenseScanner, p plugin.Plugin, m vendoredModule, id common.ElementID) (*spdx.Package, error) {
	version, purlPath := m.Version, m.Path
	if m.ReplaceVersion != "" {
		// What is vendored is the replacement.
		version, purlPath = m.ReplaceVersion, m.ReplacePath
	}
	pkg := &spdx.Package{
		PackageName:             m.Path,
		PackageSPDXIdentifier:   id,
		PackageVersion:          version,
		PackageDownloadLocation: noAssertion,
		PrimaryPackagePurpose:   "LIBRARY",
	}
	licensing(pkg)
	if !m.local() && version != "" {
		pkg.PackageExternalReferences = []*spdx.PackageExternalReference{purlRef(golangPURL(purlPath, version))}
	}
	var notes []string
	switch {
	case m.local():
		notes = append(notes, fmt.Sprintf("replaced by the local directory %s", m.ReplacePath))
	case m.ReplacePath != "":
		notes = append(notes, fmt.Sprintf("replaced by %s %s", m.ReplacePath, m.ReplaceVersion))
	}
	dir := "vendor/" + m.Path
	if !hasFileUnder(p, dir) {
		notes = append(notes, fmt.Sprintf("listed in vendor/modules.txt of %s, but no file of it is under %s/", p.Module, dir))
	}
	notes = append(notes, fmt.Sprintf("vendored by %s: packages %s", p.Module, strings.Join(m.Packages, ", ")))
	pkg.PackageComment = strings.Join(notes, "; ")
	lic, err := declaredLicense(sc, p.Files, dir)
	if err != nil {
		return nil, err
	}
	lic.apply(pkg)
	return pkg, nil
}

// hasFileUnder looks for the first path after dir+"/" in the sorted set.
func hasFileUnder(p plugin.Plugin, dir string) bool {
	prefix := dir + "/"
	i := sort.Search(len(p.Files), func(i int) bool { return p.Files[i].Path >= prefix })
	return i < len(p.Files) && strings.HasPrefix(p.Files[i].Path, prefix)
}
