// Package sbom writes the software bill of materials of a built image: an SPDX
// 2.3 JSON document that lists the base image, each plugin (module, git source
// and commit, content hash, declared licence) and the Go modules each plugin
// vendors. The document is a pure function of its input, so the same build
// gives the same bytes, and attaching it to the image stays reproducible.
package sbom

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx"
	"github.com/spdx/tools-golang/spdx/v2/common"

	"github.com/xtraefik/xtraefik/internal/fileset"
	"github.com/xtraefik/xtraefik/internal/plugin"
)

// MediaType is the media type of the documents SPDX writes, and the artifact
// type of the referrer that carries one.
const MediaType = "application/spdx+json"

// namespacePrefix starts every document namespace. SPDX wants a unique URI,
// not a resolvable one; the rest is derived from the document's content.
const namespacePrefix = "https://spdx.org/spdxdocs/xtraefik/"

// noAssertion is SPDX's "this document makes no claim about the value".
const noAssertion = "NOASSERTION"

// Input is what the document describes.
type Input struct {
	// BaseName is the base image reference as written in the recipe.
	BaseName string
	// BaseDigest is the digest the base resolved to ("sha256:<hex>").
	BaseDigest string
	// ImageDigest is the built image's (or index's) digest, when known.
	ImageDigest string
	// Created is the document's creation time: the build epoch, so that the
	// document is reproducible. Zero means the Unix epoch.
	Created time.Time
	// ToolVersion is xtraefik's version, recorded as the creating tool.
	ToolVersion string
	// Plugins in recipe order.
	// Plugins are the image's plugins. Source (Git, Ref, Commit), Hash and
	// Files are recorded; without Files the document records the plugin
	// from its pins only: no file verification code, licence or vendored
	// module.
	Plugins []plugin.Plugin
	// PluginsImage says the image holds the plugin tree alone (a plugins
	// image, mounted at plugins-local of the unmodified base): it does not
	// descend from the base; the base depends on it at run time.
	PluginsImage bool
}

// Element identifiers of the fixed packages.
const (
	idImage = "Image"
	idBase  = "Base"
)

