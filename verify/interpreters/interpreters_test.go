package interpreters

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/traefik/yaegi/stdlib"
	"github.com/traefik/yaegi/stdlib/syscall"
	"github.com/traefik/yaegi/stdlib/unsafe"
	"golang.org/x/mod/semver"

	"github.com/xtraefik/xtraefik/internal/testenv"
)

func TestForTraefik(t *testing.T) {
	for _, tc := range []struct {
		traefik, yaegi string
		ok             bool
	}{
		{"v2.9.9", "v0.15.0", true},
		{"v2.9.10", "v0.15.0", true},
		{"v2.10.0", "v0.15.1", true},
		{"v2.11.0", "v0.15.1", true},
		{"v2.11.1", "v0.16.1", true},
		{"v3.6.12", "v0.16.1", true},
		{"v3.7.13", "v0.16.1", true},
		// Outside the table: no guess.
		{"v2.9.7", "", false},
		{"v2.9.6", "", false},
		{"v3.7.14", "", false},
		{"v2.11", "", false},
		{"v3.0.0-rc1", "", false},
		{"", "", false},
		{"latest", "", false},
	} {
		in, ok := ForTraefik(tc.traefik)
		if ok != tc.ok || in.Yaegi != tc.yaegi {
			t.Errorf("ForTraefik(%q) = %+v, %v; want yaegi %q, %v", tc.traefik, in, ok, tc.yaegi, tc.ok)
		}
	}
	if in, _ := ForTraefik("v3.1.2"); in.HTTPWasm != httpWasmFork || in.Wazero != "v1.7.2" {
		t.Errorf("v3.1.2: %+v", in)
	}
	if in, _ := ForTraefik("v2.11.0"); in.Wazero != "" || in.HTTPWasm != "" {
		t.Errorf("v2 has no wasm plugins: %+v", in)
	}
}

// The table holds every release of each range that the Go module proxy
// serves (both ends at least) to that release's own go.mod.
func TestTableAgainstProxy(t *testing.T) {
	proxy := moduleProxy(t)
	client := &http.Client{Timeout: 30 * time.Second}
	type check struct {
		version string
		want    Interpreter
		bound   bool
	}
	var checks []check
	for _, r := range releases() {
		// Every patch release of every minor the range spans (up to .30).
		for minor := minorOf(t, r.from); minor <= minorOf(t, r.to); minor++ {
			for p := 0; p <= 30; p++ {
				v := fmt.Sprintf("%s.%d.%d", semver.Major(r.from), minor, p)
				if semver.Compare(v, r.from) >= 0 && semver.Compare(v, r.to) <= 0 {
					checks = append(checks, check{v, r.in, v == r.from || v == r.to})
				}
			}
		}
	}
	got := make([]*Interpreter, len(checks))
	errs := make([]error, len(checks))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, c := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			u := proxy + "/github.com/traefik/traefik/" + semver.Major(c.version) + "/@v/" + c.version + ".mod"
			got[i], errs[i] = fetchGoMod(client, u)
		}()
	}
	wg.Wait()
	served := 0
	for i, c := range checks {
		switch {
		case errs[i] != nil:
			if !testenv.Strict() && unreachable(errs[i].Error()) {
				t.Skipf("module proxy unreachable: %v", errs[i])
			}
			t.Errorf("Traefik %s: %v", c.version, errs[i])
		case got[i] == nil && c.bound:
			t.Errorf("Traefik %s, an end of a range in the table, is not served by %s: choose served releases as ends", c.version, proxy)
		case got[i] == nil:
			// Not released, or not served: nothing to hold the table to.
		case *got[i] != c.want:
			t.Errorf("Traefik %s embeds %+v (its go.mod), the table says %+v", c.version, *got[i], c.want)
		default:
			served++
		}
	}
	t.Logf("%d releases checked against their go.mod", served)
}

// moduleProxy is the first proxy in GOPROXY.
func moduleProxy(t *testing.T) string {
	out, err := exec.Command("go", "env", "GOPROXY").Output()
	if err != nil {
		t.Fatalf("go env GOPROXY: %v", err)
	}
	for _, p := range strings.FieldsFunc(strings.TrimSpace(string(out)), func(r rune) bool { return r == ',' || r == '|' }) {
		if p != "direct" && p != "off" {
			return strings.TrimSuffix(p, "/")
		}
	}
	t.Skip("GOPROXY names no proxy")
	return ""
}

func minorOf(t *testing.T, v string) int {
	t.Helper()
	n, err := strconv.Atoi(strings.TrimPrefix(semver.MajorMinor(v), semver.Major(v)+"."))
	if err != nil {
		t.Fatalf("table version %q: %v", v, err)
	}
	return n
}

