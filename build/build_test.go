package build

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/xtraefik/xtraefik/internal/testenv"
	"github.com/xtraefik/xtraefik/recipe"
)

func TestEpochFromEnv(t *testing.T) {
	tests := []struct {
		in      string
		want    *time.Time
		wantErr bool
	}{
		{in: ""},
		{in: "0", want: ptr(time.Unix(0, 0).UTC())},
		{in: "1700000000", want: ptr(time.Unix(1700000000, 0).UTC())},
		{in: "-1", wantErr: true},
		{in: "yesterday", wantErr: true},
	}
	for _, tt := range tests {
		got, err := epochFromEnv(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("epochFromEnv(%q) error = %v", tt.in, err)
			continue
		}
		if (got == nil) != (tt.want == nil) || (got != nil && !got.Equal(*tt.want)) {
			t.Errorf("epochFromEnv(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// TestProvenance: source and revision come from the recipe's clean git work
// tree, are dropped when it is dirty, and recipe annotations win.
func TestProvenance(t *testing.T) {
	dir := t.TempDir()
	repo := testenv.NewRepo(t, dir)
	repo.WriteFile("recipe.yaml", "base: x\n")
	commit := repo.Commit("recipe")
	repo.Git("remote", "add", "origin", "https://user:secret@git.example/platform/traefik.git")
	r := &recipe.Recipe{Path: filepath.Join(dir, "recipe.yaml")}
	res := &resolution{Recipe: r, Epoch: time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC), Traefik: Target{Version: "v3.6.12"}}

	a := provenance(res)
	want := map[string]string{
		AnnotationCreated:  "2024-05-06T07:08:09Z",
		AnnotationVersion:  "v3.6.12",
		AnnotationSource:   "https://git.example/platform/traefik.git",
		AnnotationRevision: commit,
	}
	for k, v := range want {
		if a[k] != v {
			t.Errorf("%s = %q, want %q", k, a[k], v)
		}
	}

	repo.Git("remote", "remove", "origin")
	if a := provenance(res); a[AnnotationRevision] != commit {
		t.Errorf("no origin: revision %q, want %q", a[AnnotationRevision], commit)
	} else if v, ok := a[AnnotationSource]; ok {
		t.Errorf("no origin: source annotated as %q, want none", v)
	}

	if err := os.WriteFile(filepath.Join(dir, "recipe.yaml"), []byte("base: y\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res.Traefik.Version = ""
	if a := provenance(res); a[AnnotationRevision] != "" || a[AnnotationVersion] != "" {
		t.Errorf("dirty tree or unknown version still annotated: %v", a)
	}
	r.Annotations = map[string]string{AnnotationSource: "https://example.com/golden"}
	if a := provenance(res); a[AnnotationSource] != "https://example.com/golden" {
		t.Errorf("recipe annotation did not win: %v", a)
	}
}
