package sbom

import (
	"fmt"
	"io"
	"path"
	"slices"
	"strings"

	"github.com/github/go-spdx/v2/spdxexp"
	"github.com/google/licensecheck"
	"github.com/spdx/tools-golang/spdx"

	"github.com/xtraefik/xtraefik/internal/fileset"
)

// minCoverage is the share of a licence file (in percent of its words) that
// known licence texts must cover before the file counts as identified; the
// rest may be a custom clause that changes the terms. pkg.go.dev uses the
// same licensecheck threshold.
const minCoverage = 75

// maxLicenseBytes bounds what is read of one licence file.
const maxLicenseBytes = 1 << 20

// commonLicenses are the licences a quick scanner knows: those Go modules
// nearly always carry. licensecheck's built-in scanner compiles all of its
// ~370 licences into one matcher on first use, which costs ~300 MB of
// allocation, a live heap of ~60 MB and about a second; these compile in
// ~10 ms and ~3 MB.
// Families (an ID or a prefix ending in "-") come whole, so that the quick
// scanner chooses among their variants as the built-in one does.
var commonLicenses = []string{"0BSD", "Apache-2.0", "BSD-2-", "BSD-3-", "BSL-1.0", "CC0-1.0", "ISC", "MIT", "MIT-", "MPL-2.0", "Unlicense", "X11", "Zlib"}

func isCommonLicense(id string) bool {
	return slices.ContainsFunc(commonLicenses, func(c string) bool {
		return id == c || strings.HasSuffix(c, "-") && strings.HasPrefix(id, c)
	})
}

// variantLicenses are licences outside commonLicenses whose texts are a
// common licence with changes (licensecheck's corpus: Cube is Zlib, Net-SNMP
// is BSD, Xnet is MIT, each with a clause more). The quick scanner knows
// them only so that such a text is not taken for the common licence: when
// one matches, the built-in scanner decides.
var variantLicenses = []string{"Cube", "Net-SNMP", "Xnet"}

// licenseScanner identifies licence texts: with the quick scanner when it
// identifies the text by common licences, else with licensecheck's
// built-in scanner (built once per process, by licensecheck, on first use).
type licenseScanner struct {
	quick *licensecheck.Scanner
}

func newLicenseScanner() (*licenseScanner, error) {
	var list []licensecheck.License
	for _, l := range licensecheck.BuiltinLicenses() {
		// Entries without an LRE are URLs: a map lookup, free.
		if l.LRE == "" || isCommonLicense(l.ID) || slices.Contains(variantLicenses, l.ID) {
			list = append(list, l)
		}
	}
	quick, err := licensecheck.NewScanner(list)
	if err != nil {
		return nil, fmt.Errorf("licence scanner: %w", err)
	}
	return &licenseScanner{quick: quick}, nil
}

// scan returns the quick scanner's coverage when it identifies the text
// (minCoverage, no variant matched), else the built-in scanner's (builtin
// true): a text the quick scanner cannot settle may be any licence.
func (s *licenseScanner) scan(text []byte) (cov licensecheck.Coverage, builtin bool) {
	cov = s.quick.Scan(text)
	if cov.Percent >= minCoverage && len(cov.Match) > 0 &&
		!slices.ContainsFunc(cov.Match, func(m licensecheck.Match) bool { return slices.Contains(variantLicenses, m.ID) }) {
		return cov, false
	}
	return licensecheck.Scan(text), true
}

// licenseResult is what the licence files of one directory declare.
type licenseResult struct {
	// expr is the SPDX expression for licenseDeclared; "" asserts nothing.
	expr string
	// ids are the SPDX licence identifiers found, sorted.
	ids []string
	// comment says which files were read and what was found.
	comment string
}

func (l licenseResult) apply(pkg *spdx.Package) {
	if l.expr != "" {
		pkg.PackageLicenseDeclared = l.expr
	}
	pkg.PackageLicenseComments = l.comment
}

// isLicenseFile matches LICENSE*, LICENCE* and COPYING*, in any case.
func isLicenseFile(base string) bool {
	u := strings.ToUpper(base)
	return strings.HasPrefix(u, "LICENSE") || strings.HasPrefix(u, "LICENCE") || strings.HasPrefix(u, "COPYING")
}

// declaredLicense identifies the licence files directly in dir ("" for the
// root) with licensecheck. The declaration is the AND of every SPDX licence
// found, and NOASSERTION as soon as one file is not fully identified (an
// unknown text, a non-SPDX licence, a dangling symlink): a partial answer
// would understate the obligations.
func declaredLicense(sc *licenseScanner, files fileset.Set, dir string) (licenseResult, error) {
	var (
		res     licenseResult
		notes   []string
		unknown bool
		found   = map[string]bool{}
	)
	for _, f := range files {
		d := path.Dir(f.Path)
		if d == "." {
			d = ""
		}
		if d != dir || !isLicenseFile(path.Base(f.Path)) {
			continue
		}
		name := path.Base(f.Path)
		content := f
		if f.Kind == fileset.Symlink {
			target, ok := files.Lookup(path.Join(path.Dir(f.Path), f.Link))
			if !ok || target.Kind == fileset.Symlink {
				unknown = true
				notes = append(notes, fmt.Sprintf("%s: symlink to %s, which is not a file of the plugin", name, f.Link))
				continue
			}
			content = target
		}
		text, err := readLimited(content)
		if err != nil {
			return licenseResult{}, err
		}
		cov, _ := sc.scan(text)
		var here []string
		var other []string
		for _, m := range cov.Match {
			if ok, id := spdxexp.ActiveLicense(m.ID); ok {
				if !slices.Contains(here, id) {
					here = append(here, id)
				}
			} else if !slices.Contains(other, m.ID) {
				other = append(other, m.ID)
			}
		}
		switch {
		case len(cov.Match) == 0 || cov.Percent < minCoverage:
			unknown = true
			notes = append(notes, fmt.Sprintf("%s: not identified (known licence texts cover %.0f%% of it)", name, cov.Percent))
		case len(other) > 0:
			unknown = true
			notes = append(notes, fmt.Sprintf("%s: %s, not on the SPDX licence list", name, strings.Join(other, ", ")))
		default:
			notes = append(notes, fmt.Sprintf("%s: %s", name, strings.Join(here, " AND ")))
		}
		for _, id := range here {
			found[id] = true
		}
	}
	if len(notes) == 0 {
		return res, nil
	}
	for id := range found {
		res.ids = append(res.ids, id)
	}
	slices.Sort(res.ids)
	if !unknown {
		res.expr = strings.Join(res.ids, " AND ")
	}
	res.comment = "Licence files identified with github.com/google/licensecheck: " + strings.Join(notes, "; ")
	return res, nil
}

func readLimited(f fileset.File) ([]byte, error) {
	if f.Open == nil {
		return nil, fmt.Errorf("%s has no content", f.Path)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", f.Path, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxLicenseBytes))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", f.Path, err)
	}
	return b, nil
}
