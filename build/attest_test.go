package build

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xtraefik/xtraefik/internal/attest"
	"github.com/xtraefik/xtraefik/internal/testenv"
	"github.com/xtraefik/xtraefik/recipe"
)

// TestProvenanceLocalSources: a plugin from a file:// git repository keeps
// its commit in the provenance (the gitCommit digest of its resolved
// dependency), and neither it nor an OCI layout base leaks the host path
// it was read from: they are named by base name.
func TestProvenanceLocalSources(t *testing.T) {
	const module = "example.com/localdemo"
	repoDir := filepath.Join(t.TempDir(), "localdemo-src")
	repo := testenv.NewRepo(t, repoDir)
	repo.WriteFile(".traefik.yml", "displayName: Demo\ntype: middleware\nimport: "+module+"\nsummary: a demo\ntestData: {}\n")
	repo.WriteFile("go.mod", "module "+module+"\n\ngo 1.22\n")
	repo.WriteFile("demo.go", "package localdemo\n")
	commit := repo.Commit("plugin")
	repo.Tag("v1.0.0")

	base := layoutBase(t)
	base.Tag = ""
	r, err := recipe.Parse("recipe.yaml", []byte("base: "+base.String()+"\nplugins:\n  demo:\n    module: "+module+
		"\n    git: file://"+filepath.ToSlash(repoDir)+"\n    ref: v1.0.0\n"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := resolve(t.Context(), nil, &options{Recipe: r, CacheDir: t.TempDir(), Env: hermeticEnv})
	if err != nil {
		t.Fatal(err)
	}
	b := provenanceFor(&result{Resolution: res}, time.Unix(1700000000, 0).UTC())
	b.Subjects = []attest.Subject{{Name: "registry.example/traefik", Digest: res.Base.Digest.String()}}
	doc, err := attest.Provenance(*b)
	if err != nil {
		t.Fatal(err)
	}
	for _, leak := range []string{repoDir, filepath.Dir(repoDir), base.Path, filepath.Dir(base.Path), "oci://oci:"} {
		if strings.Contains(string(doc), leak) {
			t.Errorf("the provenance holds %q:\n%s", leak, doc)
		}
	}
	var st struct {
		Predicate struct {
			BuildDefinition struct {
				ResolvedDependencies []struct {
					URI    string            `json:"uri"`
					Name   string            `json:"name"`
					Digest map[string]string `json:"digest"`
				} `json:"resolvedDependencies"`
			} `json:"buildDefinition"`
		} `json:"predicate"`
	}
	if err := json.Unmarshal(doc, &st); err != nil {
		t.Fatal(err)
	}
	deps := st.Predicate.BuildDefinition.ResolvedDependencies
	if len(deps) != 2 {
		t.Fatalf("resolved dependencies %+v, want the base and the plugin", deps)
	}
	wantBase := "oci-layout:" + filepath.Base(base.Path) + "@" + res.Base.Digest.String()
	if b := deps[0]; b.URI != wantBase || b.Name != "oci:"+filepath.Base(base.Path) || b.Digest["sha256"] != res.Base.Digest.Hex {
		t.Errorf("base %+v, want uri %s named oci:%s", b, wantBase, filepath.Base(base.Path))
	}
	if p := deps[1]; p.Digest["gitCommit"] != commit || p.URI != "git+local:localdemo-src@v1.0.0" || p.Name != module {
		t.Errorf("plugin %+v, want gitCommit %s and uri git+local:localdemo-src@v1.0.0", p, commit)
	}
}
