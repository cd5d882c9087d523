package publish

import (
	"context"
	"errors"
	"fmt"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/xtraefik/xtraefik/internal/attest"
	"github.com/xtraefik/xtraefik/internal/sign"
)

// Sign signs, with one key, every image Registry pushed, and attaches the
// SLSA provenance and the verification record to it as signed attestations,
// in the format `cosign verify` and `cosign verify-attestation` check (see
// package sign). Put it right after Registry in a Multi: it needs the pushed
// digests, and what it writes next to a pushed image cannot be rolled back
// either.
type Sign struct {
	// Registry is the publisher whose pushes are signed.
	Registry *Registry
	// Key is a cosign key file or a KMS URI (sign.LoadKey); Password opens
	// an encrypted key file.
	Key      string
	Password sign.PasswordFunc
	// Signer, when set, signs instead of Key: a hardware or remote key, or
	// a keyless (Fulcio) signer.
	Signer signature.SignerVerifier

	// Provenance and Verification are set by the build once it has
	// resolved and verified, before Publish; Subjects are filled here from
	// the pushed digests. Nil attaches no such attestation.
	Provenance   *attest.Build
	Verification *attest.Verification

	// Signed lists name@digest for each image signed.
	Signed []string

	sv signature.SignerVerifier
}

// Validate opens the key (reading and decrypting a key file, reaching a
// KMS), so that a wrong path or password fails before the build.
func (s *Sign) Validate(ctx context.Context) error {
	if s.Registry == nil {
		return errors.New("signing: nothing is pushed to sign: signatures are attached to pushed images")
	}
	if s.Signer != nil {
		s.sv = s.Signer
		return nil
	}
	if s.Key == "" {
		return errors.New("signing: no key")
	}
	if s.sv != nil {
		return nil // Multi.Publish validates again: open the key once
	}
	sv, err := sign.LoadKey(ctx, s.Key, s.Password)
	if err != nil {
		return fmt.Errorf("signing: %w", err)
	}
	s.sv = sv
	return nil
}

func (s *Sign) Publish(ctx context.Context, a *Artifact) error {
	if s.sv == nil {
		if err := s.Validate(ctx); err != nil {
			return err
		}
	}
	if len(s.Registry.Pushed) == 0 {
		// Registry did not run first (or pushed nothing): signing nothing
		// would pass for success.
		return errors.New("signing: the registry publisher pushed nothing; put Sign after Registry")
	}
	ropts, digest := s.Registry.Options.RemoteAccess(ctx)
	signer := sign.New(s.sv, ropts...)
	s.Signed = nil
	for _, pushed := range s.Registry.Pushed {
		ref, err := digest(pushed)
		if err != nil {
			return fmt.Errorf("signing: %w", err)
		}
		if err := signer.Sign(ctx, ref, nil); err != nil {
			return err
		}
		sts, err := s.statements(attest.Subject{Name: ref.Context().Name(), Digest: ref.DigestStr()}, a.SBOM)
		if err != nil {
			return fmt.Errorf("attest %s: %w", pushed, err)
		}
		if len(sts) > 0 {
			if err := signer.Attest(ctx, ref, sts...); err != nil {
				return err
			}
		}
		s.Signed = append(s.Signed, pushed)
	}
	return nil
}

// statements builds the attestations about one pushed image: provenance,
// verification record and, when the build made one, its SBOM.
func (s *Sign) statements(subject attest.Subject, sbom []byte) ([]sign.Statement, error) {
	var out []sign.Statement
	if sbom != nil {
		st, err := attest.SBOMStatement([]attest.Subject{subject}, sbom)
		if err != nil {
			return nil, err
		}
		out = append(out, sign.Statement{PredicateType: attest.SPDXType, JSON: st})
	}
	if s.Provenance != nil {
		b := *s.Provenance
		b.Subjects = []attest.Subject{subject}
		st, err := attest.Provenance(b)
		if err != nil {
			return nil, err
		}
		out = append(out, sign.Statement{PredicateType: attest.ProvenanceType, JSON: st})
	}
	if s.Verification != nil {
		v := *s.Verification
		v.Subjects = []attest.Subject{subject}
		st, err := attest.VerificationStatement(v)
		if err != nil {
			return nil, err
		}
		out = append(out, sign.Statement{PredicateType: attest.VerificationType, JSON: st})
	}
	return out, nil
}

// Undo does nothing: like a push, a signature cannot be taken back (see
// Registry).
func (s *Sign) Undo() error { return nil }

// Commit does nothing: signatures are final when written.
func (s *Sign) Commit() error { return nil }
