// Package policies holds the admission policies for images xtraefik signs
// (README.md): a CUE and a Rego policy for `cosign verify-attestation
// --policy`, a sigstore policy-controller ClusterImagePolicy and a Kyverno
// ClusterPolicy. The tests run the real cosign client with those files
// against real images built and signed by xtraefik in a loopback registry,
// and validate the manifests against their projects' CRD schemas offline.
package policies

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"gopkg.in/yaml.v3"

	"github.com/xtraefik/xtraefik/internal/attest"
	"github.com/xtraefik/xtraefik/internal/testenv"
)

const (
	demoModule  = "github.com/traefik/plugindemo"
	demoVersion = "v0.2.2"
	demoGit     = "https://github.com/traefik/plugindemo.git"
	// placeholder is what the manifests hold where the team's key goes.
	placeholder = "TEAM_PUBLIC_KEY"
)

// fixture is a loopback registry with images built by the real xtraefik
// binary, and the team's key pair.
type fixture struct {
	t        *testing.T
	cosign   string
	registry string
	key, pub string
	// pubPEM is the public key file's content.
	pubPEM string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, cosign: testenv.Cosign(t)}
	f.registry = testenv.Registry(t, testenv.RegistryOptions{})
	f.key, f.pub = testenv.CosignKeyPair(t, f.cosign, "s3cret")
	data, err := os.ReadFile(f.pub)
	if err != nil {
		t.Fatal(err)
	}
	f.pubPEM = string(data)
	return f
}

// verify runs the two checks an admission controller makes, as cosign runs
// them: the image's signature by pub, then the verification record (signed
// by pub) against policy. It returns the combined output and whether both
// passed.
func (f *fixture) verify(ref, pub, policy string) (string, bool) {
	f.t.Helper()
	r := testenv.RunCosign(f.t, f.cosign, f.t.TempDir(), "", "verify", "--key", pub, "--insecure-ignore-tlog", "--allow-http-registry", ref)
	if r.Err != nil {
		return "cosign verify: " + string(r.Stderr), false
	}
	return f.verifyAttestation(ref, pub, policy)
}

func (f *fixture) verifyAttestation(ref, pub, policy string) (string, bool) {
	f.t.Helper()
	// cosign runs in a directory of its own.
	policy, err := filepath.Abs(policy)
	if err != nil {
		f.t.Fatal(err)
	}
	r := testenv.RunCosign(f.t, f.cosign, f.t.TempDir(), "", "verify-attestation", "--key", pub, "--type", attest.VerificationType,
		"--policy", policy, "--insecure-ignore-tlog", "--allow-http-registry", "--allow-insecure-registry", ref)
	return "cosign verify-attestation: " + string(r.Stderr), r.Err == nil
}

// xtraefikBinary builds cmd/xtraefik: the images are made as a user makes them.
func xtraefikBinary(t *testing.T) string {
	t.Helper()
	exe := filepath.Join(t.TempDir(), "xtraefik")
	cmd := exec.Command("go", "build", "-o", exe, "../../cmd/xtraefik")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/xtraefik: %v\n%s", err, out)
	}
	return exe
}

// builder runs xtraefik builds against the fixture's registry, with the
// plugin served by a git daemon on loopback.
type builder struct {
	f   *fixture
	exe string
	dir string
	env []string
}

func newBuilder(f *fixture) *builder {
	t := f.t
	b := &builder{f: f, exe: xtraefikBinary(t), dir: t.TempDir()}
	gitRoot := t.TempDir()
	plugin := testenv.PluginRepo(t, gitRoot, demoModule, demoVersion)
	gitURL := testenv.GitDaemon(t, gitRoot)
	b.env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + b.dir,
		"XDG_CACHE_HOME=" + filepath.Join(b.dir, "xdg"),
		"XTRAEFIK_GIT_MIRRORS=" + demoGit + "=" + gitURL + plugin.Path,
		"XTRAEFIK_REGISTRY_MIRRORS=docker.io=" + f.registry,
		"COSIGN_PASSWORD=s3cret",
	}
	return b
}

