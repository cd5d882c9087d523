package cacherepo

import (
	"context"
	"errors"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/xtraefik/xtraefik/images"
	"github.com/xtraefik/xtraefik/internal/sign"
	"github.com/xtraefik/xtraefik/internal/testenv"
	"github.com/xtraefik/xtraefik/verify"
)

// testKey is a key pair as a user makes it, loaded as the CLI loads it.
type testKey struct {
	sv               signature.SignerVerifier
	pub              signature.Verifier
	id               string
	keyFile, pubFile string
}

func newKey(t *testing.T, alg string) testKey {
	t.Helper()
	keyFile, pubFile := testenv.OpenSSLKeyPair(t, alg)
	return loadKey(t, keyFile, pubFile, "")
}

func loadKey(t *testing.T, keyFile, pubFile, password string) testKey {
	t.Helper()
	sv, err := sign.LoadKey(context.Background(), keyFile, sign.Password(password))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := sign.LoadPublicKey(pubFile)
	if err != nil {
		t.Fatal(err)
	}
	id, err := Fingerprint(pub)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{sv: sv, pub: pub, id: id, keyFile: keyFile, pubFile: pubFile}
}

// fleetKey is a fresh Ed25519 signing key from openssl.
func fleetKey(t *testing.T) signature.SignerVerifier {
	t.Helper()
	return newKey(t, testenv.KeyEd25519).sv
}

