package build

import (
	"context"
	"errors"
	"fmt"
	"net"
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
// mirrors.git), a module proxy (GOPROXY), and --offline when a lock pins
// what the cache may already hold. Other errors (refusals, missing tags,
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
	if o.Lock != nil {
		b.WriteString("; or, with a cache directory an earlier build filled (or one restored), build from the lock alone with --offline")
	}
	b.WriteString(".")
	return &unreachableError{Err: err, Hint: b.String()}
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
