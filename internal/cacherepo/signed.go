package cacherepo

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/xtraefik/xtraefik/verify"
)

// Keys say whom a Store believes and as whom it writes.
type Keys struct {
	// Signer signs every entry the Store writes (sign.LoadKey opens the
	// key files and KMS URIs the CLI takes); its public key is trusted.
	// Nil: the Store reads and never writes.
	Signer signature.SignerVerifier
	// Trust verify the entries of other writers: one per key, several to
	// rotate keys (sign.LoadPublicKey reads a PEM public key).
	Trust []signature.Verifier
}

var (
	// ErrUntrusted is an entry no key this runner trusts signed: another
	// writer's (the warning names its key), or no signature at all.
	ErrUntrusted = errors.New("not signed by a key this runner trusts")
	// ErrForged is an entry whose signature claims a trusted key but does
	// not verify (edited), or verifies for other contents: a record signed
	// for another tag (moved), another kind of entry, or another signer.
	ErrForged = errors.New("signature does not hold")
)

// PayloadType is the DSSE payload type of what a Store signs: the signature
// covers DSSE's pre-authentication encoding of this type and the payload,
// so a signature over a cache record is no signature over anything else
// (an image's, an attestation's) and the reverse.
const PayloadType = "application/vnd.xtraefik.cache-record.v1+json"

// Kinds of signed record.
const (
	kindVerdict = "verdict"
	kindTree    = "tree"
)

// kindBinary (binary.go) is a base's Traefik binary record.

// record is what a Store signs for an entry, as the DSSE payload (JSON
// written by encoding/json from this struct, so each field has one
// encoding; readers check the signature over the bytes as stored and use
// only what they hold).
type record struct {
	// Kind is kindVerdict, kindTree or kindBinary; Tag the tag the entry is written
	// under, so an entry moved to another tag is refused; Signer the
	// fingerprint (Fingerprint) of the key that signed.
	Kind   string `json:"kind"`
	Tag    string `json:"tag"`
	Signer string `json:"signer"`
	// A verdict: its key, when it was given, the verdict.
	Key      string         `json:"key,omitempty"`
	Verified *time.Time     `json:"verified,omitempty"`
	Result   *verify.Result `json:"result,omitempty"`
	// A tree: the content hash the lock pins, the digest of the layer
	// holding the files, the module and revision it was fetched as.
	ContentHash string `json:"contentHash,omitempty"`
	Layer       string `json:"layer,omitempty"`
	Module      string `json:"module,omitempty"`
	Revision    string `json:"revision,omitempty"`
	// A Traefik binary record: what the writer read from the binary of
	// the image its Key names (JSON the Store does not interpret).
	Binary json.RawMessage `json:"binary,omitempty"`
}

// envelope is a DSSE envelope (github.com/secure-systems-lab/dsse).
type envelope struct {
	PayloadType string         `json:"payloadType"`
	Payload     string         `json:"payload"`
	Signatures  []envSignature `json:"signatures"`
}

type envSignature struct {
	KeyID string `json:"keyid"`
	Sig   string `json:"sig"`
}

// pae is DSSE's pre-authentication encoding, what is signed.
func pae(payloadType string, payload []byte) []byte {
	var b bytes.Buffer
	b.WriteString("DSSEv1 ")
	b.WriteString(strconv.Itoa(len(payloadType)))
	b.WriteByte(' ')
	b.WriteString(payloadType)
	b.WriteByte(' ')
	b.WriteString(strconv.Itoa(len(payload)))
	b.WriteByte(' ')
	b.Write(payload)
	return b.Bytes()
}

