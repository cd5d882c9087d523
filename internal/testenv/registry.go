package testenv

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/crypto/bcrypt"
)

// RegistryOptions configure Registry.
type RegistryOptions struct {
	// User and Password turn on htpasswd (basic) authentication.
	User, Password string
}

// Registry starts the Debian docker-registry (Distribution 2.x) on a free
// 127.0.0.1 port, with filesystem storage under t.TempDir(), waits until /v2/
// answers and stops it on cleanup. It returns "127.0.0.1:<port>".
func Registry(t testing.TB, opts RegistryOptions) string {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		missing(t, "docker-registry", err)
	}
	dir := t.TempDir()
	auth := ""
	if opts.User != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(opts.Password), bcrypt.MinCost)
		if err != nil {
			t.Fatalf("registry: bcrypt: %v", err)
		}
		htpasswd := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(htpasswd, []byte(opts.User+":"+string(hash)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		auth = fmt.Sprintf("auth:\n  htpasswd:\n    realm: xtraefik-test\n    path: %s\n", htpasswd)
	}
	// Another process may take the port between probing and binding: retry.
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := registryFreePort()
		if err != nil {
			t.Fatalf("registry: free port: %v", err)
		}
		host, err := startRegistry(t, bin, dir, port, auth, attempt)
		if err == nil {
			return host
		}
		lastErr = err
	}
	t.Fatalf("registry: %v", lastErr)
	return ""
}

func registryFreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func startRegistry(t testing.TB, bin, dir string, port int, auth string, attempt int) (string, error) {
	host := "127.0.0.1:" + strconv.Itoa(port)
	storage := filepath.Join(dir, "storage")
	// relativeurls keeps upload Locations relative, so clients that reach the
	// registry through a proxy keep going through it.
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
  secret: xtraefik-test-secret
  relativeurls: true
%s`, storage, host, auth)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return "", err
	}
	logPath := filepath.Join(dir, fmt.Sprintf("registry-%d.log", attempt))
	logFile, err := os.Create(logPath)
	if err != nil {
		return "", err
	}
	cmd := exec.Command(bin, "serve", cfgPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// REGISTRY_* variables would override the configuration file.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REGISTRY_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return "", fmt.Errorf("start %s: %w", bin, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		logFile.Close()
		close(exited)
	}()
	stop := func() {
		cmd.Process.Kill()
		<-exited
	}
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get("http://" + host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				break
			}
		}
		select {
		case <-exited:
			out, _ := os.ReadFile(logPath)
			return "", fmt.Errorf("docker-registry exited during startup:\n%s", out)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			out, _ := os.ReadFile(logPath)
			return "", fmt.Errorf("docker-registry did not answer on %s:\n%s", host, out)
		}
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			out, _ := os.ReadFile(logPath)
			t.Logf("docker-registry log (%s):\n%s", host, registryTail(out, 8000))
		}
	})
	return host, nil
}

func registryTail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// RecordedRequest is one request seen by a RecordingProxy.
type RecordedRequest struct {
	Method string
	// Path is the URL path, e.g. /v2/app/blobs/sha256:...
	Path string
	// Query is the raw query, e.g. mount=sha256:...&from=base
	Query  string
	Status int
}

// Blob returns the digest of a /v2/<repo>/blobs/<digest> request, or "".
func (r RecordedRequest) Blob() string {
	if i := strings.LastIndex(r.Path, "/blobs/"); i >= 0 && !strings.Contains(r.Path[i:], "/uploads/") {
		return r.Path[i+len("/blobs/"):]
	}
	return ""
}

// Upload reports whether the request carries blob data to the registry: a
// POST that starts an upload without mounting, or a PATCH/PUT of one.
func (r RecordedRequest) Upload() bool {
	if !strings.Contains(r.Path, "/blobs/uploads/") {
		return false
	}
	switch r.Method {
	case http.MethodPatch, http.MethodPut:
		return true
	case http.MethodPost:
		return !strings.Contains(r.Query, "mount=")
	}
	return false
}

// RequestLog collects what a RecordingProxy forwarded.
type RequestLog struct {
	mu   sync.Mutex
	reqs []RecordedRequest
}

// Requests returns a copy of the requests so far.
func (l *RequestLog) Requests() []RecordedRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]RecordedRequest(nil), l.reqs...)
}

// Reset forgets the requests so far.
func (l *RequestLog) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reqs = nil
}

func (l *RequestLog) add(r RecordedRequest) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reqs = append(l.reqs, r)
}

// RecordingProxy forwards plain HTTP to the registry at target (host:port) and
// records every request, so a test can count blob reads and uploads. It
// returns the proxy's "127.0.0.1:<port>".
func RecordingProxy(t testing.TB, target string) (string, *RequestLog) {
	t.Helper()
	host, log, _ := StoppableProxy(t, target)
	return host, log
}

// StoppableProxy is RecordingProxy with a stop function: once called, the
// registry is unreachable through the proxy (connections are refused), as
// when a registry goes down mid-session.
func StoppableProxy(t testing.TB, target string) (host string, log *RequestLog, stop func()) {
	t.Helper()
	u := &url.URL{Scheme: "http", Host: target}
	log = &RequestLog{}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			// Keep the client's Host so absolute URLs the registry builds
			// point back at the proxy.
			r.Out.Host = r.In.Host
		},
		ModifyResponse: func(resp *http.Response) error {
			log.add(RecordedRequest{Method: resp.Request.Method, Path: resp.Request.URL.Path, Query: resp.Request.URL.RawQuery, Status: resp.StatusCode})
			return nil
		},
	}
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), log, srv.Close
}

// BaseOptions describe a synthetic, Traefik-like base image.
type BaseOptions struct {
	// Platforms default to linux/amd64 and linux/arm64.
	Platforms []v1.Platform
	// WorkingDir of every platform's config; "" leaves it unset (Traefik's
	// official image has none). WorkingDirs overrides it per platform
	// (key: Platform.String()). A WORKDIR gets a directory entry with mode
	// 0750, owned by 65532, so that a test can see it is not overridden.
	WorkingDir  string
	WorkingDirs map[string]string
	// OCI selects OCI media types; the default is Docker v2.
	OCI bool
	// Single makes a single-platform image (the first platform), not an index.
	Single bool
	// Attestations adds a BuildKit-style attestation manifest (platform
	// unknown/unknown) per image to the index (OCI only).
	Attestations bool
	// Version is the org.opencontainers.image.version label; default v3.6.12.
	Version string
	// Auth is used by PushBase; nil is anonymous.
	Auth authn.Authenticator
}

// baseCreated is the fixed creation time of synthetic bases.
func baseCreated() time.Time { return time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC) }

func (o BaseOptions) platforms() []v1.Platform {
	if len(o.Platforms) > 0 {
		return o.Platforms
	}
	return []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}}
}

func (o BaseOptions) workingDir(p v1.Platform) string {
	if wd, ok := o.WorkingDirs[p.String()]; ok {
		return wd
	}
	return o.WorkingDir
}

// BaseImage builds the synthetic base for one platform: two layers (an "OS"
// layer with /etc/ssl/certs and an entrypoint, and a "traefik" layer with a
// /usr/local/bin/traefik placeholder), Entrypoint ["/entrypoint.sh"], Cmd
// ["traefik"], the version label and fixed timestamps. The same options give
// the same digest.
func BaseImage(t testing.TB, p v1.Platform, opts BaseOptions) v1.Image {
	t.Helper()
	img, err := baseImage(p, opts)
	if err != nil {
		t.Fatalf("synthetic base for %s: %v", p, err)
	}
	return img
}

func baseImage(p v1.Platform, opts BaseOptions) (v1.Image, error) {
	manifestType, configType, layerType := types.DockerManifestSchema2, types.DockerConfigJSON, types.DockerLayer
	if opts.OCI {
		manifestType, configType, layerType = types.OCIManifestSchema1, types.OCIConfigJSON, types.OCILayer
	}
	wd := opts.workingDir(p)
	osFiles := []baseFile{
		{name: "etc/", mode: 0o755},
		{name: "etc/ssl/", mode: 0o755},
		{name: "etc/ssl/certs/", mode: 0o755},
		{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, content: "# synthetic CA bundle for tests\n"},
		{name: "entrypoint.sh", mode: 0o755, content: "#!/bin/sh\nexec \"$@\"\n"},
	}
	if wd != "" && wd != "/" {
		rel := strings.TrimPrefix(path.Clean("/"+wd), "/")
		parts := strings.Split(rel, "/")
		for i := range parts {
			dir := strings.Join(parts[:i+1], "/") + "/"
			f := baseFile{name: dir, mode: 0o755}
			if i == len(parts)-1 {
				f.mode, f.uid = 0o750, 65532
			}
			osFiles = append(osFiles, f)
		}
	}
	traefikFiles := []baseFile{
		{name: "usr/", mode: 0o755},
		{name: "usr/local/", mode: 0o755},
		{name: "usr/local/bin/", mode: 0o755},
		{name: "usr/local/bin/traefik", mode: 0o755, content: "#!/bin/sh\necho traefik placeholder for " + p.String() + "\n"},
	}
	img := mutate.MediaType(empty.Image, manifestType)
	img = mutate.ConfigMediaType(img, configType)
	for i, files := range [][]baseFile{osFiles, traefikFiles} {
		data, err := baseTar(files)
		if err != nil {
			return nil, err
		}
		layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(data)), nil
		}, tarball.WithMediaType(layerType))
		if err != nil {
			return nil, err
		}
		img, err = mutate.Append(img, mutate.Addendum{
			Layer:     layer,
			MediaType: layerType,
			History:   v1.History{Created: v1.Time{Time: baseCreated()}, CreatedBy: fmt.Sprintf("synthetic base layer %d", i)},
		})
		if err != nil {
			return nil, err
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	version := opts.Version
	if version == "" {
		version = "v3.6.12"
	}
	cf.Created = v1.Time{Time: baseCreated()}
	cf.OS, cf.Architecture, cf.Variant, cf.OSVersion = p.OS, p.Architecture, p.Variant, p.OSVersion
	cf.Config = v1.Config{
		Entrypoint:   []string{"/entrypoint.sh"},
		Cmd:          []string{"traefik"},
		Env:          []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		ExposedPorts: map[string]struct{}{"80/tcp": {}},
		WorkingDir:   wd,
		Labels: map[string]string{
			"org.opencontainers.image.version": version,
			"org.opencontainers.image.title":   "Traefik",
		},
	}
	return mutate.ConfigFile(img, cf)
}

type baseFile struct {
	name    string
	mode    int64
	uid     int
	content string
}

func baseTar(files []baseFile) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		hdr := &tar.Header{Name: f.name, Mode: f.mode, Uid: f.uid, Gid: f.uid, ModTime: baseCreated(), Format: tar.FormatUSTAR}
		if strings.HasSuffix(f.name, "/") {
			hdr.Typeflag = tar.TypeDir
		} else {
			hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(f.content))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := io.WriteString(tw, f.content); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// BaseIndex builds the synthetic multi-platform base: one BaseImage per
// platform, each descriptor annotated with test.xtraefik/platform (OCI only),
// plus attestation manifests when asked.
func BaseIndex(t testing.TB, opts BaseOptions) v1.ImageIndex {
	t.Helper()
	idx, err := baseIndex(opts)
	if err != nil {
		t.Fatalf("synthetic base index: %v", err)
	}
	return idx
}

func baseIndex(opts BaseOptions) (v1.ImageIndex, error) {
	indexType := types.DockerManifestList
	if opts.OCI {
		indexType = types.OCIImageIndex
	}
	var adds []mutate.IndexAddendum
	for _, p := range opts.platforms() {
		img, err := baseImage(p, opts)
		if err != nil {
			return nil, err
		}
		p := p
		desc := v1.Descriptor{Platform: &p}
		if opts.OCI {
			desc.Annotations = map[string]string{"test.xtraefik/platform": p.String()}
		}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: desc})
		if opts.Attestations && opts.OCI {
			att, err := attestation(img)
			if err != nil {
				return nil, err
			}
			digest, err := img.Digest()
			if err != nil {
				return nil, err
			}
			adds = append(adds, mutate.IndexAddendum{Add: att, Descriptor: v1.Descriptor{
				Platform: &v1.Platform{OS: "unknown", Architecture: "unknown"},
				Annotations: map[string]string{
					"vnd.docker.reference.type":   "attestation-manifest",
					"vnd.docker.reference.digest": digest.String(),
				},
			}})
		}
	}
	return mutate.AppendManifests(mutate.IndexMediaType(empty.Index, indexType), adds...), nil
}

// attestation is a small in-toto attestation manifest like BuildKit's.
func attestation(img v1.Image) (v1.Image, error) {
	digest, err := img.Digest()
	if err != nil {
		return nil, err
	}
	statement := fmt.Sprintf(`{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"https://spdx.dev/Document","subject":[{"name":"synthetic","digest":{"sha256":%q}}],"predicate":{}}`, digest.Hex)
	layer := static.NewLayer([]byte(statement), "application/vnd.in-toto+json")
	att := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	att = mutate.ConfigMediaType(att, types.OCIConfigJSON)
	att, err = mutate.Append(att, mutate.Addendum{Layer: layer, Annotations: map[string]string{"in-toto.io/predicate-type": "https://spdx.dev/Document"}})
	if err != nil {
		return nil, err
	}
	cf, err := att.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Created, cf.History = "unknown", "unknown", v1.Time{Time: baseCreated()}, nil
	// The in-toto blob is no filesystem layer: list no diff ID for it, or
	// validators (crane validate) count a layer that is not one.
	cf.RootFS.DiffIDs = nil
	return mutate.ConfigFile(att, cf)
}

// PushBase pushes the synthetic base (an index, or one image with Single) to
// ref on a loopback registry and returns its digest.
func PushBase(t testing.TB, ref string, opts BaseOptions) v1.Hash {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatalf("push base: %v", err)
	}
	auth := opts.Auth
	if auth == nil {
		auth = authn.Anonymous
	}
	var digest v1.Hash
	if opts.Single {
		img := BaseImage(t, opts.platforms()[0], opts)
		err = remote.Write(r, img, remote.WithAuth(auth))
		if err == nil {
			digest, err = img.Digest()
		}
	} else {
		idx := BaseIndex(t, opts)
		err = remote.WriteIndex(r, idx, remote.WithAuth(auth))
		if err == nil {
			digest, err = idx.Digest()
		}
	}
	if err != nil {
		t.Fatalf("push base %s: %v", ref, err)
	}
	return digest
}

// WriteBaseLayout adds the synthetic base to the OCI layout at dir (created if
// needed), tagged tag (org.opencontainers.image.ref.name), and returns its
// digest.
func WriteBaseLayout(t testing.TB, dir, tag string, opts BaseOptions) v1.Hash {
	t.Helper()
	lp, err := layout.FromPath(dir)
	if err != nil {
		lp, err = layout.Write(dir, empty.Index)
	}
	if err != nil {
		t.Fatalf("base layout: %v", err)
	}
	anns := layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": tag})
	var digest v1.Hash
	if opts.Single {
		img := BaseImage(t, opts.platforms()[0], opts)
		if err = lp.AppendImage(img, anns); err == nil {
			digest, err = img.Digest()
		}
	} else {
		idx := BaseIndex(t, opts)
		if err = lp.AppendIndex(idx, anns); err == nil {
			digest, err = idx.Digest()
		}
	}
	if err != nil {
		t.Fatalf("base layout %s: %v", dir, err)
	}
	return digest
}

// WriteBaseArchive writes the first platform of the synthetic base as a
// `docker save` tarball at file, named tag, and returns the image digest as
// go-containerregistry reads it back.
func WriteBaseArchive(t testing.TB, file, tag string, opts BaseOptions) v1.Hash {
	t.Helper()
	tg, err := name.NewTag(tag)
	if err != nil {
		t.Fatalf("base archive: %v", err)
	}
	img := BaseImage(t, opts.platforms()[0], opts)
	if err := tarball.WriteToFile(file, tg, img); err != nil {
		t.Fatalf("base archive %s: %v", file, err)
	}
	back, err := tarball.ImageFromPath(file, &tg)
	if err == nil {
		var d v1.Hash
		if d, err = back.Digest(); err == nil {
			return d
		}
	}
	t.Fatalf("base archive %s: read back: %v", file, err)
	return v1.Hash{}
}
