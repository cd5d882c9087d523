package main

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// fakeBin lays out stand-in binaries per platform, as scripts/release does.
func fakeBin(t *testing.T, platforms ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, p := range platforms {
		d := filepath.Join(dir, strings.ReplaceAll(p, "/", "_"))
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"xtraefik", "xtraefik-yaegi-v0.15.0", "xtraefik-yaegi-v0.15.1"} {
			if err := os.WriteFile(filepath.Join(d, name), []byte(name+" for "+p), 0o700); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

func testOptions(t *testing.T, bin string) options {
	ca := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return options{bin: bin, platforms: "linux/amd64,linux/arm64", ca: ca, out: filepath.Join(t.TempDir(), "image"),
		tag: "v1.2.3", version: "v1.2.3", revision: "0123456789abcdef", source: "https://example.test/xtraefik",
		epoch: time.Unix(1700000000, 0).UTC()}
}

// TestImage checks the image's promises without building xtraefik: both
// platforms, each with its own binaries and every worker next to xtraefik, a
// non-root user that exists in /etc/passwd, CA certificates, a writable /tmp
// and home, the epoch everywhere, and the same digest from a second run.
func TestImage(t *testing.T) {
	ctx := context.Background()
	o := testOptions(t, fakeBin(t, "linux/amd64", "linux/arm64"))
	digest, err := run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	o2 := o
	o2.out = filepath.Join(t.TempDir(), "again")
	if again, err := run(ctx, o2); err != nil || again != digest {
		t.Fatalf("second run: %v, %v; want the same digest %v", again, err, digest)
	}

	lp, err := layout.FromPath(o.out)
	if err != nil {
		t.Fatal(err)
	}
	root, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	rm, err := root.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(rm.Manifests) != 1 || rm.Manifests[0].Digest != digest || rm.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "v1.2.3" {
		t.Fatalf("layout index: %+v, want the image %s tagged v1.2.3", rm.Manifests, digest)
	}
	idx, err := root.ImageIndex(digest)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 2 {
		t.Fatalf("index has %d manifests, want 2", len(im.Manifests))
	}
	for i, want := range []string{"linux/amd64", "linux/arm64"} {
		d := im.Manifests[i]
		if d.Platform == nil || d.Platform.String() != want {
			t.Fatalf("manifest %d: platform %v, want %s", i, d.Platform, want)
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		checkPlatformImage(t, img, want, o.epoch)
	}
}

func checkPlatformImage(t *testing.T, img v1.Image, platform string, epoch time.Time) {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if got := cf.OS + "/" + cf.Architecture; got != platform {
		t.Errorf("%s: config platform %s", platform, got)
	}
	if cf.Config.User != "65532:65532" || strings.Join(cf.Config.Entrypoint, " ") != "/usr/local/bin/xtraefik" {
		t.Errorf("%s: user %q entrypoint %q", platform, cf.Config.User, cf.Config.Entrypoint)
	}
	if !cf.Created.Time.Equal(epoch) || cf.Config.Labels["org.opencontainers.image.version"] != "v1.2.3" || cf.Config.Labels["org.opencontainers.image.revision"] != "0123456789abcdef" {
		t.Errorf("%s: created %s labels %v", platform, cf.Created, cf.Config.Labels)
	}
	want := map[string]struct {
		mode    int64
		uid     int
		content string
	}{
		"usr/local/bin/xtraefik":               {0o755, 0, "xtraefik for " + platform},
		"usr/local/bin/xtraefik-yaegi-v0.15.0": {0o755, 0, "xtraefik-yaegi-v0.15.0 for " + platform},
		"usr/local/bin/xtraefik-yaegi-v0.15.1": {0o755, 0, "xtraefik-yaegi-v0.15.1 for " + platform},
		"etc/ssl/certs/ca-certificates.crt":    {0o644, 0, "-----BEGIN CERTIFICATE-----\n"},
		"etc/passwd":                           {0o644, 0, "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"},
		"tmp":                                  {0o1777, 0, ""},
		"home/nonroot":                         {0o700, 65532, ""},
	}
	tr := tar.NewReader(mutate.Extract(img))
	seen := map[string]bool{}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !hdr.ModTime.Equal(epoch) {
			t.Errorf("%s: %s mtime %s, want %s", platform, hdr.Name, hdr.ModTime, epoch)
		}
		w, ok := want[strings.TrimSuffix(hdr.Name, "/")]
		if !ok {
			continue
		}
		seen[strings.TrimSuffix(hdr.Name, "/")] = true
		data, _ := io.ReadAll(tr)
		if hdr.Mode&0o7777 != w.mode || hdr.Uid != w.uid || string(data) != w.content {
			t.Errorf("%s: %s mode %o uid %d content %q, want %o %d %q", platform, hdr.Name, hdr.Mode, hdr.Uid, data, w.mode, w.uid, w.content)
		}
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("%s: no %s in the image", platform, name)
		}
	}
}

// TestImageRefusesMissingWorkers: an image without the workers would break
// verification for Traefik v2 with no hint; the build stops instead.
func TestImageRefusesMissingWorkers(t *testing.T) {
	bin := fakeBin(t, "linux/amd64")
	for _, w := range []string{"xtraefik-yaegi-v0.15.0", "xtraefik-yaegi-v0.15.1"} {
		if err := os.Remove(filepath.Join(bin, "linux_amd64", w)); err != nil {
			t.Fatal(err)
		}
	}
	o := testOptions(t, bin)
	o.platforms = "linux/amd64"
	_, err := run(context.Background(), o)
	if err == nil || !strings.Contains(err.Error(), "no verification worker") {
		t.Fatalf("err = %v, want no verification worker", err)
	}
	if _, err := os.Stat(o.out); !os.IsNotExist(err) {
		t.Errorf("a failed run left %s", o.out)
	}
}