// fetchGoMod reads the interpreters a go.mod at u requires, replacements
// applied; nil when the proxy does not serve it.
func fetchGoMod(client *http.Client, u string) (*Interpreter, error) {
	resp, err := client.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone || resp.StatusCode == http.StatusForbidden:
		return nil, nil
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	in, _, err := FromGoMod(u, data)
	if err != nil {
		return nil, err
	}
	return &in, nil
}

func unreachable(stderr string) bool {
	for _, s := range []string{"dial tcp", "no such host", "connection refused", "i/o timeout", "network is unreachable", "TLS handshake timeout"} {
		if strings.Contains(stderr, s) {
			return true
		}
	}
	return false
}

func symbolPackages(tables ...map[string]map[string]reflect.Value) []string {
	set := map[string]bool{}
	for _, tb := range tables {
		for k := range tb {
			if p := path.Dir(k); p != "." && !strings.HasPrefix(p, "github.com/traefik/yaegi") {
				set[p] = true
			}
		}
	}
	out := make([]string, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// The generated list of the linked Yaegi is what its stdlib.Symbols holds:
// the generator reads the real modules.
func TestStdlibMatchesLinkedYaegi(t *testing.T) {
	p, ok := Stdlib("v0.16.1")
	if !ok {
		t.Fatal("no list for v0.16.1")
	}
	if want := symbolPackages(stdlib.Symbols); !slices.Equal(p.Std, want) {
		t.Errorf("v0.16.1 std list differs from the linked stdlib.Symbols:\n got %v\nwant %v", p.Std, want)
	}
	if want := symbolPackages(unsafe.Symbols, syscall.Symbols); !slices.Equal(p.Restricted, want) {
		t.Errorf("v0.16.1 restricted list: got %v, want %v", p.Restricted, want)
	}
}

func TestStdlibVersionsDiffer(t *testing.T) {
	for _, tc := range []struct {
		yaegi string
		slog  bool
	}{{"v0.15.0", false}, {"v0.15.1", false}, {"v0.16.1", true}} {
		p, ok := Stdlib(tc.yaegi)
		if !ok {
			t.Fatalf("no list for %s", tc.yaegi)
		}
		for _, pkg := range []string{"log/slog", "slices", "maps", "cmp"} {
			if slices.Contains(p.Std, pkg) != tc.slog {
				t.Errorf("%s offers %s: %v", tc.yaegi, pkg, !tc.slog)
			}
		}
		if !slices.Contains(p.Std, "net/http") || !slices.Contains(p.Restricted, "unsafe") || slices.Contains(p.Std, "unsafe") {
			t.Errorf("%s: std/restricted lists look wrong", tc.yaegi)
		}
	}
	if _, ok := Stdlib("v0.14.3"); ok {
		t.Error("a list for a version the generator never read")
	}
}

// A binary's build info names the Yaegi it links, replacements applied.
func TestFromBinary(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.com/fake\n\ngo 1.22\n\nrequire github.com/traefik/yaegi v0.16.1\n\nreplace github.com/traefik/yaegi => github.com/traefik/yaegi v0.15.1\n")
	write("main.go", "package main\n\nimport _ \"github.com/traefik/yaegi/interp\"\n\nfunc main() {}\n")
	bin := filepath.Join(dir, "bin")
	cmd := exec.Command(goBin, "build", "-o", bin, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		if !testenv.Strict() && unreachable(string(out)) {
			t.Skipf("module proxy unreachable: %s", out)
		}
		t.Fatalf("go build: %v\n%s", err, out)
	}
	f, err := os.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	in, ok, err := FromBinary(f)
	if err != nil || !ok || in.Yaegi != "v0.15.1" || in.Wazero != "" {
		t.Fatalf("FromBinary = %+v, %v, %v", in, ok, err)
	}
	if _, _, err := FromBinary(strings.NewReader("not a binary")); err == nil {
		t.Error("a non-binary was accepted")
	}
	if p := os.Getenv("XTRAEFIK_TRAEFIK_BINARY"); p != "" {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		in, ok, err := FromBinary(f)
		want, _ := ForTraefik("v3.6.12")
		if err != nil || !ok || in != want {
			t.Errorf("real Traefik binary %s: %+v, %v, %v; the table says %+v for v3.6.12", p, in, ok, err, want)
		}
	}
}

// A go.mod names the interpreters through its requirements and replace
// directives; a version-specific replacement wins over one for any
// version, and a local directory names no version.
func TestFromGoMod(t *testing.T) {
	const head = "module github.com/traefik/traefik/v3\n\ngo 1.22\n\nrequire (\n\tgithub.com/traefik/yaegi v0.16.1\n\tgithub.com/tetratelabs/wazero v1.8.0\n\tgithub.com/http-wasm/http-wasm-host-go v0.6.0\n)\n"
	for _, tc := range []struct {
		name, replace string
		want          Interpreter
		ok            bool
		err           string
	}{
		{"plain", "", Interpreter{Yaegi: "v0.16.1", Wazero: "v1.8.0", HTTPWasm: httpWasm060}, true, ""},
		{"fork", "replace github.com/http-wasm/http-wasm-host-go => github.com/traefik/http-wasm-host-go v0.0.0-20240618100324-3c53dcaa1a70\n",
			Interpreter{Yaegi: "v0.16.1", Wazero: "v1.8.0", HTTPWasm: httpWasmFork}, true, ""},
		{"exact wins", "replace github.com/traefik/yaegi => github.com/traefik/yaegi v0.15.0\nreplace github.com/traefik/yaegi v0.16.1 => github.com/traefik/yaegi v0.15.1\n",
			Interpreter{Yaegi: "v0.15.1", Wazero: "v1.8.0", HTTPWasm: httpWasm060}, true, ""},
		{"other version", "replace github.com/traefik/yaegi v0.14.0 => github.com/traefik/yaegi v0.15.1\n",
			Interpreter{Yaegi: "v0.16.1", Wazero: "v1.8.0", HTTPWasm: httpWasm060}, true, ""},
		{"local", "replace github.com/traefik/yaegi => ../yaegi\n", Interpreter{}, false, "names no version"},
		// A fork is named by its path, never as the version it claims.
		{"yaegi fork", "replace github.com/traefik/yaegi => github.com/acme/yaegi v0.16.1\n",
			Interpreter{Yaegi: "github.com/acme/yaegi@v0.16.1", Wazero: "v1.8.0", HTTPWasm: httpWasm060}, true, ""},
		{"wazero fork", "replace github.com/tetratelabs/wazero => github.com/acme/wazero v1.8.0\n",
			Interpreter{Yaegi: "v0.16.1", Wazero: "github.com/acme/wazero@v1.8.0", HTTPWasm: httpWasm060}, true, ""},
	} {
		in, ok, err := FromGoMod("go.mod", []byte(head+tc.replace))
		if in != tc.want || ok != tc.ok || (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: %+v, %v, %v; want %+v, %v, %q", tc.name, in, ok, err, tc.want, tc.ok, tc.err)
		}
	}
	if _, ok, err := FromGoMod("go.mod", []byte("module example.com/x\n")); ok || err != nil {
		t.Errorf("no Yaegi: ok %v, %v", ok, err)
	}
	if _, _, err := FromGoMod("go.mod", []byte("module (\n")); err == nil {
		t.Error("a broken go.mod was accepted")
	}
}

// A binary linking a replacement of Yaegi (or wazero) by another module
// names that module: a fork keeping Yaegi's version number is not that
// Yaegi (Replaced), and a replacement by Yaegi itself at another version is
// that version.
func TestFromBuildInfoReplacement(t *testing.T) {
	dep := func(path, version string, replace *debug.Module) *debug.Module {
		return &debug.Module{Path: path, Version: version, Replace: replace}
	}
	for _, tc := range []struct {
		name     string
		deps     []*debug.Module
		want     Interpreter
		replaced bool
	}{
		{"yaegi fork", []*debug.Module{dep(YaegiModule, "v0.16.1", dep("github.com/acme/yaegi", "v0.16.1", nil))},
			Interpreter{Yaegi: "github.com/acme/yaegi@v0.16.1"}, true},
		{"yaegi directory", []*debug.Module{dep(YaegiModule, "v0.16.1", dep("../yaegi", "", nil))},
			Interpreter{Yaegi: "../yaegi"}, true},
		{"yaegi other version", []*debug.Module{dep(YaegiModule, "v0.16.1", dep(YaegiModule, "v0.15.1", nil))},
			Interpreter{Yaegi: "v0.15.1"}, false},
		{"wazero fork", []*debug.Module{dep(YaegiModule, "v0.16.1", nil), dep(WazeroModule, "v1.8.0", dep("github.com/acme/wazero", "v1.8.0", nil))},
			Interpreter{Yaegi: "v0.16.1", Wazero: "github.com/acme/wazero@v1.8.0"}, false},
	} {
		in, ok := FromBuildInfo(&debug.BuildInfo{Deps: tc.deps})
		if !ok || in != tc.want || Replaced(in.Yaegi) != tc.replaced {
			t.Errorf("%s: %+v, %v (replaced %v); want %+v (replaced %v)", tc.name, in, ok, Replaced(in.Yaegi), tc.want, tc.replaced)
		}
	}
	if Replaced("v0.16.1") || !Replaced("github.com/acme/wazero@v1.8.0") {
		t.Error("Replaced misreads a plain version or a fork")
	}
}