// build builds the demo recipe on base (a docker.io/library/traefik tag the
// mirror sends to the fixture's registry) and pushes it to ref, with args.
func (b *builder) build(base, ref string, args ...string) string {
	t := b.f.t
	t.Helper()
	rp := filepath.Join(b.dir, strings.NewReplacer("/", "_", ":", "_").Replace(ref)+".yaml")
	recipe := "base: docker.io/library/traefik:" + base + "\nplugins:\n  demo:\n    module: " + demoModule +
		"\n    git: " + demoGit + "\n    ref: " + demoVersion + "\n"
	if err := os.WriteFile(rp, []byte(recipe), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(b.exe, append([]string{"build", "-f", rp, "--push", ref, "--cache-dir", filepath.Join(b.dir, "cache")}, args...)...)
	cmd.Env = b.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("xtraefik build %s: %v\n%s\n%s", ref, err, stdout.String(), stderr.String())
	}
	return stdout.String() + stderr.String()
}

// digest is the image digest a build printed.
func digest(t *testing.T, out string) string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if d, ok := strings.CutPrefix(l, "digest: "); ok {
			return d
		}
	}
	t.Fatalf("no digest in the build's output:\n%s", out)
	return ""
}

// TestPoliciesWithCosign: with the CUE and the Rego policy, and with the key
// and the Rego rules taken out of the ClusterImagePolicy, the real cosign
// accepts an image xtraefik built, verified and signed; refuses one whose
// verdict is approximate (--accept-approximate-verdict on a base whose
// Traefik release xtraefik's interpreter table does not know), one pushed
// unsigned, and the verified one checked with another key.
func TestPoliciesWithCosign(t *testing.T) {
	f := newFixture(t)
	b := newBuilder(f)
	plats := []v1.Platform{{OS: "linux", Architecture: "amd64"}}
	testenv.PushBase(t, f.registry+"/library/traefik:v3.6", testenv.BaseOptions{OCI: true, Platforms: plats})
	testenv.PushBase(t, f.registry+"/library/traefik:v3.99", testenv.BaseOptions{OCI: true, Platforms: plats, Version: "v3.99.0"})
	// Builds are reproducible and signatures attach to a digest: the
	// unsigned image must be another image, so it has another base.
	testenv.PushBase(t, f.registry+"/library/traefik:v3.6.11", testenv.BaseOptions{OCI: true, Platforms: plats, Version: "v3.6.11"})

	verified := f.registry + "/platform/traefik:verified"
	verifiedOut := b.build("v3.6", verified, "--sign-key", f.key)
	if !strings.Contains(verifiedOut, "signed: ") {
		t.Fatalf("the verified build does not say it signed:\n%s", verifiedOut)
	}
	approx := f.registry + "/platform/traefik:approximate"
	if out := b.build("v3.99", approx, "--sign-key", f.key, "--accept-approximate-verdict"); !strings.Contains(out, "APPROXIMATE") {
		t.Fatalf("the build on an unknown Traefik release gave no approximate verdict:\n%s", out)
	}
	unsigned := f.registry + "/platform/traefik:unsigned"
	if d := digest(t, b.build("v3.6.11", unsigned)); d == digest(t, verifiedOut) {
		t.Fatalf("the unsigned image is the verified one (%s)", d)
	}

	cipKey, cipRego := clusterImagePolicyParts(t, f.pubPEM)
	_, otherPub := testenv.CosignKeyPair(t, f.cosign, "x")
	policies := map[string]struct{ pub, policy string }{
		"cue":                 {f.pub, "verification.cue"},
		"rego":                {f.pub, "verification.rego"},
		"clusterimagepolicy":  {cipKey, cipRego},
		"rego-with-other-key": {otherPub, "verification.rego"},
	}
	for name, p := range policies {
		t.Run(name, func(t *testing.T) {
			out, ok := f.verify(verified, p.pub, p.policy)
			if p.pub == otherPub {
				if ok || !strings.Contains(out, "cosign verify:") {
					t.Errorf("an image signed by the team's key passed with another key:\n%s", out)
				}
				return
			}
			if !ok {
				t.Errorf("the verified image is refused:\n%s", out)
			}
			out, ok = f.verify(approx, p.pub, p.policy)
			if ok {
				t.Errorf("the image with an approximate verdict is accepted")
			}
			// The refusal is the record's: the image itself is signed.
			if !strings.HasPrefix(out, "cosign verify-attestation:") {
				t.Errorf("the approximate image was refused before its record was read:\n%s", out)
			}
			if strings.HasSuffix(p.policy, ".cue") && !strings.Contains(out, "predicate.plugins.0.approximate: conflicting values true and false") {
				t.Errorf("the CUE refusal does not name the approximate verdict:\n%s", out)
			}
			if out, ok := f.verify(unsigned, p.pub, p.policy); ok || !strings.Contains(out, "no signatures found") {
				t.Errorf("the unsigned image: accepted=%v\n%s", ok, out)
			}
			// Its record alone is missing too: a signature is not enough.
			if out, ok := f.verifyAttestation(unsigned, p.pub, p.policy); ok || !strings.Contains(out, "no matching attestations") {
				t.Errorf("the unsigned image's record: accepted=%v\n%s", ok, out)
			}
		})
	}
}

