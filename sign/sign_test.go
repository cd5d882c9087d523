package sign_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/sigstore/sigstore/pkg/signature/kms/fake"

	"github.com/xtraefik/xtraefik/internal/testenv"
	"github.com/xtraefik/xtraefik/sign"
)

const password = "correct horse battery staple"

// pushRandom pushes a small random image to repo on the registry at host and
// returns it by digest.
func pushRandom(t *testing.T, host, repo string) name.Digest {
	t.Helper()
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(host + "/" + repo + ":v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatalf("push test image: %v", err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.NewDigest(tag.Context().Name() + "@" + d.String())
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

func verify(t *testing.T, cosign, pub string, ref name.Digest) testenv.CosignResult {
	t.Helper()
	return testenv.RunCosign(t, cosign, t.TempDir(), "", "verify", "--key", pub,
		"--insecure-ignore-tlog", "--allow-http-registry", "--allow-insecure-registry", "--output", "json", ref.String())
}

// sigManifest returns the manifest at the image's .sig tag, and the tag.
func sigManifest(t *testing.T, ref name.Digest) (*v1.Manifest, name.Tag) {
	t.Helper()
	h, err := v1.NewHash(ref.DigestStr())
	if err != nil {
		t.Fatal(err)
	}
	tag := ref.Context().Tag(h.Algorithm + "-" + h.Hex + ".sig")
	img, err := remote.Image(tag)
	if err != nil {
		t.Fatalf("read %s: %v", tag, err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	return m, tag
}

// TestSignVerifiesWithCosign: a signature made with a key from `cosign
// generate-key-pair` passes the real `cosign verify --key`, fails with
// another key pair, and signing again keeps one signature.
func TestSignVerifiesWithCosign(t *testing.T) {
	cosign := testenv.Cosign(t)
	host := testenv.Registry(t, testenv.RegistryOptions{})
	ref := pushRandom(t, host, "signed/traefik")
	key, pub := testenv.CosignKeyPair(t, cosign, password)
	_, otherPub := testenv.CosignKeyPair(t, cosign, "other")

	ctx := context.Background()
	sv, err := sign.LoadKey(ctx, key, sign.Password(password))
	if err != nil {
		t.Fatal(err)
	}
	s := sign.New(sv)
	if err := s.Sign(ctx, ref, map[string]any{"org.example/build": "42"}); err != nil {
		t.Fatal(err)
	}
	r := verify(t, cosign, pub, ref)
	if r.Err != nil {
		t.Fatalf("cosign verify: %v\n%s", r.Err, r.Stderr)
	}
	if !strings.Contains(string(r.Stdout), ref.DigestStr()) || !strings.Contains(string(r.Stdout), `"org.example/build":"42"`) {
		t.Errorf("cosign verify output lacks the digest or the annotation:\n%s", r.Stdout)
	}
	if r := verify(t, cosign, otherPub, ref); r.Err == nil || !strings.Contains(string(r.Stderr), "no matching signatures") {
		t.Errorf("cosign verify with another key: %v\n%s%s", r.Err, r.Stdout, r.Stderr)
	}

	// Signing again with the same key keeps one signature.
	if err := s.Sign(ctx, ref, map[string]any{"org.example/build": "42"}); err != nil {
		t.Fatal(err)
	}
	if m, _ := sigManifest(t, ref); len(m.Layers) != 1 {
		t.Errorf("signing twice gave %d signatures, want 1", len(m.Layers))
	}
}

// TestTamperedSignatureFails rewrites the signature manifest with a payload
// that differs from the signed one by one field and keeps the signature
// annotation: cosign must refuse it.
func TestTamperedSignatureFails(t *testing.T) {
	cosign := testenv.Cosign(t)
	host := testenv.Registry(t, testenv.RegistryOptions{})
	ref := pushRandom(t, host, "tampered/traefik")
	key, pub := testenv.CosignKeyPair(t, cosign, password)
	ctx := context.Background()
	sv, err := sign.LoadKey(ctx, key, sign.Password(password))
	if err != nil {
		t.Fatal(err)
	}
	if err := sign.New(sv).Sign(ctx, ref, nil); err != nil {
		t.Fatal(err)
	}
	if r := verify(t, cosign, pub, ref); r.Err != nil {
		t.Fatalf("cosign verify before tampering: %v\n%s", r.Err, r.Stderr)
	}

	m, tag := sigManifest(t, ref)
	sigImg, err := remote.Image(tag)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := sigImg.Layers()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	payload, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	tampered := strings.Replace(string(payload), `"optional":null`, `"optional":{"tampered":"yes"}`, 1)
	if tampered == string(payload) {
		tampered = strings.Replace(tampered, `"optional":{"`, `"optional":{"tampered":"yes","`, 1)
	}
	if tampered == string(payload) {
		t.Fatalf("payload has no optional field to tamper with: %s", payload)
	}
	forged := mutate.MediaType(empty.Image, m.MediaType)
	forged = mutate.ConfigMediaType(forged, m.Config.MediaType)
	forged, err = mutate.Append(forged, mutate.Addendum{
		Layer:       static.NewLayer([]byte(tampered), m.Layers[0].MediaType),
		Annotations: m.Layers[0].Annotations, // the original signature
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, forged); err != nil {
		t.Fatal(err)
	}
	if r := verify(t, cosign, pub, ref); r.Err == nil || !strings.Contains(string(r.Stderr), "no matching signatures") {
		t.Fatalf("cosign verify of a tampered signature: %v\n%s%s", r.Err, r.Stdout, r.Stderr)
	}
}

// TestKMSKey signs through sigstore's KMS abstraction (its fake provider,
// registered by importing it, as a caller registers a real one) and checks
// the signature with the key's exported public key.
func TestKMSKey(t *testing.T) {
	cosign := testenv.Cosign(t)
	host := testenv.Registry(t, testenv.RegistryOptions{})
	ref := pushRandom(t, host, "kms/traefik")
	ctx := context.Background()
	if !sign.IsKMS(fake.ReferenceScheme + "key") {
		t.Fatal("fakekms:// is not taken for a KMS URI")
	}
	sv, err := sign.LoadKey(ctx, fake.ReferenceScheme+"key", nil)
	if err != nil {
		t.Fatal(err)
	}
	s := sign.New(sv)
	if err := s.Sign(ctx, ref, nil); err != nil {
		t.Fatal(err)
	}
	pem, err := s.PublicKeyPEM(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pub := filepath.Join(t.TempDir(), "kms.pub")
	if err := os.WriteFile(pub, pem, 0o644); err != nil {
		t.Fatal(err)
	}
	if r := verify(t, cosign, pub, ref); r.Err != nil {
		t.Fatalf("cosign verify: %v\n%s", r.Err, r.Stderr)
	}
}

// TestLoadKey: the password decides; a missing file, an unknown KMS scheme
// and a PKCS#11 URI say what is wrong.
func TestLoadKey(t *testing.T) {
	cosign := testenv.Cosign(t)
	key, _ := testenv.CosignKeyPair(t, cosign, password)
	ctx := context.Background()
	if _, err := sign.LoadKey(ctx, key, sign.Password(password)); err != nil {
		t.Fatalf("right password: %v", err)
	}
	_, err := sign.LoadKey(ctx, key, sign.Password("wrong"))
	if !errors.Is(err, sign.ErrPassword) || !strings.Contains(err.Error(), key) {
		t.Errorf("wrong password: %v, want ErrPassword naming the key", err)
	}
	boom := errors.New("no terminal")
	if _, err := sign.LoadKey(ctx, key, func() ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Errorf("failing password func: %v", err)
	}
	empty, _ := testenv.CosignKeyPair(t, cosign, "")
	if _, err := sign.LoadKey(ctx, empty, nil); err != nil {
		t.Errorf("key with an empty password: %v", err)
	}
	if _, err := sign.LoadKey(ctx, filepath.Join(t.TempDir(), "none.key"), nil); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing key file: %v", err)
	}
	if _, err := sign.LoadKey(ctx, "nosuchkms://keys/1", nil); err == nil || !strings.Contains(err.Error(), "nosuchkms://keys/1") {
		t.Errorf("unknown KMS: %v", err)
	}
	if _, err := sign.LoadKey(ctx, "pkcs11:token=x;object=y", nil); err == nil || !strings.Contains(err.Error(), "PKCS#11") {
		t.Errorf("PKCS#11: %v", err)
	}
	if _, err := sign.ParseKey([]byte("not a key"), nil); err == nil {
		t.Error("garbage parsed as a key")
	}
}

// TestAttestRefusesOtherSubject: a statement about another digest is not
// signed.
func TestAttestRefusesOtherSubject(t *testing.T) {
	ctx := context.Background()
	sv, err := sign.LoadKey(ctx, fake.ReferenceScheme+"key", nil)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.NewDigest("127.0.0.1:1/x@sha256:" + strings.Repeat("a", 64))
	if err != nil {
		t.Fatal(err)
	}
	st := sign.Statement{PredicateType: "https://example.com/p", JSON: []byte(`{"_type":"https://in-toto.io/Statement/v1","predicateType":"https://example.com/p","subject":[{"name":"x","digest":{"sha256":"` + strings.Repeat("b", 64) + `"}}],"predicate":{}}`)}
	err = sign.New(sv).Attest(ctx, ref, st)
	if err == nil || !strings.Contains(err.Error(), "is not about") {
		t.Errorf("Attest with another subject: %v", err)
	}
}
