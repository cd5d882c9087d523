package sbom

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/github/go-spdx/v2/spdxexp"
	packageurl "github.com/package-url/packageurl-go"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx"
	"github.com/spdx/tools-golang/spdx/v2/common"
	"github.com/spdx/tools-golang/spdxlib"
	"github.com/spdx/tools-golang/utils"

	"github.com/xtraefik/xtraefik/internal/fileset"
	"github.com/xtraefik/xtraefik/internal/plugin"
	"github.com/xtraefik/xtraefik/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite the golden SBOMs in testdata")

const (
	baseName   = "docker.io/library/traefik:v3.6.12"
	baseDigest = "sha256:5e0e7a2c3d4b5a69788796a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5"
	imgDigest  = "sha256:0f1e2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4"
	commit     = "3d9c1f0b2a4e6d8c0b1a2f3e4d5c6b7a8f9e0d1c"
)

func epoch() time.Time { return time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC) }

func corpus(t *testing.T, module, version string, revendor bool) testenv.CorpusPlugin {
	t.Helper()
	for _, p := range testenv.Corpus() {
		if p.Module == module && p.Version == version && p.Revendor == revendor {
			return p
		}
	}
	t.Fatalf("%s@%s (revendor %v) is not in the corpus", module, version, revendor)
	return testenv.CorpusPlugin{}
}

func corpusInput(t *testing.T, p testenv.CorpusPlugin) Input {
	t.Helper()
	return Input{
		BaseName: baseName, BaseDigest: baseDigest, ImageDigest: imgDigest,
		Created: epoch(), ToolVersion: "v0.1.0",
		Plugins: []plugin.Plugin{{
			Alias: p.Alias, Module: p.Module,
			Source: plugin.Source{Ref: p.Version, Commit: commit, Git: "https://" + p.Module + ".git"},
			Files:  testenv.CorpusFiles(t, p),
		}},
	}
}

// golden compares got with testdata/<name>, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	file := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test ./sbom -run %s -update to create it)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("SBOM differs from %s (rerun with -update after checking the change):\n%s", file, lineDiff(string(want), string(got)))
	}
}

func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			return fmt.Sprintf("first difference at line %d:\n  want %s\n  got  %s", i+1, a, b)
		}
	}
	return "(no line differs)"
}

// parse reads a document back with tools-golang's JSON reader and checks what
// SPDX 2.3 requires of it.
func parse(t *testing.T, raw []byte) *spdx.Document {
	t.Helper()
	doc, err := spdxjson.Read(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("tools-golang cannot read the document: %v", err)
	}
	checkSPDX(t, doc)
	return doc
}

