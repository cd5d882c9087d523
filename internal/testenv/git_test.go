package testenv

import (
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// buildSample makes the same small history in dir, for determinism checks.
func buildSample(t *testing.T, dir string) *Repo {
	r := NewRepo(t, dir)
	r.WriteFile("a/b.txt", "hello\n")
	r.WriteExecutable("run.sh", "#!/bin/sh\n")
	r.Symlink("link", "a/b.txt")
	r.Commit("first")
	r.AnnotatedTag("v1.0.0", "release")
	r.WriteFile("a/b.txt", "hello again\n")
	r.Commit("second")
	return r
}

func TestRepoIsDeterministic(t *testing.T) {
	a := buildSample(t, filepath.Join(t.TempDir(), "a"))
	b := buildSample(t, filepath.Join(t.TempDir(), "elsewhere", "b"))
	for _, rev := range []string{"HEAD", "refs/tags/v1.0.0"} {
		ha, hb := a.Git("rev-parse", rev), b.Git("rev-parse", rev)
		if ha != hb {
			t.Errorf("%s differs between identical repositories: %s vs %s", rev, ha, hb)
		}
	}
	if got := a.Git("cat-file", "-t", "v1.0.0"); got != "tag" {
		t.Errorf("AnnotatedTag made a %q object, want tag", got)
	}
	if got := a.Git("ls-tree", "HEAD", "run.sh", "link"); !strings.Contains(got, "120000 blob") || !strings.Contains(got, "100755 blob") {
		t.Errorf("modes not recorded:\n%s", got)
	}
	if got := a.Git("rev-parse", "--abbrev-ref", "HEAD"); got != "main" {
		t.Errorf("default branch = %q, want main", got)
	}
}

func TestMoveTagKeepsAnnotation(t *testing.T) {
	r := buildSample(t, t.TempDir())
	first := r.Rev("HEAD~1")
	if got := r.Rev("v1.0.0"); got != first {
		t.Fatalf("tag at %s, want %s", got, first)
	}
	r.MoveTag("v1.0.0", "HEAD")
	if got, want := r.Rev("v1.0.0"), r.Rev("HEAD"); got != want {
		t.Errorf("moved tag at %s, want %s", got, want)
	}
	if got := r.Git("cat-file", "-t", "v1.0.0"); got != "tag" {
		t.Errorf("moved tag is a %q object, want tag", got)
	}
	r.Tag("light")
	r.MoveTag("light", first)
	if got := r.Git("cat-file", "-t", "light"); got != "commit" || r.Rev("light") != first {
		t.Errorf("lightweight tag moved wrongly: type %s at %s", got, r.Rev("light"))
	}
}

// lsRemote runs the real git client against a server.
func lsRemote(t *testing.T, u string) (string, error) {
	t.Helper()
	cmd := exec.Command(gitBinary(t), "ls-remote", u)
	cmd.Env = gitEnv(t.TempDir())
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestGitDaemonServesAndStops(t *testing.T) {
	root := t.TempDir()
	r := buildSample(t, filepath.Join(root, "example.com", "plugin"))
	srv := StartGitDaemon(t, root)
	if !strings.HasPrefix(srv.URL, "git://127.0.0.1:") || !strings.HasSuffix(srv.URL, "/") {
		t.Fatalf("URL = %q", srv.URL)
	}
	out, err := lsRemote(t, srv.URL+"example.com/plugin")
	if err != nil {
		t.Fatalf("ls-remote: %v\n%s", err, out)
	}
	if !strings.Contains(out, r.Rev("HEAD")+"\trefs/heads/main") || !strings.Contains(out, "refs/tags/v1.0.0^{}") {
		t.Errorf("ls-remote output lacks main or the tag:\n%s", out)
	}
	srv.Stop()
	if out, err := lsRemote(t, srv.URL+"example.com/plugin"); err == nil {
		t.Errorf("ls-remote succeeded after Stop:\n%s", out)
	}
}

func TestGitHTTPBasicAuth(t *testing.T) {
	root := t.TempDir()
	r := buildSample(t, filepath.Join(root, "plugin"))
	srv := StartGitHTTP(t, root, "alice", "s3cret")
	u, err := url.Parse(srv.URL + "plugin")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		user *url.Userinfo
		ok   bool
	}{
		{"right credentials", url.UserPassword("alice", "s3cret"), true},
		{"wrong password", url.UserPassword("alice", "nope"), false},
		{"anonymous", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := *u
			v.User = tc.user
			out, err := lsRemote(t, v.String())
			if tc.ok && (err != nil || !strings.Contains(out, r.Rev("HEAD"))) {
				t.Errorf("ls-remote failed: %v\n%s", err, out)
			}
			if !tc.ok && err == nil {
				t.Errorf("ls-remote succeeded without valid credentials:\n%s", out)
			}
		})
	}
	if srv.Requests() == 0 {
		t.Error("request counter did not move")
	}

	open := GitHTTP(t, root, "", "")
	if out, err := lsRemote(t, open+"plugin"); err != nil || !strings.Contains(out, "refs/tags/v1.0.0") {
		t.Errorf("anonymous server: %v\n%s", err, out)
	}
}

func TestGitlinkSurvivesCommits(t *testing.T) {
	r := NewRepo(t, t.TempDir())
	r.WriteFile("go.mod", "module example.com/p\n")
	target := r.Commit("first")
	r.Gitlink("vendor/lib", target)
	r.Commit("add submodule")
	r.WriteFile("x.go", "package p\n")
	r.Commit("more")
	if got := r.Git("ls-tree", "HEAD", "vendor/lib"); got != "160000 commit "+target+"\tvendor/lib" {
		t.Errorf("gitlink entry = %q", got)
	}
}
