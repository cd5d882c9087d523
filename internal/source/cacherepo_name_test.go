package source

import (
	"path/filepath"
	"testing"
)

// TestIsCacheRepo: every name repoDir gives is recognised, and a user's
// repositories sharing the cache directory are not.
func TestIsCacheRepo(t *testing.T) {
	f := &Fetcher{cacheDir: t.TempDir()}
	for _, u := range []string{
		"https://github.com/traefik/plugindemo", "git@github.com:a/b.git", "ssh://git@host:22/x/y",
		"file:///srv/git/repo", "https://example.com/" + longName(100),
	} {
		name := filepath.Base(f.repoDir(mustRemote(t, u)))
		if !IsCacheRepo(name) {
			t.Errorf("repoDir(%s) = %s, not recognised", u, name)
		}
	}
	for _, name := range []string{
		".git", "project.git", "x-0123456789abcdef", "x-0123456789ABCDEF.git", "x-0123456789abcde.git",
		"x_0123456789abcdef.git", ".hidden-0123456789abcdef.git", "a b-0123456789abcdef.git",
	} {
		if IsCacheRepo(name) {
			t.Errorf("IsCacheRepo(%q) = true", name)
		}
	}
}

func longName(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return string(b)
}
