package sbom

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/licensecheck"

	"github.com/xtraefik/xtraefik/internal/memstat"
)

func licenseIDs(c licensecheck.Coverage) []string {
	var ids []string
	for _, m := range c.Match {
		if !slices.Contains(ids, m.ID) {
			ids = append(ids, m.ID)
		}
	}
	slices.Sort(ids)
	return ids
}

// licensecheckCorpus is licensecheck's own test corpus: licence texts,
// variants and near misses.
func licensecheckCorpus(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/google/licensecheck").Output()
	if err != nil {
		t.Fatalf("go list licensecheck: %v", err)
	}
	files, err := filepath.Glob(filepath.Join(strings.TrimSpace(string(out)), "testdata", "*.t[0-9]*"))
	if err != nil || len(files) < 500 {
		t.Fatalf("licensecheck corpus: %d files (%v)", len(files), err)
	}
	return files
}

// TestQuickScannerAgrees: wherever the quick scanner settles a text, the
// built-in scanner says the same; elsewhere the built-in scanner answers.
func TestQuickScannerAgrees(t *testing.T) {
	sc, err := newLicenseScanner()
	if err != nil {
		t.Fatal(err)
	}
	quick := 0
	for _, f := range licensecheckCorpus(t) {
		text, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		got, builtin := sc.scan(text)
		want := licensecheck.Scan(text)
		if builtin {
			if !slices.Equal(licenseIDs(got), licenseIDs(want)) || got.Percent != want.Percent {
				t.Errorf("%s: fallback gave %v %.0f%%, built-in %v %.0f%%", filepath.Base(f), licenseIDs(got), got.Percent, licenseIDs(want), want.Percent)
			}
			continue
		}
		quick++
		if !slices.Equal(licenseIDs(got), licenseIDs(want)) || want.Percent < minCoverage {
			t.Errorf("%s: quick scanner says %v (%.0f%%), built-in %v (%.0f%%)", filepath.Base(f), licenseIDs(got), got.Percent, licenseIDs(want), want.Percent)
		}
	}
	t.Logf("the quick scanner settled %d texts", quick)
	if quick < 50 {
		t.Errorf("the quick scanner settled only %d texts", quick)
	}
}

// TestCommonLicencesAreCheap: identifying the usual licences of Go modules
// does not build licensecheck's built-in scanner (~300 MB of allocation).
func TestCommonLicencesAreCheap(t *testing.T) {
	texts := map[string]string{}
	for _, f := range licensecheckCorpus(t) {
		for _, id := range []string{"MIT", "Apache-2.0", "BSD-3-Clause", "BSD-2-Clause", "ISC", "MPL-2.0"} {
			if filepath.Base(f) == id+".t1" {
				b, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				texts[id] = string(b)
			}
		}
	}
	if len(texts) != 6 {
		t.Fatalf("found %d of 6 texts in the corpus", len(texts))
	}
	var err error
	n := memstat.Allocated(func() {
		var sc *licenseScanner
		if sc, err = newLicenseScanner(); err != nil {
			return
		}
		for id, text := range texts {
			cov, builtin := sc.scan([]byte(text))
			if builtin || !slices.Equal(licenseIDs(cov), []string{id}) {
				t.Errorf("%s: identified as %v (built-in scanner: %v)", id, licenseIDs(cov), builtin)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("allocated %d KiB", n>>10)
	if n > 32<<20 {
		t.Errorf("identifying %d common licences allocated %d MiB", len(texts), n>>20)
	}
}
