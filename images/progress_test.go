package images

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/xtraefik/xtraefik/internal/testenv"
)

// TestUploadProgress: Upload and Tag to a real registry tell
// Options.Progress how far they are, for the repository they write, never
// going back, never past the total, and ending with every byte done; a
// second upload, with the image already there, moves only the tag's
// manifest and says nothing short of done.
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
		p := NewPusher(opts)
		if err := p.Upload(ctx(t), repo, res); err != nil {
			t.Fatal(err)
		}
		// The tag goes through the same connection and progress.
		if err := p.Tag(ctx(t), repo+":"+round, res); err != nil {
			t.Fatal(err)
		}
		p.Close()
		if len(got) == 0 {
			if round == "first" {
				t.Fatal("first: no progress")
			}
			continue
		}
		for i := range got {
			if i > 0 && got[i].done < got[i-1].done {
				t.Errorf("%s: progress went back: %v then %v", round, got[i-1], got[i])
			}
			if got[i].done > got[i].total {
				t.Errorf("%s: %d of %d bytes done", round, got[i].done, got[i].total)
			}
		}
		// Again, only the tag's manifest moves.
		if last := got[len(got)-1]; last.done != last.total || round == "first" && last.total < plugin {
			t.Errorf("%s: last update %v, want every byte done (the first time, of at least the plugin layers' %d)", round, last, plugin)
		}
	}
}

// TestPusherTagsWithoutPing: the SBOM and the tags reuse the connection
// (ping, token) their repository's upload set up: attaching an SBOM sends no
// ping and no HEAD of the image, and tagging three references in two
// repositories sends only the three manifests.
func TestPusherTagsWithoutPing(t *testing.T) {
	host := testenv.Registry(t, testenv.RegistryOptions{})
	proxy, log := testenv.RecordingProxy(t, host)
	testenv.PushBase(t, proxy+"/library/traefik:v3", testenv.BaseOptions{OCI: true})
	res, err := Assemble(ctx(t), mustResolve(t, proxy+"/library/traefik:v3", Options{}), demoAddition(t))
	if err != nil {
		t.Fatal(err)
	}
	p := NewPusher(Options{})
	defer p.Close()
	for _, repo := range []string{proxy + "/team/a", proxy + "/team/b"} {
		if err := p.Upload(ctx(t), repo, res); err != nil {
			t.Fatal(err)
		}
	}
	// The SBOM goes through the same connection, with r's own descriptor
	// as its subject (no HEAD of the image).
	log.Reset()
	sbom, err := p.AttachSBOM(ctx(t), proxy+"/team/a", res, testSBOM("pusher"), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range log.Requests() {
		if r.Path == "/v2/" || r.Method == "HEAD" && strings.HasSuffix(r.Path, "/manifests/"+res.Digest.String()) {
			t.Errorf("attaching the SBOM sent %s %s", r.Method, r.Path)
		}
	}
	refs := referrers(t, mustName(t, proxy+"/team/a@"+res.Digest.String()).(name.Digest))
	if len(refs) != 1 || refs[0].Digest != sbom {
		t.Errorf("referrers of the image: %+v, want the SBOM %s", refs, sbom)
	}
	log.Reset()
	for _, ref := range []string{proxy + "/team/a:v1", proxy + "/team/a:v2", proxy + "/team/b:v1"} {
		if err := p.Tag(ctx(t), ref, res); err != nil {
			t.Fatal(err)
		}
	}
	p.Close()
	if err := p.Tag(ctx(t), proxy+"/team/a:v3", res); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Tag after Close: %v", err)
	}
	var got []string
	for _, r := range log.Requests() {
		got = append(got, r.Method+" "+r.Path)
	}
	want := []string{"PUT /v2/team/a/manifests/v1", "PUT /v2/team/a/manifests/v2", "PUT /v2/team/b/manifests/v1"}
	if strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Errorf("tagging sent %q, want %q", got, want)
	}
	for _, tag := range []string{"team/a:v1", "team/a:v2", "team/b:v1"} {
		desc, err := remote.Head(mustName(t, proxy+"/"+tag))
		if err != nil {
			t.Fatalf("%s: %v", tag, err)
		}
		if desc.Digest != res.Digest {
			t.Errorf("%s is %s, want %s", tag, desc.Digest, res.Digest)
		}
	}
}

