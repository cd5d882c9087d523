package testenv

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// TraefikBinary returns a real Traefik binary of version (v2.x or v3.x), built
// from its Go module by scripts/traefik-binary and cached outside the
// repository. It uses, in order: $XTRAEFIK_TRAEFIK_BINARY when that binary
// reports version (scripts/test sets it), the cache, and else a build. A build
// takes about ten minutes, so without XTRAEFIK_E2E a missing binary skips the
// test (run `scripts/traefik-binary <version>` once); with XTRAEFIK_E2E it is
// built, and a failed build fails the test.
func TraefikBinary(t testing.TB, version string) string {
	t.Helper()
	if p := os.Getenv("XTRAEFIK_TRAEFIK_BINARY"); p != "" && traefikVersion(p) == version {
		return p
	}
	if p := traefikCached(version); p != "" && traefikVersion(p) == version {
		return p
	}
	if !Strict() {
		t.Skipf("no Traefik %s binary in the cache, skipping (build it with scripts/traefik-binary %s, or set XTRAEFIK_E2E=1 to build it here)", version, version)
	}
	bash := Tool(t, "bash")
	script, err := repoFile("scripts/traefik-binary")
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bash, script, version)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("building Traefik %s: %v\n%s", version, err, registryTail(stderr.Bytes(), 30))
	}
	p := strings.TrimSpace(stdout.String())
	if got := traefikVersion(p); got != version {
		t.Fatalf("scripts/traefik-binary %s gave %s, which reports version %q", version, p, got)
	}
	return p
}

// traefikCached is where scripts/traefik-binary caches a version, if present.
func traefikCached(version string) string {
	cache := os.Getenv("XTRAEFIK_CACHE")
	if cache == "" {
		base := os.Getenv("XDG_CACHE_HOME")
		if base == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return ""
			}
			base = filepath.Join(home, ".cache")
		}
		cache = filepath.Join(base, "xtraefik")
	}
	p := filepath.Join(cache, "traefik", version, "traefik")
	if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
		return p
	}
	return ""
}

// traefikVersion is what `traefik version` reports, "" if it cannot run.
func traefikVersion(p string) string {
	out, err := exec.Command(p, "version").Output()
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "Version" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// repoFile finds a file of this repository from the test's directory upwards.
func repoFile(rel string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, filepath.FromSlash(rel))
			if _, err := os.Stat(p); err != nil {
				return "", fmt.Errorf("repository file %s: %w", rel, err)
			}
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the test's directory, looking for %s", rel)
		}
		dir = parent
	}
}

// TraefikBaseOptions shape the base TraefikBase assembles.
type TraefikBaseOptions struct {
	// Version is the org.opencontainers.image.version label (default v3.6.12).
	Version string
	// WorkingDir is the image's WORKDIR; "" leaves it unset, like Dockerfile.base's "/".
	WorkingDir string
	// EntrypointScript makes ENTRYPOINT ["/entrypoint.sh"] and CMD ["traefik"],
	// the layout of Traefik's official image, with a static busybox as /bin/sh
	// (the host's /bin/busybox, Debian package busybox-static). The default is
	// ENTRYPOINT ["traefik"], found through PATH.
	EntrypointScript bool
	// User is the image's USER; /etc/passwd and /etc/group then name root and
	// nonroot (65532).
	User string
	// Env is added to PATH.
	Env []string
	// Files are extra regular files (absolute in-image path -> content), e.g. a
	// baked /etc/traefik/traefik.yml.
	Files map[string]string
	// OCI selects OCI media types; the default is Docker v2, like a docker build.
	OCI bool
}

// traefikBaseCreated is the fixed time of everything TraefikBase writes.
func traefikBaseCreated() time.Time { return time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC) }

