package images

import (
	"testing"

	"github.com/xtraefik/xtraefik/internal/testenv"
)

// TestUploadProgress: Upload to a real registry tells Options.Progress how
// far it is, for the repository it writes, never going back, and ending with
// every byte done; a second upload, with the image already there, moves
// nothing and says nothing short of done.
func TestUploadProgress(t *testing.T) {
	host := testenv.Registry(t, testenv.RegistryOptions{})
	testenv.PushBase(t, host+"/library/traefik:v3", testenv.BaseOptions{OCI: true})
	res, err := Assemble(ctx(t), mustResolve(t, host+"/library/traefik:v3", Options{}), demoAddition(t))
	if err != nil {
		t.Fatal(err)
	}
	var plugin int64 // the bytes of the new layers: at least these move
	for _, p := range res.Platforms {
		img, err := res.Image(p.Platform)
		if err != nil {
			t.Fatal(err)
		}
		layers, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		size, err := layers[len(layers)-1].Size()
		if err != nil {
			t.Fatal(err)
		}
		plugin += size
	}
	repo := host + "/team/traefik"
	for _, round := range []string{"first", "again"} {
		type update struct{ done, total int64 }
		var got []update
		opts := Options{Progress: func(r string, done, total int64) {
			if r != repo {
				t.Errorf("%s: progress for %q, want %q", round, r, repo)
			}
			got = append(got, update{done, total})
		}}
		if err := Upload(ctx(t), repo, res, opts); err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 {
			if round == "first" {
				t.Fatal("first: no progress")
			}
			continue
		}
		for i := 1; i < len(got); i++ {
			if got[i].done < got[i-1].done {
				t.Errorf("%s: progress went back: %v then %v", round, got[i-1], got[i])
			}
		}
		if last := got[len(got)-1]; last.done != last.total || last.total < plugin {
			t.Errorf("%s: last update %v, want every byte done of at least the plugin layers' %d", round, last, plugin)
		}
	}
}
