package modproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"go/build"
	"go/build/constraint"
	"io"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"testing/fstest"
	"unicode"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/dirhash"

	"github.com/xtraefik/xtraefik/internal/fileset"
	"github.com/xtraefik/xtraefik/internal/modtxt"
)

// The rules below are those of `go mod vendor` in Go 1.26
// (cmd/go/internal/modcmd/vendor.go); module zips hold the same files the
// go command copies from its module cache, so the result is the same,
// byte for byte.

// goSum indexes go.sum lines: "path version" -> h1:, "path version/go.mod" -> h1:.
func parseGoSum(data []byte) map[string]string {
	sums := map[string]string{}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) == 3 {
			sums[f[0]+" "+f[1]] = f[2]
		}
	}
	return sums
}

// revendor restores vendor/ when the module has vendor/modules.txt and
// returns the modules it restored and all files. Without modules.txt,
// missing reports whether go.mod requires other modules all the same.
// A go.mod that declares another module than m is refused first.
func (c *Client) revendor(ctx context.Context, m module.Version, files []fileset.File) (deps []Dep, missing bool, _ []fileset.File, _ error) {
	by := m.String()
	byName := map[string][]byte{}
	for _, f := range files {
		if f.Path == "vendor/modules.txt" || f.Path == "go.mod" || f.Path == "go.sum" {
			b, err := readAll(f)
			if err != nil {
				return nil, false, nil, err
			}
			byName[f.Path] = b
		}
	}
	goVersion := "1.16" // the go command's default for a go.mod without "go"
	var requires int
	if gm, ok := byName["go.mod"]; ok {
		mf, err := modfile.ParseLax("go.mod", gm, nil)
		if err != nil {
			return nil, false, nil, fmt.Errorf("%w: go.mod: %v", ErrVendor, err)
		}
		if err := checkDeclared(mf, m.Path, ""); err != nil {
			return nil, false, nil, err
		}
		if mf.Go != nil {
			goVersion = mf.Go.Version
		}
		requires = len(mf.Require)
	}
	txt, ok := byName["vendor/modules.txt"]
	if !ok {
		return nil, requires > 0, files, nil
	}
	mods, err := modtxt.Parse(txt)
	if err != nil {
		return nil, false, nil, fmt.Errorf("%w: %v", ErrVendor, err)
	}
	sums := parseGoSum(byName["go.sum"])
	out := map[string][]byte{}
	var notCached []error // offline, every missing dependency is named at once
	for _, vm := range mods {
		if len(vm.Packages) == 0 {
			continue
		}
		dep, err := c.vendorOne(ctx, by, vm, sums, goVersion, out)
		if c.offline && errors.Is(err, ErrNotCached) {
			notCached = append(notCached, err)
			continue
		}
		if err != nil {
			return nil, false, nil, err
		}
		deps = append(deps, dep)
	}
	if len(notCached) > 0 {
		return nil, false, nil, errors.Join(notCached...)
	}
	// `go mod vendor` empties vendor/ before writing it; of a module zip's
	// vendor/ files only modules.txt, the module's own, stays.
	kept := files[:0:0]
	for _, f := range files {
		if !strings.HasPrefix(f.Path, "vendor/") || f.Path == "vendor/modules.txt" {
			kept = append(kept, f)
		}
	}
	files = kept
	names := make([]string, 0, len(out))
	for n := range out {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		files = append(files, memFile(n, out[n]))
	}
	return deps, false, files, nil
}

