package verify

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/traefik/yaegi/interp"
	"github.com/traefik/yaegi/stdlib"

	"github.com/xtraefik/xtraefik/internal/manifest"
	"github.com/xtraefik/xtraefik/internal/plugin"
	"github.com/xtraefik/xtraefik/internal/testenv"
)

// benchPlugins are the real middleware plugins of the corpus that verify OK
// (every version the module proxy serves here), and a vendoring fixture, by
// name (alias@version, "+config" with the corpus's own configuration).
func benchPlugins(b testing.TB) map[string]plugin.Plugin {
	b.Helper()
	out := map[string]plugin.Plugin{}
	for _, c := range testenv.Corpus() {
		if c.Type != "middleware" || !c.WantOK {
			continue
		}
		name := c.Alias + "@" + c.Version
		if c.Config != nil {
			name += "+config"
		}
		out[name] = plugin.Plugin{Alias: c.Alias, Module: c.Module, Files: testenv.CorpusFiles(b, c), Config: c.Config}
	}
	for _, f := range testenv.Fixtures() {
		if f.Name == "vendored-ok" {
			out[f.Name] = plugin.Plugin{Alias: f.Name, Module: f.Module, Files: testenv.FixtureFiles(b, f)}
		}
	}
	return out
}

// BenchmarkVerifyAll verifies every plugin of benchPlugins in one call, as a
// build of a recipe holding them all does (prepared Verifier, plugins run
// concurrently up to the CPUs).
func BenchmarkVerifyAll(b *testing.B) {
	var ps []plugin.Plugin
	for _, p := range benchPlugins(b) {
		p.Alias = p.Alias + "-" + strings.NewReplacer("/", "-", ".", "-").Replace(p.Module)
		ps = append(ps, p)
	}
	// One version of a module per image: keep the first of each.
	seen := map[string]bool{}
	var uniq []plugin.Plugin
	for _, p := range ps {
		if !seen[p.Module] {
			seen[p.Module] = true
			uniq = append(uniq, p)
		}
	}
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		v, err := NewVerifier(Options{TraefikVersion: "v3.6.12"})
		if err != nil {
			b.Fatal(err)
		}
		v.Prepare(len(uniq))
		for len(v.pool.ready) < min(len(uniq), cap(v.pool.ready)) {
			time.Sleep(time.Millisecond)
		}
		b.StartTimer()
		res, err := v.Verify(context.Background(), uniq)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range res {
			if !r.OK {
				b.Fatalf("%+v", r)
			}
		}
		if err := v.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify is the whole verification of one plugin: layout, static
// checks, worker process, interpretation, New and one request.
func BenchmarkVerify(b *testing.B) {
	for name, p := range benchPlugins(b) {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				res, err := Verify(context.Background(), []plugin.Plugin{p}, Options{TraefikVersion: "v3.6.12"})
				if err != nil || !res[0].OK {
					b.Fatalf("%v %+v", err, res)
				}
			}
		})
	}
}

// BenchmarkVerifyPrepared is verification as build runs it: the Verifier is
// made while the plugins are fetched, so its contained worker (sandbox set
// up, interpreter made) is waiting; the timer covers Verify alone.
func BenchmarkVerifyPrepared(b *testing.B) {
	for name, p := range benchPlugins(b) {
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				v, err := NewVerifier(Options{TraefikVersion: "v3.6.12"})
				if err != nil {
					b.Fatal(err)
				}
				v.Prepare(1)
				for len(v.pool.ready) < 1 {
					time.Sleep(time.Millisecond)
				}
				b.StartTimer()
				res, err := v.Verify(context.Background(), []plugin.Plugin{p})
				b.StopTimer()
				if err != nil || !res[0].OK {
					b.Fatalf("%v %+v", err, res)
				}
				if err := v.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkBareYaegi is what Traefik itself does for the same plugin, in
// process: a new interpreter, import, New and CreateConfig, one New call.
func BenchmarkBareYaegi(b *testing.B) {
	for name, p := range benchPlugins(b) {
		b.Run(name, func(b *testing.B) {
			m, err := manifest.Read(p.Files)
			if err != nil {
				b.Fatal(err)
			}
			goPath := filepath.Join(b.TempDir(), "plugins-local")
			dir := filepath.Join(goPath, "src", filepath.FromSlash(p.Module))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				b.Fatal(err)
			}
			if err := p.Files.WriteDir(dir); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				i := interp.New(interp.Options{GoPath: goPath, Stdout: io.Discard, Stderr: io.Discard})
				if err := i.Use(stdlib.Symbols); err != nil {
					b.Fatal(err)
				}
				if _, err := i.Eval(`import "` + m.Import + `"`); err != nil {
					b.Fatal(err)
				}
				fnNew, err := i.Eval(m.BasePackage() + ".New")
				if err != nil {
					b.Fatal(err)
				}
				fnCfg, err := i.Eval(m.BasePackage() + ".CreateConfig")
				if err != nil {
					b.Fatal(err)
				}
				cfg := fnCfg.Call(nil)[0]
				data := p.Config
				if data == nil {
					data = m.TestData
				}
				if err := decodeConfig(data, cfg.Interface()); err != nil {
					b.Fatal(err)
				}
				res := fnNew.Call([]reflect.Value{reflect.ValueOf(context.Background()), reflect.ValueOf(http.Handler(http.NotFoundHandler())), cfg, reflect.ValueOf(name)})
				if _, ok := res[0].Interface().(http.Handler); !ok {
					b.Fatalf("New returned %T", res[0].Interface())
				}
			}
		})
	}
}
