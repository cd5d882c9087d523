package verify

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xtraefik/xtraefik/internal/plugin"
	"github.com/xtraefik/xtraefik/internal/sandbox"
	"github.com/xtraefik/xtraefik/internal/testenv"
)

// TestCacheKeyCoversEveryInput: changing anything that decides a verdict
// gives another key; the same inputs give the same key.
func TestCacheKeyCoversEveryInput(t *testing.T) {
	c := testenv.Corpus()[0]
	base := plugin.Plugin{Alias: "demo", Module: c.Module, Files: testenv.CorpusFiles(t, c), Hash: "sha256:aa"}
	other := plugin.Plugin{Alias: "other", Module: "example.com/other", Hash: "sha256:bb"}
	opts := Options{TraefikVersion: "v3.6.12", Timeout: DefaultTimeout, MemoryLimit: DefaultMemoryLimit}
	key := func(p plugin.Plugin, all []plugin.Plugin, interp string, o Options, self string) string {
		k, err := cacheKey(p, all, interp, newPlan(o, nil).keyTraefik(false), o, self)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	all := []plugin.Plugin{base, other}
	want := key(base, all, "yaegi v0.16.1", opts, "v1")
	if again := key(base, []plugin.Plugin{other, base}, "yaegi v0.16.1", opts, "v1"); again != want {
		t.Error("the key depends on plugin order")
	}
	edit := func(f func(p *plugin.Plugin, all []plugin.Plugin, interp *string, o *Options, self *string) []plugin.Plugin) string {
		p, o, interp, self := base, opts, "yaegi v0.16.1", "v1"
		all := f(&p, []plugin.Plugin{base, other}, &interp, &o, &self)
		if all == nil {
			all = []plugin.Plugin{p, other}
		}
		return key(p, all, interp, o, self)
	}
	for name, f := range map[string]func(*plugin.Plugin, []plugin.Plugin, *string, *Options, *string) []plugin.Plugin{
		"files": func(p *plugin.Plugin, _ []plugin.Plugin, _ *string, _ *Options, _ *string) []plugin.Plugin {
			p.Hash = "sha256:cc"
			return nil
		},
		"another plugin": func(_ *plugin.Plugin, all []plugin.Plugin, _ *string, _ *Options, _ *string) []plugin.Plugin {
			all[1].Hash = "sha256:dd"
			return all
		},
		"config": func(p *plugin.Plugin, _ []plugin.Plugin, _ *string, _ *Options, _ *string) []plugin.Plugin {
			p.Config = map[string]any{"a": 1}
			return nil
		},
		"expectStatus": func(p *plugin.Plugin, _ []plugin.Plugin, _ *string, _ *Options, _ *string) []plugin.Plugin {
			p.ExpectStatus = 200
			return nil
		},
		"useUnsafe": func(p *plugin.Plugin, _ []plugin.Plugin, _ *string, _ *Options, _ *string) []plugin.Plugin {
			p.UseUnsafe = true
			return nil
		},
		"alias": func(p *plugin.Plugin, _ []plugin.Plugin, _ *string, _ *Options, _ *string) []plugin.Plugin {
			p.Alias = "x"
			return nil
		},
		"interpreter": func(_ *plugin.Plugin, _ []plugin.Plugin, i *string, _ *Options, _ *string) []plugin.Plugin {
			*i = "yaegi v0.15.1"
			return nil
		},
		"traefik": func(_ *plugin.Plugin, _ []plugin.Plugin, _ *string, o *Options, _ *string) []plugin.Plugin {
			o.TraefikVersion = "v2.11.0"
			return nil
		},
		"allowUnsafe": func(_ *plugin.Plugin, _ []plugin.Plugin, _ *string, o *Options, _ *string) []plugin.Plugin {
			o.AllowUnsafe = true
			return nil
		},
		"sandbox": func(_ *plugin.Plugin, _ []plugin.Plugin, _ *string, o *Options, _ *string) []plugin.Plugin {
			o.Sandbox = "require"
			return nil
		},
		"approximate": func(_ *plugin.Plugin, _ []plugin.Plugin, _ *string, o *Options, _ *string) []plugin.Plugin {
			o.AcceptApproximate = true
			return nil
		},
		"xtraefik": func(_ *plugin.Plugin, _ []plugin.Plugin, _ *string, _ *Options, s *string) []plugin.Plugin {
			*s = "v2"
			return nil
		},
		"verify timeout": func(_ *plugin.Plugin, _ []plugin.Plugin, _ *string, o *Options, _ *string) []plugin.Plugin {
			o.Timeout = 1
			return nil
		},
	} {
		if got := edit(f); got == want {
			t.Errorf("%s: same key", name)
		}
	}
}

// TestCacheKeyFollowsTheInterpreter: with the interpreter exactly known
// (the release table, or the base's binary), a verdict's key holds the
// interpreter and Traefik's major version, not the release: every patch
// embedding the same Yaegi (or wazero and http-wasm) finds the verdict,
// and a release embedding another, or one of the other major, does not.
// Without an exactly known interpreter, or for an approximate verdict,
// the release stays in the key.
func TestCacheKeyFollowsTheInterpreter(t *testing.T) {
	c := testenv.Corpus()[0]
	p := plugin.Plugin{Alias: "demo", Module: c.Module, Files: testenv.CorpusFiles(t, c), Hash: "sha256:aa"}
	key := func(version, yaegi string, wasm, approximate bool) string {
		t.Helper()
		o := Options{TraefikVersion: version, Yaegi: yaegi, AcceptApproximate: approximate, Timeout: DefaultTimeout, MemoryLimit: DefaultMemoryLimit}
		pl := newPlan(o, nil)
		interp := pl.yaegiName()
		if wasm {
			interp = interpreterName(true)
		}
		k, err := cacheKey(p, []plugin.Plugin{p}, interp, pl.keyTraefik(wasm), o, "v1")
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	for _, tt := range []struct {
		name              string
		aVersion, aYaegi  string
		bVersion, bYaegi  string
		wasm, approximate bool
		same              bool
	}{
		{"patch releases, both in the table", "v3.6.12", "", "v3.6.13", "", false, false, true},
		{"a release the table knows, one only the binary names", "v3.6.12", "", "v3.8.1", "v0.16.1", false, false, true},
		{"the binary's word on both", "v3.6.12", "v0.16.1", "v3.8.1", "v0.16.1", false, false, true},
		{"another Yaegi", "v3.6.12", "", "v3.8.1", "v0.17.0", false, false, false},
		{"another major, same Yaegi", "v2.11.1", "", "v3.6.12", "", false, false, false},
		{"neither interpreter known", "v3.8.1", "", "v3.8.2", "", false, false, false},
		{"one interpreter known", "v3.6.12", "", "v3.8.2", "", false, false, false},
		{"approximate verdicts", "v3.6.12", "", "v3.6.13", "", false, true, false},
		{"wasm: same wazero and http-wasm", "v3.6.12", "", "v3.7.1", "", true, false, true},
		{"wasm: another wazero", "v3.0.4", "", "v3.6.12", "", true, false, false},
		{"wasm: not in the table, whatever the binary's Yaegi", "v3.8.1", "v0.16.1", "v3.8.2", "v0.16.1", true, false, false},
	} {
		a, b := key(tt.aVersion, tt.aYaegi, tt.wasm, tt.approximate), key(tt.bVersion, tt.bYaegi, tt.wasm, tt.approximate)
		if (a == b) != tt.same {
			t.Errorf("%s: same key = %v, want %v", tt.name, a == b, tt.same)
		}
	}
}

// TestDirCache: OK verdicts come back with a note; others are not kept; a
// corrupt or foreign entry is ignored and removed.
func TestDirCache(t *testing.T) {
	root := t.TempDir()
	d, err := NewDirCache(filepath.Join(root, "verdicts"), filepath.Join(root, "config", "key"))
	if err != nil {
		t.Fatal(err)
	}
	full := &sandbox.Report{Level: sandbox.LevelFull}
	ok := Result{Alias: "demo", Status: StatusOK, OK: true, Interpreter: "yaegi v0.16.1", HTTPStatus: 200, Containment: full}
	if err := d.Put("k1", ok); err != nil {
		t.Fatal(err)
	}
	if err := d.Put("k2", Result{Status: StatusFail, Containment: full}); err != nil {
		t.Fatal(err)
	}
	partial := ok
	partial.Containment = &sandbox.Report{Level: sandbox.LevelPartial}
	if err := d.Put("k5", partial); err != nil {
		t.Fatal(err)
	}
	if _, hit := d.Get("k5"); hit {
		t.Error("a verdict given under partial containment was kept")
	}
	got, hit := d.Get("k1")
	if !hit || got.Interpreter != ok.Interpreter || got.HTTPStatus != 200 || !strings.Contains(strings.Join(got.Notes, " "), "verdict from the cache") {
		t.Errorf("Get(k1) = %+v, %v", got, hit)
	}
	if _, hit := d.Get("k2"); hit {
		t.Error("a FAIL verdict was kept")
	}
	// An entry under another name, one that does not decode, and one
	// forged without the key (a planted OK for a plugin that fails).
	data, _ := os.ReadFile(d.path("k1"))
	os.WriteFile(d.path("k3"), data, 0o644)
	os.WriteFile(d.path("k4"), []byte("{"), 0o644)
	forged := strings.Replace(string(data), `"key":"k1"`, `"key":"k6"`, 1)
	os.WriteFile(d.path("k6"), []byte(forged), 0o644)
	other := &DirCache{Dir: d.Dir, Secret: make([]byte, 32)}
	if err := other.Put("k7", ok); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"k3", "k4", "k6", "k7"} {
		if _, hit := d.Get(k); hit {
			t.Errorf("%s: a foreign or corrupt entry was used", k)
		}
		if _, err := os.Stat(d.path(k)); err == nil {
			t.Errorf("%s: left in the cache", k)
		}
	}
	if n, err := d.Prune(0, false); err != nil || n != 1 {
		t.Errorf("Prune(0) = %d, %v; want the one entry left", n, err)
	}

	// A cache directory others may write, or a key another user owns, is
	// refused.
	open := filepath.Join(root, "open")
	os.MkdirAll(open, 0o777)
	os.Chmod(open, 0o777)
	if _, err := NewDirCache(open, filepath.Join(root, "config", "key")); err == nil || !strings.Contains(err.Error(), "writable by others") {
		t.Errorf("a world-writable cache: %v", err)
	}
	if os.Getuid() == 0 {
		foreign := filepath.Join(root, "foreign")
		os.MkdirAll(foreign, 0o700)
		os.Chown(foreign, 65534, 65534)
		if _, err := NewDirCache(foreign, filepath.Join(root, "config", "key")); err == nil || !strings.Contains(err.Error(), "owned by uid 65534") {
			t.Errorf("a cache another user owns: %v", err)
		}
	}
}

// TestSealVerdict: a record opens only with the secret and key it was sealed
// with and exactly as sealed; only cacheable verdicts are sealed.
func TestSealVerdict(t *testing.T) {
	secret := []byte(strings.Repeat("k", 32))
	ok := Result{Alias: "demo", Status: StatusOK, OK: true, HTTPStatus: 200, Containment: &sandbox.Report{Level: sandbox.LevelFull}}
	at := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	data, err := SealVerdict(secret, "k1", CachedVerdict{Result: ok, Verified: at, Signer: "sha256:aa"})
	if err != nil {
		t.Fatal(err)
	}
	v, opened := OpenVerdict(secret, "k1", data)
	if r := v.Result; !opened || !v.Verified.Equal(at) || r.HTTPStatus != 200 || r.Alias != "demo" || !r.Containment.Full() || v.Signer != "sha256:aa" {
		t.Fatalf("OpenVerdict = %+v, %v", v, opened)
	}
	for name, c := range map[string]struct {
		secret []byte
		key    string
		data   []byte
	}{
		"another secret": {[]byte(strings.Repeat("x", 32)), "k1", data},
		"another key":    {secret, "k2", data},
		"edited":         {secret, "k1", []byte(strings.Replace(string(data), `"httpStatus":200`, `"httpStatus":201`, 1))},
		// A fleet copy made this runner's own verdict: kept whatever
		// the fleet's trust says.
		"signer removed": {secret, "k1", []byte(strings.Replace(string(data), `"signer":"sha256:aa",`, ``, 1))},
		"short secret":   {secret[:16], "k1", data},
		"not JSON":       {secret, "k1", data[:len(data)-1]},
	} {
		if (name == "edited" || name == "signer removed") && string(c.data) == string(data) {
			t.Fatal("the edit did not apply")
		}
		if _, opened := OpenVerdict(c.secret, c.key, c.data); opened {
			t.Errorf("%s: the record opened", name)
		}
	}
	if _, err := SealVerdict(secret[:31], "k1", CachedVerdict{Result: ok, Verified: at}); err == nil {
		t.Error("sealed with a 31-byte secret")
	}
	partial := ok
	partial.Containment = &sandbox.Report{Level: sandbox.LevelPartial}
	for name, r := range map[string]Result{"partial containment": partial, "FAIL": {Status: StatusFail, Containment: ok.Containment}} {
		if _, err := SealVerdict(secret, "k1", CachedVerdict{Result: r, Verified: at}); err == nil {
			t.Errorf("%s: sealed", name)
		}
	}
}

// TestLayeredCache: the local cache answers first; a remote hit is copied
// into it with the time it was given; Put writes both.
func TestLayeredCache(t *testing.T) {
	root := t.TempDir()
	open := func(name string) *DirCache {
		d, err := NewDirCache(filepath.Join(root, name), filepath.Join(root, "key"))
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	local := open("local")
	remote := &dirFleet{DirCache: open("remote"), signer: "sha256:a", trusted: map[string]bool{"sha256:a": true}}
	ok := Result{Alias: "demo", Status: StatusOK, OK: true, HTTPStatus: 200, Containment: &sandbox.Report{Level: sandbox.LevelFull}}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := remote.PutRecord("k1", CachedVerdict{Result: ok, Verified: at}); err != nil {
		t.Fatal(err)
	}
	l := Layered{Local: local, Remote: remote}
	got, hit := l.Get("k1")
	if !hit || got.HTTPStatus != 200 || len(got.Notes) != 1 || got.Notes[0] != CacheNote("the shared cache", at) {
		t.Fatalf("Get(k1) = %+v, %v", got, hit)
	}
	copied, hit := local.Record("k1")
	if !hit || !copied.Verified.Equal(at) || len(copied.Result.Notes) != 0 || copied.Signer != "sha256:a" {
		t.Fatalf("local copy = %+v, %v; want the verdict as given at %v, signed by sha256:a", copied, hit, at)
	}
	// Served by the local copy now: the remote's may go.
	os.Remove(remote.path("k1"))
	if got, hit := l.Get("k1"); !hit || got.Notes[len(got.Notes)-1] != CacheNote("the cache", at) {
		t.Errorf("second Get(k1) = %+v, %v; want the local copy", got, hit)
	}
	if err := l.Put("k2", ok); err != nil {
		t.Fatal(err)
	}
	inLocal, _ := local.Record("k2")
	inRemote, _ := remote.Record("k2")
	if inLocal.Verified.IsZero() || !inLocal.Verified.Equal(inRemote.Verified) || inLocal.Signer != "" {
		t.Errorf("Put(k2): local verified %v (signer %q), remote %v; want both, at one time, the local one unsigned", inLocal.Verified, inLocal.Signer, inRemote.Verified)
	}
	if _, hit := l.Get("k3"); hit {
		t.Error("Get(k3) hit in two empty caches")
	}
	// The fleet no longer trusts sha256:a: the copy it signed is not used,
	// and the fleet is asked (and warns); the verdict given here stays.
	delete(remote.trusted, "sha256:a")
	if got, hit := l.Get("k1"); hit {
		t.Errorf("Get(k1) after its signer was dropped = %+v", got)
	}
	if len(remote.refused) != 1 || remote.refused[0] != "k1 sha256:a" {
		t.Errorf("the fleet was asked about %v; want k1 signed by sha256:a", remote.refused)
	}
	if _, hit := l.Get("k2"); !hit {
		t.Error("Get(k2), given on this runner, missed once a fleet key was dropped")
	}
}

// dirFleet is a FleetCache on a DirCache: its verdicts are signed by
// signer, and the signers in trusted are trusted.
type dirFleet struct {
	*DirCache
	signer  string
	trusted map[string]bool
	refused []string
}

func (f *dirFleet) Record(key string) (CachedVerdict, bool) {
	v, ok := f.DirCache.Record(key)
	v.Signer = f.signer
	return v, ok
}

func (f *dirFleet) Vouches(key, signer string) bool {
	if !f.trusted[signer] {
		f.refused = append(f.refused, key+" "+signer)
	}
	return f.trusted[signer]
}

// TestDirCachePrune: a verdict read recently stays however long ago it was
// written; one not used for maxAge goes; a dry run counts without removing;
// a symbolic link in the directory is not an entry.
func TestDirCachePrune(t *testing.T) {
	root := t.TempDir()
	d, err := NewDirCache(filepath.Join(root, "verdicts"), filepath.Join(root, "config", "key"))
	if err != nil {
		t.Fatal(err)
	}
	ok := Result{Alias: "demo", Status: StatusOK, OK: true, Containment: &sandbox.Report{Level: sandbox.LevelFull}}
	old := time.Now().Add(-48 * time.Hour)
	for _, k := range []string{"read", "unread"} {
		if err := d.Put(k, ok); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(d.path(k), old, old); err != nil {
			t.Fatal(err)
		}
	}
	target := filepath.Join(root, "elsewhere.json")
	if err := os.WriteFile(target, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(target, old, old)
	if err := os.Symlink(target, d.path("link")); err != nil {
		t.Fatal(err)
	}
	if _, hit := d.Get("read"); !hit {
		t.Fatal("Get(read) missed")
	}
	exists := func(p string) bool { _, err := os.Lstat(p); return err == nil }
	if n, err := d.Prune(24*time.Hour, true); err != nil || n != 1 || !exists(d.path("unread")) {
		t.Fatalf("dry Prune = %d, %v (unread present %v); want 1 counted, nothing removed", n, err, exists(d.path("unread")))
	}
	if n, err := d.Prune(24*time.Hour, false); err != nil || n != 1 {
		t.Errorf("Prune = %d, %v; want 1", n, err)
	}
	for p, want := range map[string]bool{d.path("read"): true, d.path("unread"): false, d.path("link"): true, target: true} {
		if exists(p) != want {
			t.Errorf("%s: present %v, want %v", p, exists(p), want)
		}
	}
}
