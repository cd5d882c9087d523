package build

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"syscall"

	"github.com/xtraefik/xtraefik/images"
	"github.com/xtraefik/xtraefik/recipe"
)

// unreachableError is a failure to reach a registry, a git server or a
// module proxy over the network (a name that does not resolve, a refused
// connection, a timeout): the first thing a build on a machine without
// Docker Hub or GitHub meets. Its message adds to the error why it failed
// and the ways around it that apply (mirrors, --offline).
type unreachableError struct {
	// Err is the error of the source, kept for errors.Is and errors.As.
	Err error
	// Hint is the sentence added: what could not be reached, why, and how
	// to build without it.
	Hint string
}

func (e *unreachableError) Error() string { return e.Err.Error() + "\n" + e.Hint }
func (e *unreachableError) Unwrap() error { return e.Err }

// Kinds of sources a hint is about.
const (
	viaRegistry = "registry"
	viaGit      = "git"
	viaModules  = "modules"
)

// unreachable returns err as an unreachableError when the network failed
// it, naming what applies: a registry mirror (--registry-mirror, the
// recipe's mirrors.registries), a git mirror (--git-mirror,
// mirrors.git) for the source that failed and, after a base, for the git
// plugins still to come, a module proxy (GOPROXY), and --offline: to use
// now when a lock pins what the cache may already hold, else what it
// needs. Other errors (refusals, missing tags,
// the caller's cancellation) are returned as they are.
func unreachable(ctx context.Context, o *options, kind string, err error) error {
	if err == nil || ctx.Err() != nil || errors.As(err, new(*unreachableError)) {
		return err
	}
	why := netFailure(err)
	if why == "" {
		return err
	}
	var b strings.Builder
	switch kind {
	case viaRegistry:
		prefix := "REGISTRY"
		if ref, perr := images.ParseReference(o.Recipe.Base); perr == nil && ref.Registry() != "" {
			prefix = ref.Registry()
		}
		fmt.Fprintf(&b, "The registry could not be reached over the network (%s). Without access to it, pull through a registry mirror you can reach: --registry-mirror %s=MIRROR (or $%s), or the recipe's mirrors: registries: [{prefix: %s, location: MIRROR}]",
			why, prefix, EnvRegistryMirrors, prefix)
	case viaGit:
		fmt.Fprintf(&b, "The git server could not be reached over the network (%s). Without access to it, fetch through a git mirror you can reach: --git-mirror ORIGINAL_PREFIX=MIRROR_PREFIX (e.g. --git-mirror https://github.com/=git://git.internal/, or $%s), or the recipe's mirrors: git: [{insteadOf: ORIGINAL_PREFIX, url: MIRROR_PREFIX}]",
			why, EnvGitMirrors)
	default:
		fmt.Fprintf(&b, "The module proxy could not be reached over the network (%s). Without access to it, set GOPROXY to a module proxy you can reach (a private module fetched direct from git takes --git-mirror)", why)
	}
	b.WriteString(".")
	// The base is resolved first: its failure is the first one a build
	// without Docker Hub or GitHub meets, so it also names the git mirror
	// the recipe's git plugins will need next.
	if kind == viaRegistry {
		if git := gitAliases(o.Recipe); len(git) > 0 {
			fmt.Fprintf(&b, " The recipe's git plugins (%s) will need a git mirror too: --git-mirror ORIGINAL_PREFIX=MIRROR_PREFIX, or the recipe's mirrors: git:.", strings.Join(git, ", "))
		}
	}
	if o.Lock != nil {
		b.WriteString(" Or, with a cache directory an earlier build filled (or one restored), build from the lock alone with --offline.")
	} else {
		b.WriteString(" --offline builds from a lock and a cache directory alone: it needs a lock made once where these servers (or their mirrors) answer.")
	}
	return &unreachableError{Err: err, Hint: b.String()}
}

// gitAliases are the aliases of the recipe's plugins fetched from git, in
// order.
func gitAliases(r *recipe.Recipe) []string {
	var out []string
	if r == nil {
		return nil
	}
	for a, p := range r.Plugins {
		if p.Source() == recipe.SourceGit {
			out = append(out, a)
		}
	}
	slices.Sort(out)
	return out
}

// netFailure says why the network failed err ("the name registry.invalid
// does not resolve", "connection to 127.0.0.1:1 refused"), or "" when err
// is no network failure.
func netFailure(err error) string {
	var dns *net.DNSError
	if errors.As(err, &dns) {
		if dns.IsTimeout {
			return "looking up " + dns.Name + " timed out"
		}
		return "the name " + dns.Name + " does not resolve"
	}
	var stalled *images.StalledError
	if errors.As(err, &stalled) {
		return fmt.Sprintf("%s did not answer for %s", stalled.Host, stalled.Idle)
	}
	addr := ""
	var op *net.OpError
	if errors.As(err, &op) && op.Addr != nil {
		addr = " " + op.Addr.String()
	}
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection to" + addr + " refused"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "no route to" + addr
	case errors.Is(err, syscall.ETIMEDOUT):
		return "connection to" + addr + " timed out"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "no answer in time"
	}
	return ""
}

// sourceKind is the kind of source a plugin is fetched from, for hints.
func sourceKind(spec *recipe.Plugin) string {
	if spec != nil && spec.Source() == recipe.SourceModule {
		return viaModules
	}
	return viaGit
}