// vendorOne fetches one module of modules.txt, checks it against go.sum
// and copies its listed packages into out (vendor path -> content).
func (c *Client) vendorOne(ctx context.Context, by string, vm modtxt.Module, sums map[string]string, goVersion string, out map[string][]byte) (Dep, error) {
	dep := Dep{Path: vm.Path, Version: vm.Version}
	if vm.Local() {
		return dep, fmt.Errorf("%w: vendor/modules.txt replaces %s with the directory %s, which is not in the module and no proxy serves", ErrVendor, vm.Path, vm.Replace.Path)
	}
	src := module.Version{Path: vm.Path, Version: vm.Version}
	if vm.Replace.Path != "" {
		src = vm.Replace
		dep.Replace = src.Path + "@" + src.Version
	}
	if err := checkVersion(src.Path, src.Version); err != nil {
		return dep, fmt.Errorf("%w: vendor/modules.txt: %v", ErrVendor, err)
	}
	want := sums[src.Path+" "+src.Version]
	if want == "" {
		return dep, fmt.Errorf("%w: go.sum has no h1: line for %s@%s, which vendor/modules.txt lists", ErrVendor, src.Path, src.Version)
	}
	z, err := c.verifiedZip(ctx, src, func(sum string) error {
		if sum != want {
			return fmt.Errorf("%w: the zip hashes to %s, but the plugin's go.sum says %s", ErrChecksum, sum, want)
		}
		return nil
	}, false)
	var nc *notCached
	if errors.As(err, &nc) {
		named := *nc
		named.by = by
		return dep, &named
	}
	if err != nil {
		return dep, fmt.Errorf("fetch dependency %s@%s: %w", src.Path, src.Version, err)
	}
	dep.Sum = z.sum
	files := z.files
	mfs := fstest.MapFS{}
	for _, f := range files {
		b, err := readAll(f)
		if err != nil {
			return dep, err
		}
		mfs[f.Path] = &fstest.MapFile{Data: b, Mode: 0o644}
	}
	// A dependency's go.mod declares the path modules.txt requires, or
	// its replacement's, as the go command wants.
	if gm := mfs["go.mod"]; gm != nil {
		replacedBy := ""
		if vm.Replace.Path != "" {
			replacedBy = src.Path
		}
		if err := CheckModulePath(gm.Data, vm.Path, replacedBy); err != nil {
			return dep, fmt.Errorf("dependency %s: %w", src, err)
		}
	}
	// The /go.mod line, when go.sum has it, must match the zip's go.mod
	// (the same file the proxy serves as .mod for modules that have one).
	if wantMod := sums[src.Path+" "+src.Version+"/go.mod"]; wantMod != "" && mfs["go.mod"] != nil {
		data := mfs["go.mod"].Data
		got, err := dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
		if err != nil {
			return dep, err
		}
		if got != wantMod {
			return dep, fmt.Errorf("dependency %s@%s: %w: its go.mod hashes %s, but the plugin's go.sum says %s", src.Path, src.Version, ErrChecksum, got, wantMod)
		}
	}
	v := &vendorer{fs: mfs, goVersion: goVersion, cgo: c.env.cgo, out: out, visited: map[string]bool{}}
	for _, pkg := range vm.Packages {
		rel, ok := strings.CutPrefix(pkg, vm.Path)
		if !ok || (rel != "" && rel[0] != '/') {
			return dep, fmt.Errorf("%w: vendor/modules.txt lists package %s under module %s, which does not contain it", ErrVendor, pkg, vm.Path)
		}
		if err := v.pkg(pkg, strings.TrimPrefix(rel, "/")); err != nil {
			return dep, fmt.Errorf("%w: %s@%s: %v", ErrVendor, src.Path, src.Version, err)
		}
	}
	return dep, nil
}

// vendorer copies packages of one module.
type vendorer struct {
	fs        fstest.MapFS
	goVersion string
	cgo       bool
	out       map[string][]byte
	// visited holds the package directories (and their parents) whose
	// metadata files were handled: copyMetadata's copiedMetadata.
	visited map[string]bool
}

func dirOf(rel string) string {
	if rel == "" {
		return "."
	}
	return rel
}

// pkg vendors package pkg found at rel (slash path, "" for the root).
func (v *vendorer) pkg(pkg, rel string) error {
	entries, err := fs.ReadDir(v.fs, dirOf(rel))
	if err != nil || (rel != "" && len(entries) == 0) {
		return fmt.Errorf("package %s, listed in vendor/modules.txt, is not in the module zip: it is probably a nested module (a directory with its own go.mod), which needs its own line in vendor/modules.txt", pkg)
	}
	dst := "vendor/" + pkg
	for _, e := range entries {
		if e.IsDir() || !v.potentialSource(path.Join(rel, e.Name()), e.Name()) {
			continue
		}
		v.out[dst+"/"+e.Name()] = v.fs[path.Join(rel, e.Name())].Data
	}
	// Metadata (LICENSE, NOTICE...) from parent directories up to the
	// module root, each directory once per module.
	for up, d, r := 0, dst, rel; ; up++ {
		if v.visited[d] {
			break
		}
		v.visited[d] = true
		if up > 0 {
			ents, _ := fs.ReadDir(v.fs, dirOf(r))
			for _, e := range ents {
				if !e.IsDir() && isMetadata(e.Name()) {
					v.out[d+"/"+e.Name()] = v.fs[path.Join(r, e.Name())].Data
				}
			}
		}
		if r == "" {
			break
		}
		d, r = path.Dir(d), path.Dir(r)
		if r == "." {
			r = ""
		}
	}
	return v.embeds(pkg, rel, dst)
}

