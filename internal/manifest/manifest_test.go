package manifest

import (
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/xtraefik/xtraefik/internal/fileset"
)

func memFile(p, content string) fileset.File {
	return fileset.File{Path: p, Size: int64(len(content)),
		Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(content)), nil }}
}

func set(t *testing.T, files ...fileset.File) fileset.Set {
	t.Helper()
	s, err := fileset.New(files)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const demo = `displayName: Demo Plugin
type: middleware
iconPath: .assets/icon.png
import: github.com/traefik/plugindemo
summary: '[Demo] Add Request Header'
testData:
  Headers:
    X-Demo: test
    X-URL: '{{URL}}'
  Count: 3
`

func TestRead(t *testing.T) {
	m, err := Read(set(t, memFile(FileName, demo), memFile("demo.go", "package plugindemo")))
	if err != nil {
		t.Fatal(err)
	}
	want := &Manifest{
		DisplayName: "Demo Plugin", Type: "middleware", IconPath: ".assets/icon.png",
		Import: "github.com/traefik/plugindemo", Summary: "[Demo] Add Request Header",
		TestData: map[string]any{"Headers": map[string]any{"X-Demo": "test", "X-URL": "{{URL}}"}, "Count": 3},
	}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("got %#v\nwant %#v", m, want)
	}
	if err := m.Check("github.com/traefik/plugindemo"); err != nil {
		t.Fatalf("demo manifest: %v", err)
	}
}

func TestReadErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files []fileset.File
		want  string
	}{
		{"missing", []fileset.File{memFile("main.go", "package x")}, "no .traefik.yml at the plugin root"},
		{"empty", []fileset.File{memFile(FileName, "")}, "the file is empty"},
		{"syntax with line", []fileset.File{memFile(FileName, "displayName: x\ntype: a: b\n")}, "line 2"},
		{"wrong shape with line", []fileset.File{memFile(FileName, "displayName: x\ntestData: [1, 2]\n")}, "line 2"},
		{"dangling symlink", []fileset.File{{Path: FileName, Kind: fileset.Symlink, Link: "conf/m.yml", Size: 10}}, "not in the plugin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Read(set(t, tc.files...))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestReadFollowsSymlink(t *testing.T) {
	m, err := Read(set(t, fileset.File{Path: FileName, Kind: fileset.Symlink, Link: "conf/m.yml", Size: 10}, memFile("conf/m.yml", demo)))
	if err != nil {
		t.Fatal(err)
	}
	if m.DisplayName != "Demo Plugin" {
		t.Fatalf("got %q", m.DisplayName)
	}
}

func valid() Manifest {
	return Manifest{DisplayName: "D", Type: TypeMiddleware, Import: "example.com/p/sub", Summary: "S", TestData: map[string]any{}}
}

func TestCheck(t *testing.T) {
	const mod = "example.com/p"
	for _, tc := range []struct {
		name    string
		mod     string
		version string
		edit    func(m *Manifest)
		want    []Rule
	}{
		{name: "valid yaegi middleware", edit: func(*Manifest) {}},
		{name: "valid explicit yaegi", edit: func(m *Manifest) { m.Runtime = RuntimeYaegi }},
		{name: "valid provider", edit: func(m *Manifest) { m.Type = TypeProvider }},
		{name: "valid wasm without import", edit: func(m *Manifest) { m.Runtime, m.Import = RuntimeWasm, "" }},
		{name: "valid wasm nested path", edit: func(m *Manifest) { m.Runtime, m.WasmPath = RuntimeWasm, "build/p.wasm" }},
		{name: "empty testData is present", edit: func(m *Manifest) { m.TestData = map[string]any{} }},
		{name: "import equals module", edit: func(m *Manifest) { m.Import = mod }},
		{name: "v2 yaegi", version: "v2.11.0", edit: func(*Manifest) {}},

		{name: "empty module", mod: "-", edit: func(*Manifest) {}, want: []Rule{RuleModuleName}},
		{name: "module leading slash", mod: "/example.com/p", edit: func(*Manifest) {}, want: []Rule{RuleModuleName, RuleImportPrefix}},
		{name: "module trailing slash", mod: "example.com/p/", edit: func(*Manifest) {}, want: []Rule{RuleModuleName}},
		{name: "unknown type", edit: func(m *Manifest) { m.Type = "router" }, want: []Rule{RuleType}},
		{name: "missing type", edit: func(m *Manifest) { m.Type = "" }, want: []Rule{RuleType}},
		{name: "unknown runtime", edit: func(m *Manifest) { m.Runtime = "lua" }, want: []Rule{RuleRuntime}},
		{name: "wasm provider", edit: func(m *Manifest) { m.Type, m.Runtime = TypeProvider, RuntimeWasm }, want: []Rule{RuleRuntime}},
		{name: "missing import", edit: func(m *Manifest) { m.Import = "" }, want: []Rule{RuleImport, RuleImportPrefix}},
		{name: "import outside module", edit: func(m *Manifest) { m.Import = "example.com/other" }, want: []Rule{RuleImportPrefix}},
		{name: "missing displayName", edit: func(m *Manifest) { m.DisplayName = "" }, want: []Rule{RuleDisplayName}},
		{name: "missing summary", edit: func(m *Manifest) { m.Summary = "" }, want: []Rule{RuleSummary}},
		{name: "missing testData", edit: func(m *Manifest) { m.TestData = nil }, want: []Rule{RuleTestData}},
		{name: "absolute wasmPath", edit: func(m *Manifest) { m.Runtime, m.WasmPath = RuntimeWasm, "/plugin.wasm" }, want: []Rule{RuleWasmPath}},
		{name: "escaping wasmPath", edit: func(m *Manifest) { m.Runtime, m.WasmPath = RuntimeWasm, "../plugin.wasm" }, want: []Rule{RuleWasmPath}},
		{name: "wasm on v2", version: "v2.11.0", edit: func(m *Manifest) { m.Runtime, m.Import = RuntimeWasm, "" },
			want: []Rule{RuleRuntime, RuleImport, RuleImportPrefix}},
		{name: "several at once", edit: func(m *Manifest) { m.DisplayName, m.Summary, m.TestData = "", "", nil },
			want: []Rule{RuleDisplayName, RuleSummary, RuleTestData}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := valid()
			tc.edit(&m)
			module := mod
			switch tc.mod {
			case "":
			case "-":
				module = ""
			default:
				module = tc.mod
			}
			err := m.CheckFor(module, tc.version)
			if got := Rules(err); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("rules = %v, want %v (err: %v)", got, tc.want, err)
			}
			if tc.want != nil {
				var v *Violation
				if !errors.As(err, &v) || v.Rule != tc.want[0] || v.Error() == "" {
					t.Fatalf("errors.As found %v, want rule %s", v, tc.want[0])
				}
				// A missing key is named as the author writes it in the file.
				if strings.HasPrefix(tc.name, "missing ") && tc.name != "missing type" &&
					!strings.Contains(err.Error(), "missing "+strings.TrimPrefix(tc.name, "missing ")+" in .traefik.yml") {
					t.Errorf("message %q does not name the YAML key", err)
				}
			}
		})
	}
}