// TestPoliciesRefuseEachBadRecord attaches, with the team's key, a record
// that breaks exactly one rule to an image of its own, and checks that the
// CUE and the Rego policy both refuse it (and the good record passes, so
// that each refusal is that rule's).
func TestPoliciesRefuseEachBadRecord(t *testing.T) {
	f := newFixture(t)
	good := `{"verifier":{"id":"https://github.com/xtraefik/xtraefik"},"traefikVersion":"v3.6.12","ok":true,"runtimeCheck":false,` +
		`"plugins":[{"alias":"demo","module":"github.com/traefik/plugindemo","status":"OK","ok":true}]}`
	for _, tc := range []struct {
		name, old, new, cueSays string
	}{
		{"good", "", "", ""},
		{"approximate", `"ok":true}]`, `"ok":true,"approximate":true}]`, "predicate.plugins.0.approximate: conflicting values true and false"},
		{"approximate-not-a-bool", `"ok":true}]`, `"ok":true,"approximate":"no"}]`, "predicate.plugins.0.approximate: conflicting values"},
		{"plugin-failed", `"status":"OK","ok":true`, `"status":"FAIL","ok":false`, `predicate.plugins.0.status: conflicting values "FAIL" and "OK"`},
		{"plugin-unverified", `"status":"OK"`, `"status":"UNVERIFIED"`, `predicate.plugins.0.status: conflicting values "UNVERIFIED" and "OK"`},
		{"plugin-without-status", `"status":"OK",`, ``, "predicate.plugins.0.status: field is required but not present"},
		{"plugin-without-ok", `"status":"OK","ok":true`, `"status":"OK"`, "predicate.plugins.0.ok: field is required but not present"},
		{"record-not-ok", `"ok":true,"runtimeCheck"`, `"ok":false,"runtimeCheck"`, "predicate.ok: conflicting values false and true"},
		{"no-traefik-version", `"traefikVersion":"v3.6.12",`, ``, "predicate.traefikVersion: field is required but not present"},
		{"empty-traefik-version", `"traefikVersion":"v3.6.12"`, `"traefikVersion":""`, `predicate.traefikVersion: invalid value ""`},
		{"traefik-version-not-a-release", `"traefikVersion":"v3.6.12"`, `"traefikVersion":"v3.6"`, `predicate.traefikVersion: invalid value "v3.6"`},
		{"no-plugins", `"plugins":[{"alias":"demo","module":"github.com/traefik/plugindemo","status":"OK","ok":true}]`, `"plugins":[]`, "predicate.plugins: incompatible list lengths (0 and 1)"},
		{"plugins-missing", `,"plugins":[{"alias":"demo","module":"github.com/traefik/plugindemo","status":"OK","ok":true}]`, ``, "predicate.plugins: field is required but not present"},
		{"one-of-two-failed", `"ok":true}]`, `"ok":true},{"module":"example.com/bad","status":"FAIL","ok":false}]`, "predicate.plugins.1."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pred := good
			if tc.old != "" {
				if !strings.Contains(pred, tc.old) {
					t.Fatalf("fixture: %q not in the record", tc.old)
				}
				pred = strings.Replace(pred, tc.old, tc.new, 1)
			}
			file := filepath.Join(t.TempDir(), "predicate.json")
			if err := os.WriteFile(file, []byte(pred), 0o644); err != nil {
				t.Fatal(err)
			}
			// An image of its own: attestations attach to a digest.
			ref := f.registry + "/crafted/" + tc.name + ":v1"
			testenv.PushBase(t, ref, testenv.BaseOptions{OCI: true, Single: true, Version: tc.name})
			r := testenv.RunCosign(t, f.cosign, t.TempDir(), "s3cret", "attest", "--key", f.key, "--type", attest.VerificationType,
				"--predicate", file, "--tlog-upload=false", "--allow-http-registry", "--allow-insecure-registry", ref)
			if r.Err != nil {
				t.Fatalf("cosign attest: %v\n%s", r.Err, r.Stderr)
			}
			for _, policy := range []string{"verification.cue", "verification.rego"} {
				out, ok := f.verifyAttestation(ref, f.pub, policy)
				switch {
				case tc.cueSays == "" && !ok:
					t.Errorf("%s refuses the good record:\n%s", policy, out)
				case tc.cueSays != "" && ok:
					t.Errorf("%s accepts the record with %s", policy, tc.name)
				case tc.cueSays != "" && policy == "verification.cue" && !strings.Contains(out, tc.cueSays):
					t.Errorf("%s refuses the record with %s, but not for %s:\n%s", policy, tc.name, tc.cueSays, out)
				}
			}
		})
	}
}

