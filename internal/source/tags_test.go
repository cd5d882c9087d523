package source

import (
	"context"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/xtraefik/xtraefik/internal/testenv"
)

// TestOutdatedListTags lists plugindemo's tags over smart HTTP with
// credentials: annotated tags peeled to their commits, lightweight ones as
// they are, branches left out; refused credentials are named without the
// secret.
func TestOutdatedListTags(t *testing.T) {
	root := t.TempDir()
	p := testenv.PluginRepo(t, root, demoModule, demoVersion)
	p.Repo.AnnotatedTag("v0.3.0", "Release v0.3.0")
	const user, pass = "alice", "s3cret-pa55"
	u := testenv.GitHTTP(t, root, user, pass) + p.Path
	withCreds, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	withCreds.User = url.UserPassword(user, pass)

	got, err := ListTags(context.Background(), withCreds.String(), FromEnv(noEnv))
	if err != nil {
		t.Fatal(err)
	}
	want := []Tag{{Name: p.EarlyTag, Commit: p.EarlyCommit}, {Name: demoVersion, Commit: p.ReleaseCommit}, {Name: "v0.3.0", Commit: p.HeadCommit}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ListTags = %+v, want %+v", got, want)
	}

	_, err = ListTags(context.Background(), u, FromEnv(func(k string) string {
		return map[string]string{EnvUsername: user, EnvPassword: "Wr0ng-pa55"}[k]
	}))
	if err == nil || !strings.HasPrefix(err.Error(), "list tags of "+u+": authentication required") || !strings.Contains(err.Error(), EnvToken) || strings.Contains(err.Error(), "Wr0ng") {
		t.Errorf("wrong password: %v", err)
	}

	// An empty repository has no tags.
	testenv.NewRepo(t, root+"/empty")
	if tags, err := ListTags(context.Background(), testenv.GitDaemon(t, root)+"empty", FromEnv(noEnv)); err != nil || len(tags) != 0 {
		t.Errorf("empty repository: %v, %v", tags, err)
	}
}
