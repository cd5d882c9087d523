package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCorpusList(t *testing.T) {
	seen := map[string]bool{}
	modules := map[string]bool{}
	sums := map[string]string{}
	for _, c := range Corpus() {
		key := fmt.Sprintf("%s@%s revendor=%v config=%v", c.Module, c.Version, c.Revendor, c.Config != nil)
		if seen[key] {
			t.Errorf("duplicate corpus entry %s", key)
		}
		seen[key] = true
		modules[c.Module] = true
		if c.Why == "" || c.Alias == "" || c.Type == "" || c.Runtime == "" {
			t.Errorf("%s: alias, type, runtime and why are required", key)
		}
		if c.WantOK == (c.WantReason != "") {
			t.Errorf("%s: a FAIL needs a reason, an OK none", key)
		}
		if c.Sum != "" && !strings.HasPrefix(c.Sum, "h1:") {
			t.Errorf("%s: sum %q is not a go.sum h1 hash", key, c.Sum)
		}
		mv := c.Module + "@" + c.Version
		if prev, ok := sums[mv]; ok && prev != c.Sum {
			t.Errorf("%s: pinned sums differ: %q and %q", mv, prev, c.Sum)
		}
		sums[mv] = c.Sum
	}
	if len(seen) < 8 {
		t.Errorf("corpus has %d verdicts, want at least 8", len(seen))
	}
	// As many distinct plugins as the module proxy here serves (see Corpus).
	if len(modules) < 4 {
		t.Errorf("corpus has %d distinct plugins, want at least 4", len(modules))
	}
}

// A version the checksum database does not list is taken only with the hash
// the corpus pins.
func TestDownloadPinned(t *testing.T) {
	var pinned CorpusPlugin
	for _, c := range Corpus() {
		if c.Sum != "" {
			pinned = c
			break
		}
	}
	if pinned.Module == "" {
		t.Skip("no corpus plugin pins its hash")
	}
	dir, err := downloadPinned(t.TempDir(), pinned.Module, pinned.Version, pinned.Sum)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, ".traefik.yml")); err != nil {
		t.Fatalf("downloaded module lacks its manifest: %v", err)
	}
	wrong := "h1:" + strings.Repeat("A", 43) + "="
	_, err = downloadPinned(t.TempDir(), pinned.Module, pinned.Version, wrong)
	if err == nil || !strings.Contains(err.Error(), "checksum mismatch: downloaded "+pinned.Sum+", pinned "+wrong) {
		t.Fatalf("a wrong pinned hash gave %v", err)
	}
	_, err = downloadPinned(t.TempDir(), pinned.Module, "v0.0.0-not-a-version", pinned.Sum)
	if err == nil || !strings.Contains(err.Error(), "go mod download "+pinned.Module+"@v0.0.0-not-a-version") {
		t.Fatalf("a bad version gave %v", err)
	}
}

func TestFixturesList(t *testing.T) {
	dir := FixturesDir(t)
	used := map[string]bool{}
	for _, f := range Fixtures() {
		used[f.Name] = true
		if f.WantOK == (f.WantReason != "") || f.Why == "" {
			t.Errorf("%s: a FAIL needs a reason, an OK none; why is required", f.Name)
		}
		if f.Module != "example.com/fixtures/"+f.Name {
			t.Errorf("%s: module %s", f.Name, f.Module)
		}
		if _, err := os.Stat(filepath.Join(dir, f.Name, ".traefik.yml")); err != nil && f.Name != "no-manifest" {
			t.Errorf("%s: %v", f.Name, err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		// hostile/ holds the attack fixtures verify's TestHostile uses.
		if e.IsDir() && !used[e.Name()] && e.Name() != "hostile" {
			t.Errorf("fixture directory %s is not listed in Fixtures", e.Name())
		}
	}
}

func TestFixtureWasmAdded(t *testing.T) {
	for _, f := range Fixtures() {
		if f.WasmFrom == "" {
			continue
		}
		s := FixtureFiles(t, f)
		w, ok := s.Lookup("plugin.wasm")
		if !ok || w.Size < 8 {
			t.Fatalf("%s: plugin.wasm not added", f.Name)
		}
		rc, err := w.Open()
		if err != nil {
			t.Fatal(err)
		}
		magic := make([]byte, 4)
		_, err = rc.Read(magic)
		rc.Close()
		if err != nil || string(magic) != "\x00asm" {
			t.Fatalf("%s: plugin.wasm is not wasm: %q %v", f.Name, magic, err)
		}
		return
	}
	t.Fatal("no wasm fixture")
}

// Module zips drop vendored packages; Revendor puts them back at the
// versions vendor/modules.txt names.
func TestRevendor(t *testing.T) {
	var provider CorpusPlugin
	for _, c := range Corpus() {
		if c.Revendor && c.Module == "github.com/traefik/pluginproviderdemo" {
			provider = c
		}
	}
	if provider.Module == "" {
		t.Fatal("the re-vendored pluginproviderdemo is not in the corpus")
	}
	raw := ModuleDir(t, provider.Module, provider.Version)
	pkg := filepath.Join("vendor", "github.com", "traefik", "genconf", "dynamic", "config.go")
	if _, err := os.Stat(filepath.Join(raw, "vendor", "modules.txt")); err != nil {
		t.Fatalf("module zip lost modules.txt: %v", err)
	}
	if _, err := os.Stat(filepath.Join(raw, pkg)); err == nil {
		t.Fatalf("module zip unexpectedly holds %s", pkg)
	}
	s := CorpusFiles(t, provider)
	if _, ok := s.Lookup(filepath.ToSlash(pkg)); !ok {
		t.Fatalf("re-vendored files lack %s", pkg)
	}
}
