package publish

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/xtraefik/xtraefik/internal/attest"
	"github.com/xtraefik/xtraefik/internal/plugin"
	"github.com/xtraefik/xtraefik/internal/sign"
	"github.com/xtraefik/xtraefik/internal/testenv"
)

const pluginCommit = "0123456789abcdef0123456789abcdef01234567"

// verifyAttestation runs `cosign verify-attestation --type typ` and returns
// the statements (decoded DSSE payloads) it printed.
func verifyAttestation(t *testing.T, cosign, pub, typ, ref string) ([]map[string]any, error) {
	t.Helper()
	r := testenv.RunCosign(t, cosign, t.TempDir(), "", "verify-attestation", "--key", pub, "--type", typ,
		"--insecure-ignore-tlog", "--allow-http-registry", "--allow-insecure-registry", ref)
	if r.Err != nil {
		return nil, errors.New(string(r.Stderr))
	}
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(string(r.Stdout)), "\n") {
		var env struct {
			PayloadType string `json:"payloadType"`
			Payload     string `json:"payload"`
		}
		if err := json.Unmarshal([]byte(line), &env); err != nil {
			t.Fatalf("cosign verify-attestation printed %q: %v", line, err)
		}
		raw, err := base64.StdEncoding.DecodeString(env.Payload)
		if err != nil {
			t.Fatal(err)
		}
		var st map[string]any
		if err := json.Unmarshal(raw, &st); err != nil {
			t.Fatal(err)
		}
		out = append(out, st)
	}
	return out, nil
}

// TestSignPublisher pushes a built image, signs it and attaches both
// attestations through the publishers, then checks them with the real
// cosign: the signature, the SLSA provenance (the plugin commit in its
// resolved dependencies) and the verification record (the verdicts); a
// second run replaces the attestations instead of adding to them.
func TestSignPublisher(t *testing.T) {
	cosign := testenv.Cosign(t)
	host := testenv.Registry(t, testenv.RegistryOptions{})
	key, pub := testenv.CosignKeyPair(t, cosign, "s3cret")
	_, otherPub := testenv.CosignKeyPair(t, cosign, "other")
	a := artifact(t)

	reg := &Registry{Refs: []string{host + "/golden/traefik:v3"}}
	s := &Sign{
		Registry: reg,
		Key:      key,
		Password: sign.Password("s3cret"),
		Provenance: &attest.Build{
			Base:               attest.Base{Ref: "docker.io/library/traefik:v3.6", Digest: "sha256:" + strings.Repeat("b", 64)},
			ExternalParameters: map[string]any{"recipe": map[string]any{"path": "recipe.yaml"}},
			Plugins:            []attest.Plugin{{Alias: "demo", Module: "github.com/traefik/plugindemo", Source: plugin.Source{Git: "https://github.com/traefik/plugindemo", Ref: "v0.2.2", Commit: pluginCommit}, ContentHash: "sha256:" + strings.Repeat("c", 64)}},
		},
		Verification: &attest.Verification{
			TraefikVersion: "v3.6.12",
			Plugins: []attest.PluginVerdict{{Alias: "demo", Module: "github.com/traefik/plugindemo", Commit: pluginCommit,
				Interpreter: "yaegi v0.16.1", Status: "OK", OK: true, Containment: &attest.Containment{Level: "partial", Missing: []string{"landlock"}}}},
		},
	}
	m := Multi{reg, s}
	if err := m.Validate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := m.Publish(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	if len(s.Signed) != 1 || s.Signed[0] != reg.Pushed[0] {
		t.Fatalf("signed %v, pushed %v", s.Signed, reg.Pushed)
	}
	ref := reg.Pushed[0]

	r := testenv.RunCosign(t, cosign, t.TempDir(), "", "verify", "--key", pub, "--insecure-ignore-tlog", "--allow-http-registry", host+"/golden/traefik:v3")
	if r.Err != nil {
		t.Fatalf("cosign verify of the tag: %v\n%s", r.Err, r.Stderr)
	}

	provs, err := verifyAttestation(t, cosign, pub, "slsaprovenance1", ref)
	if err != nil {
		t.Fatalf("cosign verify-attestation --type slsaprovenance1: %v", err)
	}
	if len(provs) != 1 {
		t.Fatalf("%d provenance statements, want 1", len(provs))
	}
	raw, _ := json.Marshal(provs[0])
	if !strings.Contains(string(raw), `"gitCommit":"`+pluginCommit+`"`) || !strings.Contains(string(raw), a.Image.Digest.Hex) {
		t.Errorf("provenance lacks the plugin commit or the image digest:\n%s", raw)
	}

	vers, err := verifyAttestation(t, cosign, pub, attest.VerificationType, ref)
	if err != nil {
		t.Fatalf("cosign verify-attestation --type %s: %v", attest.VerificationType, err)
	}
	if len(vers) != 1 {
		t.Fatalf("%d verification statements, want 1", len(vers))
	}
	pred := vers[0]["predicate"].(map[string]any)
	verdict := pred["plugins"].([]any)[0].(map[string]any)
	if pred["traefikVersion"] != "v3.6.12" || verdict["status"] != "OK" || verdict["interpreter"] != "yaegi v0.16.1" ||
		verdict["containment"].(map[string]any)["level"] != "partial" {
		t.Errorf("verification predicate: %v", pred)
	}

	if _, err := verifyAttestation(t, cosign, otherPub, "slsaprovenance1", ref); err == nil || !strings.Contains(err.Error(), "no matching attestations") {
		t.Errorf("cosign verify-attestation with another key: %v", err)
	}

	// Publishing the same image again replaces each attestation.
	if err := (Multi{reg, s}).Publish(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	if provs, err := verifyAttestation(t, cosign, pub, "slsaprovenance1", ref); err != nil || len(provs) != 1 {
		t.Errorf("after a second publish: %d provenance statements (%v), want 1", len(provs), err)
	}
}

// TestSignValidate refuses, before any build, a wrong password, a missing
// key and signing without a push.
func TestSignValidate(t *testing.T) {
	cosign := testenv.Cosign(t)
	key, _ := testenv.CosignKeyPair(t, cosign, "s3cret")
	reg := &Registry{Refs: []string{"127.0.0.1:1/x:v1"}}

	err := (&Sign{Registry: reg, Key: key, Password: sign.Password("wrong")}).Validate(t.Context())
	if !errors.Is(err, sign.ErrPassword) || !strings.Contains(err.Error(), "wrong password") || !strings.Contains(err.Error(), "COSIGN_PASSWORD") {
		t.Errorf("wrong password: %v", err)
	}
	if err := (&Sign{Registry: reg, Key: key + ".missing", Password: sign.Password("s3cret")}).Validate(t.Context()); err == nil || !strings.Contains(err.Error(), key+".missing") {
		t.Errorf("missing key: %v", err)
	}
	if err := (&Sign{Key: key, Password: sign.Password("s3cret")}).Validate(t.Context()); err == nil || !strings.Contains(err.Error(), "pushed") {
		t.Errorf("no registry: %v", err)
	}
	ok := &Sign{Registry: reg, Key: key, Password: sign.Password("s3cret")}
	if err := ok.Validate(t.Context()); err != nil {
		t.Errorf("right password: %v", err)
	}
	// Before (or without) the push there is nothing to sign: an error, not
	// a silent success.
	if err := ok.Publish(t.Context(), &Artifact{}); err == nil || !strings.Contains(err.Error(), "pushed nothing") {
		t.Errorf("publish before the push: %v", err)
	}
}