// withKeys is a Store on repo with keys.
func withKeys(t *testing.T, repo string, keys Keys) *Store {
	t.Helper()
	s, err := New(repo, images.Options{}, keys)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// pushSignedTree pushes layer under tag as an artifact of artifactType,
// signed by s's key for hash: what a trusted writer gone wrong could push,
// so that only the checks of the content can refuse it.
func pushSignedTree(t *testing.T, s *Store, tag name.Tag, hash, artifactType string, layer v1.Layer) {
	t.Helper()
	digest, err := layer.Digest()
	if err != nil {
		t.Fatal(err)
	}
	sig, err := s.keys.seal(record{Kind: kindTree, Tag: tag.TagStr(), ContentHash: hash, Layer: digest.String()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.push(context.Background(), tag, artifactType, layer, nil, map[string]string{AnnotationSignature: string(sig)}); err != nil {
		t.Fatal(err)
	}
}

// writes are the requests in log that would change the registry.
func writes(log *testenv.RequestLog) []string {
	var out []string
	for _, r := range log.Requests() {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			out = append(out, r.Method+" "+r.Path)
		}
	}
	return out
}

// TestPAE: the pre-authentication encoding is DSSE's (the protocol's own
// example).
func TestPAE(t *testing.T) {
	got := string(pae("http://example.com/HelloWorld", []byte("hello world")))
	if want := "DSSEv1 29 http://example.com/HelloWorld 11 hello world"; got != want {
		t.Errorf("pae = %q, want %q", got, want)
	}
}

// TestSignedKeyTypes: keys made by the real tools sign what one runner
// writes, and another runner holding only the public key reads it back:
// Ed25519 and ECDSA P-256 from `openssl genpkey`, and a `cosign
// generate-key-pair` pair (encrypted, with its password). Fingerprint is
// what docs/caches-and-fleets.md says openssl prints.
func TestSignedKeyTypes(t *testing.T) {
	host := testenv.Registry(t, testenv.RegistryOptions{})
	for _, alg := range []string{testenv.KeyEd25519, testenv.KeyP256, "cosign"} {
		t.Run(alg, func(t *testing.T) {
			var k testKey
			if alg == "cosign" {
				bin := testenv.Cosign(t)
				keyFile, pubFile := testenv.CosignKeyPair(t, bin, "hunter2")
				if _, err := sign.LoadKey(context.Background(), keyFile, sign.Password("wrong")); !errors.Is(err, sign.ErrPassword) {
					t.Fatalf("cosign key with the wrong password: %v", err)
				}
				k = loadKey(t, keyFile, pubFile, "hunter2")
			} else {
				k = newKey(t, alg)
				out, err := exec.Command("sh", "-c", `openssl pkey -pubin -in "$0" -outform DER | sha256sum`, k.pubFile).Output()
				if err != nil {
					t.Skipf("openssl: %v", err)
				}
				if want := "sha256:" + strings.Fields(string(out))[0]; k.id != want {
					t.Errorf("Fingerprint = %s, openssl says %s", k.id, want)
				}
			}
			repo := host + "/fleet/" + alg
			writer := withKeys(t, repo, Keys{Signer: k.sv})
			if writer.Signer() != k.id || writer.ReadOnly() {
				t.Fatalf("writer signs as %q (read-only %v), want %s", writer.Signer(), writer.ReadOnly(), k.id)
			}
			at := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
			if err := writer.Verdicts(context.Background()).PutRecord(key("k1"), verify.CachedVerdict{Result: okVerdict(), Verified: at}); err != nil {
				t.Fatal(err)
			}
			p := testPlugin(t, alg)
			if err := writer.PutTree(context.Background(), p); err != nil {
				t.Fatal(err)
			}
			reader := withKeys(t, repo, Keys{Trust: []signature.Verifier{k.pub}})
			v := reader.Verdicts(context.Background())
			got, hit := v.Record(key("k1"))
			if !hit || !got.Verified.Equal(at) || got.Result.HTTPStatus != 200 || got.Signer != k.id {
				t.Fatalf("reader: %+v, %v; want the verdict of %v signed by %s; warnings %v", got, hit, at, k.id, v.Warnings())
			}
			if _, err := reader.GetTree(context.Background(), p.Hash); err != nil {
				t.Fatalf("reader GetTree: %v", err)
			}
		})
	}
}

// TestReadOnlyNeverWrites: a runner holding public keys only reads what a
// trusted writer signed and sends the registry no write, whatever it is
// asked to store (verdicts directly or through verify.Layered, trees).
func TestReadOnlyNeverWrites(t *testing.T) {
	s, log := testStore(t)
	if err := s.Verdicts(context.Background()).Put(key("k1"), okVerdict()); err != nil {
		t.Fatal(err)
	}
	writerPub, err := Fingerprint(s.keys.signer)
	if err != nil {
		t.Fatal(err)
	}
	reader := withKeys(t, s.String(), Keys{Trust: []signature.Verifier{s.keys.signer}})
	if !reader.ReadOnly() || reader.Signer() != "" || len(reader.Trusted()) != 1 || reader.Trusted()[0] != writerPub {
		t.Fatalf("reader: read-only %v, signer %q, trusted %v", reader.ReadOnly(), reader.Signer(), reader.Trusted())
	}
	log.Reset()
	v := reader.Verdicts(context.Background())
	if _, hit := v.Get(key("k1")); !hit {
		t.Fatalf("the reader did not take the writer's verdict: %v", v.Warnings())
	}
	if err := v.Put(key("k2"), okVerdict()); err != nil {
		t.Errorf("Put: %v", err)
	}
	local, err := verify.OpenDirCache(t.TempDir(), []byte(strings.Repeat("l", 32)))
	if err != nil {
		t.Fatal(err)
	}
	if err := (verify.Layered{Local: local, Remote: v}).Put(key("k3"), okVerdict()); err != nil {
		t.Errorf("Layered.Put: %v", err)
	}
	if err := reader.PutTree(context.Background(), testPlugin(t, "new")); err != nil {
		t.Errorf("PutTree: %v", err)
	}
	if w := writes(log); len(w) != 0 {
		t.Errorf("the read-only runner wrote to the registry: %v", w)
	}
	if _, hit := v.Get(key("k2")); hit {
		t.Error("a verdict the read-only runner was asked to store is there")
	}
	if _, err := New(s.String(), images.Options{}, Keys{}); err == nil || !strings.Contains(err.Error(), "no key") {
		t.Errorf("a Store without any key: %v", err)
	}
}

// TestTreeUntrusted: a tree another key signed, or none, is ErrUntrusted
// naming that key, refused before its layer is read; a writer replaces it
// with its own, which is then read.
func TestTreeUntrusted(t *testing.T) {
	ctx := context.Background()
	s, log := testStore(t)
	other := newKey(t, testenv.KeyEd25519)
	stranger := withKeys(t, s.String(), Keys{Signer: other.sv})
	p := testPlugin(t, "a")
	if err := stranger.PutTree(ctx, p); err != nil {
		t.Fatal(err)
	}
	log.Reset()
	_, err := s.GetTree(ctx, p.Hash)
	if !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), other.id) {
		t.Fatalf("a tree signed by another key: %v; want ErrUntrusted naming %s", err, other.id)
	}
	for _, r := range log.Requests() {
		if r.Blob() != "" {
			t.Errorf("the untrusted tree's blob was read: %s %s", r.Method, r.Path)
		}
	}
	// The writer replaces it (the blobs are there: only a manifest).
	if err := s.PutTree(ctx, p); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetTree(ctx, p.Hash); err != nil {
		t.Fatalf("after the writer replaced it: %v", err)
	}

	// Unsigned: a tree pushed as before signing.
	q := testPlugin(t, "b")
	tag, _ := s.treeTag(q.Hash)
	layer, err := images.TreeLayer(q.Files)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.push(ctx, tag, TreeArtifactType, layer, nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetTree(ctx, q.Hash); !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), "no signature") {
		t.Fatalf("an unsigned tree: %v; want ErrUntrusted, no signature", err)
	}

	// A signature for another layer: the manifest's layer swapped.
	sig := string(mustSeal(t, s.keys, record{Kind: kindTree, Tag: tag.TagStr(), ContentHash: q.Hash, Layer: "sha256:" + strings.Repeat("0", 64)}))
	if err := s.push(ctx, tag, TreeArtifactType, layer, nil, map[string]string{AnnotationSignature: sig}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetTree(ctx, q.Hash); !errors.Is(err, ErrForged) || !strings.Contains(err.Error(), "for layer") {
		t.Fatalf("a signature for another layer: %v; want ErrForged", err)
	}
}

