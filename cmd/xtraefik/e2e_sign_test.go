package main

import (
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xtraefik/xtraefik/internal/attest"
	"github.com/xtraefik/xtraefik/internal/testenv"
)

// TestSignedBuild: build --push --sign-key signs the pushed image and
// attaches its provenance and verification record, which the real cosign
// client verifies with the public key; a wrong password fails before the
// build, and --sign-key without --push is refused.
func TestSignedBuild(t *testing.T) {
	cosign := testenv.Cosign(t)
	w := newWorld(t)
	rp := w.exampleRecipe()
	key, pub := testenv.CosignKeyPair(t, cosign, "s3cret")
	ref := w.registry + "/golden/traefik:signed"

	w.env["COSIGN_PASSWORD"] = "wrong"
	if _, _, err := w.run("build", "-f", rp, "--push", ref, "--sign-key", key); err == nil || !strings.Contains(err.Error(), "password") {
		t.Errorf("wrong password: %v", err)
	}
	if _, _, err := w.run("build", "-f", rp, "--sign-key", key); err == nil || !strings.Contains(err.Error(), "push") {
		t.Errorf("--sign-key without --push: %v", err)
	}

	w.env["COSIGN_PASSWORD"] = "s3cret"
	out := w.mustRun("build", "-f", rp, "--push", ref, "--sign-key", key, "--sbom-dir", filepath.Join(w.dir, "sbom"))
	if !strings.Contains(out, "signed: "+w.registry+"/golden/traefik@sha256:") {
		t.Errorf("output does not say what was signed:\n%s", out)
	}
	cosignVerifies(t, cosign, pub, ref, map[string]string{"slsaprovenance1": w.plugin.ReleaseCommit, attest.VerificationType: `"status":"OK"`,
		"spdxjson": `"spdxVersion":"SPDX-2.3"`})
	// Another key does not verify it.
	_, otherPub := testenv.CosignKeyPair(t, cosign, "x")
	if r := testenv.RunCosign(t, cosign, t.TempDir(), "", "verify", "--key", otherPub, "--insecure-ignore-tlog", "--allow-http-registry", ref); r.Err == nil {
		t.Error("cosign verify with another key succeeded")
	}
}

// cosignVerifies checks with the real cosign that ref's signature verifies
// with pub, and that the payload of each attestation type in want holds its
// text (spaces dropped).
func cosignVerifies(t *testing.T, cosign, pub, ref string, want map[string]string) {
	t.Helper()
	if r := testenv.RunCosign(t, cosign, t.TempDir(), "", "verify", "--key", pub, "--insecure-ignore-tlog", "--allow-http-registry", ref); r.Err != nil {
		t.Fatalf("cosign verify: %v\n%s", r.Err, r.Stderr)
	}
	for typ, want := range want {
		r := testenv.RunCosign(t, cosign, t.TempDir(), "", "verify-attestation", "--key", pub, "--type", typ,
			"--insecure-ignore-tlog", "--allow-http-registry", "--allow-insecure-registry", ref)
		if r.Err != nil {
			t.Fatalf("cosign verify-attestation --type %s: %v\n%s", typ, r.Err, r.Stderr)
		}
		var env struct{ Payload string }
		if err := json.Unmarshal([]byte(strings.Split(strings.TrimSpace(string(r.Stdout)), "\n")[0]), &env); err != nil {
			t.Fatal(err)
		}
		payload, _ := base64.StdEncoding.DecodeString(env.Payload)
		if !strings.Contains(strings.ReplaceAll(string(payload), " ", ""), want) {
			t.Errorf("%s attestation lacks %s:\n%.2000s", typ, want, payload)
		}
	}
}
