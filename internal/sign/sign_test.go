package sign_test

import (
	"context"
	"errors"
	"fmt"
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

	"github.com/xtraefik/xtraefik/internal/sign"
	"github.com/xtraefik/xtraefik/internal/testenv"
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

// attachedTag is where cosign looks for ref's signatures (suffix "sig") or
// attestations ("att"): written out here, not taken from package sign.
func attachedTag(t *testing.T, ref name.Digest, suffix string) name.Tag {
	t.Helper()
	h, err := v1.NewHash(ref.DigestStr())
	if err != nil {
		t.Fatal(err)
	}
	return ref.Context().Tag(h.Algorithm + "-" + h.Hex + "." + suffix)
}

// sigManifest returns the manifest at the image's .sig tag, and the tag.
func sigManifest(t *testing.T, ref name.Digest) (*v1.Manifest, name.Tag) {
	t.Helper()
	tag := attachedTag(t, ref, "sig")
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
	s := kmsSigner(t, "key")
	ref, err := name.NewDigest("127.0.0.1:1/x@sha256:" + strings.Repeat("a", 64))
	if err != nil {
		t.Fatal(err)
	}
	st := sign.Statement{PredicateType: "https://example.com/p", JSON: []byte(`{"_type":"https://in-toto.io/Statement/v1","predicateType":"https://example.com/p","subject":[{"name":"x","digest":{"sha256":"` + strings.Repeat("b", 64) + `"}}],"predicate":{}}`)}
	err = s.Attest(ctx, ref, st)
	if err == nil || !strings.Contains(err.Error(), "is not about") {
		t.Errorf("Attest with another subject: %v", err)
	}
}

// keyPEM writes the public key of s for `cosign verify --key`.
func keyPEM(t *testing.T, s *sign.Signer) string {
	t.Helper()
	pem, err := s.PublicKeyPEM(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	pub := filepath.Join(t.TempDir(), "key.pub")
	if err := os.WriteFile(pub, pem, 0o644); err != nil {
		t.Fatal(err)
	}
	return pub
}

// TestSecondKeyAddsSignature: a signature by another key is added beside the
// first (both verify with cosign); signing again with either adds nothing.
func TestSecondKeyAddsSignature(t *testing.T) {
	cosign := testenv.Cosign(t)
	host := testenv.Registry(t, testenv.RegistryOptions{})
	ref := pushRandom(t, host, "twokeys/traefik")
	ctx := context.Background()
	key, pub := testenv.CosignKeyPair(t, cosign, password)
	sv, err := sign.LoadKey(ctx, key, sign.Password(password))
	if err != nil {
		t.Fatal(err)
	}
	first := sign.New(sv)
	second := kmsSigner(t, "second")
	for _, s := range []*sign.Signer{first, second, first, second} {
		if err := s.Sign(ctx, ref, nil); err != nil {
			t.Fatal(err)
		}
	}
	m, _ := sigManifest(t, ref)
	if len(m.Layers) != 2 {
		t.Fatalf("two keys, each signing twice, gave %d signatures, want 2", len(m.Layers))
	}
	if m.MediaType != "application/vnd.oci.image.manifest.v1+json" || m.Config.MediaType != "application/vnd.oci.image.config.v1+json" {
		t.Errorf("signature image media types %s, %s; want cosign's OCI defaults", m.MediaType, m.Config.MediaType)
	}
	for _, p := range []string{pub, keyPEM(t, second)} {
		if r := verify(t, cosign, p, ref); r.Err != nil {
			t.Errorf("cosign verify --key %s: %v\n%s", p, r.Err, r.Stderr)
		}
	}
}

// statement is an in-toto statement of predicate type typ about ref.
func statement(ref name.Digest, typ, value string) sign.Statement {
	hex := strings.TrimPrefix(ref.DigestStr(), "sha256:")
	return sign.Statement{PredicateType: typ, JSON: []byte(`{"_type":"https://in-toto.io/Statement/v1","predicateType":"` + typ +
		`","subject":[{"name":"x","digest":{"sha256":"` + hex + `"}}],"predicate":{"v":"` + value + `"}}`)}
}

// TestAttestKeepsOtherAttachments: attesting replaces only the attestation
// of the same predicate type; another type and a layer that is not an
// attestation at all (another tool's) stay, and cosign verifies the new one.
func TestAttestKeepsOtherAttachments(t *testing.T) {
	cosign := testenv.Cosign(t)
	host := testenv.Registry(t, testenv.RegistryOptions{})
	ref := pushRandom(t, host, "attest/traefik")
	ctx := context.Background()
	s := kmsSigner(t, "att")
	const other, ours = "https://example.com/other", "https://example.com/ours"
	if err := s.Attest(ctx, ref, statement(ref, other, "1")); err != nil {
		t.Fatal(err)
	}
	tag := attachedTag(t, ref, "att")
	img, err := remote.Image(tag)
	if err != nil {
		t.Fatal(err)
	}
	foreign := static.NewLayer([]byte("not an envelope"), "application/vnd.example.note")
	img, err = mutate.Append(img, mutate.Addendum{Layer: foreign, Annotations: map[string]string{"org.example/note": "keep"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"2", "3"} {
		if err := s.Attest(ctx, ref, statement(ref, ours, v)); err != nil {
			t.Fatal(err)
		}
	}
	img, err = remote.Image(tag)
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, l := range m.Layers {
		types = append(types, l.Annotations["predicateType"]+"|"+string(l.MediaType))
	}
	// cosign's order: the new attestation first, then those kept.
	want := []string{ours + "|application/vnd.dsse.envelope.v1+json", other + "|application/vnd.dsse.envelope.v1+json", "|application/vnd.example.note"}
	if strings.Join(types, " ") != strings.Join(want, " ") {
		t.Fatalf(".att layers %q, want %q", types, want)
	}
	r := testenv.RunCosign(t, cosign, t.TempDir(), "", "verify-attestation", "--key", keyPEM(t, s), "--type", ours,
		"--insecure-ignore-tlog", "--allow-http-registry", "--allow-insecure-registry", ref.String())
	if r.Err != nil {
		t.Fatalf("cosign verify-attestation: %v\n%s", r.Err, r.Stderr)
	}
	if !strings.Contains(string(r.Stdout), "eyJ") || strings.Count(strings.TrimSpace(string(r.Stdout)), "\n") != 0 {
		t.Errorf("cosign verify-attestation --type %s printed %d envelopes, want 1:\n%s", ours, strings.Count(string(r.Stdout), "\n"), r.Stdout)
	}
}

// TestHostileAttachmentImage: a registry holding a .sig image of more layers
// than cosign allows gets an error naming the bound, and the tag is left as
// it was.
func TestHostileAttachmentImage(t *testing.T) {
	host := testenv.Registry(t, testenv.RegistryOptions{})
	ref := pushRandom(t, host, "hostile/traefik")
	tag := attachedTag(t, ref, "sig")
	one := static.NewLayer([]byte("x"), "application/vnd.dev.cosign.simplesigning.v1+json")
	adds := make([]mutate.Addendum, 1001)
	for i := range adds {
		adds[i] = mutate.Addendum{Layer: one}
	}
	img, err := mutate.Append(empty.Image, adds...)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
	before, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s := kmsSigner(t, "hostile")
	err = s.Sign(ctx, ref, nil)
	if err == nil || !strings.Contains(err.Error(), "1001 layers, more than 1000") {
		t.Fatalf("Sign over a 1001-layer .sig image: %v", err)
	}
	desc, err := remote.Head(tag)
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest != before {
		t.Errorf("the .sig tag moved to %s after a refused signing", desc.Digest)
	}
}

// TestAttestKeepsOtherSigners: an attestation of the same predicate type by
// another key is not this signer's to replace: both stay, and each key's
// attestation verifies with cosign.
func TestAttestKeepsOtherSigners(t *testing.T) {
	cosign := testenv.Cosign(t)
	host := testenv.Registry(t, testenv.RegistryOptions{})
	ref := pushRandom(t, host, "signers/traefik")
	ctx := context.Background()
	const typ = "https://example.com/sbom"
	var signers []*sign.Signer
	for _, k := range []string{"a", "b"} {
		s := kmsSigner(t, k)
		signers = append(signers, s)
		if err := s.Attest(ctx, ref, statement(ref, typ, k)); err != nil {
			t.Fatal(err)
		}
	}
	// b again: its own attestation is replaced, a's stays.
	if err := signers[1].Attest(ctx, ref, statement(ref, typ, "b2")); err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(attachedTag(t, ref, "att"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Layers) != 2 {
		t.Errorf(".att holds %d layers, want a's and b's latest", len(m.Layers))
	}
	for i, s := range signers {
		r := testenv.RunCosign(t, cosign, t.TempDir(), "", "verify-attestation", "--key", keyPEM(t, s), "--type", typ,
			"--insecure-ignore-tlog", "--allow-http-registry", "--allow-insecure-registry", ref.String())
		if r.Err != nil {
			t.Errorf("cosign verify-attestation with key %d: %v\n%s", i, r.Err, r.Stderr)
		}
	}
}

// TestSignAfterCosign: a signature cosign itself attached stays beside
// xtraefik's, both verify, the image keeps its manifest media type (cosign
// writes Docker ones under COSIGN_DOCKER_MEDIA_TYPES, for registries without
// OCI manifests), and the existing image's config is never read (the
// registry's to make up: it is not needed to add a layer).
func TestSignAfterCosign(t *testing.T) {
	cosign := testenv.Cosign(t)
	host := testenv.Registry(t, testenv.RegistryOptions{})
	proxy, log := testenv.RecordingProxy(t, host)
	key, pub := testenv.CosignKeyPair(t, cosign, password)
	for _, tt := range []struct {
		name   string
		docker bool
	}{{"oci", false}, {"docker", true}} {
		t.Run(tt.name, func(t *testing.T) {
			ref := pushRandom(t, proxy, "cosigned/"+tt.name)
			r := testenv.RunCosign(t, cosign, t.TempDir(), password, "sign", "--key", key, "--yes", "--tlog-upload=false",
				"--allow-http-registry", "--allow-insecure-registry", ref.String())
			if r.Err != nil {
				t.Fatalf("cosign sign: %v\n%s", r.Err, r.Stderr)
			}
			m, tag := sigManifest(t, ref)
			if len(m.Layers) != 1 {
				t.Fatalf("cosign sign left %d layers", len(m.Layers))
			}
			want := m.MediaType
			if tt.docker {
				// What cosign writes with COSIGN_DOCKER_MEDIA_TYPES=1.
				img, err := remote.Image(tag)
				if err != nil {
					t.Fatal(err)
				}
				layers, err := img.Layers()
				if err != nil {
					t.Fatal(err)
				}
				docker, err := mutate.Append(empty.Image, mutate.Addendum{Layer: layers[0], Annotations: m.Layers[0].Annotations, MediaType: m.Layers[0].MediaType})
				if err != nil {
					t.Fatal(err)
				}
				if err := remote.Write(tag, docker); err != nil {
					t.Fatal(err)
				}
				if m, _ = sigManifest(t, ref); m.MediaType != "application/vnd.docker.distribution.manifest.v2+json" {
					t.Fatalf("the Docker-typed .sig is %s", m.MediaType)
				}
				want = m.MediaType
			}
			ctx := context.Background()
			s := kmsSigner(t, "after")
			log.Reset()
			if err := s.Sign(ctx, ref, nil); err != nil {
				t.Fatal(err)
			}
			for _, req := range log.Requests() {
				if req.Method == "GET" && strings.HasSuffix(req.Path, "/blobs/"+m.Config.Digest.String()) {
					t.Errorf("Sign read the existing image's config: %s %s", req.Method, req.Path)
				}
			}
			after, _ := sigManifest(t, ref)
			if len(after.Layers) != 2 || after.MediaType != want {
				t.Errorf("%s: %d signatures in a %s, want cosign's and xtraefik's in a %s", tag, len(after.Layers), after.MediaType, want)
			}
			for _, p := range []string{pub, keyPEM(t, s)} {
				if r := verify(t, cosign, p, ref); r.Err != nil {
					t.Errorf("cosign verify --key %s: %v\n%s", p, r.Err, r.Stderr)
				}
			}
		})
	}
}

// TestAttestRefusesOversizeStatement: an attestation over the size every
// later attest would accept is not written (the registry is not even asked).
func TestAttestRefusesOversizeStatement(t *testing.T) {
	ctx := context.Background()
	s := kmsSigner(t, "big")
	ref, err := name.NewDigest("127.0.0.1:1/x@sha256:" + strings.Repeat("a", 64))
	if err != nil {
		t.Fatal(err)
	}
	st := statement(ref, "https://example.com/big", strings.Repeat("x", 13<<20)) // 4/3 of it in base64
	err = s.Attest(ctx, ref, st)
	if err == nil || !strings.Contains(err.Error(), "more than 16777216") {
		t.Errorf("Attest of a %d-byte statement: %v", len(st.JSON), err)
	}
}

// TestAttestReadsFewExistingLayers: a registry holding many look-alike
// attestations of the type being replaced gets at most 16 of them read,
// and keeps them all (they are not this key's to drop).
func TestAttestReadsFewExistingLayers(t *testing.T) {
	host := testenv.Registry(t, testenv.RegistryOptions{})
	proxy, log := testenv.RecordingProxy(t, host)
	ref := pushRandom(t, proxy, "lookalike/traefik")
	const typ, n = "https://example.com/sbom", 40
	adds := make([]mutate.Addendum, n)
	for i := range adds {
		adds[i] = mutate.Addendum{
			Layer:       static.NewLayer([]byte(fmt.Sprintf("junk %d", i)), "application/vnd.dsse.envelope.v1+json"),
			Annotations: map[string]string{"predicateType": typ},
		}
	}
	img, err := mutate.Append(empty.Image, adds...)
	if err != nil {
		t.Fatal(err)
	}
	tag := attachedTag(t, ref, "att")
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s := kmsSigner(t, "few")
	log.Reset()
	if err := s.Attest(ctx, ref, statement(ref, typ, "1")); err != nil {
		t.Fatal(err)
	}
	reads := 0
	for _, r := range log.Requests() {
		if r.Method == "GET" && strings.Contains(r.Path, "/blobs/") {
			reads++
		}
	}
	if reads > 16 {
		t.Errorf("Attest read %d existing layers, want at most 16", reads)
	}
	after, err := remote.Image(tag)
	if err != nil {
		t.Fatal(err)
	}
	mf, err := after.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(mf.Layers) != n+1 {
		t.Errorf(".att after Attest holds %d layers, want the %d kept and the new one", len(mf.Layers), n)
	}
}

// TestSignerSharesConnections: signing and attesting one image sets up one
// reading and one writing connection (a ping each), not one per call.
func TestSignerSharesConnections(t *testing.T) {
	host := testenv.Registry(t, testenv.RegistryOptions{})
	proxy, log := testenv.RecordingProxy(t, host)
	ref := pushRandom(t, proxy, "shared/traefik")
	ctx := context.Background()
	s := kmsSigner(t, "shared")
	log.Reset()
	if err := s.Sign(ctx, ref, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Attest(ctx, ref, statement(ref, "https://example.com/a", "1"), statement(ref, "https://example.com/b", "1")); err != nil {
		t.Fatal(err)
	}
	if err := s.Attest(ctx, ref, statement(ref, "https://example.com/a", "2")); err != nil {
		t.Fatal(err)
	}
	pings := 0
	for _, r := range log.Requests() {
		if r.Method == "GET" && r.Path == "/v2/" {
			pings++
		}
	}
	if pings != 2 {
		t.Errorf("a signature and two attests pinged the registry %d times, want 2 (one to read, one to write)", pings)
	}
}

// kmsSigner is a Signer with the key name of sigstore's fake KMS provider.
func kmsSigner(t *testing.T, name string) *sign.Signer {
	t.Helper()
	sv, err := sign.LoadKey(context.Background(), fake.ReferenceScheme+name, nil)
	if err != nil {
		t.Fatal(err)
	}
	return sign.New(sv)
}
