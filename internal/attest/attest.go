// Package attest writes the in-toto statements xtraefik attaches to an image
// it pushes: an SLSA v1 provenance (what the image was built from) and a
// verification record (how each plugin was checked). Package sign signs and
// attaches them.
//
// The inputs are plain structs, filled by the build; a plugin's source is
// the plugin package's Source, the one record of it that the lock and the
// report share. The statements use the in-toto attestation framework's own
// Go types (github.com/in-toto/attestation), and each is checked by its
// Validate before it is returned.
package attest

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	slsa "github.com/in-toto/attestation/go/predicates/provenance/v1"
	intoto "github.com/in-toto/attestation/go/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/xtraefik/xtraefik/internal/plugin"
)

// Predicate types, as `cosign verify-attestation --type` takes them.
const (
	// ProvenanceType is SLSA provenance v1 (`--type slsaprovenance1`).
	ProvenanceType = "https://slsa.dev/provenance/v1"
	// VerificationType is xtraefik's verification record, version 1: the
	// fields of Verification and PluginVerdict. A change that removes or
	// redefines a field takes a new version.
	VerificationType = "https://xtraefik.dev/verification/v1"
	// BuildType is the SLSA buildType of an xtraefik image build: the
	// external parameters are the recipe (and its lock) and the platforms;
	// the resolved dependencies are the base image and every plugin.
	BuildType = "https://xtraefik.dev/build/v1"
	// DefaultBuilderID names the builder when the caller has no better
	// identity (a CI workflow's URL is one).
	DefaultBuilderID = "https://github.com/xtraefik/xtraefik"
)

// Digest-set keys of a plugin's resolved dependency, besides in-toto's own
// gitCommit and dirHash.
const (
	// FilesDigest is xtraefik's content hash of exactly the files placed in
	// the image (the lock's hash, without its "sha256:" prefix).
	FilesDigest = "xtraefikFiles"
)

// Subject is the image the statement is about.
type Subject struct {
	// Name is the repository, e.g. registry.example.com/traefik.
	Name string
	// Digest is the manifest or index digest, "sha256:<hex>".
	Digest string
}

// Base is the Traefik image the build started from.
type Base struct {
	// Ref is the reference as the recipe names it (docker.io/library/traefik:v3.6).
	Ref string
	// Digest is what it resolved to, "sha256:<hex>".
	Digest string
	// URI locates it; "" means oci://<Ref>, a registry image. A base read
	// from this machine (an OCI layout) has none that leaves it: its URI
	// then names it, e.g. "oci-layout:traefik-layout@sha256:<hex>".
	URI string
}

// Plugin is one plugin placed in the image. A plugin from git has Git and
// Commit; one from a module proxy has Version and Sum. The provenance
// records Git (without credentials; a repository on this machine (file://)
// is named, not located: "local:<base name>"), Ref, Commit, Version and Sum
// of its Source.
type Plugin struct {
	Alias  string
	Module string
	plugin.Source
	// ContentHash is the lock's hash of the files in the image, "sha256:<hex>".
	ContentHash string
}

// Build is what the provenance records.
type Build struct {
	Subjects []Subject
	Base     Base
	Plugins  []Plugin
	// BuilderID identifies who ran the build; "" means DefaultBuilderID.
	BuilderID string
	// BuilderVersion is xtraefik's version.
	BuilderVersion string
	// ExternalParameters are the user's inputs: SLSA asks that a verifier
	// can compare them to expectations (e.g. "recipe": path and sha256,
	// "platforms": [...]).
	ExternalParameters map[string]any
	// InternalParameters are the builder's own settings (e.g. the epoch).
	InternalParameters map[string]any
	// InvocationID identifies the run (a CI job URL); optional.
	InvocationID string
	// StartedOn and FinishedOn bound the build; zero is left out.
	StartedOn, FinishedOn time.Time
}

