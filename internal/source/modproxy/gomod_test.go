package modproxy

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/xtraefik/xtraefik/internal/testenv"
)

// GoMod reads a version's go.mod from the proxy, checked against the
// checksum database, keeps it, and answers from the cache afterwards
// (offline too); a proxy serving another go.mod than the database
// recorded is refused.
func TestGoMod(t *testing.T) {
	p := testenv.GoProxy(t, demo+"@"+demoVersion)
	db := testenv.SumDB(t, p)
	p.ServeSumDB(db)
	served, err := os.ReadFile(strings.TrimSuffix(p.ZipPath(t, demo, demoVersion), ".zip") + ".mod")
	if err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	env := envOf(t, "GOPROXY", p.URL, "GOSUMDB", db.GOSUMDB)
	ctx := context.Background()
	got, err := newClient(t, Options{CacheDir: cache, Env: env}).GoMod(ctx, demo, demoVersion)
	if err != nil || !bytes.Equal(got, served) {
		t.Fatalf("GoMod: %v\n%s", err, got)
	}

	// Kept: the proxy is down, and offline, the cache answers.
	p.Fail(http.StatusInternalServerError)
	if got, err := newClient(t, Options{CacheDir: cache, Env: env}).GoMod(ctx, demo, demoVersion); err != nil || !bytes.Equal(got, served) {
		t.Fatalf("GoMod from the cache: %v", err)
	}
	if got, err := newClient(t, Options{CacheDir: cache, Env: env, Offline: true}).GoMod(ctx, demo, demoVersion); err != nil || !bytes.Equal(got, served) {
		t.Fatalf("GoMod offline: %v", err)
	}
	p.Fail(0)
	if _, err := newClient(t, Options{Env: env, Offline: true}).GoMod(ctx, demo, demoVersion); !errors.Is(err, ErrNotCached) {
		t.Fatalf("offline, empty cache: %v, want ErrNotCached", err)
	}

	// The database recorded the real go.mod: a proxy serving another is
	// refused, and nothing is kept.
	p.WriteFile(t, demo, demoVersion, "mod", append(append([]byte(nil), served...), "\nrequire github.com/traefik/yaegi v0.15.1\n"...))
	fresh := t.TempDir()
	if _, err := newClient(t, Options{CacheDir: fresh, Env: env}).GoMod(ctx, demo, demoVersion); !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), "/go.mod") {
		t.Fatalf("tampered go.mod: %v, want a checksum error", err)
	}
	if _, err := newClient(t, Options{CacheDir: fresh, Env: env, Offline: true}).GoMod(ctx, demo, demoVersion); !errors.Is(err, ErrNotCached) {
		t.Fatalf("a refused go.mod was kept: %v", err)
	}
	// A damaged cached copy is fetched again (and refused here again).
	if err := os.WriteFile(strings.TrimSuffix(p.ZipPath(t, demo, demoVersion), ".zip")+".mod", served, 0o644); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, Options{CacheDir: cache, Env: env})
	zp, _ := c.zipPath(moduleVersion(demo, demoVersion))
	if err := os.WriteFile(strings.TrimSuffix(zp, ".zip")+".mod", []byte("module evil\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := c.GoMod(ctx, demo, demoVersion); err != nil || !bytes.Equal(got, served) {
		t.Fatalf("damaged cache: %v\n%s", err, got)
	}
}
