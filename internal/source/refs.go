package source

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/agnivade/levenshtein"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
)

// wrapped is an error whose message is written for people while errors.Is
// still sees the cause (a sentinel, or go-git's error).
type wrapped struct {
	msg string
	err error
}

func (e *wrapped) Error() string { return e.msg }
func (e *wrapped) Unwrap() error { return e.err }

func wrapf(err error, format string, args ...any) error {
	return &wrapped{msg: fmt.Sprintf(format, args...), err: err}
}

// oneLine flattens an error that may quote a server's response body.
func oneLine(err error) string {
	s := strings.Join(strings.Fields(err.Error()), " ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

func isFullHash(s string) bool {
	if len(s) != 40 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// hasObject reports whether the cache repository has object h; an error
// other than "not found" (an unreadable pack index) is damage.
func hasObject(repo *git.Repository, h plumbing.Hash) (bool, error) {
	switch err := repo.Storer.HasEncodedObject(h); {
	case err == nil:
		return true, nil
	case errors.Is(err, plumbing.ErrObjectNotFound):
		return false, nil
	default:
		return false, &damage{fmt.Errorf("look up object %s: %w", h, err)}
	}
}

// damage marks a failure to read the cache repository's own data (a
// damaged pack, index or configuration), as opposed to what the plugin
// holds: the cache is at fault, and a fresh fetch repairs it.
type damage struct{ err error }

func (d *damage) Error() string { return d.err.Error() }
func (d *damage) Unwrap() error { return d.err }

func isDamage(err error) bool {
	var d *damage
	return errors.As(err, &d)
}

// peel follows annotated tags (possibly tags of tags) to a commit.
func peel(repo *git.Repository, h plumbing.Hash) (plumbing.Hash, error) {
	for range 16 {
		enc, err := checkedObject(repo, h)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		switch enc.Type() {
		case plumbing.CommitObject:
			return h, nil
		case plumbing.TagObject:
			tag, err := object.DecodeTag(repo.Storer, enc)
			if err != nil {
				return plumbing.ZeroHash, &damage{fmt.Errorf("read tag %s: %w", h, err)}
			}
			h = tag.Target
		default:
			return plumbing.ZeroHash, fmt.Errorf("points to a %s, not a commit", enc.Type())
		}
	}
	return plumbing.ZeroHash, errors.New("too many nested tags")
}

// reachable reports whether commit h is an ancestor of (or equal to) a
// branch or tag of the cache repository, which mirrors the remote right
// after a fetch. A commit left in the cache by an earlier fetch, since
// force-pushed away, is not reachable.
func reachable(ctx context.Context, repo *git.Repository, h plumbing.Hash) (bool, error) {
	if ok, err := hasObject(repo, h); !ok {
		return false, err
	}
	refs, err := repo.References()
	if err != nil {
		return false, err
	}
	var queue []plumbing.Hash
	err = refs.ForEach(func(ref *plumbing.Reference) error {
		if ref.Type() != plumbing.HashReference || !(ref.Name().IsTag() || ref.Name().IsBranch()) {
			return nil
		}
		if c, err := peel(repo, ref.Hash()); err == nil {
			queue = append(queue, c)
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	seen := make(map[plumbing.Hash]bool)
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		if c == h {
			return true, nil
		}
		if seen[c] {
			continue
		}
		seen[c] = true
		if err := ctx.Err(); err != nil {
			return false, err
		}
		enc, err := checkedObject(repo, c)
		if err != nil {
			return false, fmt.Errorf("read commit %s: %w", c, err)
		}
		commit, err := object.DecodeCommit(repo.Storer, enc)
		if err != nil {
			return false, &damage{fmt.Errorf("read commit %s: %w", c, err)}
		}
		queue = append(queue, commit.ParentHashes...)
	}
	return false, nil
}

// hint suggests tag and branch names close to ref, for typos.
func hint(repo *git.Repository, ref string) string {
	refs, err := repo.References()
	if err != nil {
		return ""
	}
	type cand struct {
		name string
		dist int
	}
	var cands []cand
	limit := max(2, len(ref)/3)
	_ = refs.ForEach(func(r *plumbing.Reference) error {
		if r.Name().IsTag() || r.Name().IsBranch() {
			if d := levenshtein.ComputeDistance(ref, r.Name().Short()); d <= limit {
				cands = append(cands, cand{r.Name().Short(), d})
			}
		}
		return nil
	})
	sort.Slice(cands, func(i, j int) bool {
		if cands[i].dist != cands[j].dist {
			return cands[i].dist < cands[j].dist
		}
		return cands[i].name < cands[j].name
	})
	var names []string
	for _, c := range cands {
		if len(names) == 5 {
			break
		}
		if len(names) == 0 || names[len(names)-1] != c.name {
			names = append(names, c.name)
		}
	}
	var s string
	if len(names) > 0 {
		s = " (similar: " + strings.Join(names, ", ") + ")"
	}
	if len(ref) >= 4 && len(ref) < 40 && strings.Trim(strings.ToLower(ref), "0123456789abcdef") == "" {
		s += "; to pin a commit, give all 40 hex digits of its hash"
	}
	return s
}

// isSSH reports whether the remote is reached over ssh (ssh:// or scp-like
// user@host:path).
func (r remote) isSSH() bool {
	ep, err := transport.NewEndpoint(r.fetchURL)
	return err == nil && ep.Protocol == "ssh"
}