// isMetadata is matchMetadata: capitalised license and authorship files.
func isMetadata(name string) bool {
	for _, p := range [...]string{"AUTHORS", "CONTRIBUTORS", "COPYLEFT", "COPYING", "COPYRIGHT", "LEGAL", "LICENSE", "NOTICE", "PATENTS"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// potentialSource is matchPotentialSourceFile: no tests, no go.mod/go.sum
// from go 1.17 on, no Go file that can never build (tagged "ignore").
func (v *vendorer) potentialSource(p, name string) bool {
	if strings.HasSuffix(name, "_test.go") {
		return false
	}
	if (name == "go.mod" || name == "go.sum") && goAtLeast(v.goVersion, 1, 17) {
		return false
	}
	if strings.HasSuffix(name, ".go") {
		return shouldBuildAnyTags(v.fs[p].Data)
	}
	return true
}

// embeds copies the files the package's //go:embed patterns name, read as
// the go command reads them (go/build with UseAllFiles, then its
// resolveEmbed rules).
func (v *vendorer) embeds(pkg, rel, dst string) error {
	strip := func(p string) string {
		p = strings.TrimPrefix(p, "/")
		if p == "" {
			return "."
		}
		return p
	}
	ctx := build.Default
	ctx.GOROOT, ctx.GOPATH = "", ""
	ctx.UseAllFiles = true
	ctx.CgoEnabled = v.cgo
	ctx.JoinPath = path.Join
	ctx.IsAbsPath = path.IsAbs
	ctx.SplitPathList = func(string) []string { return nil }
	ctx.HasSubdir = func(string, string) (string, bool) { return "", false }
	ctx.IsDir = func(p string) bool {
		fi, err := fs.Stat(v.fs, strip(p))
		return err == nil && fi.IsDir()
	}
	ctx.ReadDir = func(p string) ([]fs.FileInfo, error) {
		ents, err := fs.ReadDir(v.fs, strip(p))
		if err != nil {
			return nil, err
		}
		infos := make([]fs.FileInfo, 0, len(ents))
		for _, e := range ents {
			fi, err := e.Info()
			if err != nil {
				return nil, err
			}
			infos = append(infos, fi)
		}
		return infos, nil
	}
	ctx.OpenFile = func(p string) (io.ReadCloser, error) { return v.fs.Open(strip(p)) }
	bp, err := ctx.ImportDir("/"+rel, build.IgnoreVendor)
	if err != nil {
		var multi *build.MultiplePackageError
		var noGo *build.NoGoError
		if errors.As(err, &noGo) {
			return nil // no buildable Go files: embeds of ignored files don't count
		}
		if !errors.As(err, &multi) {
			return fmt.Errorf("package %s: find embedded files: %v", pkg, err)
		}
	}
	patterns := bp.EmbedPatterns
	if !goAtLeast(v.goVersion, 1, 22) {
		// Older go commands also copied test embeds (golang.org/issue/63473).
		patterns = append(append(append([]string(nil), bp.EmbedPatterns...), bp.TestEmbedPatterns...), bp.XTestEmbedPatterns...)
	}
	files, err := resolveEmbed(v.fs, dirOf(rel), patterns)
	if err != nil {
		return fmt.Errorf("package %s: %v", pkg, err)
	}
	for _, f := range files {
		if _, done := v.out[dst+"/"+f]; !done {
			v.out[dst+"/"+f] = v.fs[path.Join(rel, f)].Data
		}
	}
	return nil
}

// resolveEmbed is cmd/go/internal/load.resolveEmbed on a module zip, which
// has neither symlinks nor nested modules.
func resolveEmbed(fsys fs.FS, dir string, patterns []string) ([]string, error) {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		return nil, err
	}
	have := map[string]bool{}
	for _, pattern := range patterns {
		glob, all := strings.CutPrefix(pattern, "all:")
		if _, err := path.Match(glob, ""); err != nil || glob == "." || !fs.ValidPath(glob) {
			return nil, fmt.Errorf("pattern %s: invalid pattern syntax", pattern)
		}
		matches, err := fs.Glob(sub, glob)
		if err != nil {
			return nil, fmt.Errorf("pattern %s: %v", pattern, err)
		}
		n := 0
		for _, m := range matches {
			for _, el := range strings.Split(m, "/") {
				if isBadEmbedName(el) {
					return nil, fmt.Errorf("pattern %s: cannot embed %s: invalid name %s", pattern, m, el)
				}
			}
			fi, err := fs.Stat(sub, m)
			if err != nil {
				return nil, err
			}
			if !fi.IsDir() {
				have[m] = true
				n++
				continue
			}
			count := 0
			err = fs.WalkDir(sub, m, func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				name := d.Name()
				if p != m && (isBadEmbedName(name) || ((name[0] == '.' || name[0] == '_') && !all)) {
					if d.IsDir() {
						return fs.SkipDir
					}
					if name[0] == '.' || name[0] == '_' {
						return nil
					}
					return fmt.Errorf("cannot embed file %s: invalid name %s", p, name)
				}
				if d.IsDir() {
					return nil
				}
				count++
				have[p] = true
				return nil
			})
			if err != nil {
				return nil, fmt.Errorf("pattern %s: %v", pattern, err)
			}
			if count == 0 {
				return nil, fmt.Errorf("pattern %s: cannot embed directory %s: contains no embeddable files", pattern, m)
			}
			n += count
		}
		if n == 0 {
			return nil, fmt.Errorf("pattern %s: no matching files found", pattern)
		}
	}
	out := make([]string, 0, len(have))
	for f := range have {
		out = append(out, f)
	}
	sort.Strings(out)
	return out, nil
}