var (
	idPattern        = regexp.MustCompile(`^[A-Za-z0-9.-]+$`)
	createdPattern   = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$`)
	downloadPattern  = regexp.MustCompile(`^(NONE|NOASSERTION|(git|hg|svn|bzr)\+(https?|ssh|git|file)://[^\s@]+(@[^\s#]+)?(#\S+)?|https?://\S+)$`)
	hexPattern       = regexp.MustCompile(`^[0-9a-f]+$`)
	checksumHexSizes = map[common.ChecksumAlgorithm]int{common.SHA1: 40, common.SHA256: 64}
)

// checkSPDX asserts the document-level and package-level rules of SPDX 2.3
// (clauses 6 and 7) that a generator can break, beyond the JSON shape the
// reader already checked.
func checkSPDX(t *testing.T, doc *spdx.Document) {
	t.Helper()
	if doc.SPDXVersion != "SPDX-2.3" || doc.DataLicense != "CC0-1.0" || doc.SPDXIdentifier != "DOCUMENT" {
		t.Errorf("header: version %q, data licence %q, id %q", doc.SPDXVersion, doc.DataLicense, doc.SPDXIdentifier)
	}
	if doc.DocumentName == "" {
		t.Error("no document name")
	}
	if u, err := url.Parse(doc.DocumentNamespace); err != nil || !u.IsAbs() || strings.Contains(doc.DocumentNamespace, "#") {
		t.Errorf("namespace %q is not an absolute URI without fragment", doc.DocumentNamespace)
	}
	if doc.CreationInfo == nil || len(doc.CreationInfo.Creators) == 0 || !createdPattern.MatchString(doc.CreationInfo.Created) {
		t.Fatalf("creation info %+v", doc.CreationInfo)
	}
	for _, c := range doc.CreationInfo.Creators {
		if c.CreatorType != "Tool" && c.CreatorType != "Organization" && c.CreatorType != "Person" {
			t.Errorf("creator %+v", c)
		}
	}
	if err := spdxlib.ValidateDocument(doc); err != nil {
		t.Errorf("tools-golang validation: %v", err)
	}
	described, err := spdxlib.GetDescribedPackageIDs(doc)
	if err != nil || len(described) != 1 {
		t.Errorf("described packages %v, %v", described, err)
	}
	seen := map[common.ElementID]bool{}
	for _, p := range doc.Packages {
		if p.PackageName == "" {
			t.Errorf("package %s has no name", p.PackageSPDXIdentifier)
		}
		if !idPattern.MatchString(string(p.PackageSPDXIdentifier)) || seen[p.PackageSPDXIdentifier] {
			t.Errorf("package id %q is malformed or repeated", p.PackageSPDXIdentifier)
		}
		seen[p.PackageSPDXIdentifier] = true
		if !downloadPattern.MatchString(p.PackageDownloadLocation) {
			t.Errorf("%s: download location %q", p.PackageName, p.PackageDownloadLocation)
		}
		if !p.FilesAnalyzed && (p.PackageVerificationCode != nil || len(p.PackageLicenseInfoFromFiles) > 0) {
			t.Errorf("%s: files not analysed but a verification code or licences from files are given", p.PackageName)
		}
		if c := p.PackageVerificationCode; c != nil && (len(c.Value) != 40 || !hexPattern.MatchString(c.Value)) {
			t.Errorf("%s: verification code %q", p.PackageName, c.Value)
		}
		for _, c := range p.PackageChecksums {
			if n, ok := checksumHexSizes[c.Algorithm]; !ok || len(c.Value) != n || !hexPattern.MatchString(c.Value) {
				t.Errorf("%s: checksum %+v", p.PackageName, c)
			}
		}
		for _, lic := range append([]string{p.PackageLicenseDeclared, p.PackageLicenseConcluded}, p.PackageLicenseInfoFromFiles...) {
			if lic == "NOASSERTION" || lic == "NONE" {
				continue
			}
			if ok, bad := spdxexp.ValidateLicenses([]string{lic}); !ok {
				t.Errorf("%s: licence %q is not a valid SPDX expression: %v", p.PackageName, lic, bad)
			}
		}
		for _, r := range p.PackageExternalReferences {
			if r.Category != "PACKAGE-MANAGER" || r.RefType != "purl" {
				t.Errorf("%s: external ref %+v", p.PackageName, r)
				continue
			}
			if _, err := packageurl.FromString(r.Locator); err != nil {
				t.Errorf("%s: purl %q: %v", p.PackageName, r.Locator, err)
			}
		}
	}
}

func pkgByName(t *testing.T, doc *spdx.Document, name string) *spdx.Package {
	t.Helper()
	for _, p := range doc.Packages {
		if p.PackageName == name {
			return p
		}
	}
	t.Fatalf("no package %q", name)
	return nil
}

func purls(p *spdx.Package) []string {
	var out []string
	for _, r := range p.PackageExternalReferences {
		out = append(out, r.Locator)
	}
	return out
}

func related(doc *spdx.Document, a common.ElementID, typ string) []common.ElementID {
	var out []common.ElementID
	for _, r := range doc.Relationships {
		if r.RefA.ElementRefID == a && r.Relationship == typ {
			out = append(out, r.RefB.ElementRefID)
		}
	}
	return out
}

// spdxVerificationCode computes clause 7.9's code with tools-golang's own
// implementation, from per-file SHA-1s computed here.
func spdxVerificationCode(t *testing.T, s fileset.Set) string {
	t.Helper()
	var files []*spdx.File
	for _, f := range s {
		if f.Kind == fileset.Symlink {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		h := sha1.New()
		_, err = io.Copy(h, rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, &spdx.File{FileName: "./" + f.Path, Checksums: []common.Checksum{{Algorithm: common.SHA1, Value: hex.EncodeToString(h.Sum(nil))}}})
	}
	code, err := utils.GetVerificationCode(files, "")
	if err != nil {
		t.Fatal(err)
	}
	return code.Value
}

func TestPluginDemoGolden(t *testing.T) {
	p := corpus(t, "github.com/traefik/plugindemo", "v0.2.2", false)
	in := corpusInput(t, p)
	raw, err := SPDX(in)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "plugindemo.spdx.json", raw)

	doc := parse(t, raw)
	if doc.CreationInfo.Created != "2024-05-06T07:08:09Z" || doc.CreationInfo.Creators[0].Creator != "xtraefik-v0.1.0" {
		t.Errorf("creation info %+v", doc.CreationInfo)
	}
	img := pkgByName(t, doc, "xtraefik-image")
	if img.PackageVersion != imgDigest || img.PackageChecksums[0].Value != strings.TrimPrefix(imgDigest, "sha256:") {
		t.Errorf("image package %+v", img)
	}
	base := pkgByName(t, doc, baseName)
	wantBasePURL := "pkg:oci/traefik@sha256:" + strings.TrimPrefix(baseDigest, "sha256:") + "?repository_url=docker.io%2Flibrary%2Ftraefik&tag=v3.6.12"
	if base.PackageVersion != baseDigest || strings.Join(purls(base), " ") != wantBasePURL {
		t.Errorf("base package: version %s, purls %v, want %s", base.PackageVersion, purls(base), wantBasePURL)
	}
	if got := related(doc, "Image", "DESCENDANT_OF"); len(got) != 1 || got[0] != base.PackageSPDXIdentifier {
		t.Errorf("image descends from %v", got)
	}

	plugin := pkgByName(t, doc, p.Module)
	wantHash, err := in.Plugins[0].Files.Hash()
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct{ what, got, want string }{
		{"versionInfo", plugin.PackageVersion, "v0.2.2"},
		{"downloadLocation", plugin.PackageDownloadLocation, "git+https://github.com/traefik/plugindemo.git@" + commit},
		{"purl", strings.Join(purls(plugin), " "), "pkg:golang/github.com/traefik/plugindemo@v0.2.2"},
		{"licenseDeclared", plugin.PackageLicenseDeclared, "Apache-2.0"},
		{"licenseInfoFromFiles", strings.Join(plugin.PackageLicenseInfoFromFiles, " "), "Apache-2.0"},
		{"verification code", plugin.PackageVerificationCode.Value, spdxVerificationCode(t, in.Plugins[0].Files)},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("plugin %s = %q, want %q", c.what, c.got, c.want)
		}
	}
	if !plugin.FilesAnalyzed || !strings.Contains(plugin.PackageComment, wantHash) || !strings.Contains(plugin.PackageComment, `"demo"`) {
		t.Errorf("plugin package: files analysed %v, comment %q (want the content hash %s and the alias)", plugin.FilesAnalyzed, plugin.PackageComment, wantHash)
	}
	if got := related(doc, "Image", "CONTAINS"); len(got) != 1 || got[0] != plugin.PackageSPDXIdentifier {
		t.Errorf("image contains %v", got)
	}
	if got := related(doc, plugin.PackageSPDXIdentifier, "DEPENDS_ON"); len(got) != 0 {
		t.Errorf("plugindemo has no dependency, the SBOM lists %v", got)
	}
}

