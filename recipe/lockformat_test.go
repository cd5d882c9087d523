package recipe

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/xtraefik/xtraefik/internal/plugin"
)

// lockFormat is the lock file as xtraefik wrote it before the plugin's
// source became one type (plugin.Source, inlined): every source field, in
// the same order, byte for byte.
const lockFormat = `# Written by ` + "`xtraefik lock`" + `. Commit it beside the recipe; do not edit.
version: 1
base:
  ref: traefik:v3.6
  digest: sha256:aa
plugins:
  - alias: g
    module: example.com/g
    git: https://example.com/g.git
    ref: v1
    subdir: sub
    commit: c1
    exclude:
      - '*.md'
      - testdata/**
    commitTime: 2023-11-14T22:13:20Z
    contentHash: sha256:01
  - alias: m
    module: example.com/m
    query: v1.0
    version: v1.0.1
    sum: h1:x=
    vendored:
      - example.com/d@v1.0.0 h1:y=
    commitTime: 2023-11-14T22:13:21Z
    contentHash: sha256:02
  - alias: p
    module: example.com/p
    path: ./src/p
    contentHash: sha256:03
`

func formatLock() *Lock {
	return &Lock{Version: LockVersion, Base: BaseLock{Ref: "traefik:v3.6", Digest: "sha256:aa"}, Plugins: []PluginLock{
		{Alias: "g", Module: "example.com/g", Source: plugin.Source{Git: "https://example.com/g.git", Ref: "v1", Subdir: "sub", Commit: "c1",
			Exclude: []string{"*.md", "testdata/**"}, Time: time.Unix(1700000000, 0).UTC()}, ContentHash: "sha256:01"},
		{Alias: "m", Module: "example.com/m", Source: plugin.Source{Query: "v1.0", Version: "v1.0.1", Sum: "h1:x=",
			Vendored: []string{"example.com/d@v1.0.0 h1:y="}, Time: time.Unix(1700000001, 0).UTC()}, ContentHash: "sha256:02"},
		{Alias: "p", Module: "example.com/p", Source: plugin.Source{Path: "./src/p"}, ContentHash: "sha256:03"},
	}}
}

// The lock file format does not move: written, it is the format of
// before; read, it gives the same lock back.
func TestLockFormat(t *testing.T) {
	got, err := formatLock().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != lockFormat {
		t.Errorf("lock written as:\n%s\nwant:\n%s", got, lockFormat)
	}
	p := filepath.Join(t.TempDir(), "r.lock")
	if err := os.WriteFile(p, []byte(lockFormat), 0o644); err != nil {
		t.Fatal(err)
	}
	back, err := ReadLock(p)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, formatLock()) {
		t.Errorf("read back:\n%+v\nwant:\n%+v", back, formatLock())
	}
}

// The fields of the inlined source are checked as the lock's own: a
// misspelt one is refused with a suggestion.
func TestLockSourceFieldsChecked(t *testing.T) {
	p := filepath.Join(t.TempDir(), "r.lock")
	bad := strings.Replace(lockFormat, "    commit: c1\n", "    comit: c1\n", 1)
	if err := os.WriteFile(p, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ReadLock(p)
	if err == nil || !strings.Contains(err.Error(), `r.lock:12: unknown field "comit" (did you mean "commit"?)`) {
		t.Errorf("err = %v", err)
	}
}