func isBadEmbedName(name string) bool {
	if err := module.CheckFilePath(name); err != nil {
		return true
	}
	switch name {
	case "", ".bzr", ".hg", ".git", ".svn":
		return true
	}
	return false
}

// goAtLeast compares a go directive ("1.17", "1.21.0", "1.22rc1") with
// major.minor.
func goAtLeast(v string, major, minor int) bool {
	f := strings.SplitN(v, ".", 3)
	ma, err := strconv.Atoi(f[0])
	if err != nil {
		return false
	}
	mi := 0
	if len(f) > 1 {
		// "22rc1" is minor 22.
		digits := f[1]
		if i := strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
			digits = digits[:i]
		}
		mi, _ = strconv.Atoi(digits)
	}
	return ma > major || (ma == major && mi >= minor)
}

// shouldBuildAnyTags is cmd/go/internal/imports.ShouldBuild with AnyTags:
// every build tag counts as both set and unset, except "ignore", which is
// never set. So only files whose constraint needs "ignore" (or is
// malformed) are left out.
func shouldBuildAnyTags(content []byte) bool {
	// ReadImports fails on a NUL byte, and the go command then keeps the
	// file. (It only reads up to the imports; a NUL further on is a corner
	// this does not copy.)
	if bytes.IndexByte(content, 0) >= 0 {
		return true
	}
	header, goBuild, ok := parseFileHeader(content)
	if !ok {
		return false
	}
	if goBuild != "" {
		x, err := constraint.Parse(goBuild)
		if err != nil {
			return false
		}
		return evalAnyTags(x, true)
	}
	for _, line := range strings.Split(string(header), "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "//") || !strings.Contains(line, "+build") || !constraint.IsPlusBuild(line) {
			continue
		}
		if x, err := constraint.Parse(line); err == nil && !evalAnyTags(x, true) {
			return false
		}
	}
	return true
}

func evalAnyTags(x constraint.Expr, prefer bool) bool {
	switch x := x.(type) {
	case *constraint.TagExpr:
		for _, c := range x.Tag {
			if !unicode.IsLetter(c) && !unicode.IsDigit(c) && c != '_' && c != '.' {
				return false
			}
		}
		if x.Tag == "ignore" {
			return false
		}
		return prefer
	case *constraint.NotExpr:
		return !evalAnyTags(x.X, !prefer)
	case *constraint.AndExpr:
		return evalAnyTags(x.X, prefer) && evalAnyTags(x.Y, prefer)
	case *constraint.OrExpr:
		return evalAnyTags(x.X, prefer) || evalAnyTags(x.Y, prefer)
	}
	return false
}

// parseFileHeader is cmd/go/internal/imports.parseFileHeader: the leading
// comments and blank lines where +build lines count, and the //go:build
// line. ok is false for two //go:build lines.
func parseFileHeader(content []byte) (trimmed []byte, goBuild string, ok bool) {
	end := 0
	p := content
	ended := false
	inSlashStar := false
Lines:
	for len(p) > 0 {
		line := p
		if i := bytes.IndexByte(line, '\n'); i >= 0 {
			line, p = line[:i], p[i+1:]
		} else {
			p = p[len(p):]
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 && !ended {
			end = len(content) - len(p)
			continue Lines
		}
		if !bytes.HasPrefix(line, []byte("//")) {
			ended = true
		}
		if !inSlashStar && isGoBuildComment(line) {
			if goBuild != "" {
				return nil, "", false
			}
			goBuild = string(line)
		}
	Comments:
		for len(line) > 0 {
			if inSlashStar {
				if i := bytes.Index(line, []byte("*/")); i >= 0 {
					inSlashStar = false
					line = bytes.TrimSpace(line[i+2:])
					continue Comments
				}
				continue Lines
			}
			if bytes.HasPrefix(line, []byte("//")) {
				continue Lines
			}
			if bytes.HasPrefix(line, []byte("/*")) {
				inSlashStar = true
				line = bytes.TrimSpace(line[2:])
				continue Comments
			}
			break Lines
		}
	}
	return content[:end], goBuild, true
}

func isGoBuildComment(line []byte) bool {
	rest, ok := bytes.CutPrefix(line, []byte("//go:build"))
	if !ok {
		return false
	}
	return len(rest) == 0 || len(bytes.TrimSpace(rest)) < len(rest)
}

func readAll(f fileset.File) ([]byte, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}
