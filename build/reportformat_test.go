package build

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/xtraefik/xtraefik/internal/plugin"
)

// reportFormat is how the JSON report wrote plugins before their source
// became one type (plugin.Source, embedded): the same fields in the same
// order; no exclusions and no time.
const reportFormat = `[
  {
    "alias": "g",
    "module": "example.com/g",
    "git": "https://example.com/g.git",
    "ref": "v1",
    "subdir": "sub",
    "commit": "c1",
    "contentHash": "sha256:01",
    "useUnsafe": true
  },
  {
    "alias": "m",
    "module": "example.com/m",
    "query": "v1.0",
    "version": "v1.0.1",
    "sum": "h1:x=",
    "vendored": [
      "example.com/d@v1.0.0 h1:y="
    ],
    "contentHash": "sha256:02"
  },
  {
    "alias": "p",
    "module": "example.com/p",
    "path": "./src/p",
    "contentHash": "sha256:03"
  }
]`

func TestPluginReportFormat(t *testing.T) {
	ps := []PluginReport{
		{Alias: "g", Module: "example.com/g", Source: plugin.Source{Git: "https://example.com/g.git", Ref: "v1", Subdir: "sub", Commit: "c1",
			Exclude: []string{"*.md"}, Time: time.Unix(1700000000, 0)}, ContentHash: "sha256:01", UseUnsafe: true},
		{Alias: "m", Module: "example.com/m", Source: plugin.Source{Query: "v1.0", Version: "v1.0.1", Sum: "h1:x=",
			Vendored: []string{"example.com/d@v1.0.0 h1:y="}}, ContentHash: "sha256:02"},
		{Alias: "p", Module: "example.com/p", Source: plugin.Source{Path: "./src/p"}, ContentHash: "sha256:03"},
	}
	got, err := json.MarshalIndent(ps, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != reportFormat {
		t.Errorf("plugins reported as:\n%s\nwant:\n%s", got, reportFormat)
	}
}
