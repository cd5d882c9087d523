package images

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/xtraefik/xtraefik/internal/fileset"
	"github.com/xtraefik/xtraefik/internal/plugin"
	"github.com/xtraefik/xtraefik/internal/testenv"
)

// testEpoch is the SOURCE_DATE_EPOCH of the tests.
func testEpoch() time.Time { return time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC) }

// needTool returns the path of an external tool, skipping the test when it is
// missing unless XTRAEFIK_E2E is set (then it fails).
func needTool(t testing.TB, tool string) string {
	t.Helper()
	if tool == "crane" {
		if p, err := exec.LookPath(tool); err == nil {
			return p
		}
		if home, err := os.UserHomeDir(); err == nil {
			p := home + "/go/bin/crane"
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	return testenv.Tool(t, tool)
}

// run runs a tool and returns its stdout, failing the test with its stderr.
func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// memRegistry starts go-containerregistry's in-process registry on loopback.
func memRegistry(t testing.TB) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func memFile(path string, kind fileset.Kind, content string) fileset.File {
	f := fileset.File{Path: path, Kind: kind, Size: int64(len(content))}
	if kind == fileset.Symlink {
		f.Link = content
		return f
	}
	f.Open = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(content)), nil }
	return f
}

func mustSet(t testing.TB, files ...fileset.File) fileset.Set {
	t.Helper()
	s, err := fileset.New(files)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// demoPlugins are two small plugin trees with an executable, a symlink and
// nested directories.
func demoPlugins(t testing.TB) []plugin.Plugin {
	return []plugin.Plugin{
		{Module: "github.com/acme/demo", Files: mustSet(t,
			memFile(".traefik.yml", fileset.Regular, "displayName: Demo\ntype: middleware\nimport: github.com/acme/demo\nsummary: demo\ntestData: {}\n"),
			memFile("demo.go", fileset.Regular, "package demo\n"),
			memFile("go.mod", fileset.Regular, "module github.com/acme/demo\n\ngo 1.22\n"),
			memFile("scripts/gen.sh", fileset.Executable, "#!/bin/sh\ntrue\n"),
			memFile("vendor/example.com/lib/lib.go", fileset.Regular, "package lib\n"),
			memFile("README", fileset.Symlink, "demo.go"),
		)},
		{Module: "github.com/acme/other", Files: mustSet(t,
			memFile(".traefik.yml", fileset.Regular, "displayName: Other\ntype: middleware\nimport: github.com/acme/other\nsummary: other\ntestData: {}\n"),
			memFile("other.go", fileset.Regular, "package other\n"),
		)},
	}
}

func demoAddition(t testing.TB) Addition {
	return Addition{
		Plugins:     demoPlugins(t),
		Files:       []ExtraFile{{Path: "/etc/traefik/traefik.yml", Content: []byte("experimental: {}\n")}},
		Epoch:       testEpoch(),
		Labels:      map[string]string{"io.xtraefik.plugins": "github.com/acme/demo,github.com/acme/other"},
		Env:         []string{"PATH=/plugins/bin:/usr/bin", "XTRAEFIK=1"},
		Annotations: map[string]string{"io.xtraefik.recipe": "test"},
		CreatedBy:   "xtraefik test",
	}
}

// tarEntry is what the tests read back from a layer.
type tarEntry struct {
	hdr     *tar.Header
	content string
}

func readLayer(t testing.TB, l v1.Layer) []tarEntry {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	return readTar(t, rc)
}

func readTar(t testing.TB, r io.Reader) []tarEntry {
	t.Helper()
	tr := tar.NewReader(r)
	var out []tarEntry
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tarEntry{hdr: hdr, content: string(b)})
	}
}

// countingOpen wraps a file's Open, counting calls and failing from call
// failFrom on (0: never).
func countingOpen(f fileset.File, calls *atomic.Int32, failFrom int32) fileset.File {
	open := f.Open
	f.Open = func() (io.ReadCloser, error) {
		n := calls.Add(1)
		if failFrom > 0 && n >= failFrom {
			return nil, errors.New("injected read failure")
		}
		return open()
	}
	return f
}

func ctx(t testing.TB) context.Context { return t.Context() }
