// Package sign signs pushed images and attaches signed attestations in the
// format cosign writes and verifies (`cosign verify --key`, `cosign
// verify-attestation --key`), so that admission controllers built on cosign's
// libraries (Kyverno's verifyImages, sigstore policy-controller, Connaisseur)
// accept them.
//
// The signed formats come from sigstore's signing library (the simple-signing
// payload, DSSE envelopes, the keys); go-containerregistry places them where
// cosign v2's `sign` and `attest` commands do by default (the
// `sha256-<hex>.sig` and `.att` tags, one layer per signature or
// attestation, the dev.cosignproject.cosign/signature annotation). Nothing
// of cosign is linked; its three media type names are copied below (media.go
// of its pkg/types): its module alone adds some 170 modules to the build
// graph, and its OCI packages pull in, through its bundle package, a
// transparency-log client, gRPC and their package initialisers, which every
// xtraefik command would pay for at start-up and in memory. What the registry already holds at
// those tags is read within bounds (attached.go). Tests check the result
// with the real cosign client. Nothing is sent to a
// transparency log (Rekor) or a certificate authority (Fulcio): verify with
// `--insecure-ignore-tlog`, or see Keyless in docs/design.md for the extension
// point.
package sign

import (
	"bytes"
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/dsse"
	"github.com/sigstore/sigstore/pkg/signature/kms"
	sigopts "github.com/sigstore/sigstore/pkg/signature/options"
	"github.com/sigstore/sigstore/pkg/signature/payload"
)

// Media and payload types cosign writes and checks, named as in cosign v2's
// pkg/types (media.go: SimpleSigningMediaType; payload.go: DssePayloadType,
// IntotoPayloadType). cosign verify and verify-attestation refuse a layer
// whose media type differs, so these strings are part of the format.
const (
	// simpleSigningMediaType is the media type of a `.sig` layer: a Red Hat
	// simple-signing payload (cosign's "critical" JSON).
	simpleSigningMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	// dssePayloadType is the media type of an `.att` layer: a DSSE envelope.
	dssePayloadType = "application/vnd.dsse.envelope.v1+json"
	// intotoPayloadType is the payloadType inside that envelope: an in-toto
	// statement.
	intotoPayloadType = "application/vnd.in-toto+json"
)

// ErrPassword wraps the error for a key that the password does not open.
var ErrPassword = errors.New("wrong password for the signing key")

// PasswordFunc returns the password of an encrypted key; it is called at
// most once per LoadKey. The CLI reads COSIGN_PASSWORD, as cosign does.
type PasswordFunc func() ([]byte, error)

// Password is a PasswordFunc returning p.
func Password(p string) PasswordFunc {
	return func() ([]byte, error) { return []byte(p), nil }
}

