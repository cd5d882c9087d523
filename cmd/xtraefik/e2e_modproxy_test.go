package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xtraefik/xtraefik/build"
	"github.com/xtraefik/xtraefik/internal/testenv"
	"github.com/xtraefik/xtraefik/recipe"
)

// TestModuleProxyPlugins builds plugins taken from a GOPROXY-protocol
// server on loopback, checked against a checksum database on loopback:
// a vendored plugin re-vendored and verified, the lock's version and hashes,
// --frozen against a changed zip, lock --update of a query, a tampered zip,
// and a GOPRIVATE module taken directly from its git repository.
func TestModuleProxyPlugins(t *testing.T) {
	w := newWorld(t)
	const provider, providerVersion = "github.com/traefik/pluginproviderdemo", "v0.3.0"
	proxy := testenv.GoProxy(t, append([]string{demoModule + "@v0.2.1", provider + "@" + providerVersion},
		testenv.VendoredModules(t, provider, providerVersion)...)...)
	db := testenv.SumDB(t, proxy)
	w.env["GOPROXY"], w.env["GOSUMDB"] = proxy.URL, db.GOSUMDB
	base := "docker://" + w.registry + "/library/traefik:v3.6"
	rp := w.writeRecipe("modules.yaml", "base: "+base+"\nplugins:\n"+
		"  demo:\n    module: "+demoModule+"\n    version: v0.2\n"+
		"  provider:\n    module: "+provider+"\n    version: "+providerVersion+"\n")

	w.mustRun("lock", "-f", rp)
	// A newer v0.2 release appears: lock keeps the pin, lock --update moves it.
	proxy.Add(t, demoModule+"@"+demoVersion)
	if out := w.mustRun("lock", "-f", rp); !strings.Contains(out, "up to date") {
		t.Errorf("lock after a new release moved the pin:\n%s", out)
	}
	if out := w.mustRun("lock", "-f", rp, "--update", "demo"); !strings.Contains(out, "plugin demo: version v0.2.1 -> "+demoVersion) {
		t.Errorf("lock --update demo:\n%s", out)
	}
	lock, err := recipe.ReadLock(recipe.LockPath(rp))
	if err != nil {
		t.Fatal(err)
	}
	for _, pl := range lock.Plugins {
		want := map[string]string{"demo": demoVersion, "provider": providerVersion}[pl.Alias]
		if pl.Version != want || !strings.HasPrefix(pl.Sum, "h1:") || pl.Git != "" || pl.Commit != "" || pl.ContentHash == "" {
			t.Errorf("lock entry %+v", pl)
		}
		if sum := testenv.ModuleSum(t, pl.Module, pl.Version); pl.Sum != sum {
			t.Errorf("%s: lock sum %s, the go command's %s", pl.Alias, pl.Sum, sum)
		}
		if pl.Alias == "provider" && len(pl.Vendored) == 0 {
			t.Errorf("provider: no re-vendored modules in the lock")
		}
	}
	online := digestLine(t, w.mustRun("build", "-f", rp, "--frozen", "--oci-layout", filepath.Join(w.dir, "layout")))

	// Offline: the same digest from the cache, and not one request to the
	// proxy (nor its checksum database); an empty cache lists both modules.
	asked := len(proxy.Requests())
	if d := digestLine(t, w.mustRun("build", "-f", rp, "--frozen", "--offline", "--oci-layout", filepath.Join(w.dir, "offline"))); d != online {
		t.Errorf("offline build gave %s, online %s", d, online)
	}
	if n := len(proxy.Requests()) - asked; n != 0 {
		t.Errorf("an offline build sent %d requests to the module proxy: %v", n, proxy.Requests()[asked:])
	}
	_, _, err = w.runIn(filepath.Join(w.dir, "empty-cache"), "build", "-f", rp, "--offline")
	if !errors.Is(err, build.ErrNotCached) || !strings.Contains(err.Error(), "3 things are") ||
		!strings.Contains(err.Error(), demoModule+"@"+demoVersion+" is not in the cache") || !strings.Contains(err.Error(), provider+"@"+providerVersion+" is not in the cache") {
		t.Errorf("offline with an empty cache: %v", err)
	}

	// The same version now serves other bytes: a frozen build names both
	// hashes, in a fresh cache too.
	proxy.Tamper(t, demoModule, demoVersion, "demo.go", "package plugindemo\n// changed\n")
	modCache := filepath.Join(w.dir, "cache", "mod")
	if err := os.RemoveAll(modCache); err != nil {
		t.Fatal(err)
	}
	_, _, err = w.run("build", "-f", rp, "--frozen")
	if err == nil || !strings.Contains(err.Error(), lock.Plugins[0].Sum) {
		t.Errorf("tampered zip with --frozen: %v", err)
	}
	// Without a lock the checksum database refuses it.
	os.Remove(recipe.LockPath(rp))
	os.RemoveAll(modCache)
	_, _, err = w.run("lock", "-f", rp)
	if err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Errorf("tampered zip against the checksum database: %v", err)
	}

	// GOPRIVATE: the module comes from its git repository (the world's git
	// mirror), never from the proxy; its sum is the one the go command makes.
	w.env["GOPRIVATE"] = demoModule
	priv := w.writeRecipe("private.yaml", "base: "+base+"\nplugins:\n  demo:\n    module: "+demoModule+"\n    version: "+demoVersion+"\n")
	before := len(proxy.Requests())
	w.mustRun("lock", "-f", priv)
	out := w.mustRun("build", "-f", priv, "--oci-layout", filepath.Join(w.dir, "private"))
	for _, r := range proxy.Requests()[before:] {
		if strings.Contains(r, "plugindemo") {
			t.Errorf("a GOPRIVATE module was asked of the proxy: %s", r)
		}
	}
	plock, err := recipe.ReadLock(recipe.LockPath(priv))
	if err != nil {
		t.Fatal(err)
	}
	if plock.Plugins[0].Sum != lock.Plugins[0].Sum || digestLine(t, out) == "" {
		t.Errorf("direct from git: sum %s, want the proxy's %s", plock.Plugins[0].Sum, lock.Plugins[0].Sum)
	}
}
