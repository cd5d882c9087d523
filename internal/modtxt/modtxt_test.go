package modtxt

import (
	"reflect"
	"strings"
	"testing"

	"golang.org/x/mod/module"
)

// A modules.txt as `go mod vendor` writes it: annotations, a module listed
// only as a requirement, replacements by a module and by a directory,
// Windows line ends and stray spaces.
func TestParse(t *testing.T) {
	const txt = "# example.com/a v1.2.3\n" +
		"## explicit; go 1.22\n" +
		"example.com/a\n" +
		"example.com/a/sub\n" +
		"# example.com/req v0.1.0\n" +
		"## explicit\n" +
		"# example.com/b v1.0.0 => example.com/fork v1.0.1\r\n" +
		"  example.com/b/pkg  \r\n" +
		"# example.com/local v0.0.0 => ./local\n" +
		"example.com/local\n" +
		"# example.com/nover => ../nover\n" +
		"## explicit\n"
	got, err := Parse([]byte(txt))
	if err != nil {
		t.Fatal(err)
	}
	want := []Module{
		{Path: "example.com/a", Version: "v1.2.3", Packages: []string{"example.com/a", "example.com/a/sub"}},
		{Path: "example.com/req", Version: "v0.1.0"},
		{Path: "example.com/b", Version: "v1.0.0", Replace: module.Version{Path: "example.com/fork", Version: "v1.0.1"}, Packages: []string{"example.com/b/pkg"}},
		{Path: "example.com/local", Version: "v0.0.0", Replace: module.Version{Path: "./local"}, Packages: []string{"example.com/local"}},
		{Path: "example.com/nover", Replace: module.Version{Path: "../nover"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Parse:\n got %+v\nwant %+v", got, want)
	}
	if got[1].Local() || got[2].Local() || !got[3].Local() || !got[4].Local() {
		t.Errorf("Local: %v %v %v %v, want false false true true", got[1].Local(), got[2].Local(), got[3].Local(), got[4].Local())
	}
}

// An old modules.txt (before Go 1.17) has no "## explicit" lines: the
// modules are the same without them.
func TestParseWithoutAnnotations(t *testing.T) {
	got, err := Parse([]byte("# example.com/a v1.2.3\nexample.com/a\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Module{{Path: "example.com/a", Version: "v1.2.3", Packages: []string{"example.com/a"}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

// Hostile and malformed files are refused with the line and the reason.
func TestParseRefuses(t *testing.T) {
	for _, tc := range []struct{ name, txt, want string }{
		{"huge line", "# example.com/a v1.0.0\nexample.com/a/" + strings.Repeat("x", MaxLine) + "\n",
			"vendor/modules.txt:2: line longer than 65536 bytes"},
		{"huge line without a newline", strings.Repeat("#", MaxLine+1),
			"vendor/modules.txt:1: line longer than 65536 bytes"},
		{"package before any module", "example.com/pkg\n# example.com/a v1.0.0\n",
			`vendor/modules.txt:1: package "example.com/pkg" before any module line`},
		{"no version, no replacement", "# example.com/a\nexample.com/a\n",
			`vendor/modules.txt:1: malformed module line "# example.com/a": no version`},
		{"too many fields", "# example.com/a v1.0.0 extra\n",
			`vendor/modules.txt:1: malformed module line "# example.com/a v1.0.0 extra"`},
		{"empty module line", "# \n", `vendor/modules.txt:1: unexpected line "#"`},
		{"bad module path", "# ../escape v1.0.0\n../escape\n",
			`vendor/modules.txt:1: malformed module line "# ../escape v1.0.0": malformed import path`},
		{"replacement by a module without version", "# example.com/a v1.0.0 => example.com/b\n",
			`vendor/modules.txt:1: malformed replacement "# example.com/a v1.0.0 => example.com/b"`},
		{"replacement with three fields", "# example.com/a v1.0.0 => example.com/b v1.0.0 x\n",
			`vendor/modules.txt:1: malformed replacement`},
		{"empty replacement", "# example.com/a v1.0.0 =>\n", `vendor/modules.txt:1: malformed replacement`},
		{"two arrows", "# example.com/a => ./b => ./c\n", `vendor/modules.txt:1: malformed replacement`},
		{"unknown comment", "# example.com/a v1.0.0\n#pragma\n", `vendor/modules.txt:2: unexpected line "#pragma"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mods, err := Parse([]byte(tc.txt))
			if err == nil {
				t.Fatalf("accepted: %+v", mods)
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("error %q, want it to start with %q", err, tc.want)
			}
		})
	}
}