// IsKMS reports whether ref names a key held by a key management service
// (`<scheme>://…`, e.g. awskms://, gcpkms://, azurekms://, hashivault://)
// rather than a key file.
func IsKMS(ref string) bool {
	scheme, _, ok := strings.Cut(ref, "://")
	return ok && scheme != "" && !strings.ContainsAny(scheme, `/\`)
}

// LoadKey opens the signing key ref:
//
//   - a file in cosign's encrypted format (`cosign generate-key-pair`:
//     ENCRYPTED SIGSTORE PRIVATE KEY or ENCRYPTED COSIGN PRIVATE KEY),
//     decrypted with password (an empty password is valid, as in cosign); a
//     plain PKCS#8, PKCS#1 or SEC 1 PEM key is accepted too;
//   - a KMS URI, through sigstore's signature/kms: providers a Go caller
//     registered (by importing e.g. github.com/sigstore/sigstore/pkg/signature/kms/aws),
//     else a `sigstore-kms-<scheme>` plugin program on PATH (sigstore's
//     cliplugin protocol). xtraefik links no cloud provider itself: each
//     weighs tens of megabytes.
//
// PKCS#11 tokens (`pkcs11:` URIs) need cgo and are not supported; a caller
// holding any other signature.SignerVerifier (a hardware key, a remote
// signer) passes it to New directly.
func LoadKey(ctx context.Context, ref string, password PasswordFunc) (signature.SignerVerifier, error) {
	if IsKMS(ref) {
		sv, err := kms.Get(ctx, ref, crypto.SHA256)
		if err != nil {
			return nil, fmt.Errorf("signing key %s: %w", ref, err)
		}
		return sv, nil
	}
	if strings.HasPrefix(ref, "pkcs11:") {
		return nil, fmt.Errorf("signing key %s: PKCS#11 tokens are not supported; use a key file or a KMS URI", ref)
	}
	data, err := os.ReadFile(ref)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	sv, err := ParseKey(data, password)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", ref, err)
	}
	return sv, nil
}

// ParseKey is LoadKey for the bytes of a key file.
func ParseKey(pemBytes []byte, password PasswordFunc) (signature.SignerVerifier, error) {
	if password == nil {
		password = Password("")
	}
	asked := false
	pf := func(bool) ([]byte, error) {
		asked = true
		p, err := password()
		if err != nil {
			return nil, fmt.Errorf("read the key's password: %w", err)
		}
		// A nil password would make cryptoutils skip decryption.
		return append([]byte{}, p...), nil
	}
	pk, err := cryptoutils.UnmarshalPEMToPrivateKey(pemBytes, pf)
	if err != nil {
		// secretbox cannot tell a wrong password from a damaged file; the
		// first is by far the more likely.
		if asked && strings.Contains(err.Error(), "decryption failed") {
			return nil, fmt.Errorf("%w (COSIGN_PASSWORD)", ErrPassword)
		}
		return nil, err
	}
	// Cosign signs with Ed25519ph for Ed25519 keys (its default load
	// options): keep the same, or its verification fails.
	sv, err := signature.LoadDefaultSignerVerifier(pk, sigopts.WithED25519ph())
	if err != nil {
		return nil, err
	}
	return sv, nil
}

// ParsePublicKey reads a PEM public key (PKIX "PUBLIC KEY": cosign.pub,
// `openssl pkey -pubout`) as a verifier of the signatures a ParseKey key
// makes.
func ParsePublicKey(pemBytes []byte) (signature.Verifier, error) {
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pemBytes)
	if err != nil {
		return nil, err
	}
	return Verifier(pub)
}

// LoadPublicKey is ParsePublicKey of the file path.
func LoadPublicKey(path string) (signature.Verifier, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	v, err := ParsePublicKey(data)
	if err != nil {
		return nil, fmt.Errorf("public key %s: %w", path, err)
	}
	return v, nil
}

// Verifier checks signatures made by pub's private key as ParseKey loads
// it: the same algorithm and hash, Ed25519ph for Ed25519 keys.
func Verifier(pub crypto.PublicKey) (signature.Verifier, error) {
	return signature.LoadDefaultVerifier(pub, sigopts.WithED25519ph())
}

// Signer signs images and attestations with one key and writes them next to
// the image in its registry. Its calls share one reading and one writing
// connection per repository (a ping and a token each, not one per call).
// A Signer is safe for concurrent use, but two calls on one digest must not
// overlap (see Sign).
type Signer struct {
	sv     signature.SignerVerifier
	remote []remote.Option

	mu     sync.Mutex
	puller *remote.Puller
	pusher *remote.Pusher
}

// New returns a Signer with key sv; remoteOpts reach the registry (auth,
// transport, context) as for the image push itself.
func New(sv signature.SignerVerifier, remoteOpts ...remote.Option) *Signer {
	return &Signer{sv: sv, remote: remoteOpts}
}

// PublicKeyPEM is the public key, as `cosign verify --key` reads it.
func (s *Signer) PublicKeyPEM(ctx context.Context) ([]byte, error) {
	pub, err := s.sv.PublicKey(sigopts.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("public key of the signing key: %w", err)
	}
	return cryptoutils.MarshalPublicKeyToPEM(pub)
}

// attachment reads what ref's tag of suffix holds, through the Signer's
// connections.
func (s *Signer) attachment(ctx context.Context, ref name.Digest, suffix string) (*attachment, error) {
	read, write, err := s.connections(ctx)
	if err != nil {
		return nil, err
	}
	tag, err := attachedTag(ref, suffix)
	if err != nil {
		return nil, err
	}
	layers, was, err := readAttached(tag, read)
	if err != nil {
		return nil, err
	}
	return &attachment{tag: tag, layers: layers, was: was, opts: write}, nil
}

// connections returns the options that read (read) and write (write) the
// registry through the Signer's shared connections, made on first use.
func (s *Signer) connections(ctx context.Context) (read, write []remote.Option, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.puller == nil {
		puller, err := remote.NewPuller(s.remote...)
		if err != nil {
			return nil, nil, err
		}
		pusher, err := remote.NewPusher(s.remote...)
		if err != nil {
			return nil, nil, err
		}
		s.puller, s.pusher = puller, pusher
	}
	return []remote.Option{remote.Reuse(s.puller), remote.WithContext(ctx)},
		[]remote.Option{remote.Reuse(s.pusher), remote.WithContext(ctx)}, nil
}

// Sign signs the image at ref with a simple-signing payload naming it
// (optional annotations go into the payload, as `cosign sign -a`), and adds
// the signature to the image's `sha256-<hex>.sig` tag, after the signatures
// already there. Signing again with the same key and annotations adds
// nothing (see maxChecks). The tag is read and rewritten whole, not
// atomically: sign a digest from one process at a time. On an error nothing
// is written.
func (s *Signer) Sign(ctx context.Context, ref name.Digest, annotations map[string]any) error {
	body, err := (&payload.Cosign{Image: ref, Annotations: annotations}).MarshalJSON()
	if err != nil {
		return fmt.Errorf("sign %s: payload: %w", ref, err)
	}
	raw, err := s.sv.SignMessage(bytes.NewReader(body), sigopts.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("sign %s: %w", ref, err)
	}
	sigs, err := s.attachment(ctx, ref, signatureSuffix)
	if err != nil {
		return fmt.Errorf("sign %s: read existing signatures: %w", ref, err)
	}
	if s.signedBefore(ctx, sigs.layers, body) {
		return nil
	}
	if err := sigs.write(append(sigs.layers, mutate.Addendum{
		Layer:       static.NewLayer(body, simpleSigningMediaType),
		Annotations: map[string]string{signatureAnnotation: base64.StdEncoding.EncodeToString(raw)},
	})); err != nil {
		return fmt.Errorf("sign %s: write signature: %w", ref, err)
	}
	return nil
}

// maxChecks bounds the existing layers one Sign or Attest reads and checks
// against the key: a KMS key may check remotely, and a hostile registry can
// serve a thousand look-alike layers of 16 MiB each. Past it, a layer counts
// as not this key's (a signature may be added twice; an attestation is
// kept).
const maxChecks = 16

// signedBefore reports whether sigs hold a signature by this key of the same
// payload, as cosign's duplicate check does: signing twice adds nothing.
func (s *Signer) signedBefore(ctx context.Context, sigs []mutate.Addendum, body []byte) bool {
	want, _, err := v1.SHA256(bytes.NewReader(body))
	if err != nil {
		return false
	}
	checks := 0
	for _, sig := range sigs {
		if mt, err := sig.Layer.MediaType(); err != nil || mt != simpleSigningMediaType {
			continue
		}
		if d, err := sig.Layer.Digest(); err != nil || d != want {
			continue
		}
		b64 := sig.Annotations[signatureAnnotation]
		if b64 == "" || len(b64) > maxSignature {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			continue
		}
		if checks++; checks > maxChecks {
			return false
		}
		if s.sv.VerifySignature(bytes.NewReader(raw), bytes.NewReader(body), sigopts.WithContext(ctx)) == nil {
			return true
		}
	}
	return false
}

// Statement is an in-toto statement about an image (package attest builds
// them), with its predicate type.
type Statement struct {
	PredicateType string
	JSON          []byte
}

// Attest signs each statement as a DSSE envelope and adds it to the image's
// `sha256-<hex>.att` tag, replacing an earlier attestation of the same
// predicate type signed with the same key (what `cosign attest --replace`
// does, but keeping other signers' attestations): rebuilding the same digest
// does not pile up attestations (see maxChecks). As in cosign, the new
// attestations come first; two statements of one type in one call are both
// kept. Every statement's subject must name ref's digest. An .att image
// over the bounds of attached.go, or one that cannot be read, is an error,
// and nothing is written.
func (s *Signer) Attest(ctx context.Context, ref name.Digest, statements ...Statement) error {
	if len(statements) == 0 {
		return nil
	}
	wrapped := dsse.WrapSigner(s.sv, intotoPayloadType)
	adds := make([]mutate.Addendum, 0, len(statements))
	replaced := map[string]bool{}
	for _, st := range statements {
		if err := checkSubject(st, ref); err != nil {
			return fmt.Errorf("attest %s: %w", ref, err)
		}
		env, err := wrapped.SignMessage(bytes.NewReader(st.JSON), sigopts.WithContext(ctx))
		if err != nil {
			return fmt.Errorf("attest %s: sign %s: %w", ref, st.PredicateType, err)
		}
		if len(env) > maxAttachedLayer {
			// Every later attest of this digest would refuse to read it.
			return fmt.Errorf("attest %s: the %s attestation is %d bytes, more than %d", ref, st.PredicateType, len(env), maxAttachedLayer)
		}
		// The signature is inside the envelope; cosign still writes the
		// (empty) signature annotation on attestation layers.
		adds = append(adds, mutate.Addendum{
			Layer:       static.NewLayer(env, dssePayloadType),
			Annotations: map[string]string{"predicateType": st.PredicateType, signatureAnnotation: ""},
		})
		replaced[st.PredicateType] = true
	}
	atts, err := s.attachment(ctx, ref, attestationSuffix)
	if err != nil {
		return fmt.Errorf("attest %s: read existing attestations: %w", ref, err)
	}
	verifier := dsse.WrapVerifier(s.sv)
	checks := 0
	for _, att := range atts.layers {
		// Only a layer that may be one this key replaces is read (cosign
		// annotates each with its predicate type), and only maxChecks of
		// them: the registry decides how many there are and how big.
		if typ := att.Annotations["predicateType"]; typ != "" && !replaced[typ] || checks >= maxChecks {
			adds = append(adds, att)
			continue
		}
		checks++
		env, typ, err := attestation(att.Layer)
		if err != nil {
			return fmt.Errorf("attest %s: read existing attestations: %w", ref, err)
		}
		if replaced[typ] && verifier.VerifySignature(bytes.NewReader(env), nil, sigopts.WithContext(ctx)) == nil {
			continue
		}
		adds = append(adds, att)
	}
	if err := atts.write(adds); err != nil {
		return fmt.Errorf("attest %s: write attestations: %w", ref, err)
	}
	return nil
}

// attestation reads a DSSE attestation layer: the envelope and the
// predicate type of the in-toto statement in it. A layer of another media
// type, or one that is not an envelope of a statement, gives none: it is
// kept as it is. A layer that cannot be read is an error: keeping an
// attestation it should have replaced would leave two.
func attestation(l v1.Layer) (env []byte, predicateType string, err error) {
	if mt, err := l.MediaType(); err != nil || mt != dssePayloadType {
		return nil, "", nil
	}
	rc, err := l.Uncompressed()
	if err != nil {
		return nil, "", err
	}
	defer rc.Close()
	// Read to the end: the layer's digest is checked there.
	env, err = io.ReadAll(io.LimitReader(rc, maxAttachedLayer+1))
	if err != nil {
		return nil, "", err
	}
	if len(env) > maxAttachedLayer {
		return nil, "", fmt.Errorf("an attestation is over %d bytes", maxAttachedLayer)
	}
	var e struct {
		Payload []byte `json:"payload"` // base64 in JSON
	}
	var st struct {
		PredicateType string `json:"predicateType"`
	}
	if json.Unmarshal(env, &e) != nil || json.Unmarshal(e.Payload, &st) != nil {
		return nil, "", nil
	}
	return env, st.PredicateType, nil
}

// checkSubject refuses a statement that is not about ref: signing it would
// vouch for another image.
func checkSubject(st Statement, ref name.Digest) error {
	var head struct {
		PredicateType string `json:"predicateType"`
		Subject       []struct {
			Digest map[string]string `json:"digest"`
		} `json:"subject"`
	}
	if err := json.Unmarshal(st.JSON, &head); err != nil {
		return fmt.Errorf("statement %s is not JSON: %w", st.PredicateType, err)
	}
	if head.PredicateType != st.PredicateType {
		return fmt.Errorf("statement has predicate type %q, not %q", head.PredicateType, st.PredicateType)
	}
	alg, hex, _ := strings.Cut(ref.DigestStr(), ":")
	for _, sub := range head.Subject {
		if sub.Digest[alg] == hex {
			return nil
		}
	}
	return fmt.Errorf("statement %s is not about %s", st.PredicateType, ref.DigestStr())
}
