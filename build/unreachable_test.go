package build

import (
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xtraefik/xtraefik/internal/source"
	"github.com/xtraefik/xtraefik/internal/testenv"
	"github.com/xtraefik/xtraefik/recipe"
)

// refusedAddr is a loopback address nothing listens on: connections to it
// are refused.
func refusedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestNetworkFailureNamesTheWaysOut: a base or a plugin the network cannot
// reach (a name that never resolves, a refused loopback port) fails with a
// sentence saying so and naming the ways around it — a registry mirror for
// the base, a git mirror for a git plugin (after a base failure, for the git
// plugins to come), and --offline: to use now when a lock pins what a cache
// may hold, else what it needs — while a refusal by a reachable server
// (a missing ref) gets no such hint.
func TestNetworkFailureNamesTheWaysOut(t *testing.T) {
	const module = "github.com/traefik/plugindemo"
	gitRoot := t.TempDir()
	repo := testenv.PluginRepo(t, gitRoot, module, "v0.2.2")
	daemon := testenv.StartGitDaemon(t, gitRoot)
	plugin := func(url, ref string) string {
		return "plugins:\n  demo:\n    module: " + module + "\n    git: " + url + "\n    ref: " + ref + "\n"
	}
	parse := func(yaml string) *recipe.Recipe {
		t.Helper()
		r, err := recipe.Parse(filepath.Join(t.TempDir(), "recipe.yaml"), []byte(yaml))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	refused := refusedAddr(t)
	base := layoutBase(t)

	// A lock made online, for a fresh cache once the git server is gone.
	online := parse("base: traefik:v3.6\n" + plugin(daemon.URL+repo.Path, "v0.2.2"))
	res, err := resolve(t.Context(), nil, &options{Recipe: online, CacheDir: t.TempDir(), Bases: &fakeBases{now: base}})
	if err != nil {
		t.Fatal(err)
	}
	pluginLock := res.Lock()

	for _, tc := range []struct {
		name      string
		opts      func() *options
		want, not []string
	}{
		{"base host does not resolve", func() *options {
			return &options{Recipe: parse("base: registry.invalid/library/traefik:v3.6\n" + plugin(daemon.URL+repo.Path, "v0.2.2"))}
		}, []string{"base image registry.invalid/library/traefik:v3.6", "\nThe registry could not be reached over the network (the name registry.invalid does not resolve)",
			"--registry-mirror registry.invalid=MIRROR", "$XTRAEFIK_REGISTRY_MIRRORS", "mirrors: registries: [{prefix: registry.invalid, location: MIRROR}]",
			"The recipe's git plugins (demo) will need a git mirror too: --git-mirror ORIGINAL_PREFIX=MIRROR_PREFIX, or the recipe's mirrors: git:.",
			"--offline builds from a lock and a cache directory alone: it needs a lock made once"},
			[]string{"build from the lock alone"}},
		{"locked base, connection refused", func() *options {
			r := parse("base: " + refused + "/library/traefik:v3.6\n" + plugin(daemon.URL+repo.Path, "v0.2.2"))
			lock := &recipe.Lock{Version: recipe.LockVersion, Base: recipe.BaseLock{Ref: r.Base, Digest: "sha256:" + strings.Repeat("0", 64)}}
			return &options{Recipe: r, Lock: lock}
		}, []string{"(connection to " + refused + " refused)", "--registry-mirror " + refused + "=MIRROR", "--git-mirror", "build from the lock alone with --offline"},
			[]string{"it needs a lock made once"}},
		{"git host does not resolve", func() *options {
			return &options{Recipe: parse("base: traefik:v3.6\n" + plugin("https://git.invalid/demo.git", "v0.2.2")), Bases: &fakeBases{now: base}}
		}, []string{"plugin demo (github.com/traefik/plugindemo)", "\nThe git server could not be reached over the network (the name git.invalid does not resolve)",
			"--git-mirror ORIGINAL_PREFIX=MIRROR_PREFIX", "$XTRAEFIK_GIT_MIRRORS", "mirrors: git: [{insteadOf: ORIGINAL_PREFIX, url: MIRROR_PREFIX}]",
			"--offline builds from a lock and a cache directory alone: it needs a lock made once"},
			[]string{"--registry-mirror", "will need a git mirror too", "build from the lock alone"}},
		{"locked plugin, git server gone", func() *options {
			return &options{Recipe: online, Lock: pluginLock, Bases: &fakeBases{now: base}}
		}, []string{"plugin demo (github.com/traefik/plugindemo)", "refused)", "--git-mirror", "build from the lock alone with --offline"},
			[]string{"--registry-mirror", "it needs a lock made once"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if strings.Contains(tc.name, "gone") {
				daemon.Stop()
			}
			o := tc.opts()
			o.CacheDir = t.TempDir()
			_, err := resolve(t.Context(), nil, o)
			if err == nil {
				t.Fatal("resolved")
			}
			t.Log(err)
			var ue *unreachableError
			if !errors.As(err, &ue) {
				t.Fatalf("no hint: %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q", w)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(ue.Hint, n) {
					t.Errorf("hint names %q, which does not apply", n)
				}
			}
		})
	}

	// A server that answers and refuses is no network failure.
	t.Run("missing ref", func(t *testing.T) {
		up := testenv.StartGitDaemon(t, gitRoot)
		_, err := resolve(t.Context(), nil, &options{Recipe: parse("base: traefik:v3.6\n" + plugin(up.URL+repo.Path, "v9.9.9")),
			CacheDir: t.TempDir(), Bases: &fakeBases{now: base}})
		if !errors.Is(err, source.ErrNotFound) || errors.As(err, new(*unreachableError)) || strings.Contains(err.Error(), "mirror") {
			t.Fatalf("a missing tag: %v", err)
		}
	})
}