// TraefikBase assembles, without a daemon, the base Dockerfile.base describes
// for the host's platform: the Traefik binary at /usr/local/bin/traefik, the
// host's CA bundle at /etc/ssl/certs/ca-certificates.crt, one layer, the
// entrypoint, the WORKDIR and the version label. The layer is written under
// t.TempDir and read lazily; the same inputs give the same digest.
func TraefikBase(t testing.TB, binary string, opts TraefikBaseOptions) v1.Image {
	t.Helper()
	const caBundle = "/etc/ssl/certs/ca-certificates.crt"
	if _, err := os.Stat(caBundle); err != nil {
		missing(t, "CA certificates (Debian package ca-certificates)", err)
	}
	files := []traefikFile{
		{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, src: caBundle},
		{name: "usr/local/bin/traefik", mode: 0o755, src: binary},
		{name: "tmp/", mode: 0o1777},
	}
	cfg := v1.Config{
		Entrypoint:   []string{"traefik"},
		Env:          append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, opts.Env...),
		ExposedPorts: map[string]struct{}{"80/tcp": {}},
		WorkingDir:   opts.WorkingDir,
		User:         opts.User,
		Labels: map[string]string{
			"org.opencontainers.image.version": opts.Version,
			"org.opencontainers.image.title":   "Traefik base for xtraefik (test)",
		},
	}
	if cfg.Labels["org.opencontainers.image.version"] == "" {
		cfg.Labels["org.opencontainers.image.version"] = "v3.6.12"
	}
	if opts.EntrypointScript {
		bb, err := exec.LookPath("busybox")
		if err == nil {
			err = staticELF(bb)
		}
		if err != nil {
			missing(t, "a static busybox (Debian package busybox-static)", err)
		}
		files = append(files,
			traefikFile{name: "bin/busybox", mode: 0o755, src: bb},
			traefikFile{name: "bin/sh", link: "busybox"},
			traefikFile{name: "entrypoint.sh", mode: 0o755, content: entrypointScript},
		)
		cfg.Entrypoint, cfg.Cmd = []string{"/entrypoint.sh"}, []string{"traefik"}
	}
	if opts.User != "" {
		files = append(files,
			traefikFile{name: "etc/passwd", mode: 0o644, content: "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"},
			traefikFile{name: "etc/group", mode: 0o644, content: "root:x:0:\nnonroot:x:65532:\n"},
		)
	}
	if opts.WorkingDir != "" && opts.WorkingDir != "/" {
		files = append(files, traefikFile{name: strings.TrimPrefix(path.Clean("/"+opts.WorkingDir), "/") + "/", mode: 0o755})
	}
	for name, content := range opts.Files {
		files = append(files, traefikFile{name: strings.TrimPrefix(path.Clean("/"+name), "/"), mode: 0o644, content: content})
	}

	layerFile := filepath.Join(t.TempDir(), "traefik-base.tar")
	if err := writeTraefikTar(layerFile, files); err != nil {
		t.Fatalf("writing the Traefik base layer: %v", err)
	}
	manifestType, configType, layerType := types.DockerManifestSchema2, types.DockerConfigJSON, types.DockerLayer
	if opts.OCI {
		manifestType, configType, layerType = types.OCIManifestSchema1, types.OCIConfigJSON, types.OCILayer
	}
	layer, err := tarball.LayerFromFile(layerFile, tarball.WithMediaType(layerType))
	if err != nil {
		t.Fatalf("Traefik base layer: %v", err)
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, manifestType), configType)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:     layer,
		MediaType: layerType,
		History:   v1.History{Created: v1.Time{Time: traefikBaseCreated()}, CreatedBy: "xtraefik testenv TraefikBase"},
	})
	if err != nil {
		t.Fatalf("Traefik base: %v", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatalf("Traefik base config: %v", err)
	}
	cf = cf.DeepCopy()
	cf.Created = v1.Time{Time: traefikBaseCreated()}
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config = cfg
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatalf("Traefik base config: %v", err)
	}
	return img
}

// entrypointScript behaves like the official Traefik image's: arguments that
// start with a flag are given to traefik, anything else is executed.
const entrypointScript = `#!/bin/sh
set -e
case "$1" in
  -*) set -- traefik "$@" ;;
esac
exec "$@"
`

type traefikFile struct {
	name    string // relative; a trailing "/" makes a directory
	mode    int64
	src     string // host file to copy
	content string
	link    string // symlink target
}

// writeTraefikTar writes files, with their parent directories, sorted, owned
// by root, at a fixed time.
func writeTraefikTar(dst string, files []traefikFile) error {
	byName := map[string]traefikFile{}
	for _, f := range files {
		byName[f.name] = f
		for d := path.Dir(strings.TrimSuffix(f.name, "/")); d != "." && d != "/"; d = path.Dir(d) {
			if _, ok := byName[d+"/"]; !ok {
				byName[d+"/"] = traefikFile{name: d + "/", mode: 0o755}
			}
		}
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)

	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer out.Close()
	tw := tar.NewWriter(out)
	for _, n := range names {
		f := byName[n]
		hdr := &tar.Header{Name: n, Mode: f.mode, ModTime: traefikBaseCreated(), Format: tar.FormatPAX}
		var body io.Reader
		switch {
		case strings.HasSuffix(n, "/"):
			hdr.Typeflag = tar.TypeDir
		case f.link != "":
			hdr.Typeflag, hdr.Linkname, hdr.Mode = tar.TypeSymlink, f.link, 0o777
		case f.src != "":
			src, err := os.Open(f.src)
			if err != nil {
				return err
			}
			defer src.Close()
			fi, err := src.Stat()
			if err != nil {
				return err
			}
			hdr.Typeflag, hdr.Size, body = tar.TypeReg, fi.Size(), src
		default:
			hdr.Typeflag, hdr.Size, body = tar.TypeReg, int64(len(f.content)), strings.NewReader(f.content)
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if body != nil {
			if _, err := io.Copy(tw, body); err != nil {
				return fmt.Errorf("%s: %w", n, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return out.Close()
}

// staticELF refuses a dynamically linked binary, which would not run in an
// image without the host's libraries.
func staticELF(p string) error {
	f, err := elf.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked", p)
		}
	}
	return nil
}
