package recipe

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const demoPlugins = "plugins:\n  demo: {module: example.com/m, ref: v1}\n"

// TestParseTypeErrors: a value of the wrong shape is reported at its line with
// its key path, in YAML's words rather than Go's.
func TestParseTypeErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"plugins list", "base: x\nplugins: [a, b]\n", "recipe.yaml:2: plugins: expected a mapping, got a list"},
		{"config number", "base: x\nplugins:\n  demo:\n    module: example.com/m\n    ref: v1\n    config: 3\n", "recipe.yaml:6: plugins.demo.config: expected a mapping, got a number (3)"},
		{"base mapping", "base: {x: 1}\n" + demoPlugins, "recipe.yaml:1: base: expected a string, got a mapping"},
		{"plugin string", "base: x\nplugins:\n  demo: example.com/m\n", `recipe.yaml:3: plugins.demo: expected a mapping, got a string ("example.com/m")`},
		{"expectStatus word", "base: x\nplugins:\n  demo: {module: example.com/m, ref: v1, expectStatus: nope}\n", `recipe.yaml:3: plugins.demo.expectStatus: expected a whole number, got a string ("nope")`},
		{"allowUnsafe list", "base: x\nallowUnsafe: [1]\n" + demoPlugins, "recipe.yaml:2: allowUnsafe: expected true or false, got a list"},
		{"platforms string", "base: x\nplatforms: linux/amd64\n" + demoPlugins, `recipe.yaml:2: platforms: expected a list, got a string ("linux/amd64")`},
		{"mirror entry", "base: x\n" + demoPlugins + "mirrors:\n  git:\n    - [a]\n", "recipe.yaml:6: mirrors.git[0]: expected a mapping, got a list"},
		{"labels value", "base: x\n" + demoPlugins + "labels:\n  a: {b: c}\n", "recipe.yaml:5: labels.a: expected a string, got a mapping"},
		{"document list", "- base: x\n", "recipe.yaml:1: expected a mapping, got a list"},
		{"two problems", "base: {}\nplugins: []\n", "recipe.yaml:1: base: expected a string, got a mapping\nrecipe.yaml:2: plugins: expected a mapping, got a list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("recipe.yaml", []byte(tt.in))
			if err == nil || err.Error() != tt.want {
				t.Errorf("error = %v\nwant    %s", err, tt.want)
			}
		})
	}
}

// TestParseBounded: documents that made yaml.v3 work for minutes or expand
// without end are refused, naming the file, the place and the limit.
func TestParseBounded(t *testing.T) {
	var manyKeys strings.Builder
	manyKeys.WriteString("base: x\n" + demoPlugins + "labels:\n")
	for i := range 100_000 {
		fmt.Fprintf(&manyKeys, " %s: x\n", strconv.FormatInt(int64(i), 36))
	}
	var manyNodes strings.Builder
	manyNodes.WriteString("base: x\n" + demoPlugins + "annotations: {}\nstaticConfig:\n mode: file\n config:\n")
	for i := range 200 {
		fmt.Fprintf(&manyNodes, "  m%d: {", i)
		for j := range 500 {
			fmt.Fprintf(&manyNodes, "%d: 0, ", j)
		}
		manyNodes.WriteString("}\n")
	}
	laughs := "base: x\n" + demoPlugins + "staticConfig:\n  mode: file\n  config:\n    a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	for c := 'b'; c <= 'j'; c++ {
		ref := "*" + string(c-1)
		laughs += fmt.Sprintf("    %c: &%c [%s]\n", c, c, strings.Repeat(ref+", ", 9)+ref)
	}
	tests := []struct{ name, in, want string }{
		{"100k keys", manyKeys.String(), "recipe.yaml:5: labels: 100000 keys in one mapping: a recipe may have at most 1000"},
		{"many values", manyNodes.String(), "more than 100000 YAML values (aliases count once per use): a recipe may have at most 100000"},
		{"billion laughs", laughs, "more than 100000 YAML values (aliases count once per use): a recipe may have at most 100000"},
		{"alias cycle", "base: x\n" + demoPlugins + "staticConfig:\n  mode: file\n  config: &c {a: *c}\n", "recipe.yaml:6: staticConfig.config.a: alias *c refers to the value that contains it"},
		{"duplicate key", "base: x\nplugins:\n  demo: {module: example.com/m, ref: v1}\n  other: {module: example.com/o, ref: v1}\n  demo: {module: example.com/n, ref: v2}\n", `recipe.yaml:5: plugins: key "demo" is already defined at line 3`},
		{"duplicate field", "base: x\n" + demoPlugins + "base: y\n", `recipe.yaml:4: key "base" is already defined at line 1`},
		{"too large", "base: x\n" + demoPlugins + "#" + strings.Repeat("x", MaxRecipeBytes) + "\n", "recipe.yaml: the file is larger than 1 MiB, the limit for a recipe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("recipe.yaml", []byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v\nwant it to contain %s", err, tt.want)
			}
		})
	}
}

// TestParseAnchors: anchors, aliases and merge keys used for sharing
// configuration still work, and merged keys are checked like the others.
func TestParseAnchors(t *testing.T) {
	in := "base: x\nplugins:\n  a: &p {module: example.com/a, ref: v1, config: &c {k: v}}\n  b:\n    <<: *p\n    module: example.com/b\n    config: *c\n"
	r, err := Parse("recipe.yaml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if b := r.Plugins["b"]; b.Module != "example.com/b" || b.Ref != "v1" || b.Config["k"] != "v" {
		t.Errorf("plugin b = %+v", b)
	}
	bad := "base: x\nplugins:\n  a: {module: example.com/a, ref: v1}\n  b:\n    <<: &q {reff: v1}\n    module: example.com/b\n"
	if _, err := Parse("recipe.yaml", []byte(bad)); err == nil || err.Error() != `recipe.yaml:5: unknown field "reff" (did you mean "ref"?)` {
		t.Errorf("merged unknown field: err = %v", err)
	}
}

// TestReadBounded: Load and ReadLock refuse oversized files without reading
// them whole, and lock files get the same checks as recipes.
func TestReadBounded(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.yaml")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(50 << 20); err != nil { // 50 MB of NULs
		t.Fatal(err)
	}
	f.Close()
	if _, err := Load(big); err == nil || err.Error() != big+": the file is larger than 1 MiB, the limit for a recipe" {
		t.Errorf("Load: err = %v", err)
	}
	if _, err := ReadLock(big); err == nil || err.Error() != big+": the file is larger than 16 MiB, the limit for a lock" {
		t.Errorf("ReadLock: err = %v", err)
	}

	tests := []struct{ name, in, want string }{
		{"duplicate key", "version: 1\nbase: {ref: x, digest: y}\nversion: 1\n", `r.lock:3: key "version" is already defined at line 1`},
		{"bad time", "version: 1\nbase: {ref: x, digest: y}\nplugins:\n  - alias: a\n    commitTime: yesterday\n", `r.lock:5: plugins[0].commitTime: expected a timestamp (2006-01-02T15:04:05Z), got a string ("yesterday")`},
		{"plugins mapping", "version: 1\nbase: {ref: x, digest: y}\nplugins: {a: b}\n", "r.lock:3: plugins: expected a list, got a mapping"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, "r.lock")
			if err := os.WriteFile(p, []byte(tt.in), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := ReadLock(p)
			if err == nil || err.Error() != strings.Replace(tt.want, "r.lock", p, 1) {
				t.Errorf("err = %v\nwant  %s", err, tt.want)
			}
		})
	}
}