// clusterImagePolicyParts returns, from clusterimagepolicy.yaml with the
// team's key put in, the key of each authority (checked to be the same, as
// a file) and the attestation policy as a file cosign runs: it is checked
// to be verification.rego in policy-controller's package and rule
// (data.sigstore.isCompliant), and turned back into cosign's
// (data.signature.allow).
func clusterImagePolicyParts(t *testing.T, pubPEM string) (keyFile, regoFile string) {
	t.Helper()
	var cip struct {
		Spec struct {
			Authorities []struct {
				Name string `yaml:"name"`
				Key  struct {
					Data string `yaml:"data"`
				} `yaml:"key"`
				Attestations []struct {
					PredicateType string `yaml:"predicateType"`
					Policy        struct {
						Type string `yaml:"type"`
						Data string `yaml:"data"`
					} `yaml:"policy"`
				} `yaml:"attestations"`
			} `yaml:"authorities"`
			Policy struct {
				Type string `yaml:"type"`
				Data string `yaml:"data"`
			} `yaml:"policy"`
		} `yaml:"spec"`
	}
	decodeWithKey(t, "clusterimagepolicy.yaml", pubPEM, &cip)
	rego, err := os.ReadFile("verification.rego")
	if err != nil {
		t.Fatal(err)
	}
	body := string(rego[bytes.Index(rego, []byte("package signature")):])
	forPC := strings.NewReplacer(rulesForCosign[0], rulesForPC[0], rulesForCosign[1], rulesForPC[1], rulesForCosign[2], rulesForPC[2]).Replace(body)
	dir := t.TempDir()
	for _, a := range cip.Spec.Authorities {
		if strings.TrimSpace(a.Key.Data) != strings.TrimSpace(pubPEM) {
			t.Errorf("clusterimagepolicy.yaml: authority %s: the key is not the team's:\n%s", a.Name, a.Key.Data)
		}
		for _, at := range a.Attestations {
			if at.PredicateType != attest.VerificationType || at.Policy.Type != "rego" {
				t.Errorf("clusterimagepolicy.yaml: authority %s checks %s with %s", a.Name, at.PredicateType, at.Policy.Type)
			}
			if at.Policy.Data != forPC {
				t.Errorf("clusterimagepolicy.yaml: the attestation policy is not verification.rego in package sigstore:\n%s", at.Policy.Data)
			}
			back := strings.NewReplacer(rulesForPC[0], rulesForCosign[0], rulesForPC[1], rulesForCosign[1], rulesForPC[2], rulesForCosign[2]).Replace(at.Policy.Data)
			regoFile = filepath.Join(dir, "inline.rego")
			if err := os.WriteFile(regoFile, []byte(back), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(cip.Spec.Authorities) != 2 || regoFile == "" {
		t.Fatalf("clusterimagepolicy.yaml: want a signature and a verification authority, got %+v", cip.Spec.Authorities)
	}
	for _, name := range []string{"signature", "verification"} {
		if !strings.Contains(cip.Spec.Policy.Data, `"authorityMatches", "`+name+`"`) {
			t.Errorf("clusterimagepolicy.yaml: the policy does not require authority %s to match", name)
		}
	}
	keyFile = filepath.Join(dir, "cip.pub")
	if err := os.WriteFile(keyFile, []byte(cip.Spec.Authorities[0].Key.Data), 0o644); err != nil {
		t.Fatal(err)
	}
	return keyFile, regoFile
}

// The package and rule each evaluator queries: cosign data.signature.allow,
// policy-controller data.sigstore.isCompliant.
var (
	rulesForCosign = [3]string{"package signature", "default allow := false", "allow if count(deny) == 0"}
	rulesForPC     = [3]string{"package sigstore", "default isCompliant := false", "isCompliant if count(deny) == 0"}
)

// decodeWithKey decodes a manifest after putting the team's key (a PEM
// block) where it holds the placeholder's line, at that line's indentation.
func decodeWithKey(t *testing.T, file, pubPEM string, v any) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(l)
		indent := l[:len(l)-len(strings.TrimLeft(l, " "))]
		switch {
		case trimmed == placeholder:
			continue
		case trimmed == "-----BEGIN PUBLIC KEY-----":
			for _, k := range strings.Split(strings.TrimSpace(pubPEM), "\n") {
				lines = append(lines, indent+k)
			}
			continue
		case trimmed == "-----END PUBLIC KEY-----":
			continue
		}
		lines = append(lines, l)
	}
	if err := yaml.Unmarshal([]byte(strings.Join(lines, "\n")), v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

// TestKyvernoPolicy checks what kubectl-validate cannot: both key entries
// take the team's key, the attestation is the verification record, and each
// rule of the CUE policy has a condition.
func TestKyvernoPolicy(t *testing.T) {
	var cp struct {
		Spec struct {
			Rules []struct {
				VerifyImages []struct {
					FailureAction string `yaml:"failureAction"`
					Required      bool   `yaml:"required"`
					Attestors     []struct {
						Entries []struct {
							Keys struct {
								PublicKeys string `yaml:"publicKeys"`
								Rekor      struct {
									IgnoreTlog bool `yaml:"ignoreTlog"`
								} `yaml:"rekor"`
							} `yaml:"keys"`
						} `yaml:"entries"`
					} `yaml:"attestors"`
					Attestations []struct {
						Type      string `yaml:"type"`
						Attestors []struct {
							Entries []struct {
								Keys struct {
									PublicKeys string `yaml:"publicKeys"`
								} `yaml:"keys"`
							} `yaml:"entries"`
						} `yaml:"attestors"`
						Conditions []struct {
							All []struct {
								Key      string `yaml:"key"`
								Operator string `yaml:"operator"`
							} `yaml:"all"`
						} `yaml:"conditions"`
					} `yaml:"attestations"`
				} `yaml:"verifyImages"`
			} `yaml:"rules"`
		} `yaml:"spec"`
	}
	const pem = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n"
	decodeWithKey(t, "kyverno-clusterpolicy.yaml", pem, &cp)
	if len(cp.Spec.Rules) != 1 || len(cp.Spec.Rules[0].VerifyImages) != 1 {
		t.Fatalf("want one rule with one verifyImages entry: %+v", cp.Spec.Rules)
	}
	vi := cp.Spec.Rules[0].VerifyImages[0]
	if vi.FailureAction != "Enforce" || !vi.Required {
		t.Errorf("failureAction %q, required %v: the policy would only audit", vi.FailureAction, vi.Required)
	}
	keys := 0
	for _, a := range vi.Attestors {
		for _, e := range a.Entries {
			keys++
			if strings.TrimSpace(e.Keys.PublicKeys) != strings.TrimSpace(pem) || !e.Keys.Rekor.IgnoreTlog {
				t.Errorf("image attestor: key %q, ignoreTlog %v", e.Keys.PublicKeys, e.Keys.Rekor.IgnoreTlog)
			}
		}
	}
	if len(vi.Attestations) != 1 || vi.Attestations[0].Type != attest.VerificationType {
		t.Fatalf("attestations: %+v", vi.Attestations)
	}
	at := vi.Attestations[0]
	for _, a := range at.Attestors {
		for _, e := range a.Entries {
			keys++
			if strings.TrimSpace(e.Keys.PublicKeys) != strings.TrimSpace(pem) {
				t.Errorf("attestation attestor: key %q", e.Keys.PublicKeys)
			}
		}
	}
	if keys != 2 {
		t.Errorf("%d key entries, want 2 (the image's signature and the record's)", keys)
	}
	var conds string
	for _, c := range at.Conditions {
		for _, a := range c.All {
			conds += a.Key + "\n"
		}
	}
	for _, want := range []string{"traefikVersion", "ok ||", "length(plugins", "status != 'OK'", "ok != `true`", "approximate != null && approximate != `false`"} {
		if !strings.Contains(conds, want) {
			t.Errorf("no condition on %q:\n%s", want, conds)
		}
	}
}

// TestManifestsAgainstCRDs validates both manifests with kubectl-validate
// against the CRDs in testdata/crds (policy-controller v0.15.1, Kyverno
// v1.19.0): no cluster, no download.
func TestManifestsAgainstCRDs(t *testing.T) {
	kv := testenv.KubectlValidate(t)
	for _, m := range []string{"clusterimagepolicy.yaml", "kyverno-clusterpolicy.yaml"} {
		cmd := exec.Command(kv, "--local-crds", "testdata/crds", "--version", "1.30", m)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "OK") {
			t.Errorf("kubectl-validate %s: %v\n%s", m, err, out)
		}
	}
	// A misspelt field is refused: the schemas are the ones in use.
	for m, typo := range map[string][2]string{
		"clusterimagepolicy.yaml":    {"predicateType:", "predicateTyp:"},
		"kyverno-clusterpolicy.yaml": {"conditions:", "condition:"},
	} {
		data, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		bad := filepath.Join(t.TempDir(), m)
		if err := os.WriteFile(bad, bytes.Replace(data, []byte(typo[0]), []byte(typo[1]), 1), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(kv, "--local-crds", "testdata/crds", "--version", "1.30", bad).CombinedOutput()
		if err == nil || !strings.Contains(string(out), strings.TrimSuffix(typo[1], ":")+": Invalid value: value provided for unknown field") {
			t.Errorf("kubectl-validate accepts %s with %s: %v\n%s", m, typo[1], err, out)
		}
	}
}
