package source

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/memory"
)

// Tag is one tag a remote advertises.
type Tag struct {
	// Name is the short name ("v1.2.0").
	Name string
	// Commit is what the tag points to, annotated tags peeled to their
	// target (the commit of a release).
	Commit string
}

// ListTags asks the remote for its tags, as `git ls-remote --tags` does:
// only the advertisement is read, nothing is fetched or cached. Credentials
// follow the same rules as a Fetcher's (URL userinfo, else auth; nil auth
// means FromEnv(os.Getenv)). An empty repository has no tags.
func ListTags(ctx context.Context, rawURL string, auth AuthFunc) ([]Tag, error) {
	r, err := parseRemote(rawURL)
	if err != nil {
		return nil, err
	}
	if auth == nil {
		auth = FromEnv(os.Getenv)
	}
	var method transport.AuthMethod
	if r.basic != nil {
		method = r.basic
	} else if method, err = auth(r.display); err != nil {
		return nil, fmt.Errorf("credentials for %s: %w", r.display, err)
	}
	rem := git.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: "origin", URLs: []string{r.fetchURL}})
	refs, err := rem.ListContext(ctx, &git.ListOptions{Auth: method, PeelingOption: git.AppendPeeled})
	switch {
	case err == nil:
	case errors.Is(err, transport.ErrEmptyRemoteRepository):
		return nil, nil
	case errors.Is(err, transport.ErrAuthenticationRequired), errors.Is(err, transport.ErrAuthorizationFailed):
		return nil, wrapf(err, "list tags of %s: %s (credentials come from the URL, %s, or %s and %s)", r.display, oneLine(err), EnvToken, EnvUsername, EnvPassword)
	case r.isSSH() && strings.Contains(err.Error(), "unable to authenticate"):
		return nil, wrapf(err, "list tags of %s: %s (ssh keys come from %s, else the SSH agent at SSH_AUTH_SOCK)", r.display, oneLine(err), EnvSSHKey)
	default:
		return nil, wrapf(err, "list tags of %s: %s", r.display, oneLine(err))
	}
	// An annotated tag is advertised twice: its own object, then "name^{}"
	// with the commit it peels to; the peeled entry wins.
	commits := map[string]string{}
	peeled := map[string]bool{}
	for _, ref := range refs {
		full := ref.Name().String()
		if !strings.HasPrefix(full, "refs/tags/") || ref.Type() != plumbing.HashReference {
			continue
		}
		name, isPeeled := strings.CutSuffix(strings.TrimPrefix(full, "refs/tags/"), "^{}")
		if peeled[name] && !isPeeled {
			continue
		}
		commits[name] = ref.Hash().String()
		peeled[name] = peeled[name] || isPeeled
	}
	tags := make([]Tag, 0, len(commits))
	for name, commit := range commits {
		tags = append(tags, Tag{Name: name, Commit: commit})
	}
	// Sorted: callers print these, and map order would make output vary.
	sort.Slice(tags, func(i, j int) bool { return tags[i].Name < tags[j].Name })
	return tags, nil
}