// SPDX renders in as an SPDX 2.3 JSON document. The same input gives the same
// bytes: no random identifier, no clock; the namespace is derived from the
// rest of the document.
func SPDX(in Input) ([]byte, error) {
	created, err := createdTime(in.Created)
	if err != nil {
		return nil, err
	}
	doc := &spdx.Document{
		SPDXVersion:    spdx.Version,
		DataLicense:    spdx.DataLicense,
		SPDXIdentifier: "DOCUMENT",
		DocumentName:   documentName(in),
		CreationInfo: &spdx.CreationInfo{
			Creators: []common.Creator{{CreatorType: "Tool", Creator: toolName(in.ToolVersion)}},
			Created:  created.Format("2006-01-02T15:04:05Z"),
		},
	}
	ids := newIDs()
	sc, err := newLicenseScanner()
	if err != nil {
		return nil, fmt.Errorf("sbom: %w", err)
	}
	image, err := imagePackage(in)
	if err != nil {
		return nil, err
	}
	base, err := basePackage(in)
	if err != nil {
		return nil, err
	}
	ids.reserve(idImage)
	ids.reserve(idBase)
	doc.Packages = append(doc.Packages, image, base)
	doc.Relationships = append(doc.Relationships,
		relationship("DOCUMENT", idImage, common.TypeRelationshipDescribe),
	)
	if in.PluginsImage {
		// Traefik in the unmodified base loads the plugins at run time.
		doc.Relationships = append(doc.Relationships, relationship(idImage, idBase, common.TypeRelationshipRuntimeDependencyOf))
	} else {
		// The image is the base plus one layer: it descends from the base.
		doc.Relationships = append(doc.Relationships, relationship(idImage, idBase, common.TypeRelationshipDescendantOf))
	}

	modules := map[string]common.ElementID{} // moduleKey -> package, shared by plugins
	seen := map[string]bool{}
	for i, p := range in.Plugins {
		if err := fileset.CheckPath(p.Module); err != nil {
			return nil, fmt.Errorf("sbom: plugin #%d (%s): module path: %w", i+1, p.Alias, err)
		}
		if seen[p.Module] {
			return nil, fmt.Errorf("sbom: plugin %s appears twice", p.Module)
		}
		seen[p.Module] = true
		pkg, err := pluginPackage(sc, p, ids.next("Plugin-"+p.Module))
		if err != nil {
			return nil, fmt.Errorf("sbom: plugin %s: %w", p.Module, err)
		}
		doc.Packages = append(doc.Packages, pkg)
		doc.Relationships = append(doc.Relationships, relationship(idImage, pkg.PackageSPDXIdentifier, common.TypeRelationshipContains))

		vendored, err := vendoredModules(p)
		if err != nil {
			return nil, fmt.Errorf("sbom: plugin %s: %w", p.Module, err)
		}
		for _, m := range vendored {
			key := moduleKey(m, p.Module)
			id, ok := modules[key]
			if !ok {
				dep, err := modulePackage(sc, p, m, ids.next("GoModule-"+m.Path+"-"+m.Version))
				if err != nil {
					return nil, fmt.Errorf("sbom: plugin %s: vendored %s: %w", p.Module, m.Path, err)
				}
				doc.Packages = append(doc.Packages, dep)
				id = dep.PackageSPDXIdentifier
				modules[key] = id
			}
			doc.Relationships = append(doc.Relationships, relationship(pkg.PackageSPDXIdentifier, id, common.TypeRelationshipDependsOn))
		}
	}

	// The namespace must be unique per document: hash the document without
	// it, then write it with the hash.
	unnamed, err := encode(doc)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(unnamed)
	doc.DocumentNamespace = namespacePrefix + hex.EncodeToString(sum[:])
	return encode(doc)
}

func encode(doc *spdx.Document) ([]byte, error) {
	var buf bytes.Buffer
	if err := spdxjson.Write(doc, &buf, spdxjson.Indent("  "), spdxjson.EscapeHTML(false)); err != nil {
		return nil, fmt.Errorf("sbom: encode SPDX JSON: %w", err)
	}
	return buf.Bytes(), nil
}

func createdTime(t time.Time) (time.Time, error) {
	if t.IsZero() {
		return time.Unix(0, 0).UTC(), nil
	}
	if t.Before(time.Unix(0, 0)) {
		return time.Time{}, fmt.Errorf("sbom: creation time %s is before 1970", t)
	}
	return t.UTC().Truncate(time.Second), nil
}

// toolName is SPDX's "Tool: name-version".
func toolName(version string) string {
	if version == "" {
		return "xtraefik"
	}
	return "xtraefik-" + version
}

func documentName(in Input) string {
	if in.ImageDigest != "" {
		return "xtraefik image " + in.ImageDigest
	}
	return "xtraefik image from " + baseDisplayName(in.BaseName)
}

func relationship(a, b common.ElementID, typ string) *spdx.Relationship {
	return &spdx.Relationship{
		RefA:         common.MakeDocElementID("", string(a)),
		RefB:         common.MakeDocElementID("", string(b)),
		Relationship: typ,
	}
}

// imagePackage is the image the document describes.
func imagePackage(in Input) (*spdx.Package, error) {
	pkg := &spdx.Package{
		PackageName:             "xtraefik-image",
		PackageSPDXIdentifier:   idImage,
		PackageDownloadLocation: noAssertion,
		PrimaryPackagePurpose:   "CONTAINER",
		PackageDescription:      "Traefik image with local plugins under plugins-local/src, built by xtraefik from " + baseDisplayName(in.BaseName),
	}
	if in.PluginsImage {
		pkg.PackageName = "xtraefik-plugins-image"
		pkg.PrimaryPackagePurpose = "ARCHIVE"
		pkg.PackageDescription = "Traefik local plugins under src/, to mount at plugins-local of the unmodified " + baseDisplayName(in.BaseName) + ", built by xtraefik"
	}
	licensing(pkg)
	if in.ImageDigest != "" {
		h, err := sha256Hex(in.ImageDigest)
		if err != nil {
			return nil, fmt.Errorf("sbom: image digest: %w", err)
		}
		pkg.PackageVersion = in.ImageDigest
		pkg.PackageChecksums = []common.Checksum{{Algorithm: common.SHA256, Value: h}}
	}
	return pkg, nil
}

