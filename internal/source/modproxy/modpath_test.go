package modproxy

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/xtraefik/xtraefik/internal/fileset"
	"github.com/xtraefik/xtraefik/internal/testenv"
)

// A proxy serving plugindemo's zip with a go.mod that names another module
// (a crafted zip: a mirror handing one module's code out under another's
// name, with no checksum database to catch it) is refused as the go
// command refuses it, naming both paths.
func TestModulePathMismatchRefused(t *testing.T) {
	p := testenv.GoProxy(t, demo+"@"+demoVersion)
	p.Tamper(t, demo, demoVersion, "go.mod", "module github.com/evil/plugindemo\n\ngo 1.19\n")
	c := newClient(t, Options{Env: envOf(t, "GOPROXY", p.URL, "GOSUMDB", "off")})
	m, err := c.Fetch(context.Background(), demo, demoVersion, "")
	if !errors.Is(err, ErrModulePath) {
		t.Fatalf("Fetch = %v, %v; want ErrModulePath", m, err)
	}
	want := demo + "@" + demoVersion + ": parsing go.mod: module declares its path as: github.com/evil/plugindemo but was required as: " + demo
	if err.Error() != want {
		t.Errorf("error:\n got %s\nwant %s", err, want)
	}

	// A go.mod with no module line is refused too.
	p.Tamper(t, demo, demoVersion, "go.mod", "go 1.19\n")
	if _, err := newClient(t, Options{Env: envOf(t, "GOPROXY", p.URL, "GOSUMDB", "off")}).Fetch(context.Background(), demo, demoVersion, ""); !errors.Is(err, ErrModulePath) || !strings.Contains(err.Error(), "no module line") {
		t.Errorf("go.mod without module line: %v, want ErrModulePath saying so", err)
	}
}

// A vendored dependency whose go.mod declares another path is refused; one
// fetched as a replacement may declare the path it replaces or its own, as
// the go command allows.
func TestDependencyModulePath(t *testing.T) {
	when := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	p := testenv.GoProxy(t)
	tree := func(files map[string]string) fileset.Set {
		var fs []fileset.File
		for name, body := range files {
			fs = append(fs, memFile(name, []byte(body)))
		}
		s, err := fileset.New(fs)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	lib := func(mod, declared string) {
		p.AddTree(t, mod, "v1.0.0", tree(map[string]string{
			"go.mod": "module " + declared + "\n\ngo 1.21\n",
			"lib.go": "package lib\n\nconst X = 1\n",
		}), when)
	}
	lib("example.com/lib", "example.com/lib")
	lib("example.com/liar", "example.com/other")
	lib("example.com/fork", "example.com/lib") // a fork keeping the original go.mod

	plugin := func(version, modulesTxt, requireLine, sumPath string) {
		zipSum, modSum, err := p.Sums(sumPath, "v1.0.0")
		if err != nil {
			t.Fatal(err)
		}
		p.AddTree(t, "example.com/plugin", version, tree(map[string]string{
			"go.mod":             "module example.com/plugin\n\ngo 1.21\n\n" + requireLine,
			"go.sum":             sumPath + " v1.0.0 " + zipSum + "\n" + sumPath + " v1.0.0/go.mod " + modSum + "\n",
			"vendor/modules.txt": modulesTxt,
			"plugin.go":          "package plugin\n",
		}), when)
	}
	plugin("v1.0.0", "# example.com/lib v1.0.0\n## explicit; go 1.21\nexample.com/lib\n", "require example.com/lib v1.0.0\n", "example.com/lib")
	plugin("v1.0.1", "# example.com/liar v1.0.0\n## explicit; go 1.21\nexample.com/liar\n", "require example.com/liar v1.0.0\n", "example.com/liar")
	plugin("v1.0.2", "# example.com/lib v1.0.0 => example.com/fork v1.0.0\n## explicit; go 1.21\nexample.com/lib\n# example.com/lib => example.com/fork v1.0.0\n",
		"require example.com/lib v1.0.0\n\nreplace example.com/lib => example.com/fork v1.0.0\n", "example.com/fork")

	c := newClient(t, Options{Env: envOf(t, "GOPROXY", p.URL, "GOSUMDB", "off")})
	ctx := context.Background()
	for _, v := range []string{"v1.0.0", "v1.0.2"} {
		m, err := c.Fetch(ctx, "example.com/plugin", v, "")
		if err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		if _, ok := m.Files.Lookup("vendor/example.com/lib/lib.go"); !ok {
			t.Errorf("%s: vendor/example.com/lib/lib.go not restored", v)
		}
	}
	_, err := c.Fetch(ctx, "example.com/plugin", "v1.0.1", "")
	if !errors.Is(err, ErrModulePath) {
		t.Fatalf("liar dependency: %v, want ErrModulePath", err)
	}
	want := "example.com/plugin@v1.0.1: dependency example.com/liar@v1.0.0: parsing go.mod: module declares its path as: example.com/other but was required as: example.com/liar"
	if err.Error() != want {
		t.Errorf("error:\n got %s\nwant %s", err, want)
	}
}

func TestCheckModulePath(t *testing.T) {
	for _, tc := range []struct {
		gomod, required, replacedBy, err string
	}{
		{"module example.com/a\n", "example.com/a", "", ""},
		{"module \"example.com/a\" // quoted\n", "example.com/a", "", ""},
		{"module example.com/a\n", "example.com/b", "", "module declares its path as: example.com/a but was required as: example.com/b"},
		{"module example.com/a\n", "example.com/a/v2", "", "module declares its path as: example.com/a but was required as: example.com/a/v2"},
		{"module example.com/c\n", "example.com/a", "example.com/c", ""},
		{"module example.com/d\n", "example.com/a", "example.com/c", "declares its path as: example.com/d but was required as: example.com/a (replaced by example.com/c)"},
		{"go 1.22\n", "example.com/a", "", "it has no module line, but was required as: example.com/a"},
		{"module\n", "example.com/a", "", "parsing go.mod"},
	} {
		err := CheckModulePath([]byte(tc.gomod), tc.required, tc.replacedBy)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("CheckModulePath(%q, %s, %q) = %v, want %q", tc.gomod, tc.required, tc.replacedBy, err, tc.err)
		}
	}
}
