// Command releaseimage assembles the OCI image of xtraefik itself, without a
// daemon, with xtraefik's own images package (dogfood): per platform, a
// scratch base holding only a non-root user, /tmp and a home directory, and
// on top one layer written by images.Assemble with xtraefik, every
// verification worker next to it and the build host's CA certificates. The
// platforms go into one index, written as an OCI image layout (crane push
// and skopeo copy read it). scripts/release runs it; the same binaries and
// SOURCE_DATE_EPOCH give the same digest.
//
//	go run ./scripts/releaseimage -bin dist/bin -o dist/image -tag v1.2.3
package main

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/xtraefik/xtraefik/images"
)

// Where things are in the image. The workers sit next to xtraefik, where
// verify looks first (verify/workers.go).
const (
	binDir  = "/usr/local/bin"
	caFile  = "/etc/ssl/certs/ca-certificates.crt"
	home    = "/home/nonroot"
	nonroot = 65532 // distroless' nonroot: a uid no host account is likely to have
)

type options struct {
	bin       string
	platforms string
	ca        string
	out       string
	tag       string
	version   string
	revision  string
	source    string
	epoch     time.Time
}

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "dist/bin", "directory with one <os>_<arch> directory per platform holding xtraefik and its xtraefik-yaegi-* workers")
	flag.StringVar(&o.platforms, "platforms", "linux/amd64,linux/arm64", "comma-separated platforms, in index order")
	flag.StringVar(&o.ca, "ca", "/etc/ssl/certs/ca-certificates.crt", "CA certificate bundle to ship (Debian's ca-certificates)")
	flag.StringVar(&o.out, "o", "dist/image", "OCI image layout to write (must not exist)")
	flag.StringVar(&o.tag, "tag", "", "tag recorded in the layout (org.opencontainers.image.ref.name)")
	flag.StringVar(&o.version, "version", "", "org.opencontainers.image.version")
	flag.StringVar(&o.revision, "revision", "", "org.opencontainers.image.revision (the source commit)")
	flag.StringVar(&o.source, "source", "https://github.com/xtraefik/xtraefik", "org.opencontainers.image.source")
	flag.Parse()
	epoch, err := sourceDateEpoch()
	if err != nil {
		fmt.Fprintln(os.Stderr, "releaseimage:", err)
		os.Exit(2)
	}
	o.epoch = epoch
	digest, err := run(context.Background(), o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "releaseimage:", err)
		os.Exit(1)
	}
	fmt.Println(digest)
}

// sourceDateEpoch is every timestamp of the image: without it two builds of
// the same commit would differ.
func sourceDateEpoch() (time.Time, error) {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		return time.Time{}, errors.New("SOURCE_DATE_EPOCH is not set (scripts/release sets it to the commit time)")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a Unix time", s)
	}
	return time.Unix(n, 0).UTC(), nil
}

func run(ctx context.Context, o options) (v1.Hash, error) {
	if _, err := os.Stat(o.out); err == nil {
		return v1.Hash{}, fmt.Errorf("output %s exists: remove it first", o.out)
	}
	ca, err := os.ReadFile(o.ca)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("read the CA bundle (Debian: apt-get install ca-certificates): %w", err)
	}
	work, err := os.MkdirTemp("", "releaseimage-")
	if err != nil {
		return v1.Hash{}, fmt.Errorf("create a work directory: %w", err)
	}
	defer os.RemoveAll(work)

	labels := map[string]string{
		"org.opencontainers.image.title":       "xtraefik",
		"org.opencontainers.image.description": "Builds Traefik images with verified local plugins, without a daemon",
		"org.opencontainers.image.source":      o.source,
		"org.opencontainers.image.created":     o.epoch.Format(time.RFC3339),
	}
	if o.version != "" {
		labels["org.opencontainers.image.version"] = o.version
	}
	if o.revision != "" {
		labels["org.opencontainers.image.revision"] = o.revision
	}

	var adds []mutate.IndexAddendum
	for _, ps := range strings.Split(o.platforms, ",") {
		p, err := images.ParsePlatform(strings.TrimSpace(ps))
		if err != nil {
			return v1.Hash{}, fmt.Errorf("-platforms: %w", err)
		}
		img, err := platformImage(ctx, work, o, *p, ca, labels)
		if err != nil {
			return v1.Hash{}, fmt.Errorf("image for %s: %w", p, err)
		}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: p}})
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...)
	idx, ok := mutate.Annotations(idx, labels).(v1.ImageIndex)
	if !ok {
		return v1.Hash{}, errors.New("annotating the index did not yield an index")
	}
	if err := writeLayout(o.out, idx, o.tag); err != nil {
		return v1.Hash{}, fmt.Errorf("write OCI layout %s: %w", o.out, err)
	}
	return idx.Digest()
}

