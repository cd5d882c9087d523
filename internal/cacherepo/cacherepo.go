// Package cacherepo is a fleet's shared cache in an OCI registry repository:
// verified plugin trees, so a runner without access to the plugins' git
// hosts or module proxy builds from the lock alone, and verification
// records (Verdicts), so a plugin verified by one runner is not verified
// again by the others, and what each base image's Traefik binary says
// (GetBinary), so a base's layers are streamed once for the fleet.
//
// Everything is a plain OCI 1.1 artifact — an image manifest with
// artifactType, the empty config (application/vnd.oci.empty.v1+json) and one
// layer — tagged by content, which Distribution (2.8 and later), Harbor,
// GHCR and ECR all store; no referrers API, no other media type is needed.
//
// Writers sign, readers verify: every entry carries a signature (a DSSE
// envelope, signed.go) over what it says and the tag it is stored under,
// made with the writer's private key (Keys.Signer), and a reader takes an
// entry only if a key it trusts (Keys.Trust, or its own) signed it. A tree
// counts, besides, only if its files hash to the content hash the lock
// records (GetTree checks). Whoever can write to the repository without a
// trusted key can spoil the cache, never make a build use other files or
// skip a verification; a runner given only public keys never writes.
package cacherepo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/xtraefik/xtraefik/images"
	"github.com/xtraefik/xtraefik/internal/redact"
)

// Artifact and layer media types.
const (
	// TreeArtifactType is the artifactType of a plugin tree; its layer is an
	// ordinary gzip tar (types.OCILayer), so any tool can unpack it.
	TreeArtifactType = "application/vnd.xtraefik.plugin-tree.v1"
	// VerdictArtifactType is the artifactType of a verification record; its
	// layer, of VerdictMediaType, is the signed record (a DSSE envelope).
	// Version 1 was sealed with a key the fleet shared, and is not read.
	VerdictArtifactType = "application/vnd.xtraefik.verdict.v2"
	VerdictMediaType    = "application/vnd.dsse.envelope.v1+json"
)

// Annotations of a tree's manifest, for people and tools browsing the
// repository; readers trust none of them.
const (
	AnnotationModule   = "io.github.xtraefik.plugin.module"
	AnnotationHash     = "io.github.xtraefik.plugin.hash"
	AnnotationRevision = "io.github.xtraefik.plugin.revision"
	// AnnotationSignature holds a tree's signed record (a DSSE envelope,
	// JSON), which readers check before they read the tree.
	AnnotationSignature = "io.github.xtraefik.signature"
	// annotationTitle names a layer's file for ORAS-style clients.
	annotationTitle = "org.opencontainers.image.title"
)

var (
	// ErrNotFound is an entry the repository does not hold.
	ErrNotFound = errors.New("not in the cache")
	// ErrMismatch is an entry that is not what its tag says: a tree whose
	// files do not hash to the content hash asked for, or no plugin tree at
	// all. The caller ignores it, reports it, and fetches from the source.
	ErrMismatch = errors.New("cache entry does not match its tag")
)

// Store is a cache repository in a registry ("registry/path"): trees under
// "tree-<hex of the content hash>", verdicts under "verdict-<key>",
// Traefik binary records under "binary-<key>".
type Store struct {
	repo name.Repository
	opts images.Options
	keys *keyring
	// maxTree bounds a tree, compressed and unpacked; maxRecord a verdict
	// record. Fields so tests can lower them.
	maxTree, maxRecord int64

	reuseOnce sync.Once
	reuse     []remote.Option
}

// Bounds of what is read from the registry.
const (
	// MaxTreeBytes bounds a tree's layer, compressed and unpacked: as much
	// as a plugin directory may hold (fileset.MaxDirBytes).
	MaxTreeBytes = 256 << 20
	// maxTreeEntries bounds a tree's tar entries.
	maxTreeEntries = 200_000
	// maxRecordBytes bounds a verdict record.
	maxRecordBytes = 1 << 20
)