// Provenance returns the SLSA v1 provenance statement about b's subjects, as
// JSON.
func Provenance(b Build) ([]byte, error) {
	base, err := baseDescriptor(b.Base)
	if err != nil {
		return nil, fmt.Errorf("provenance: %w", err)
	}
	deps := []*intoto.ResourceDescriptor{base}
	for _, p := range b.Plugins {
		d, err := pluginDescriptor(p)
		if err != nil {
			return nil, fmt.Errorf("provenance: plugin %s: %w", p.Alias, err)
		}
		deps = append(deps, d)
	}
	ext, err := toStruct(orEmpty(b.ExternalParameters))
	if err != nil {
		return nil, fmt.Errorf("provenance: external parameters: %w", err)
	}
	def := &slsa.BuildDefinition{BuildType: BuildType, ExternalParameters: ext, ResolvedDependencies: deps}
	if len(b.InternalParameters) > 0 {
		if def.InternalParameters, err = toStruct(b.InternalParameters); err != nil {
			return nil, fmt.Errorf("provenance: internal parameters: %w", err)
		}
	}
	builder := &slsa.Builder{Id: b.BuilderID}
	if builder.Id == "" {
		builder.Id = DefaultBuilderID
	}
	if b.BuilderVersion != "" {
		builder.Version = map[string]string{"xtraefik": b.BuilderVersion}
	}
	run := &slsa.RunDetails{Builder: builder}
	if b.InvocationID != "" || !b.StartedOn.IsZero() || !b.FinishedOn.IsZero() {
		run.Metadata = &slsa.BuildMetadata{InvocationId: b.InvocationID}
		if !b.StartedOn.IsZero() {
			run.Metadata.StartedOn = timestamppb.New(b.StartedOn)
		}
		if !b.FinishedOn.IsZero() {
			run.Metadata.FinishedOn = timestamppb.New(b.FinishedOn)
		}
	}
	prov := &slsa.Provenance{BuildDefinition: def, RunDetails: run}
	if err := prov.Validate(); err != nil {
		return nil, fmt.Errorf("provenance: %w", err)
	}
	return statement(b.Subjects, ProvenanceType, prov)
}

// baseDescriptor names the base by its reference and pins it by digest.
func baseDescriptor(b Base) (*intoto.ResourceDescriptor, error) {
	alg, hexd, err := splitDigest(b.Digest)
	if err != nil {
		return nil, fmt.Errorf("base %s: %w", b.Ref, err)
	}
	ann, err := structpb.NewStruct(map[string]any{"xtraefik.dev/role": "base"})
	if err != nil {
		return nil, err
	}
	uri := b.URI
	if uri == "" {
		uri = "oci://" + b.Ref
	}
	return &intoto.ResourceDescriptor{
		Name:        b.Ref,
		Uri:         uri,
		Digest:      map[string]string{alg: hexd},
		Annotations: ann,
	}, nil
}

// pluginDescriptor follows SLSA's conventions: git+<url>@<ref> with a
// gitCommit digest for git sources, pkg:golang/<module>@<version> with a
// dirHash (the h1 hash in hex) for module-proxy sources.
func pluginDescriptor(p Plugin) (*intoto.ResourceDescriptor, error) {
	d := &intoto.ResourceDescriptor{Name: p.Module, Digest: map[string]string{}}
	switch {
	case p.Git != "":
		d.Uri = "git+" + p.Git
		if p.Ref != "" {
			d.Uri += "@" + p.Ref
		}
		if p.Commit != "" {
			d.Digest["gitCommit"] = p.Commit
		}
	case p.Version != "":
		d.Uri = "pkg:golang/" + p.Module + "@" + p.Version
		if p.Sum != "" {
			h, err := dirHash(p.Sum)
			if err != nil {
				return nil, err
			}
			d.Digest["dirHash"] = h
		}
	}
	if p.ContentHash != "" {
		_, h, err := splitDigest(p.ContentHash)
		if err != nil {
			return nil, fmt.Errorf("content hash: %w", err)
		}
		d.Digest[FilesDigest] = h
	}
	if len(d.Digest) == 0 {
		return nil, errors.New("neither a commit, a module sum nor a content hash to pin it by")
	}
	ann, err := structpb.NewStruct(map[string]any{"xtraefik.dev/role": "plugin", "xtraefik.dev/alias": p.Alias})
	if err != nil {
		return nil, err
	}
	d.Annotations = ann
	if err := d.Validate(); err != nil {
		return nil, err
	}
	return d, nil
}

