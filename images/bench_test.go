package images

import (
	"path/filepath"
	"strconv"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/xtraefik/xtraefik/internal/fileset"
	"github.com/xtraefik/xtraefik/internal/plugin"
	"github.com/xtraefik/xtraefik/internal/testenv"
)

// plugindemo is the reference plugin as the module proxy serves it.
func plugindemo(b *testing.B) []plugin.Plugin {
	b.Helper()
	files, err := fileset.FromDir(testenv.ModuleDir(b, "github.com/traefik/plugindemo", "v0.2.2"))
	if err != nil {
		b.Fatal(err)
	}
	return []plugin.Plugin{{Module: "github.com/traefik/plugindemo", Files: files}}
}

// BenchmarkPluginLayerDigest renders the plugindemo layer (tar, gzip) and
// digests it: the work every build does once per WORKDIR.
func BenchmarkPluginLayerDigest(b *testing.B) {
	plugins := plugindemo(b)
	b.ReportAllocs()
	for b.Loop() {
		l, err := newPluginLayer("/", plugins, nil, testEpoch(), nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := l.Digest(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAssembleLayout resolves a two-platform synthetic base from an OCI
// layout, appends plugindemo and writes the result as a new OCI layout.
func BenchmarkAssembleLayout(b *testing.B) {
	plugins := plugindemo(b)
	dir := b.TempDir()
	testenv.WriteBaseLayout(b, filepath.Join(dir, "base"), "v3", testenv.BaseOptions{OCI: true})
	benchAssembleLayout(b, dir, plugins)
}

// BenchmarkAssembleLayoutTraefik is the same with the real Traefik binary in
// the base (about 180 MB, one layer): the layout write copies the base layer,
// the plugin layer stays small. Skipped without a cached binary.
func BenchmarkAssembleLayoutTraefik(b *testing.B) {
	bin := testenv.TraefikBinary(b, "v3.6.12")
	plugins := plugindemo(b)
	dir := b.TempDir()
	img := testenv.TraefikBase(b, bin, testenv.TraefikBaseOptions{OCI: true})
	lp, err := layout.Write(filepath.Join(dir, "base"), empty.Index)
	if err != nil {
		b.Fatal(err)
	}
	if err := lp.AppendImage(img, layout.WithAnnotations(map[string]string{annotationRefName: "v3"})); err != nil {
		b.Fatal(err)
	}
	benchAssembleLayout(b, dir, plugins)
}

// benchAssembleLayout resolves the layout dir/base:v3, appends plugins and
// writes a new layout, once per iteration.
func benchAssembleLayout(b *testing.B, dir string, plugins []plugin.Plugin) {
	ref := mustParse(b, "oci:"+filepath.Join(dir, "base")+":v3")
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		base, err := Resolve(ctx(b), ref, Options{})
		if err != nil {
			b.Fatal(err)
		}
		res, err := Assemble(ctx(b), base, Addition{Plugins: plugins, Epoch: testEpoch()})
		if err != nil {
			b.Fatal(err)
		}
		n++
		if err := WriteLayout(ctx(b), filepath.Join(dir, "out"+strconv.Itoa(n)), res, LayoutOptions{Tag: "v1"}); err != nil {
			b.Fatal(err)
		}
	}
}
