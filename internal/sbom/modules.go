package sbom

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spdx/tools-golang/spdx"
	"github.com/spdx/tools-golang/spdx/v2/common"

	"github.com/xtraefik/xtraefik/internal/fileset"
	"github.com/xtraefik/xtraefik/internal/modtxt"
	"github.com/xtraefik/xtraefik/internal/plugin"
)

// moduleKey identifies the vendored content: modules shared by several
// plugins are listed once. A local replacement is the plugin's own
// directory, never shared.
func moduleKey(m modtxt.Module, plugin string) string {
	k := m.Path + "@" + m.Version + "=>" + m.Replace.Path + "@" + m.Replace.Version
	if m.Local() {
		k += " in " + plugin
	}
	return k
}

// vendoredModules reads vendor/modules.txt of a plugin. Modules without a
// package listed are requirements only; nothing of them is in the image, so
// they are left out.
func vendoredModules(p plugin.Plugin) ([]modtxt.Module, error) {
	f, ok := p.Files.Lookup("vendor/modules.txt")
	if !ok || f.Kind == fileset.Symlink {
		return nil, nil
	}
	text, err := readLimited(f)
	if err != nil {
		return nil, err
	}
	mods, err := modtxt.Parse(text)
	if err != nil {
		return nil, err
	}
	out := mods[:0]
	for _, m := range mods {
		if len(m.Packages) > 0 {
			out = append(out, m)
		}
	}
	return out, nil
}

// modulePackage describes one vendored module. The vendored tree holds only
// some of its files, so files are not analysed; the licence is read from the
// licence files go mod vendor copies to vendor/<module path>/.
func modulePackage(sc *licenseScanner, p plugin.Plugin, m modtxt.Module, id common.ElementID) (*spdx.Package, error) {
	version, purlPath := m.Version, m.Path
	if m.Replace.Version != "" {
		// What is vendored is the replacement.
		version, purlPath = m.Replace.Version, m.Replace.Path
	}
	pkg := &spdx.Package{
		PackageName:             m.Path,
		PackageSPDXIdentifier:   id,
		PackageVersion:          version,
		PackageDownloadLocation: noAssertion,
		PrimaryPackagePurpose:   "LIBRARY",
	}
	licensing(pkg)
	if !m.Local() && version != "" {
		pkg.PackageExternalReferences = []*spdx.PackageExternalReference{purlRef(golangPURL(purlPath, version))}
	}
	var notes []string
	switch {
	case m.Local():
		notes = append(notes, fmt.Sprintf("replaced by the local directory %s", m.Replace.Path))
	case m.Replace.Path != "":
		notes = append(notes, fmt.Sprintf("replaced by %s %s", m.Replace.Path, m.Replace.Version))
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
