package cacherepo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
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
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/xtraefik/xtraefik/internal/sandbox"
	"github.com/xtraefik/xtraefik/internal/testenv"
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

// reopen is another runner's Store on the same repository, with the same
// signing key.
func reopen(t *testing.T, s *Store) *Store {
	t.Helper()
	return withKeys(t, s.String(), Keys{Signer: s.keys.signer})
}

// TestVerdictRoundTrip: a verdict one runner stores, another runner with
// the same key reads back, with the time it was given; verdicts no cache
// keeps are not stored.
func TestVerdictRoundTrip(t *testing.T) {
	s, _ := testStore(t)
	a := s.Verdicts(context.Background())
	ok := okVerdict()
	at := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	if err := a.PutRecord(key("k1"), verify.CachedVerdict{Result: ok, Verified: at}); err != nil {
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

	b := reopen(t, s).Verdicts(context.Background())
	rec, hit := b.Record(key("k1"))
	if got := rec.Result; !hit || !rec.Verified.Equal(at) || got.Alias != ok.Alias || got.Interpreter != ok.Interpreter || got.HTTPStatus != 200 || !got.Containment.Full() ||
		rec.Signer != s.Signer() {
		t.Fatalf("Record = %+v, %v", rec, hit)
	}
	got, hit := b.Get(key("k1"))
	if !hit || len(got.Notes) != 1 || got.Notes[0] != verify.CacheNote("the fleet cache "+s.String(), at) {
		t.Errorf("Get = %+v, %v", got, hit)
	}
	if _, hit := b.Get(key("absent")); hit {
		t.Error("an absent verdict hit")
	}
	if w := b.Warnings(); len(w) != 0 {
		t.Errorf("warnings: %v", w)
	}
}

// TestVerdictUntrustedRecords is the hostile suite of verdict records:
// each is a miss (the plugin is verified again) and a warning naming the
// precise defence.
func TestVerdictUntrustedRecords(t *testing.T) {
	ctx := context.Background()
	s, _ := testStore(t)
	mine := s.Verdicts(ctx)
	if err := mine.Put(key("k1"), okVerdict()); err != nil {
		t.Fatal(err)
	}
	k1Record := readRecord(t, s, key("k1"))
	other := newKey(t, testenv.KeyEd25519)
	stranger := withKeys(t, s.String(), Keys{Signer: other.sv})
	if err := stranger.Verdicts(ctx).Put(key("foreign"), okVerdict()); err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	fail := okVerdict()
	fail.Status, fail.OK = verify.StatusFail, false
	treeSig := mustSeal(t, s.keys, record{Kind: kindTree, Tag: "verdict-" + key("kind"), ContentHash: "sha256:" + key("x"), Layer: "sha256:" + key("y")})

	// Edited: k1's record with another answer, its signature kept.
	var env envelope
	if err := json.Unmarshal(k1Record, &env); err != nil {
		t.Fatal(err)
	}
	payload, _ := base64.StdEncoding.DecodeString(env.Payload)
	edited := bytes.Replace(payload, []byte(`"httpStatus":200`), []byte(`"httpStatus":201`), 1)
	if bytes.Equal(edited, payload) {
		t.Fatalf("the edit did not apply to %s", payload)
	}
	env.Payload = base64.StdEncoding.EncodeToString(edited)
	editedRecord, _ := json.Marshal(env)
	// Spoofed: the stranger's record of "spoofed" with this key's ID.
	spoofed := mustSeal(t, stranger.keys, record{Kind: kindVerdict, Tag: "verdict-" + key("spoofed"), Key: key("spoofed"), Verified: &at, Result: ptr(okVerdict())})
	if err := json.Unmarshal(spoofed, &env); err != nil {
		t.Fatal(err)
	}
	env.Signatures[0].KeyID = s.Signer()
	spoofed, _ = json.Marshal(env)
	// Unsigned: the same envelope without its signature.
	env.Signatures = nil
	unsigned, _ := json.Marshal(env)

	cases := []struct {
		name string
		data []byte
		want error
		says string
	}{
		{"edited", editedRecord, ErrForged, "does not verify"},
		{"moved", k1Record, ErrForged, "record moved between tags: signed by " + s.Signer() + " for tag verdict-" + key("k1")},
		{"spoofed", spoofed, ErrForged, "does not verify"},
		{"unsigned", unsigned, ErrUntrusted, "no signature"},
		{"kind", treeSig, ErrForged, "signed by " + s.Signer() + " for a tree"},
		{"fail", mustSeal(t, s.keys, record{Kind: kindVerdict, Tag: "verdict-" + key("fail"), Key: key("fail"), Verified: &at, Result: &fail}), ErrForged, "no cache keeps"},
		{"other key", mustSeal(t, s.keys, record{Kind: kindVerdict, Tag: "verdict-" + key("other key"), Key: key("k1"), Verified: &at, Result: ptr(okVerdict())}), ErrForged, "moved between keys"},
		{"old format", []byte(`{"key":"x","mac":"00"}`), ErrUntrusted, "payload type"},
	}
	for _, c := range cases {
		pushRecord(t, s, key(c.name), c.data)
	}
	// No record: a tree under a verdict tag.
	if err := s.push(ctx, s.repo.Tag("verdict-"+key("tree")), TreeArtifactType, static.NewLayer(tarGz(t), types.OCILayer), nil, nil); err != nil {
		t.Fatal(err)
	}

	reader := reopen(t, s).Verdicts(ctx)
	if _, hit := reader.Get(key("foreign")); hit {
		t.Error("foreign: used")
	}
	if w := reader.Warnings(); len(w) != 1 || !errors.Is(w[0], ErrUntrusted) || !strings.Contains(w[0].Error(), other.id) || !strings.Contains(w[0].Error(), "verified here again") {
		t.Errorf("foreign: warnings %v; want ErrUntrusted naming %s", w, other.id)
	}
	for i, c := range cases {
		if _, hit := reader.Get(key(c.name)); hit {
			t.Errorf("%s: used", c.name)
		}
		w := reader.Warnings()
		if len(w) != i+2 {
			t.Fatalf("%s: warnings %v; want one more", c.name, w)
		}
		if got := w[i+1]; !errors.Is(got, c.want) || !strings.Contains(got.Error(), c.says) || !strings.Contains(got.Error(), key(c.name)) {
			t.Errorf("%s: warning %v; want %v saying %q", c.name, got, c.want, c.says)
		}
	}
	if _, hit := reader.Get(key("tree")); hit {
		t.Error("tree: used")
	}
	if w := reader.Warnings(); !errors.Is(w[len(w)-1], ErrMismatch) {
		t.Errorf("tree: warning %v", w[len(w)-1])
	}
	if _, hit := reader.Get(key("k1")); !hit {
		t.Error("the intact record was not used")
	}
}

func ptr[T any](v T) *T { return &v }

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
	if err := s.Verdicts(context.Background()).PutRecord(key("k1"), verify.CachedVerdict{Result: okVerdict(), Verified: at}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	local := &verify.DirCache{Dir: filepath.Join(dir, "verdicts"), Secret: []byte(strings.Repeat("l", 32))}
	if err := os.MkdirAll(local.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	l := verify.Layered{Local: local, Remote: reopen(t, s).Verdicts(context.Background())}
	if _, hit := local.Get(key("k1")); hit {
		t.Fatal("the local cache starts with the verdict")
	}
	got, hit := l.Get(key("k1"))
	if !hit || got.HTTPStatus != 200 {
		t.Fatalf("Layered.Get = %+v, %v", got, hit)
	}
	copied, hit := local.Record(key("k1"))
	if !hit || !copied.Verified.Equal(at) || copied.Result.HTTPStatus != 200 || copied.Signer != s.Signer() {
		t.Fatalf("local copy = %+v, %v; want the fleet's verdict of %v, signed by %s", copied, hit, at, s.Signer())
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
	inLocal, _ := local.Record(key("k2"))
	inFleet, _ := reopen(t, s).Verdicts(context.Background()).Record(key("k2"))
	if inLocal.Verified.IsZero() || !inLocal.Verified.Equal(inFleet.Verified) || inLocal.Signer != "" {
		t.Errorf("Layered.Put: local verified %v (signer %q), fleet %v; want both, at one time, the local one this runner's own", inLocal.Verified, inLocal.Signer, inFleet.Verified)
	}
}

// TestVerdictCopyDroppedWithItsKey: a runner trusting key A copies A's
// verdict into its own cache; run again trusting key B only, the copy is
// not used (the plugin is verified again), with a warning naming A's key,
// although the copy is sealed with the runner's own key. A verdict the
// runner gave itself stays: it names no signer.
func TestVerdictCopyDroppedWithItsKey(t *testing.T) {
	writerA, _ := testStore(t)
	at := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	if err := writerA.Verdicts(context.Background()).PutRecord(key("k1"), verify.CachedVerdict{Result: okVerdict(), Verified: at}); err != nil {
		t.Fatal(err)
	}
	local, err := verify.OpenDirCache(t.TempDir(), []byte(strings.Repeat("l", 32)))
	if err != nil {
		t.Fatal(err)
	}
	trustA := withKeys(t, writerA.String(), Keys{Trust: []signature.Verifier{writerA.keys.signer}})
	l := verify.Layered{Local: local, Remote: trustA.Verdicts(context.Background())}
	if _, hit := l.Get(key("k1")); !hit {
		t.Fatal("the runner trusting A did not take A's verdict")
	}
	if err := local.Put(key("own"), okVerdict()); err != nil {
		t.Fatal(err)
	}
	if c, hit := local.Record(key("k1")); !hit || c.Signer != writerA.Signer() {
		t.Fatalf("local copy %+v, %v; want it to name A's key %s", c, hit, writerA.Signer())
	}

	trustB := withKeys(t, writerA.String(), Keys{Trust: []signature.Verifier{fleetKey(t)}})
	v := trustB.Verdicts(context.Background())
	l = verify.Layered{Local: local, Remote: v}
	if r, hit := l.Get(key("k1")); hit {
		t.Fatalf("the runner trusting B only used A's verdict: %+v", r)
	}
	want := "copied from the cache repository by an earlier build, ignored, the plugin is verified here again: " +
		"not signed by a key this runner trusts: signed by key \"" + writerA.Signer() + "\", which is no longer trusted"
	var warned bool
	for _, err := range v.Warnings() {
		warned = warned || strings.Contains(err.Error(), want) && errors.Is(err, ErrUntrusted)
	}
	if !warned {
		t.Errorf("warnings %v; want one saying %q", v.Warnings(), want)
	}
	if _, hit := l.Get(key("own")); !hit {
		t.Error("the runner's own verdict was dropped with a fleet key")
	}
	// Verified again, the runner's own verdict replaces the copy.
	if err := l.Put(key("k1"), okVerdict()); err != nil {
		t.Fatal(err)
	}
	if c, hit := local.Record(key("k1")); !hit || c.Signer != "" {
		t.Fatalf("after verifying again: %+v, %v; want the runner's own verdict", c, hit)
	}
	if _, hit := l.Get(key("k1")); !hit {
		t.Error("the runner's verdict, given again, is not used")
	}
}

// TestVerdictRegistryRefusing: a registry that refuses this runner (no
// credentials) is a miss and one warning, and is not asked again in the
// build; a refused write likewise.
func TestVerdictRegistryRefusing(t *testing.T) {
	host := testenv.Registry(t, testenv.RegistryOptions{User: "alice", Password: "s3cret"})
	proxy, log := testenv.RecordingProxy(t, host)
	s := withKeys(t, proxy+"/fleet/cache", Keys{Signer: fleetKey(t)})
	v := s.Verdicts(context.Background())
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