// platformImage is the scratch base for p with xtraefik's files assembled on
// top by images.Assemble, which gives them sorted entries, 0:0 ownership,
// normalised modes and the epoch as mtime.
func platformImage(ctx context.Context, work string, o options, p v1.Platform, ca []byte, labels map[string]string) (v1.Image, error) {
	dir := filepath.Join(o.bin, p.OS+"_"+p.Architecture)
	files, err := binaries(dir)
	if err != nil {
		return nil, err
	}
	files = append(files, images.ExtraFile{Path: caFile, Mode: 0o644, Content: ca})

	base, err := scratch(p, o.epoch)
	if err != nil {
		return nil, fmt.Errorf("scratch base: %w", err)
	}
	// images.Resolve reads bases from references: hand it the scratch base as
	// an OCI layout, as a user's recipe would name one.
	baseDir := filepath.Join(work, p.OS+"-"+p.Architecture)
	lp, err := layout.Write(baseDir, empty.Index)
	if err != nil {
		return nil, fmt.Errorf("scratch base layout: %w", err)
	}
	if err := lp.AppendImage(base); err != nil {
		return nil, fmt.Errorf("scratch base layout: %w", err)
	}
	ref, err := images.ParseReference("oci:" + baseDir)
	if err != nil {
		return nil, err
	}
	b, err := images.Resolve(ctx, ref, images.Options{})
	if err != nil {
		return nil, err
	}
	res, err := images.Assemble(ctx, b, images.Addition{
		Files:     files,
		Epoch:     o.epoch,
		Labels:    labels,
		CreatedBy: "xtraefik release: xtraefik, its verification workers, CA certificates",
	})
	if err != nil {
		return nil, err
	}
	return res.Image(p)
}

// binaries are xtraefik and the xtraefik-yaegi-* workers in dir; a missing
// xtraefik or no worker at all is an error, since the image promises both.
func binaries(dir string) ([]images.ExtraFile, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read the binaries (scripts/release builds them): %w", err)
	}
	var files []images.ExtraFile
	var workers int
	for _, e := range entries {
		name := e.Name()
		if name != "xtraefik" && !strings.HasPrefix(name, "xtraefik-yaegi-") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		if name != "xtraefik" {
			workers++
		}
		files = append(files, images.ExtraFile{Path: binDir + "/" + name, Mode: 0o755, Content: data})
	}
	switch {
	case len(files) == workers:
		return nil, fmt.Errorf("no xtraefik binary in %s", dir)
	case workers == 0:
		return nil, fmt.Errorf("no verification worker (xtraefik-yaegi-*) in %s: build them with `xtraefik workers --out %s`", dir, dir)
	}
	return files, nil
}

// scratch is an empty OCI image for p with what a non-root xtraefik needs
// from a root filesystem and nothing else: /etc/passwd and /etc/group naming
// the nonroot user, its home (the default cache is $HOME/.cache/xtraefik),
// a world-writable /tmp (verification work directories), and the
// directories the assembled layer fills. No shell, no package manager.
func scratch(p v1.Platform, epoch time.Time) (v1.Image, error) {
	layer, err := rootLayer(epoch)
	if err != nil {
		return nil, err
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History:   v1.History{Created: v1.Time{Time: epoch}, CreatedBy: "xtraefik release: nonroot user, /tmp, home"},
	})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
	cf.Created = v1.Time{Time: epoch}
	cf.Config = v1.Config{
		User:       fmt.Sprintf("%d:%d", nonroot, nonroot),
		Entrypoint: []string{binDir + "/xtraefik"},
		Cmd:        []string{"--help"},
		Env: []string{
			"PATH=" + binDir,
			"HOME=" + home,
			"SSL_CERT_FILE=" + caFile,
		},
		WorkingDir: home,
	}
	return mutate.ConfigFile(img, cf)
}

type rootEntry struct {
	name     string
	mode     int64
	uid      int
	dir      bool
	contents string
}

// rootLayer renders the scratch base's layer: sorted entries, the epoch as
// every mtime, no user or group names, gzip without a header timestamp.
func rootLayer(epoch time.Time) (v1.Layer, error) {
	entries := []rootEntry{
		{name: "etc", mode: 0o755, dir: true},
		{name: "etc/group", mode: 0o644, contents: fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", nonroot)},
		{name: "etc/passwd", mode: 0o644, contents: fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:%s:/sbin/nologin\n", nonroot, nonroot, home)},
		{name: "etc/ssl", mode: 0o755, dir: true},
		{name: "etc/ssl/certs", mode: 0o755, dir: true},
		{name: "home", mode: 0o755, dir: true},
		{name: strings.TrimPrefix(home, "/"), mode: 0o700, uid: nonroot, dir: true},
		{name: "tmp", mode: 0o1777, dir: true},
		{name: "usr", mode: 0o755, dir: true},
		{name: "usr/local", mode: 0o755, dir: true},
		{name: "usr/local/bin", mode: 0o755, dir: true},
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Mode: e.mode, Uid: e.uid, Gid: e.uid, ModTime: epoch, Format: tar.FormatPAX}
		if e.dir {
			hdr.Typeflag, hdr.Name = tar.TypeDir, e.name+"/"
		} else {
			hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(e.contents))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("root layer %s: %w", e.name, err)
		}
		if _, err := io.WriteString(tw, e.contents); err != nil {
			return nil, fmt.Errorf("root layer %s: %w", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("root layer: %w", err)
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer))
}

// writeLayout writes idx as an OCI layout beside dir and renames it into
// place; files 0644, directories 0755 (go-containerregistry writes blobs
// 0600), so that a CI step running as another user can push it.
func writeLayout(dir string, idx v1.ImageIndex, tag string) error {
	tmp := dir + ".tmp-" + strconv.Itoa(os.Getpid())
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	lp, err := layout.Write(tmp, empty.Index)
	if err != nil {
		return err
	}
	var opts []layout.Option
	if tag != "" {
		opts = append(opts, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": tag}))
	}
	if err := lp.AppendIndex(idx, opts...); err != nil {
		return err
	}
	err = filepath.WalkDir(tmp, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		mode := fs.FileMode(0o644)
		if d.IsDir() {
			mode = 0o755
		}
		return os.Chmod(p, mode)
	})
	if err != nil {
		return err
	}
	return os.Rename(tmp, dir)
}
