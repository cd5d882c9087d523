package build

import (
	"errors"
	"path/filepath"
	"time"

	"github.com/go-git/go-git/v5"

	"github.com/xtraefik/xtraefik/internal/redact"
)

// Standard OCI annotation keys (image-spec annotations.md).
const (
	AnnotationCreated  = "org.opencontainers.image.created"
	AnnotationVersion  = "org.opencontainers.image.version"
	AnnotationSource   = "org.opencontainers.image.source"
	AnnotationRevision = "org.opencontainers.image.revision"
)

// provenance returns the standard annotations of the image: when (the build
// epoch), which Traefik, and where the recipe lives (its git repository's origin
// and HEAD commit, when the recipe is in a clean git work tree). Recipe
// annotations override them.
func provenance(res *resolution) map[string]string {
	a := map[string]string{AnnotationCreated: res.Epoch.UTC().Format(time.RFC3339)}
	if res.Traefik.Version != "" {
		a[AnnotationVersion] = res.Traefik.Version
	}
	if src, rev, err := recipeRepo(res.Recipe.Path); err == nil {
		a[AnnotationRevision] = rev
		if src != "" { // a repository without origin has no source to name
			a[AnnotationSource] = src
		}
	}
	for k, v := range res.Recipe.Annotations {
		a[k] = v
	}
	return a
}

// recipeRepo finds the git repository holding the recipe file. A dirty work tree
// gives no revision: the commit would not describe what was built.
func recipeRepo(recipePath string) (source, revision string, err error) {
	if recipePath == "" {
		return "", "", errors.New("no recipe file")
	}
	repo, err := git.PlainOpenWithOptions(filepath.Dir(recipePath), &git.PlainOpenOptions{DetectDotGit: true})
	if err != nil {
		return "", "", err
	}
	head, err := repo.Head()
	if err != nil {
		return "", "", err
	}
	wt, err := repo.Worktree()
	if err != nil {
		return "", "", err
	}
	st, err := wt.Status()
	if err != nil {
		return "", "", err
	}
	if !st.IsClean() {
		return "", "", errors.New("work tree has changes")
	}
	// An origin on this machine (a path, file://) is no source a reader
	// can reach, and a host path must not travel with the image.
	if remote, err := repo.Remote("origin"); err == nil && len(remote.Config().URLs) > 0 {
		source, _ = redact.Public(remote.Config().URLs[0])
	}
	return source, head.Hash().String(), nil
}
