package attest

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/xtraefik/xtraefik/internal/plugin"
)

var (
	digestA = "sha256:" + strings.Repeat("a", 64)
	digestB = "sha256:" + strings.Repeat("b", 64)
	commit  = "0123456789abcdef0123456789abcdef01234567"
)

func sampleBuild() Build {
	return Build{
		Subjects: []Subject{{Name: "registry.example/traefik", Digest: digestA}},
		Base:     Base{Ref: "docker.io/library/traefik:v3.6", Digest: digestB},
		Plugins: []Plugin{
			{Alias: "demo", Module: "github.com/traefik/plugindemo", Source: plugin.Source{Git: "https://github.com/traefik/plugindemo", Ref: "v0.2.2", Commit: commit}, ContentHash: "sha256:" + strings.Repeat("c", 64)},
			{Alias: "geo", Module: "github.com/example/geo", Source: plugin.Source{Version: "v0.3.8", Sum: "h1:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="}},
		},
		BuilderVersion:     "v0.9.0",
		ExternalParameters: map[string]any{"recipe": map[string]any{"path": "recipe.yaml"}, "platforms": []string{"linux/amd64"}},
		StartedOn:          time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	}
}

// decode reads a statement back into generic JSON.
func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("statement is not JSON: %v\n%s", err, b)
	}
	return m
}

// TestProvenance: an in-toto v1 statement with the SLSA v1 predicate; the
// base pinned by digest; a git plugin by URL, ref and commit; a module plugin
// by purl and dirHash; the content hash as a digest entry.
func TestProvenance(t *testing.T) {
	out, err := Provenance(sampleBuild())
	if err != nil {
		t.Fatal(err)
	}
	st := decode(t, out)
	if st["_type"] != "https://in-toto.io/Statement/v1" || st["predicateType"] != ProvenanceType {
		t.Errorf("statement header: %v %v", st["_type"], st["predicateType"])
	}
	subj := st["subject"].([]any)[0].(map[string]any)
	if subj["name"] != "registry.example/traefik" || subj["digest"].(map[string]any)["sha256"] != strings.Repeat("a", 64) {
		t.Errorf("subject: %v", subj)
	}
	pred := st["predicate"].(map[string]any)
	def := pred["buildDefinition"].(map[string]any)
	if def["buildType"] != BuildType {
		t.Errorf("buildType %v", def["buildType"])
	}
	if def["externalParameters"].(map[string]any)["platforms"].([]any)[0] != "linux/amd64" {
		t.Errorf("externalParameters %v", def["externalParameters"])
	}
	deps := def["resolvedDependencies"].([]any)
	if len(deps) != 3 {
		t.Fatalf("resolvedDependencies: %v", deps)
	}
	base := deps[0].(map[string]any)
	if base["uri"] != "oci://docker.io/library/traefik:v3.6" || base["digest"].(map[string]any)["sha256"] != strings.Repeat("b", 64) {
		t.Errorf("base: %v", base)
	}
	git := deps[1].(map[string]any)
	gd := git["digest"].(map[string]any)
	if git["uri"] != "git+https://github.com/traefik/plugindemo@v0.2.2" || gd["gitCommit"] != commit || gd[FilesDigest] != strings.Repeat("c", 64) {
		t.Errorf("git plugin: %v", git)
	}
	if git["annotations"].(map[string]any)["xtraefik.dev/alias"] != "demo" {
		t.Errorf("git plugin annotations: %v", git["annotations"])
	}
	mod := deps[2].(map[string]any)
	if mod["uri"] != "pkg:golang/github.com/example/geo@v0.3.8" || mod["digest"].(map[string]any)["dirHash"] != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Errorf("module plugin: %v", mod)
	}
	run := pred["runDetails"].(map[string]any)
	if run["builder"].(map[string]any)["id"] != DefaultBuilderID || run["metadata"].(map[string]any)["startedOn"] != "2026-01-02T03:04:05Z" {
		t.Errorf("runDetails: %v", run)
	}

	again, err := Provenance(sampleBuild())
	if err != nil || !bytes.Equal(out, again) {
		t.Errorf("same inputs, different statements:\n%s\n%s", out, again)
	}
}

// TestProvenanceRefuses inputs that would not pin what was built.
func TestProvenanceRefuses(t *testing.T) {
	for name, mutate := range map[string]func(*Build){
		"no subject":    func(b *Build) { b.Subjects = nil },
		"no parameters": func(b *Build) { b.ExternalParameters = nil },
		"base digest":   func(b *Build) { b.Base.Digest = "latest" },
		"unpinned plugin": func(b *Build) {
			b.Plugins = []Plugin{{Alias: "x", Module: "example.com/x", Source: plugin.Source{Git: "https://example.com/x"}}}
		},
		"bad module sum":   func(b *Build) { b.Plugins[1].Sum = "h1:short" },
		"short git commit": func(b *Build) { b.Plugins[0].Commit = "abc" },
	} {
		b := sampleBuild()
		mutate(&b)
		if _, err := Provenance(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestVerificationStatement: the verdicts, interpreter, containment and
// Traefik version, under the documented predicate type; ok is false when one
// plugin failed.
func TestVerificationStatement(t *testing.T) {
	v := Verification{
		Subjects:        []Subject{{Name: "registry.example/traefik", Digest: digestA}},
		TraefikVersion:  "v3.6.12",
		VerifierVersion: "v0.9.0",
		RuntimeCheck:    true,
		Interpreter:     "yaegi v0.16.1", InterpreterSource: "binary",
		Plugins: []PluginVerdict{
			{Alias: "demo", Module: "github.com/traefik/plugindemo", Commit: commit, Type: "middleware", Runtime: "yaegi", Interpreter: "yaegi v0.16.1", Status: "OK", OK: true,
				Containment: &Containment{Level: "full", Applied: []string{"user namespace", "seccomp"}}},
			{Alias: "bad", Module: "example.com/bad", Status: "FAIL", Reason: "plugin panicked"},
		},
	}
	out, err := VerificationStatement(v)
	if err != nil {
		t.Fatal(err)
	}
	st := decode(t, out)
	if st["predicateType"] != VerificationType {
		t.Errorf("predicateType %v", st["predicateType"])
	}
	pred := st["predicate"].(map[string]any)
	if pred["traefikVersion"] != "v3.6.12" || pred["ok"] != false || pred["runtimeCheck"] != true ||
		pred["interpreter"] != "yaegi v0.16.1" || pred["interpreterSource"] != "binary" {
		t.Errorf("predicate: %v", pred)
	}
	if pred["verifier"].(map[string]any)["version"] != "v0.9.0" {
		t.Errorf("verifier: %v", pred["verifier"])
	}
	plugins := pred["plugins"].([]any)
	demo := plugins[0].(map[string]any)
	if demo["interpreter"] != "yaegi v0.16.1" || demo["status"] != "OK" || demo["containment"].(map[string]any)["level"] != "full" || demo["commit"] != commit {
		t.Errorf("demo verdict: %v", demo)
	}
	if bad := plugins[1].(map[string]any); bad["status"] != "FAIL" || bad["reason"] != "plugin panicked" {
		t.Errorf("bad verdict: %v", bad)
	}
}