func TestCheckModuleName(t *testing.T) {
	for _, tc := range []struct {
		mod  string
		want string
	}{
		{"github.com/traefik/plugindemo", ""},
		{"localplugin", ""},
		{"", "plugin name is missing"},
		{"/github.com/x", "should not start or end with a /"},
		{"github.com/x/", "should not start or end with a /"},
		{"github.com//x", "not a clean relative path"},
		{"github.com/../x", "not a clean relative path"},
		{"github.com/./x", "not a clean relative path"},
		{"github.com/x y", "not a valid Go import path"},
		{`github.com\x`, "not a valid Go import path"},
	} {
		t.Run(tc.mod, func(t *testing.T) {
			err := CheckModuleName(tc.mod)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			if r := Rules(err); len(r) != 1 || r[0] != RuleModuleName {
				t.Fatalf("rules %v", r)
			}
		})
	}
}

func TestBasePackageAndDefaults(t *testing.T) {
	for _, tc := range []struct {
		m                      Manifest
		base, runtime, wasm    string
		yaegi, wasmRuntimeWant bool
	}{
		{Manifest{Import: "github.com/traefik/plugindemo"}, "plugindemo", "yaegi", "plugin.wasm", true, false},
		{Manifest{Import: "github.com/x/plugin-rewrite-body"}, "plugin_rewrite_body", "yaegi", "plugin.wasm", true, false},
		{Manifest{Import: "github.com/x/y/v2", BasePkg: "y"}, "y", "yaegi", "plugin.wasm", true, false},
		{Manifest{Runtime: "wasm", WasmPath: "a/b.wasm"}, ".", "wasm", "a/b.wasm", false, true},
	} {
		if got := tc.m.BasePackage(); got != tc.base {
			t.Errorf("%+v BasePackage = %q, want %q", tc.m, got, tc.base)
		}
		if got := tc.m.RuntimeName(); got != tc.runtime {
			t.Errorf("RuntimeName = %q, want %q", got, tc.runtime)
		}
		if got := tc.m.WasmFile(); got != tc.wasm {
			t.Errorf("WasmFile = %q, want %q", got, tc.wasm)
		}
		if tc.m.IsYaegi() != tc.yaegi || tc.m.IsWasm() != tc.wasmRuntimeWant {
			t.Errorf("%+v IsYaegi/IsWasm wrong", tc.m)
		}
	}
}

// TestParseNamesKeys: a value of the wrong kind is reported with its line and
// its .traefik.yml key, in YAML's words, not Go's ("cannot unmarshal !!seq
// into map[string]interface {}"); unknown keys stay ignored, as in Traefik;
// a document that would keep yaml.v3 busy for minutes is refused.
func TestParseNamesKeys(t *testing.T) {
	var manyKeys strings.Builder
	manyKeys.WriteString("testData:\n")
	for i := range 20_000 {
		fmt.Fprintf(&manyKeys, "  k%d: 0\n", i)
	}
	for _, tc := range []struct {
		name, in, want string
	}{
		{"testData list", "displayName: x\ntestData: [1, 2]\n", "decode .traefik.yml: line 2: testData: expected a mapping, got a list"},
		{"summary mapping", "summary: {a: b}\n", "decode .traefik.yml: line 1: summary: expected a string, got a mapping"},
		{"displayName list", "displayName:\n  - x\n", "decode .traefik.yml: line 2: displayName: expected a string, got a list"},
		{"useUnsafe word", "useUnsafe: maybe\n", `decode .traefik.yml: line 1: useUnsafe: expected true or false, got a string ("maybe")`},
		{"import number mapping", "import: {path: 3}\n", "decode .traefik.yml: line 1: import: expected a string, got a mapping"},
		{"document list", "- displayName: x\n", "decode .traefik.yml: line 1: expected a mapping, got a list"},
		{"duplicate key", "summary: a\ntype: middleware\nsummary: b\n", `decode .traefik.yml: line 3: key "summary" is already defined at line 1`},
		{"many keys", manyKeys.String(), "decode .traefik.yml: line 2: testData: 20000 keys in one mapping: a plugin manifest may have at most 1000"},
		{"unknown key ignored", "displayName: x\nauthor: {name: me}\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.in))
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || err.Error() != tc.want {
				t.Fatalf("got  %v\nwant %s", err, tc.want)
			}
		})
	}
}