// TestPusherRetagSkipsPut: pushing an image the repository has already to a
// tag that names it sends a HEAD of the tag and no manifest PUT (the
// registry does less); to a tag that names another image, the PUT moves
// it; to a new tag, the PUT alone.
func TestPusherRetagSkipsPut(t *testing.T) {
	host := testenv.Registry(t, testenv.RegistryOptions{})
	proxy, log := testenv.RecordingProxy(t, host)
	testenv.PushBase(t, proxy+"/library/traefik:v3", testenv.BaseOptions{OCI: true})
	base := mustResolve(t, proxy+"/library/traefik:v3", Options{})
	res, err := Assemble(ctx(t), base, demoAddition(t))
	if err != nil {
		t.Fatal(err)
	}
	push := func(ref string) []string {
		t.Helper()
		p := NewPusher(Options{})
		defer p.Close()
		if err := p.Upload(ctx(t), proxy+"/team/a", res); err != nil {
			t.Fatal(err)
		}
		log.Reset()
		if err := p.Tag(ctx(t), ref, res); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range log.Requests() {
			got = append(got, r.Method+" "+r.Path)
		}
		desc, err := remote.Head(mustName(t, ref))
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		if desc.Digest != res.Digest {
			t.Errorf("%s is %s, want %s", ref, desc.Digest, res.Digest)
		}
		return strings.Split(strings.Join(got, ", "), ", ")
	}
	check := func(what string, got []string, want ...string) {
		t.Helper()
		if strings.Join(got, ", ") != strings.Join(want, ", ") {
			t.Errorf("%s: tagging sent %q, want %q", what, got, want)
		}
	}
	// The first push uploads the image: the tag cannot name it yet.
	check("first push", push(proxy+"/team/a:v1"), "PUT /v2/team/a/manifests/v1")
	check("same image again", push(proxy+"/team/a:v1"), "HEAD /v2/team/a/manifests/v1")
	check("new tag", push(proxy+"/team/a:v2"), "HEAD /v2/team/a/manifests/v2", "PUT /v2/team/a/manifests/v2")
	// Another image took the tag meanwhile: it is moved back.
	other, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(mustName(t, proxy+"/team/a:v1"), other); err != nil {
		t.Fatal(err)
	}
	check("tag moved", push(proxy+"/team/a:v1"), "HEAD /v2/team/a/manifests/v1", "PUT /v2/team/a/manifests/v1")
}

// TestPusherRetagWhereHeadOfTagFails: a registry that refuses a HEAD of a
// tag (some answer 401 or 405 to it) is not asked twice: the tag is PUT,
// as before the re-push learned to skip it.
func TestPusherRetagWhereHeadOfTagFails(t *testing.T) {
	host := testenv.Registry(t, testenv.RegistryOptions{})
	recorded, log := testenv.RecordingProxy(t, host)
	backend := &url.URL{Scheme: "http", Host: recorded}
	proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(backend); r.Out.Host = r.In.Host }}
	refuse := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead && strings.Contains(r.URL.Path, "/manifests/") && !strings.Contains(r.URL.Path, "sha256:") {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		proxy.ServeHTTP(w, r)
	})
	srv := httptest.NewServer(refuse)
	t.Cleanup(srv.Close)
	reg := strings.TrimPrefix(srv.URL, "http://")

	testenv.PushBase(t, recorded+"/library/traefik:v3", testenv.BaseOptions{OCI: true})
	base := mustResolve(t, recorded+"/library/traefik:v3", Options{})
	res, err := Assemble(ctx(t), base, demoAddition(t))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		p := NewPusher(Options{})
		if err := p.Upload(ctx(t), reg+"/team/a", res); err != nil {
			t.Fatal(err)
		}
		log.Reset()
		if err := p.Tag(ctx(t), reg+"/team/a:v1", res); err != nil {
			t.Fatalf("push %d: %v", i+1, err)
		}
		p.Close()
		puts := 0
		for _, r := range log.Requests() {
			if r.Method == http.MethodPut && r.Path == "/v2/team/a/manifests/v1" {
				puts++
			}
		}
		if puts != 1 {
			t.Errorf("push %d: the tag was PUT %d times, want once: %v", i+1, puts, log.Requests())
		}
	}
	desc, err := remote.Head(mustName(t, recorded+"/team/a:v1"))
	if err != nil || desc.Digest != res.Digest {
		t.Errorf("team/a:v1 is %v (%v), want %s", desc, err, res.Digest)
	}
}
