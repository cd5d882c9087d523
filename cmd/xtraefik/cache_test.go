package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestCacheSizeFlag: --max-size units, in any case; KB/MB/GB/TB decimal,
// the rest binary; anything else refused with one plain sentence.
func TestCacheSizeFlag(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		err  string
	}{
		{"1024", 1024, ""},
		{"0", 0, ""},
		{"10GB", 10e9, ""},
		{"10gb", 10e9, ""},
		{"10Gb", 10e9, ""},
		{"10GiB", 10 << 30, ""},
		{"10gib", 10 << 30, ""},
		{"500MiB", 500 << 20, ""},
		{"500M", 500 << 20, ""},
		{"500m", 500 << 20, ""},
		{"2K", 2048, ""},
		{"2KB", 2000, ""},
		{"1.5GiB", 3 << 29, ""},
		{"1.5 TB", 1.5e12, ""},
		{"12B", 12, ""},
		{"9223372036854775807", 9223372036854775807, ""},
		{"9223372036854775808", 0, "too large"},
		{"8388608TiB", 0, "too large"},
		{"8388608.0TiB", 0, "too large"},
		{"-1GB", 0, "not a size"},
		{"NaN", 0, "not a size"},
		{"Inf", 0, "not a size"},
		{"+Inf", 0, "not a size"},
		{"1e9", 0, "not a size"},
		{"10 GBs", 0, "not a size"},
		{"1.2.3", 0, "not a size"},
		{"GB", 0, "not a size"},
		{"", 0, "not a size"},
	} {
		var b byteSize
		err := b.Set(tc.in)
		switch {
		case tc.err == "" && (err != nil || int64(b) != tc.want):
			t.Errorf("%q: %d, %v; want %d", tc.in, b, err, tc.want)
		case tc.err != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.err) || strings.Contains(err.Error(), strconv.Quote(tc.in))):
			t.Errorf("%q: %v; want an error starting %q, not quoting the value", tc.in, err, tc.err)
		}
	}
}

// TestCacheAgeFlag: --max-age takes days or a Go duration, not a negative
// age, and prints as the user would write it.
func TestCacheAgeFlag(t *testing.T) {
	for _, tc := range []struct {
		in, str string
		want    time.Duration
		err     string
	}{
		{"30d", "720h", 30 * 24 * time.Hour, ""},
		{"0d", "0s", 0, ""},
		{"0", "0s", 0, ""},
		{"36h", "36h", 36 * time.Hour, ""},
		{"90m", "1h30m", 90 * time.Minute, ""},
		{"1h0m30s", "1h0m30s", time.Hour + 30*time.Second, ""},
		{"-1h", "", 0, "a negative age"},
		{"-2d", "", 0, "a negative age"},
		{"1.5d", "", 0, "not an age"},
		{"99999999999d", "", 0, "not an age"},
		{"thirty", "", 0, "not an age"},
	} {
		var a ageFlag
		err := a.Set(tc.in)
		switch {
		case tc.err == "" && (err != nil || time.Duration(a) != tc.want || a.String() != tc.str):
			t.Errorf("%q: %v (%s), %v; want %v (%s)", tc.in, time.Duration(a), a.String(), err, tc.want, tc.str)
		case tc.err != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.err)):
			t.Errorf("%q: %v; want an error starting %q", tc.in, err, tc.err)
		}
	}
}

// TestCachePruneHelpFlag: the help shows --max-age's default as 720h (30
// days), and no default for --max-size (0 is no bound, not "0 B").
func TestCachePruneHelpFlag(t *testing.T) {
	out, err := runCache(t, "cache", "prune", "--help")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "(default 720h (30 days))") || strings.Contains(out, "720h0m0s") || strings.Contains(out, "default 0") {
		t.Errorf("help:\n%s", out)
	}
	if _, err := runCache(t, "cache", "prune", "--max-size", "10 apples"); err == nil ||
		err.Error() != `invalid argument "10 apples" for "--max-size" flag: not a size: use 10GB, 500MiB or a number of bytes (`+"`xtraefik cache prune --help`"+` lists its flags)` {
		t.Errorf("bad --max-size: %v", err)
	}
}

func runCache(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRoot(func(string) string { return "" })
	root.SetArgs(args)
	var out strings.Builder
	root.SetOut(&out)
	root.SetErr(&out)
	err := root.Execute()
	return out.String(), err
}

// TestCachePruneOutput: one JSON document on success and on failure, shaped
// as every command's; text in words with real plurals, and a plain sentence
// for a missing directory.
func TestCachePruneOutput(t *testing.T) {
	dir := t.TempDir()
	old := time.Now().Add(-48 * time.Hour)
	for _, rel := range []string{"host_repo-0123456789abcdef.git/HEAD", "host_repo-0123456789abcdef.git", "verdicts/a.json", "verdicts/b.json"} {
		p := filepath.Join(dir, rel)
		if filepath.Ext(rel) != ".git" {
			os.MkdirAll(filepath.Dir(p), 0o700)
			if err := os.WriteFile(p, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}

	out, err := runCache(t, "cache", "prune", "--cache-dir", dir, "--max-age", "1d", "--dry-run", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if doc["command"] != "cache prune" || doc["ok"] != true || doc["dryRun"] != true || doc["dir"] != dir ||
		doc["gitRepositoriesRemoved"] != 1.0 || doc["verdictsRemoved"] != 2.0 || doc["blobs"] == nil {
		t.Errorf("JSON report:\n%s", out)
	}

	out, err = runCache(t, "cache", "prune", "--cache-dir", dir, "--max-age", "1d")
	if want := dir + ": removed 0 base blobs (0 B; 0 kept, 0 B), 1 git repository, 0 module versions, 2 verdicts\n"; err != nil || out != want {
		t.Errorf("text: %q, %v; want %q", out, err, want)
	}

	none := filepath.Join(dir, "none")
	out, err = runCache(t, "cache", "prune", "--cache-dir", none)
	if want := none + ": no cache here, nothing to prune\n"; err != nil || out != want {
		t.Errorf("missing directory: %q, %v; want %q", out, err, want)
	}

	// A blobs that is not a directory: the failure is one JSON document.
	if err := os.WriteFile(filepath.Join(dir, "blobs"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = runCache(t, "cache", "prune", "--cache-dir", dir, "-o", "json")
	doc = nil
	if jerr := json.Unmarshal([]byte(out), &doc); err == nil || jerr != nil ||
		doc["command"] != "cache prune" || doc["ok"] != false || !strings.Contains(doc["error"].(string), "not a directory") {
		t.Errorf("failure: %v, %q (%v)", err, out, jerr)
	}

	// So is a flag the command refuses (-o json parsed before it).
	out, err = runCache(t, "cache", "prune", "-o", "json", "--cache-dir", dir, "--max-size", "-1")
	doc = nil
	if jerr := json.Unmarshal([]byte(out), &doc); err == nil || jerr != nil || doc["command"] != "cache prune" || doc["ok"] != false {
		t.Errorf("flag error: %v, %q (%v)", err, out, jerr)
	}
}