// basePackage is the base image, with an OCI purl when it is a registry image.
func basePackage(in Input) (*spdx.Package, error) {
	if in.BaseName == "" {
		return nil, errors.New("sbom: no base image name")
	}
	pkg := &spdx.Package{
		PackageName:             baseDisplayName(in.BaseName),
		PackageSPDXIdentifier:   idBase,
		PackageDownloadLocation: noAssertion,
		PrimaryPackagePurpose:   "CONTAINER",
	}
	licensing(pkg)
	if in.BaseDigest != "" {
		h, err := sha256Hex(in.BaseDigest)
		if err != nil {
			return nil, fmt.Errorf("sbom: base digest: %w", err)
		}
		pkg.PackageVersion = in.BaseDigest
		pkg.PackageChecksums = []common.Checksum{{Algorithm: common.SHA256, Value: h}}
	}
	purl, err := ociPURL(in.BaseName, in.BaseDigest)
	if err != nil {
		return nil, fmt.Errorf("sbom: base image %s: %w", in.BaseName, err)
	}
	if purl != "" {
		pkg.PackageExternalReferences = []*spdx.PackageExternalReference{purlRef(purl)}
	}
	return pkg, nil
}

// pluginPackage describes one plugin: its source, the verification code of
// its files and its declared licence.
func pluginPackage(sc *licenseScanner, p plugin.Plugin, id common.ElementID) (*spdx.Package, error) {
	src := p.Source
	if src.Commit != "" && !isHex(src.Commit) {
		return nil, fmt.Errorf("commit %q is not a hexadecimal object name", src.Commit)
	}
	// Resolution hashed the files; a caller without a resolution may leave
	// it to the document.
	hash := p.Hash
	if hash == "" && p.Files != nil {
		var err error
		if hash, err = p.Files.Hash(); err != nil {
			return nil, fmt.Errorf("content hash: %w", err)
		}
	}
	pkg := &spdx.Package{
		PackageName:             p.Module,
		PackageSPDXIdentifier:   id,
		PackageVersion:          firstOf(src.Version, src.Ref),
		PackageDownloadLocation: gitLocation(src.Git, src.Commit),
		PrimaryPackagePurpose:   "LIBRARY",
		PackageSourceInfo:       sourceInfo(src),
		PackageComment:          pluginComment(p, hash),
	}
	licensing(pkg)
	pkg.PackageExternalReferences = []*spdx.PackageExternalReference{purlRef(golangPURL(p.Module, firstOf(src.Version, goVersion(src.Ref, src.Commit))))}
	if p.Files == nil {
		return pkg, nil
	}
	code, err := verificationCode(p.Files)
	if err != nil {
		return nil, err
	}
	pkg.FilesAnalyzed, pkg.IsFilesAnalyzedTagPresent = true, true
	pkg.PackageVerificationCode = code
	lic, err := declaredLicense(sc, p.Files, "")
	if err != nil {
		return nil, err
	}
	lic.apply(pkg)
	pkg.PackageLicenseInfoFromFiles = lic.ids
	return pkg, nil
}

func pluginComment(p plugin.Plugin, hash string) string {
	var b strings.Builder
	b.WriteString("Traefik local plugin")
	if p.Alias != "" {
		fmt.Fprintf(&b, " %q", p.Alias)
	}
	fmt.Fprintf(&b, ", placed at %s", plugin.Path("", p.Module))
	if hash != "" {
		fmt.Fprintf(&b, "; xtraefik content hash %s (fileset.Set.Hash of exactly the files in the image)", hash)
	}
	return b.String()
}