// New opens the cache repository repo (a repository, neither tag nor
// digest), reached with opts (credentials, plain-HTTP rule, stall bounds),
// signing and trusting with keys (a signer, trusted keys, or both). It
// does not contact the registry.
func New(repo string, opts images.Options, keys Keys) (*Store, error) {
	r, err := opts.Repository(repo)
	if err != nil {
		// The value may carry credentials (https://user:token@reg/x).
		return nil, fmt.Errorf("cache repository %q: %w", redact.URL(repo), redact.Error(err))
	}
	k, err := newKeyring(keys)
	if err != nil {
		return nil, fmt.Errorf("cache repository %s: %w", r.Name(), err)
	}
	return &Store{repo: r, opts: opts, keys: k, maxTree: MaxTreeBytes, maxRecord: maxRecordBytes}, nil
}

// String is the repository's name.
func (s *Store) String() string { return s.repo.Name() }

// ReadOnly reports whether the Store has no signing key: it then reads
// and never writes.
func (s *Store) ReadOnly() bool { return s.keys.signer == nil }

// Signer is the fingerprint of the signing key, "" when read-only.
func (s *Store) Signer() string { return s.keys.signerID }

// Trusted are the fingerprints of the keys whose entries are read, sorted.
func (s *Store) Trusted() []string { return slices.Sorted(maps.Keys(s.keys.trust)) }

// remote is how a call reaches the registry: one puller and one pusher
// for the Store's life, so that the registry is pinged and a token asked
// for once per build, not once per request.
func (s *Store) remote(ctx context.Context) []remote.Option {
	ropts, _ := s.opts.RemoteAccess(ctx)
	s.reuseOnce.Do(func() {
		base, _ := s.opts.RemoteAccess(context.Background())
		if puller, err := remote.NewPuller(base...); err == nil {
			s.reuse = append(s.reuse, remote.Reuse(puller))
		}
		if pusher, err := remote.NewPusher(base...); err == nil {
			s.reuse = append(s.reuse, remote.Reuse(pusher))
		}
	})
	return append(ropts, s.reuse...)
}

// isNotFound reports a registry's "no such manifest or repository".
func isNotFound(err error) bool {
	var terr *transport.Error
	return errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound
}

// fetchArtifact reads the manifest tagged tag and checks it is an artifact
// of artifactType with one layer of layerType no larger than max. A missing
// tag is ErrNotFound; anything else there is ErrMismatch.
func (s *Store) fetchArtifact(ctx context.Context, tag name.Tag, artifactType string, layerType types.MediaType, max int64) (*v1.Manifest, error) {
	desc, err := remote.Get(tag, s.remote(ctx)...)
	if isNotFound(err) {
		return nil, fmt.Errorf("%s: %w", tag, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", tag, s.opts.Explain(err, tag))
	}
	var m v1.Manifest
	if desc.MediaType != types.OCIManifestSchema1 {
		return nil, fmt.Errorf("%s: %w: a %s, not an OCI artifact", tag, ErrMismatch, desc.MediaType)
	}
	if err := json.Unmarshal(desc.Manifest, &m); err != nil {
		return nil, fmt.Errorf("%s: %w: manifest: %v", tag, ErrMismatch, err)
	}
	switch {
	case m.ArtifactType != artifactType:
		return nil, fmt.Errorf("%s: %w: artifact type %q, not %q", tag, ErrMismatch, m.ArtifactType, artifactType)
	case len(m.Layers) != 1 || m.Layers[0].MediaType != layerType:
		return nil, fmt.Errorf("%s: %w: not exactly one %s layer", tag, ErrMismatch, layerType)
	case m.Layers[0].Size < 0 || m.Layers[0].Size > max:
		return nil, fmt.Errorf("%s: %w: its layer is %d bytes, more than the %d allowed", tag, ErrMismatch, m.Layers[0].Size, max)
	}
	return &m, nil
}

// push writes an artifact of artifactType with the empty config and layer,
// annotated, under tag. Blobs the repository holds are not uploaded again.
func (s *Store) push(ctx context.Context, tag name.Tag, artifactType string, layer partial.CompressedLayer, layerAnnotations, annotations map[string]string) error {
	img, err := images.Artifact(images.ArtifactSpec{ArtifactType: artifactType, Layer: layer, LayerAnnotations: layerAnnotations, Annotations: annotations})
	if err == nil {
		err = remote.Write(tag, img, s.remote(ctx)...)
	}
	if err != nil {
		return fmt.Errorf("push %s: %w", tag, s.opts.Explain(err, tag))
	}
	return nil
}