func TestVendoredPluginGolden(t *testing.T) {
	p := corpus(t, "github.com/traefik/pluginproviderdemo", "v0.3.0", true)
	in := corpusInput(t, p)
	raw, err := SPDX(in)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "pluginproviderdemo.spdx.json", raw)

	doc := parse(t, raw)
	plugin := pkgByName(t, doc, p.Module)
	dep := pkgByName(t, doc, "github.com/traefik/genconf")
	if dep.PackageVersion != "v0.2.0" || strings.Join(purls(dep), " ") != "pkg:golang/github.com/traefik/genconf@v0.2.0" {
		t.Errorf("genconf: version %q, purls %v", dep.PackageVersion, purls(dep))
	}
	if dep.PackageLicenseDeclared != "Apache-2.0" {
		t.Errorf("genconf licence %q (%s), want Apache-2.0 from vendor/github.com/traefik/genconf/LICENSE", dep.PackageLicenseDeclared, dep.PackageLicenseComments)
	}
	if dep.FilesAnalyzed || strings.Contains(dep.PackageComment, "no file") {
		t.Errorf("genconf: files analysed %v, comment %q", dep.FilesAnalyzed, dep.PackageComment)
	}
	if got := related(doc, plugin.PackageSPDXIdentifier, "DEPENDS_ON"); len(got) != 1 || got[0] != dep.PackageSPDXIdentifier {
		t.Errorf("plugin depends on %v, want [%s]", got, dep.PackageSPDXIdentifier)
	}
	if plugin.PackageVerificationCode.Value != spdxVerificationCode(t, in.Plugins[0].Files) {
		t.Error("the verification code does not cover the vendored files")
	}

	// The module zip as served: modules.txt names genconf, vendor/ lacks it.
	// The SBOM still lists it, and says the files are missing.
	zipped := corpusInput(t, corpus(t, p.Module, p.Version, false))
	raw, err = SPDX(zipped)
	if err != nil {
		t.Fatal(err)
	}
	dep = pkgByName(t, parse(t, raw), "github.com/traefik/genconf")
	if !strings.Contains(dep.PackageComment, "no file of it is under vendor/github.com/traefik/genconf/") || dep.PackageLicenseDeclared != "NOASSERTION" {
		t.Errorf("genconf without vendored files: licence %q, comment %q", dep.PackageLicenseDeclared, dep.PackageComment)
	}
}