func sourceInfo(src plugin.Source) string {
	switch {
	case src.Version != "":
		return fmt.Sprintf("Go module proxy, version %s, %s", src.Version, src.Sum)
	case src.Path != "":
		return "local directory " + src.Path
	}
	loc := redactURL(src.Git)
	switch {
	case loc == "":
		return ""
	case src.Commit == "":
		return fmt.Sprintf("git repository %s, ref %s", loc, src.Ref)
	}
	return fmt.Sprintf("git repository %s, ref %s, commit %s", loc, src.Ref, src.Commit)
}

// licensing sets what the document does not assert: SPDX 2.3 makes these
// optional, but consumers expect them present.
func licensing(pkg *spdx.Package) {
	pkg.PackageLicenseConcluded = noAssertion
	pkg.PackageLicenseDeclared = noAssertion
	pkg.PackageCopyrightText = noAssertion
}

// verificationCode is SPDX 2.3's package verification code (clause 7.9): the
// SHA-1 of the sorted SHA-1s of every file. Symlinks have no content of their
// own; they are listed as excluded.
func verificationCode(files fileset.Set) (*common.PackageVerificationCode, error) {
	var sums []string
	var excluded []string
	for _, f := range files {
		if f.Kind == fileset.Symlink {
			excluded = append(excluded, "./"+f.Path)
			continue
		}
		s, err := sha1File(f)
		if err != nil {
			return nil, err
		}
		sums = append(sums, s)
	}
	slices.Sort(sums)
	h := sha1.New()
	io.WriteString(h, strings.Join(sums, ""))
	return &common.PackageVerificationCode{Value: hex.EncodeToString(h.Sum(nil)), ExcludedFiles: excluded}, nil
}

func sha1File(f fileset.File) (string, error) {
	if f.Open == nil {
		return "", fmt.Errorf("%s has no content", f.Path)
	}
	rc, err := f.Open()
	if err != nil {
		return "", fmt.Errorf("open %s: %w", f.Path, err)
	}
	defer rc.Close()
	h := sha1.New()
	if _, err := io.Copy(h, rc); err != nil {
		return "", fmt.Errorf("read %s: %w", f.Path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func purlRef(purl string) *spdx.PackageExternalReference {
	return &spdx.PackageExternalReference{
		Category: common.CategoryPackageManager,
		RefType:  common.TypePackageManagerPURL,
		Locator:  purl,
	}
}

// sha256Hex checks a "sha256:<hex>" digest and returns its hex part.
func sha256Hex(digest string) (string, error) {
	h, ok := strings.CutPrefix(digest, "sha256:")
	if !ok || len(h) != 64 || !isHex(h) || strings.ToLower(h) != h {
		return "", fmt.Errorf("%q is not a sha256:<64 lowercase hex> digest", digest)
	}
	return h, nil
}

func isHex(s string) bool {
	if s == "" {
		return false
	}
	_, err := hex.DecodeString(padEven(s))
	return err == nil
}

func padEven(s string) string {
	if len(s)%2 == 1 {
		return "0" + s
	}
	return s
}

// ids hands out unique SPDX element identifiers: "SPDXRef-" is followed by
// letters, digits, "." and "-" only.
type ids struct{ used map[string]bool }

func newIDs() *ids { return &ids{used: map[string]bool{}} }

func (x *ids) reserve(id string) { x.used[id] = true }

// next turns s into an identifier, numbering repeats: sanitising can make two
// names alike ("a_b", "a-b").
func (x *ids) next(s string) common.ElementID {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	id := b.String()
	for n := 2; x.used[id]; n++ {
		id = fmt.Sprintf("%s-%d", b.String(), n)
	}
	x.used[id] = true
	return common.ElementID(id)
}

// firstOf is the first non-empty string.
func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
