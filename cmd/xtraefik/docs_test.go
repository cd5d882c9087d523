package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// update rewrites docs/cli from the commands: go test ./cmd/xtraefik -run TestCLIReference -update
var update = flag.Bool("update", false, "rewrite docs/cli from the cobra commands")

// The CLI reference in docs/cli is generated from the commands themselves
// (cobra's doc generator); this test fails when a flag, a command or a help
// text changed and the reference was not regenerated.
func TestCLIReference(t *testing.T) {
	dir := filepath.Join("..", "..", "docs", "cli")
	tmp := t.TempDir()
	// A fixed environment: defaults that depend on the machine (HOME, cache
	// directories) must not reach the reference.
	env := func(k string) string {
		switch k {
		case "HOME":
			return "/home/user"
		}
		return ""
	}
	root := newRoot(env)
	root.DisableAutoGenTag = true
	// cobra adds these when the command runs; the reference lists them too.
	root.InitDefaultVersionFlag()
	root.InitDefaultCompletionCmd()
	if err := doc.GenMarkdownTree(root, tmp); err != nil {
		t.Fatal(err)
	}
	want, err := readTree(tmp)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, data := range want {
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	got, err := readTree(dir)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range want {
		if !bytes.Equal(got[name], data) {
			t.Errorf("docs/cli/%s is stale or missing: regenerate with go test ./cmd/xtraefik -run TestCLIReference -update", name)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("docs/cli/%s documents no command: regenerate with go test ./cmd/xtraefik -run TestCLIReference -update", name)
		}
	}
	visit(root, func(c *cobra.Command) {
		if c.Short == "" && !c.Hidden {
			t.Errorf("command %q has no short description for the reference", c.CommandPath())
		}
	})
}

func readTree(dir string) (map[string][]byte, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(entries))
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out[e.Name()] = data
	}
	return out, nil
}

func visit(c *cobra.Command, f func(*cobra.Command)) {
	f(c)
	for _, sub := range c.Commands() {
		visit(sub, f)
	}
}
