package cacherepo

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// BinaryArtifactType is the artifactType of what a base image's Traefik
// binary says (its path, version and the interpreters it links), kept so
// that a runner of the fleet builds a base without streaming the layer
// that holds the binary again. Its layer, of VerdictMediaType, is a signed
// record (a DSSE envelope) like a verdict's.
const BinaryArtifactType = "application/vnd.xtraefik.traefik-binary.v1"

const kindBinary = "traefik-binary"

// binaryTag is where the record under key is kept: "binary-<key>", key
// being the caller's hex hash of the platform manifest digest it
// describes; anything else has no tag.
func (s *Store) binaryTag(key string) (name.Tag, error) {
	const prefix = "binary-"
	if key == "" || len(prefix)+len(key) > 128 || strings.Trim(key, "0123456789abcdef") != "" {
		return name.Tag{}, fmt.Errorf("traefik binary record: key %q is not a hex hash", key)
	}
	return s.repo.Tag(prefix + key), nil
}

// GetBinary returns the Traefik binary record stored under key, once a
// key this runner trusts is found to have signed it for that key: the
// JSON the writer gave PutBinary. A missing record is ErrNotFound; one no
// trusted key signed, ErrUntrusted; one signed for another tag, key or
// kind of entry, ErrForged; an entry that is no such record, ErrMismatch.
func (s *Store) GetBinary(ctx context.Context, key string) ([]byte, error) {
	tag, err := s.binaryTag(key)
	if err != nil {
		return nil, err
	}
	data, err := s.readRecord(ctx, tag, BinaryArtifactType)
	if err != nil {
		return nil, err
	}
	rec, err := s.keys.open(data, kindBinary, tag.TagStr())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", tag.TagStr(), err)
	}
	switch {
	case rec.Key != key:
		return nil, fmt.Errorf("%s: %w: record moved between keys: signed by %s for key %s", tag.TagStr(), ErrForged, rec.Signer, rec.Key)
	case len(rec.Binary) == 0:
		return nil, fmt.Errorf("%s: %w: signed by %s, but holds no record", tag.TagStr(), ErrForged, rec.Signer)
	}
	return rec.Binary, nil
}

// PutBinary stores data (JSON) as the Traefik binary record under key,
// signed; a read-only Store writes nothing.
func (s *Store) PutBinary(ctx context.Context, key string, data []byte) error {
	tag, err := s.binaryTag(key)
	if err != nil {
		return err
	}
	if s.ReadOnly() {
		return nil // no signing key: this runner reads only
	}
	if !json.Valid(data) {
		return fmt.Errorf("traefik binary record %s: not JSON", key)
	}
	env, err := s.keys.seal(record{Kind: kindBinary, Tag: tag.TagStr(), Key: key, Binary: json.RawMessage(data)})
	if err != nil {
		return fmt.Errorf("traefik binary record: %w", err)
	}
	return s.push(ctx, tag, BinaryArtifactType, static.NewLayer(env, types.MediaType(VerdictMediaType)), nil, nil)
}
