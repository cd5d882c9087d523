package cacherepo

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/sigstore/sigstore/pkg/signature"
)

// TestBinaryRecords: a Traefik binary record one runner signs, another
// runner trusting its key reads back as written; a reader holding only
// public keys writes nothing; a record no trusted key signed is
// ErrUntrusted; one signed for another key (moved between tags, or a
// trusted writer's record naming another key under this tag) or as a
// verdict is ErrForged; an absent one ErrNotFound; a key that is no hex
// hash has no tag.
func TestBinaryRecords(t *testing.T) {
	ctx := context.Background()
	s, log := testStore(t)
	rec := []byte(`{"path":"/usr/local/bin/traefik","version":"v3.8.1","interpreter":{"yaegi":"v0.16.1"}}`)
	if err := s.PutBinary(ctx, key("m1"), rec); err != nil {
		t.Fatal(err)
	}
	got, err := reopen(t, s).GetBinary(ctx, key("m1"))
	if err != nil || string(got) != string(rec) {
		t.Fatalf("GetBinary = %s, %v; want %s", got, err, rec)
	}
	if _, err := s.GetBinary(ctx, key("absent")); !errors.Is(err, ErrNotFound) {
		t.Errorf("absent record: %v, want ErrNotFound", err)
	}
	if err := s.PutBinary(ctx, "../m1", rec); err == nil {
		t.Error("a key that is no hex hash was written")
	}

	// A reader: trusts s's key, writes nothing.
	reader := withKeys(t, s.String(), Keys{Trust: []signature.Verifier{s.keys.signer}})
	log.Reset()
	if err := reader.PutBinary(ctx, key("m2"), rec); err != nil {
		t.Fatal(err)
	}
	if w := writes(log); len(w) != 0 {
		t.Errorf("a read-only store wrote: %q", w)
	}
	if got, err := reader.GetBinary(ctx, key("m1")); err != nil || string(got) != string(rec) {
		t.Errorf("reader: %s, %v", got, err)
	}

	// Another key's store does not believe s.
	other := withKeys(t, s.String(), Keys{Signer: fleetKey(t)})
	if _, err := other.GetBinary(ctx, key("m1")); !errors.Is(err, ErrUntrusted) {
		t.Errorf("another key: %v, want ErrUntrusted", err)
	}

	// m1's record moved under m3's tag.
	push := func(k string, data []byte) {
		t.Helper()
		tag, err := s.binaryTag(k)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.push(ctx, tag, BinaryArtifactType, static.NewLayer(data, VerdictMediaType), nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	tag1, _ := s.binaryTag(key("m1"))
	tag3, _ := s.binaryTag(key("m3"))
	push(key("m3"), mustSeal(t, s.keys, record{Kind: kindBinary, Tag: tag1.TagStr(), Key: key("m1"), Binary: rec}))
	if _, err := s.GetBinary(ctx, key("m3")); !errors.Is(err, ErrForged) {
		t.Errorf("a record moved between tags: %v, want ErrForged", err)
	}
	// Signed for m3's tag but naming m1's key.
	push(key("m3"), mustSeal(t, s.keys, record{Kind: kindBinary, Tag: tag3.TagStr(), Key: key("m1"), Binary: rec}))
	if _, err := s.GetBinary(ctx, key("m3")); !errors.Is(err, ErrForged) {
		t.Errorf("a record naming another key: %v, want ErrForged", err)
	}
	// A verdict's signature under a binary record's tag.
	push(key("m3"), mustSeal(t, s.keys, record{Kind: kindVerdict, Tag: tag3.TagStr(), Key: key("m3"), Binary: rec}))
	if _, err := s.GetBinary(ctx, key("m3")); !errors.Is(err, ErrForged) {
		t.Errorf("a record of another kind: %v, want ErrForged", err)
	}
	// Signed, but empty.
	push(key("m3"), mustSeal(t, s.keys, record{Kind: kindBinary, Tag: tag3.TagStr(), Key: key("m3")}))
	if _, err := s.GetBinary(ctx, key("m3")); !errors.Is(err, ErrForged) {
		t.Errorf("an empty record: %v, want ErrForged", err)
	}
}
