package testenv

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func TestTraefikBinary(t *testing.T) {
	bin := TraefikBinary(t, "v3.6.12")
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("%s version: %v\n%s", bin, err, out)
	}
	if !strings.Contains(string(out), "v3.6.12") {
		t.Errorf("%s version says:\n%s", bin, out)
	}
}

type tarEntry struct {
	typ     byte
	mode    int64
	link    string
	content string
}

func TestTraefikBase(t *testing.T) {
	fake := filepath.Join(t.TempDir(), "traefik")
	if err := os.WriteFile(fake, []byte("not really traefik\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	opts := TraefikBaseOptions{Version: "v3.6.12", WorkingDir: "/srv/traefik", User: "nonroot", Env: []string{"A=b"}, Files: map[string]string{"/etc/traefik/traefik.yml": "api: {}\n"}, OCI: true}
	img := TraefikBase(t, fake, opts)

	mt, err := img.MediaType()
	if err != nil || mt != types.OCIManifestSchema1 {
		t.Errorf("media type %q, %v", mt, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if cf.OS != "linux" || cf.Architecture != runtime.GOARCH || !reflect.DeepEqual(c.Entrypoint, []string{"traefik"}) || c.Cmd != nil ||
		c.WorkingDir != "/srv/traefik" || c.User != "nonroot" || c.Labels["org.opencontainers.image.version"] != "v3.6.12" ||
		!reflect.DeepEqual(c.Env, []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "A=b"}) {
		t.Errorf("config: %s/%s %+v", cf.OS, cf.Architecture, c)
	}

	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %d, %v", len(layers), err)
	}
	entries, names := layerEntries(t, layers[0].Uncompressed)
	if !sort.StringsAreSorted(names) {
		t.Errorf("entries not sorted: %q", names)
	}
	ca, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]tarEntry{
		"usr/local/bin/traefik":             {typ: tar.TypeReg, mode: 0o755, content: "not really traefik\n"},
		"etc/ssl/certs/ca-certificates.crt": {typ: tar.TypeReg, mode: 0o644, content: string(ca)},
		"etc/traefik/traefik.yml":           {typ: tar.TypeReg, mode: 0o644, content: "api: {}\n"},
		"srv/traefik/":                      {typ: tar.TypeDir, mode: 0o755},
		"srv/":                              {typ: tar.TypeDir, mode: 0o755},
		"tmp/":                              {typ: tar.TypeDir, mode: 0o1777},
	} {
		if got, ok := entries[name]; !ok || got != want {
			t.Errorf("%s = %+v (present %v), want %+v", name, got, ok, want)
		}
	}
	if p := entries["etc/passwd"].content; !strings.Contains(p, "nonroot:x:65532:65532:") {
		t.Errorf("etc/passwd = %q", p)
	}
	if _, ok := entries["entrypoint.sh"]; ok {
		t.Error("entrypoint.sh without EntrypointScript")
	}

	again := TraefikBase(t, fake, opts)
	d1, err1 := img.Digest()
	d2, err2 := again.Digest()
	if err1 != nil || err2 != nil || d1 != d2 {
		t.Errorf("TraefikBase is not deterministic: %v %v (%v %v)", d1, d2, err1, err2)
	}
}

func TestTraefikBaseEntrypointScript(t *testing.T) {
	if _, err := exec.LookPath("busybox"); err != nil {
		missing(t, "busybox (Debian package busybox-static)", err)
	}
	fake := filepath.Join(t.TempDir(), "traefik")
	if err := os.WriteFile(fake, []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	img := TraefikBase(t, fake, TraefikBaseOptions{EntrypointScript: true})
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cf.Config.Entrypoint, []string{"/entrypoint.sh"}) || !reflect.DeepEqual(cf.Config.Cmd, []string{"traefik"}) || cf.Config.WorkingDir != "" {
		t.Errorf("config %+v", cf.Config)
	}
	if mt, _ := img.MediaType(); mt != types.DockerManifestSchema2 {
		t.Errorf("media type %q", mt)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	entries, _ := layerEntries(t, layers[0].Uncompressed)
	if e := entries["bin/sh"]; e.typ != tar.TypeSymlink || e.link != "busybox" {
		t.Errorf("bin/sh = %+v", e)
	}
	if e := entries["entrypoint.sh"]; e.mode != 0o755 || !strings.HasPrefix(e.content, "#!/bin/sh\n") {
		t.Errorf("entrypoint.sh = %+v", e)
	}

	// The script really runs with the image's shell: flags go to traefik,
	// anything else is executed.
	root := t.TempDir()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(root, hdr.Name)
		switch hdr.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(p, 0o755)
		case tar.TypeSymlink:
			err = os.Symlink(hdr.Linkname, p)
		case tar.TypeReg:
			var b []byte
			if b, err = io.ReadAll(tr); err == nil {
				err = os.WriteFile(p, b, os.FileMode(hdr.Mode))
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "usr/local/bin/traefik"), []byte("#!/bin/sh\necho traefik \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for args, want := range map[string]string{"--api.insecure": "traefik --api.insecure\n", "echo hi": "hi\n"} {
		cmd := exec.Command(filepath.Join(root, "bin/busybox"), append([]string{"sh", filepath.Join(root, "entrypoint.sh")}, strings.Fields(args)...)...)
		cmd.Env = []string{"PATH=" + filepath.Join(root, "usr/local/bin") + ":" + filepath.Join(root, "bin")}
		out, err := cmd.CombinedOutput()
		if err != nil || string(out) != want {
			t.Errorf("entrypoint.sh %s: %q, %v; want %q", args, out, err, want)
		}
	}
}

func layerEntries(t *testing.T, open func() (io.ReadCloser, error)) (map[string]tarEntry, []string) {
	t.Helper()
	rc, err := open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	entries := map[string]tarEntry{}
	var names []string
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if _, err := io.Copy(&buf, tr); err != nil {
			t.Fatal(err)
		}
		if hdr.Uid != 0 || hdr.Gid != 0 || !hdr.ModTime.Equal(traefikBaseCreated()) {
			t.Errorf("%s: owner %d:%d, time %v", hdr.Name, hdr.Uid, hdr.Gid, hdr.ModTime)
		}
		names = append(names, hdr.Name)
		e := tarEntry{typ: hdr.Typeflag, mode: hdr.Mode, link: hdr.Linkname, content: buf.String()}
		if hdr.Typeflag == tar.TypeSymlink {
			e.mode = 0
		}
		entries[hdr.Name] = e
	}
	return entries, names
}