// TestCorpusDocumentsAreValid runs every corpus plugin, alone and all
// together, through the SPDX checks.
func TestCorpusDocumentsAreValid(t *testing.T) {
	var all []plugin.Plugin
	seen := map[string]bool{}
	for _, p := range testenv.Corpus() {
		in := corpusInput(t, p)
		raw, err := SPDX(in)
		if err != nil {
			t.Fatalf("%s@%s: %v", p.Module, p.Version, err)
		}
		doc := parse(t, raw)
		if pkg := pkgByName(t, doc, p.Module); pkg.PackageLicenseDeclared == "NOASSERTION" {
			t.Errorf("%s@%s: licence not identified: %s", p.Module, p.Version, pkg.PackageLicenseComments)
		}
		if !seen[p.Module] {
			seen[p.Module] = true
			all = append(all, in.Plugins[0])
		}
	}
	raw, err := SPDX(Input{BaseName: baseName, BaseDigest: baseDigest, Plugins: all})
	if err != nil {
		t.Fatal(err)
	}
	doc := parse(t, raw)
	if got := related(doc, "Image", "CONTAINS"); len(got) != len(all) {
		t.Errorf("image contains %d plugins, want %d", len(got), len(all))
	}
}

func TestDeterministic(t *testing.T) {
	in := corpusInput(t, corpus(t, "github.com/traefik/plugindemo", "v0.2.2", false))
	a, err := SPDX(in)
	if err != nil {
		t.Fatal(err)
	}
	// Fresh file handles, same content.
	in.Plugins[0].Files = testenv.CorpusFiles(t, corpus(t, "github.com/traefik/plugindemo", "v0.2.2", false))
	b, err := SPDX(in)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("the same input gave different documents")
	}
	in.Created = epoch().Add(time.Second)
	c, err := SPDX(in)
	if err != nil {
		t.Fatal(err)
	}
	da, dc := parse(t, a), parse(t, c)
	if da.DocumentNamespace == dc.DocumentNamespace {
		t.Error("two different documents share a namespace")
	}
	if dc.CreationInfo.Created != "2024-05-06T07:08:10Z" {
		t.Errorf("created %s", dc.CreationInfo.Created)
	}
	in.Created = time.Time{}
	z, err := SPDX(in)
	if err != nil {
		t.Fatal(err)
	}
	if got := parse(t, z).CreationInfo.Created; got != "1970-01-01T00:00:00Z" {
		t.Errorf("zero Created gave %s, want the Unix epoch", got)
	}
}
