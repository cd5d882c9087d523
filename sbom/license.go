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

	"github.com/xtraefik/xtraefik/fileset"
)

// minCoverage is the share of a licence file (in percent of its words) that
// known licence texts must cover before the file counts as identified; the
// rest may be a custom clause that changes the terms. pkg.go.dev uses the
// same licensecheck threshold.
const minCoverage = 75

// maxLicenseBytes bounds what is read of one licence file.
const maxLicenseBytes = 1 << 20

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
func declaredLicense(files fileset.Set, dir string) (licenseResult, error) {
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
		cov := licensecheck.Scan(text)
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