// dirHash turns a go.sum "h1:<base64>" hash into in-toto's dirHash: the same
// SHA-256, in lowercase hex.
func dirHash(sum string) (string, error) {
	b64, ok := strings.CutPrefix(sum, "h1:")
	if !ok {
		return "", fmt.Errorf("module sum %q is not an h1: hash", sum)
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(raw) != 32 {
		return "", fmt.Errorf("module sum %q is not an h1: hash", sum)
	}
	return hex.EncodeToString(raw), nil
}

func splitDigest(d string) (alg, hexd string, err error) {
	alg, hexd, ok := strings.Cut(d, ":")
	if !ok || alg == "" || hexd == "" {
		return "", "", fmt.Errorf("digest %q is not <algorithm>:<hex>", d)
	}
	return alg, hexd, nil
}

func orEmpty(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// Verification is what the verification record holds: how each plugin in
// the image was checked before the build accepted it.
type Verification struct {
	Subjects []Subject
	// TraefikVersion is the Traefik release the plugins were checked for.
	TraefikVersion string
	// Interpreter is what that release embeds ("yaegi v0.16.1"), and
	// InterpreterSource where that was read: "binary" (the base's own
	// Traefik binary), "go.mod" (Traefik's go.mod for the release) or
	// "table" (xtraefik's table); "" when unknown.
	Interpreter, InterpreterSource string
	// VerifierVersion is xtraefik's version.
	VerifierVersion string
	// RuntimeCheck reports whether the built image was also run with a real
	// Traefik binary and a request sent through each plugin.
	RuntimeCheck bool
	Plugins      []PluginVerdict
	// VerifiedOn is when the verification ran; zero is left out.
	VerifiedOn time.Time
}

// PluginVerdict is one plugin's result, as `xtraefik verify --output json`
// reports it.
type PluginVerdict struct {
	Alias  string `json:"alias"`
	Module string `json:"module"`
	Commit string `json:"commit,omitempty"`
	// Version is a module-proxy plugin's version; ContentHash the lock's
	// hash of exactly the files verified and shipped.
	Version     string `json:"version,omitempty"`
	ContentHash string `json:"contentHash,omitempty"`
	// Type is middleware or provider.
	Type string `json:"type,omitempty"`
	// Runtime is yaegi or wasm.
	Runtime string `json:"runtime,omitempty"`
	// Interpreter is what checked it ("yaegi v0.16.1").
	Interpreter string `json:"interpreter,omitempty"`
	// Status is OK, FAIL or UNVERIFIED.
	Status string `json:"status"`
	OK     bool   `json:"ok"`
	// Approximate marks a verdict from another interpreter than the
	// target Traefik's.
	Approximate bool   `json:"approximate,omitempty"`
	Reason      string `json:"reason,omitempty"`
	// Containment is the sandbox the plugin's code ran in; nil when none ran.
	Containment *Containment `json:"containment,omitempty"`
	// Cached marks a verdict taken from the verdict cache: given by an
	// earlier run of the same xtraefik for the same inputs.
	Cached bool `json:"cached,omitempty"`
}

// Containment is the sandbox level ("full", "partial", "none") and the
// protections applied and missing.
type Containment struct {
	Level   string   `json:"level"`
	Applied []string `json:"applied,omitempty"`
	Missing []string `json:"missing,omitempty"`
}

// VerificationStatement returns the verification record about v's subjects,
// as JSON. Its predicate:
//
//	{"verifier": {"id", "version"}, "traefikVersion", "interpreter",
//	 "interpreterSource", "ok",
//	 "runtimeCheck", "verifiedOn", "plugins": [PluginVerdict...]}
func VerificationStatement(v Verification) ([]byte, error) {
	ok := true
	for _, p := range v.Plugins {
		ok = ok && p.OK
	}
	plugins := v.Plugins
	if plugins == nil {
		plugins = []PluginVerdict{}
	}
	pred := struct {
		Verifier struct {
			ID      string `json:"id"`
			Version string `json:"version,omitempty"`
		} `json:"verifier"`
		TraefikVersion    string          `json:"traefikVersion"`
		Interpreter       string          `json:"interpreter,omitempty"`
		InterpreterSource string          `json:"interpreterSource,omitempty"`
		OK                bool            `json:"ok"`
		RuntimeCheck      bool            `json:"runtimeCheck"`
		VerifiedOn        string          `json:"verifiedOn,omitempty"`
		Plugins           []PluginVerdict `json:"plugins"`
	}{TraefikVersion: v.TraefikVersion, Interpreter: v.Interpreter, InterpreterSource: v.InterpreterSource, OK: ok, RuntimeCheck: v.RuntimeCheck, Plugins: plugins}
	pred.Verifier.ID = DefaultBuilderID
	pred.Verifier.Version = v.VerifierVersion
	if !v.VerifiedOn.IsZero() {
		pred.VerifiedOn = v.VerifiedOn.UTC().Format(time.RFC3339)
	}
	return statement(v.Subjects, VerificationType, pred)
}

// SPDXType is the predicate type of an SPDX SBOM attestation, the one
// `cosign attest --type spdxjson` writes and `cosign verify-attestation
// --type spdxjson` checks.
const SPDXType = "https://spdx.dev/Document"

// SBOMStatement wraps an SPDX JSON document in an in-toto statement about
// subjects.
func SBOMStatement(subjects []Subject, spdx []byte) ([]byte, error) {
	if !json.Valid(spdx) {
		return nil, errors.New("SBOM statement: the SPDX document is not JSON")
	}
	return statement(subjects, SPDXType, json.RawMessage(spdx))
}

// statement wraps predicate (a protobuf message, or anything encoding/json
// takes) in an in-toto v1 statement, validates it and returns compact JSON.
func statement(subjects []Subject, predicateType string, predicate any) ([]byte, error) {
	if len(subjects) == 0 {
		return nil, fmt.Errorf("%s statement: no subject", predicateType)
	}
	st := &intoto.Statement{Type: intoto.StatementTypeUri, PredicateType: predicateType}
	for _, s := range subjects {
		alg, hexd, err := splitDigest(s.Digest)
		if err != nil {
			return nil, fmt.Errorf("%s statement: subject %s: %w", predicateType, s.Name, err)
		}
		st.Subject = append(st.Subject, &intoto.ResourceDescriptor{Name: s.Name, Digest: map[string]string{alg: hexd}})
	}
	var err error
	if st.Predicate, err = toStruct(predicate); err != nil {
		return nil, fmt.Errorf("%s statement: %w", predicateType, err)
	}
	if err := st.Validate(); err != nil {
		return nil, fmt.Errorf("%s statement: %w", predicateType, err)
	}
	return marshal(st)
}

// toStruct converts v to a protobuf Struct through its JSON form (protojson
// for a message, so that field names are the JSON ones).
func toStruct(v any) (*structpb.Struct, error) {
	var raw []byte
	var err error
	if m, ok := v.(proto.Message); ok {
		raw, err = protojson.Marshal(m)
	} else {
		raw, err = json.Marshal(v)
	}
	if err != nil {
		return nil, err
	}
	st := &structpb.Struct{}
	if err := protojson.Unmarshal(raw, st); err != nil {
		return nil, err
	}
	return st, nil
}

// marshal is protojson with its deliberately unstable spacing removed, so
// the same inputs give the same bytes.
func marshal(m proto.Message) ([]byte, error) {
	out, err := protojson.Marshal(m)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, out); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