// TestKeyRotation: a reader trusting the old and the new key reads the
// records of both; a writer's own key is trusted without being listed.
func TestKeyRotation(t *testing.T) {
	s, _ := testStore(t)
	old, next := newKey(t, testenv.KeyP256), newKey(t, testenv.KeyEd25519)
	oldW := withKeys(t, s.String(), Keys{Signer: old.sv})
	nextW := withKeys(t, s.String(), Keys{Signer: next.sv, Trust: []signature.Verifier{old.pub}})
	if err := oldW.Verdicts(context.Background()).Put(key("old"), okVerdict()); err != nil {
		t.Fatal(err)
	}
	if err := nextW.Verdicts(context.Background()).Put(key("next"), okVerdict()); err != nil {
		t.Fatal(err)
	}
	reader := withKeys(t, s.String(), Keys{Trust: []signature.Verifier{old.pub, next.pub}})
	v := reader.Verdicts(context.Background())
	for _, k := range []string{"old", "next"} {
		if _, hit := v.Get(key(k)); !hit {
			t.Errorf("%s: not read: %v", k, v.Warnings())
		}
	}
	nv := nextW.Verdicts(context.Background())
	for _, k := range []string{"old", "next"} {
		if _, hit := nv.Get(key(k)); !hit {
			t.Errorf("the new writer did not read %s: %v", k, nv.Warnings())
		}
	}
	// Only the old key: the new key's records are another writer's.
	ov := withKeys(t, s.String(), Keys{Trust: []signature.Verifier{old.pub}}).Verdicts(context.Background())
	if _, hit := ov.Get(key("next")); hit {
		t.Error("a reader trusting the old key only took the new key's record")
	}
	if w := ov.Warnings(); len(w) != 1 || !errors.Is(w[0], ErrUntrusted) || !strings.Contains(w[0].Error(), next.id) {
		t.Errorf("warnings %v; want one naming %s", w, next.id)
	}
}

func mustSeal(t *testing.T, k *keyring, rec record) []byte {
	t.Helper()
	data, err := k.seal(rec)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// pushRecord pushes data as a verdict record under the tag of k.
func pushRecord(t *testing.T, s *Store, k string, data []byte) {
	t.Helper()
	if err := s.push(context.Background(), s.repo.Tag("verdict-"+k), VerdictArtifactType, static.NewLayer(data, VerdictMediaType), nil, nil); err != nil {
		t.Fatal(err)
	}
}
