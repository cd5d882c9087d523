package build

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/xtraefik/xtraefik/internal/testenv"
	"github.com/xtraefik/xtraefik/recipe"
)

// recorder is a custom publisher that records what it got, and can fail,
// undo and refuse.
type recorder struct {
	name      string
	fail      error
	refuse    error
	got       []string // "tag digest kind"
	undone    bool
	validated bool
}

func (r *recorder) String() string { return r.name }

func (r *recorder) Validate(context.Context) error {
	r.validated = true
	return r.refuse
}

func (r *recorder) Publish(_ context.Context, a Artifact, tag string) (name.Reference, error) {
	if r.fail != nil {
		return nil, r.fail
	}
	d, err := a.Digest()
	if err != nil {
		return nil, err
	}
	kind := "image"
	if _, ok := a.(v1.ImageIndex); ok {
		kind = "index"
	}
	r.got = append(r.got, tag+" "+d.String()+" "+kind)
	return name.ParseReference("example.com/" + r.name + "@" + d.String())
}

func (r *recorder) Undo() error {
	r.undone = true
	return nil
}

// TestPublishers: custom publishers get the image after the built-in
// outputs, as an index for an index base, and their references are
// reported; one that fails undoes the publishers before it and the local
// outputs, and stops the later ones; one that refuses in Validate stops
// the build before anything is fetched or written.
func TestPublishers(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "base")
	testenv.WriteBaseLayout(t, base, "v3.6", testenv.BaseOptions{OCI: true})
	r := &recipe.Recipe{Base: "oci:" + base + ":v3.6",
		Plugins: map[string]*recipe.Plugin{"team": {Module: "example.com/fixtures/vendored-ok", Path: filepath.Join(testenv.FixturesDir(t), "vendored-ok")}}}
	env := map[string]string{"HOME": filepath.Join(dir, "home"), "GOPROXY": "off"}
	s, err := Open(Config{Recipe: r, CacheDir: filepath.Join(dir, "cache"), Env: func(k string) string { return env[k] }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	first, second := &recorder{name: "first"}, &recorder{name: "second"}
	res, err := s.Build(ctx, BuildRequest{Outputs: Outputs{OCILayout: filepath.Join(dir, "out"), Tag: "team/traefik:v1"}, Publishers: []Publisher{first, second}})
	if err != nil {
		t.Fatal(err)
	}
	d := res.Image.Digest.String()
	if want := []string{"team/traefik:v1 " + d + " index"}; len(first.got) != 1 || first.got[0] != want[0] || len(second.got) != 1 {
		t.Errorf("the publishers got %q and %q, want %q", first.got, second.got, want)
	}
	if got := res.Report.Image.Published; len(got) != 2 || got[0] != "example.com/first@"+d || got[1] != "example.com/second@"+d {
		t.Errorf("reported %q", got)
	}
	if res.Image.Index == nil || res.PluginsImage != nil {
		t.Errorf("result %+v", res)
	}

	// A failing publisher: the one before it is undone, the one after it
	// is not called, the layout is not left behind, and no image is
	// handed out.
	first, third := &recorder{name: "first"}, &recorder{name: "third"}
	failing := &recorder{name: "failing", fail: errors.New("the promotion service is down")}
	out := filepath.Join(dir, "out2")
	res, err = s.Build(ctx, BuildRequest{Outputs: Outputs{OCILayout: out}, Publishers: []Publisher{first, failing, third}})
	if err == nil || !strings.Contains(err.Error(), "publisher failing: the promotion service is down") {
		t.Fatalf("a failing publisher: %v", err)
	}
	if !first.undone || len(third.got) != 0 || third.undone {
		t.Errorf("first undone %v, third got %q", first.undone, third.got)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the layout stayed after a publisher failed: %v", err)
	}
	if res.Image != nil || res.Report.OK {
		t.Errorf("a failed build handed out %+v", res.Image)
	}

	// A publisher that refuses in Validate stops the build first.
	refusing := &recorder{name: "refusing", refuse: errors.New("no credentials for the promotion service")}
	out = filepath.Join(dir, "out3")
	res, err = s.Build(ctx, BuildRequest{Outputs: Outputs{OCILayout: out}, Publishers: []Publisher{refusing}})
	if err == nil || !strings.Contains(err.Error(), "publisher refusing: no credentials") || res.Report.Base != nil {
		t.Fatalf("a refusing publisher: %v (base resolved: %v)", err, res.Report.Base)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused build wrote %s", out)
	}
}