// Fingerprint names a public key: "sha256:" and the hex SHA-256 of its
// PKIX DER encoding, which `openssl pkey -pubin -in KEY.pub -outform DER |
// sha256sum` prints too.
func Fingerprint(v signature.PublicKeyProvider) (string, error) {
	pub, err := v.PublicKey()
	if err != nil {
		return "", err
	}
	der, err := cryptoutils.MarshalPublicKeyToDER(pub)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(der)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// keyring is Keys made ready: the signer with its fingerprint, and every
// trusted verifier (the signer's included) by fingerprint.
type keyring struct {
	signer   signature.SignerVerifier
	signerID string
	trust    map[string]signature.Verifier
}

func newKeyring(k Keys) (*keyring, error) {
	if k.Signer == nil && len(k.Trust) == 0 {
		return nil, errors.New("no key: give a signing key (written entries are signed with it, and read back) or at least one trusted public key (entries signed with it are read, nothing is written)")
	}
	r := &keyring{trust: map[string]signature.Verifier{}}
	if k.Signer != nil {
		id, err := Fingerprint(k.Signer)
		if err != nil {
			return nil, fmt.Errorf("signing key: %w", err)
		}
		r.signer, r.signerID, r.trust[id] = k.Signer, id, k.Signer
	}
	for i, v := range k.Trust {
		if v == nil {
			return nil, fmt.Errorf("trusted key %d is nil", i+1)
		}
		id, err := Fingerprint(v)
		if err != nil {
			return nil, fmt.Errorf("trusted key %d: %w", i+1, err)
		}
		if _, ok := r.trust[id]; !ok {
			r.trust[id] = v
		}
	}
	return r, nil
}

// seal signs rec (its Signer set here) as a DSSE envelope.
func (k *keyring) seal(rec record) ([]byte, error) {
	if k.signer == nil {
		return nil, errors.New("no signing key: this runner only reads the cache repository")
	}
	rec.Signer = k.signerID
	payload, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	sig, err := k.signer.SignMessage(bytes.NewReader(pae(PayloadType, payload)))
	if err != nil {
		return nil, fmt.Errorf("sign with key %s: %w", k.signerID, err)
	}
	return json.Marshal(envelope{PayloadType: PayloadType, Payload: base64.StdEncoding.EncodeToString(payload),
		Signatures: []envSignature{{KeyID: k.signerID, Sig: base64.StdEncoding.EncodeToString(sig)}}})
}

// open returns the record data holds if a trusted key signed it for an
// entry of kind under tag. Nothing of data is used before the signature
// over it is checked. A record no trusted key signed is ErrUntrusted,
// naming the keys it claims; a signature that fails, or a record of
// another tag, kind or signer, is ErrForged.
func (k *keyring) open(data []byte, kind, tag string) (*record, error) {
	var env envelope
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("%w: not a signed record: %v", ErrUntrusted, err)
	}
	if env.PayloadType != PayloadType {
		return nil, fmt.Errorf("%w: payload type %q, not %q", ErrUntrusted, env.PayloadType, PayloadType)
	}
	payload, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		return nil, fmt.Errorf("%w: payload: %v", ErrUntrusted, err)
	}
	signed := pae(env.PayloadType, payload)
	var others []string
	for _, s := range env.Signatures {
		// The key ID only picks the key to try; the signature decides.
		v, ok := k.trust[s.KeyID]
		if !ok {
			if len(others) < 4 {
				others = append(others, shownKey(s.KeyID))
			}
			continue
		}
		sig, err := base64.StdEncoding.DecodeString(s.Sig)
		if err == nil {
			err = v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(signed))
		}
		if err != nil {
			return nil, fmt.Errorf("%w: the signature of trusted key %s does not verify (the record was edited)", ErrForged, s.KeyID)
		}
		var rec record
		if err := json.Unmarshal(payload, &rec); err != nil {
			return nil, fmt.Errorf("%w: signed by %s, but its payload does not decode: %v", ErrForged, s.KeyID, err)
		}
		switch {
		case rec.Signer != s.KeyID:
			return nil, fmt.Errorf("%w: signed by %s, but says %s signed it", ErrForged, s.KeyID, rec.Signer)
		case rec.Kind != kind:
			return nil, fmt.Errorf("%w: signed by %s for a %s, found where a %s belongs", ErrForged, s.KeyID, rec.Kind, kind)
		case rec.Tag != tag:
			return nil, fmt.Errorf("%w: record moved between tags: signed by %s for tag %s, found under %s", ErrForged, s.KeyID, rec.Tag, tag)
		}
		return &rec, nil
	}
	if len(others) == 0 {
		return nil, fmt.Errorf("%w: it carries no signature", ErrUntrusted)
	}
	return nil, fmt.Errorf("%w: signed by key %s; trust it with --cache-trust if it is the fleet's", ErrUntrusted, joinKeys(others))
}

// shownKey is a key ID as a warning shows it: quoted (it is the
// writer's text) and cut short.
func shownKey(id string) string {
	if len(id) > 80 {
		id = id[:80] + "..."
	}
	return strconv.Quote(id)
}

func joinKeys(ids []string) string {
	if len(ids) == 1 {
		return ids[0]
	}
	return fmt.Sprint(ids)
}
