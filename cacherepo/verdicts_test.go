package cacherepo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/xtraefik/xtraefik/images"
	"github.com/xtraefik/xtraefik/internal/testenv"
	"github.com/xtraefik/xtraefik/sandbox"
	"github.com/xtraefik/xtraefik/verify"
)

// key is a verdict key as verify makes them: a hex SHA-256.
func key(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func okVerdict() verify.Result {
	return verify.Result{Alias: "demo", Module: "example.com/demo", Status: verify.StatusOK, OK: true,
		Interpreter: "yaegi v0.16.1", HTTPStatus: 200, Containment: &sandbox.Report{Level: sandbox.LevelFull}}
}

var (
	fleetKey = []byte(strings.Repeat("f", 32))
	otherKey = []byte(strings.Repeat("o", 32))
)

func verdicts(t *testing.T, s *Store, secret []byte) *Verdicts {
	t.Helper()
	v, err := s.Verdicts(context.Background(), secret)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// reopen is another runner's Store on the same repository.
func reopen(t *testing.T, s *Store) *Store {
	t.Helper()
	again, err := New(s.String(), images.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return again
}

// TestVerdictRoundTrip: a verdict one runner stores, another runner with
// the same key reads back, with the time it was given; verdicts no cache
// keeps are not stored.
func TestVerdictRoundTrip(t *testing.T) {
	s, _ := testStore(t)
	a := verdicts(t, s, fleetKey)
	ok := okVerdict()
	at := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	if err := a.PutRecord(key("k1"), ok, at); err != nil {
		t.Fatal(err)
	}
	partial := ok
	partial.Containment = &sandbox.Report{Level: sandbox.LevelPartial}
	fail := ok
	fail.Status, fail.OK = verify.StatusFail, false
	for name, r := range map[string]verify.Result{"partial": partial, "fail": fail} {
		if err := a.Put(key(name), r); err != nil {
			t.Fatal(err)
		}
		if _, err := remote.Head(s.repo.Tag("verdict-" + key(name))); err == nil {
			t.Errorf("%s: a verdict no cache keeps was stored", name)
		}
	}

	b := verdicts(t, reopen(t, s), fleetKey)
	got, verified, hit := b.Record(key("k1"))
	if !hit || !verified.Equal(at) || got.Alias != ok.Alias || got.Interpreter != ok.Interpreter || got.HTTPStatus != 200 || !got.Containment.Full() {
		t.Fatalf("Record = %+v, %v, %v", got, verified, hit)
	}
	got, hit = b.Get(key("k1"))
	if !hit || len(got.Notes) != 1 || got.Notes[0] != verify.CacheNote("the fleet cache "+s.String(), at) {
		t.Errorf("Get = %+v, %v", got, hit)
	}
	if _, hit := b.Get(key("absent")); hit {
		t.Error("an absent verdict hit")
	}
	if w := b.Warnings(); len(w) != 0 {
		t.Errorf("warnings: %v", w)
	}
	if _, err := s.Verdicts(context.Background(), fleetKey[:31]); err == nil {
		t.Error("a 31-byte key was taken")
	}
}

// TestVerdictUntrustedRecords: a record sealed with another key, edited,
// moved to another key's tag, or no record at all is a miss and a warning.
func TestVerdictUntrustedRecords(t *testing.T) {
	ctx := context.Background()
	s, _ := testStore(t)
	if err := verdicts(t, s, otherKey).Put(key("foreign"), okVerdict()); err != nil {
		t.Fatal(err)
	}
	mine := verdicts(t, s, fleetKey)
	if err := mine.Put(key("k1"), okVerdict()); err != nil {
		t.Fatal(err)
	}
	// Edited: the record of k1 with another answer, pushed under k1's tag.
	record := readRecord(t, s, key("k1"))
	edited := bytes.Replace(record, []byte(`"httpStatus":200`), []byte(`"httpStatus":201`), 1)
	if bytes.Equal(edited, record) {
		t.Fatalf("the edit did not apply to %s", record)
	}
	if err := s.push(ctx, s.repo.Tag("verdict-"+key("edited")), VerdictArtifactType, static.NewLayer(edited, VerdictMediaType), nil, nil); err != nil {
		t.Fatal(err)
	}
	// Moved: k1's intact record under another key's tag.
	if err := s.push(ctx, s.repo.Tag("verdict-"+key("moved")), VerdictArtifactType, static.NewLayer(record, VerdictMediaType), nil, nil); err != nil {
		t.Fatal(err)
	}
	// No record: a tree under a verdict tag.
	if err := s.push(ctx, s.repo.Tag("verdict-"+key("tree")), TreeArtifactType, static.NewLayer(tarGz(t), types.OCILayer), nil, nil); err != nil {
		t.Fatal(err)
	}

	reader := verdicts(t, reopen(t, s), fleetKey)
	for _, k := range []string{"foreign", "edited", "moved", "tree"} {
		if _, hit := reader.Get(key(k)); hit {
			t.Errorf("%s: used", k)
		}
	}
	w := reader.Warnings()
	if len(w) != 4 {
		t.Fatalf("warnings: %v; want one per record", w)
	}
	for i, k := range []string{"foreign", "edited", "moved"} {
		if !errors.Is(w[i], ErrBadSeal) || !strings.Contains(w[i].Error(), key(k)) {
			t.Errorf("%s: warning %v", k, w[i])
		}
	}
	if !errors.Is(w[3], ErrMismatch) {
		t.Errorf("tree: warning %v", w[3])
	}
	if _, hit := reader.Get(key("k1")); !hit {
		t.Error("the intact record was not used")
	}
}

func readRecord(t *testing.T, s *Store, k string) []byte {
	t.Helper()
	desc, err := remote.Get(s.repo.Tag("verdict-" + k))
	if err != nil {
		t.Fatal(err)
	}
	img, err := desc.Image()
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %v, %v", layers, err)
	}
	rc, err := layers[0].Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestVerdictLayeredCache: a fresh runner's Layered cache takes a verdict
// from the fleet cache, copies it into its local cache with the time it
// was given, and next time asks the registry nothing.
func TestVerdictLayeredCache(t *testing.T) {
	s, log := testStore(t)
	at := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	if err := verdicts(t, s, fleetKey).PutRecord(key("k1"), okVerdict(), at); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	local := &verify.DirCache{Dir: filepath.Join(dir, "verdicts"), Secret: fleetKey}
	if err := os.MkdirAll(local.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	l := verify.Layered{Local: local, Remote: verdicts(t, reopen(t, s), fleetKey)}
	if _, hit := local.Get(key("k1")); hit {
		t.Fatal("the local cache starts with the verdict")
	}
	got, hit := l.Get(key("k1"))
	if !hit || got.HTTPStatus != 200 {
		t.Fatalf("Layered.Get = %+v, %v", got, hit)
	}
	copied, verified, hit := local.Record(key("k1"))
	if !hit || !verified.Equal(at) || copied.HTTPStatus != 200 {
		t.Fatalf("local copy = %+v, %v, %v; want the fleet's verdict of %v", copied, verified, hit, at)
	}
	log.Reset()
	if _, hit := l.Get(key("k1")); !hit {
		t.Fatal("second Layered.Get missed")
	}
	if reqs := log.Requests(); len(reqs) != 0 {
		t.Errorf("second Layered.Get asked the registry: %v", reqs)
	}

	if err := l.Put(key("k2"), okVerdict()); err != nil {
		t.Fatal(err)
	}
	_, inLocal, _ := local.Record(key("k2"))
	_, inFleet, _ := verdicts(t, reopen(t, s), fleetKey).Record(key("k2"))
	if inLocal.IsZero() || !inLocal.Equal(inFleet) {
		t.Errorf("Layered.Put: local verified %v, fleet %v; want both, at one time", inLocal, inFleet)
	}
}

// TestVerdictRegistryRefusing: a registry that refuses this runner (no
// credentials) is a miss and one warning, and is not asked again in the
// build; a refused write likewise.
func TestVerdictRegistryRefusing(t *testing.T) {
	host := testenv.Registry(t, testenv.RegistryOptions{User: "alice", Password: "s3cret"})
	proxy, log := testenv.RecordingProxy(t, host)
	s, err := New(proxy+"/fleet/cache", images.Options{})
	if err != nil {
		t.Fatal(err)
	}
	v := verdicts(t, s, fleetKey)
	if _, hit := v.Get(key("k1")); hit {
		t.Fatal("hit on a refusing registry")
	}
	if w := v.Warnings(); len(w) != 1 || !strings.Contains(w[0].Error(), "UNAUTHORIZED") {
		t.Fatalf("warnings: %v; want the refusal", w)
	}
	log.Reset()
	if _, hit := v.Get(key("k2")); hit {
		t.Fatal("hit on a refusing registry")
	}
	if reqs := log.Requests(); len(reqs) != 0 {
		t.Errorf("asked again after a refusal: %v", reqs)
	}
	if err := v.Put(key("k1"), okVerdict()); err == nil {
		t.Fatal("Put to a refusing registry succeeded")
	}
	log.Reset()
	if err := v.Put(key("k2"), okVerdict()); err == nil {
		t.Fatal("second Put succeeded")
	}
	if reqs := log.Requests(); len(reqs) != 0 {
		t.Errorf("wrote again after a refusal: %v", reqs)
	}
	if w := v.Warnings(); len(w) != 2 {
		t.Errorf("warnings: %v; want the read and the write refusal", w)
	}
}
