package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/xtraefik/xtraefik/internal/runcheck"
	"github.com/xtraefik/xtraefik/internal/testenv"
)

var releaseE2E = flag.Bool("release-e2e", false, "run scripts/release for the host's linux target and the image it builds under runc (also with XTRAEFIK_E2E=1)")

// TestReleaseE2E runs scripts/release for the host's linux target only (the
// four-target release builds the same way, four times), twice, and checks:
// the archive holds xtraefik, its workers and the README, SHA256SUMS matches,
// and both runs give byte-identical archives and the same image digest; then
// it unpacks the image's host platform and runs, under runc as the image's
// non-root user with a read-only root, `xtraefik version` and a verification
// of github.com/traefik/plugindemo for Traefik v3.6.12 (the Yaegi xtraefik
// links) and v2.11.0 (the v0.15.1 worker shipped next to xtraefik: the image
// has no Go toolchain to build one).
func TestReleaseE2E(t *testing.T) {
	if !testenv.Strict() && !*releaseE2E {
		t.Skip("builds xtraefik and its workers: set XTRAEFIK_E2E=1 or pass -release-e2e")
	}
	need := func(ok bool, what string) {
		t.Helper()
		if !ok {
			testenv.Unavailable(t, "%s", what)
		}
	}
	need(runtime.GOOS == "linux", "the image runs on linux only")
	need(os.Geteuid() == 0, "runc needs root here")
	_, err := exec.LookPath("runc")
	need(err == nil, "runc is not installed (apt-get install runc)")

	target := "linux/" + runtime.GOARCH
	dist := filepath.Join(t.TempDir(), "dist")
	start := time.Now()
	release(t, dist, target)
	t.Logf("scripts/release --targets %s: %s", target, time.Since(start).Round(time.Second))

	sums := readFile(t, filepath.Join(dist, "SHA256SUMS"))
	digest := strings.TrimSpace(readFile(t, filepath.Join(dist, "image.digest")))
	checkArchives(t, dist, sums)

	again := filepath.Join(t.TempDir(), "dist")
	start = time.Now()
	release(t, again, target)
	t.Logf("scripts/release again (warm caches): %s", time.Since(start).Round(time.Second))
	if s := readFile(t, filepath.Join(again, "SHA256SUMS")); s != sums {
		t.Errorf("archives differ between two runs of the same commit:\n%s\n%s", sums, s)
	}
	if d := strings.TrimSpace(readFile(t, filepath.Join(again, "image.digest"))); d != digest {
		t.Errorf("image digest differs between two runs: %s, %s", digest, d)
	}

	img := hostImage(t, filepath.Join(dist, "image"), digest, target)
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	rootfs := filepath.Join(t.TempDir(), "rootfs")
	if err := os.Mkdir(rootfs, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := runcheck.Unpack(context.Background(), img, rootfs); err != nil {
		t.Fatalf("unpack the image: %v", err)
	}
	// plugindemo from the module proxy: the module cache is read-only and
	// owned by root; the copy is readable by the image's user.
	copyTree(t, testenv.ModuleDir(t, "github.com/traefik/plugindemo", "v0.2.2"), filepath.Join(rootfs, "plugin"))

	out := runcRun(t, rootfs, cf.Config, "xtraefik", "version")
	rev := cf.Config.Labels["org.opencontainers.image.revision"]
	if !strings.HasPrefix(out, "xtraefik ") || !strings.Contains(out, runtime.Version()) {
		t.Errorf("xtraefik version = %q", out)
	}
	// Go stamps the commit only when .git is a directory: not in a git
	// worktree, where .git is a file.
	if fi, err := os.Stat("../../.git"); err == nil && fi.IsDir() {
		if len(rev) < 12 || !strings.Contains(out, rev[:12]) {
			t.Errorf("xtraefik version = %q, want the release's commit %s", out, rev)
		}
	} else {
		t.Logf("xtraefik version = %q (a git worktree: no commit stamped)", out)
	}

	for _, c := range []struct{ traefik, interpreter string }{
		{"v3.6.12", "yaegi v0.16.1"},
		{"v2.11.0", "yaegi v0.15.1"},
	} {
		out := runcRun(t, rootfs, cf.Config, "xtraefik", "verify", "--dir", "/plugin", "--traefik-version", c.traefik, "--output", "json")
		var rep struct {
			OK     bool `json:"ok"`
			Verify []struct {
				Module, Status, Interpreter, Reason string
				Containment                         *struct{ Level string }
			} `json:"verify"`
		}
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("verify for %s: not a JSON report: %v\n%s", c.traefik, err, out)
		}
		if !rep.OK || len(rep.Verify) != 1 || rep.Verify[0].Status != "OK" || rep.Verify[0].Interpreter != c.interpreter {
			t.Fatalf("verify for Traefik %s: want one OK by %s, got\n%s", c.traefik, c.interpreter, out)
		}
		level := "-"
		if rep.Verify[0].Containment != nil {
			level = rep.Verify[0].Containment.Level
		}
		t.Logf("verify --traefik-version %s under runc: %s by %s, containment %s", c.traefik, rep.Verify[0].Status, c.interpreter, level)
	}
}

// release runs scripts/release for one target into dist.
func release(t *testing.T, dist, target string) {
	t.Helper()
	cmd := exec.Command("bash", "../release", "--targets", target, "--dist", dist)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("scripts/release: %v\n%s", err, out.String())
	}
}

// checkArchives checks every line of SHA256SUMS against its archive and
// what each archive holds.
func checkArchives(t *testing.T, dist, sums string) {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(sums))
	n := 0
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok {
			t.Fatalf("SHA256SUMS: %q", sc.Text())
		}
		n++
		data, err := os.ReadFile(filepath.Join(dist, name))
		if err != nil {
			t.Fatal(err)
		}
		if h := sha256.Sum256(data); hex.EncodeToString(h[:]) != sum {
			t.Errorf("%s: SHA256SUMS says %s, the file hashes to %x", name, sum, h)
		}
		top := strings.TrimSuffix(name, ".tar.gz")
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !zr.ModTime.IsZero() || zr.Name != "" {
			t.Errorf("%s: gzip header has a name %q or time %s", name, zr.Name, zr.ModTime)
		}
		var names []string
		tr := tar.NewReader(zr)
		for {
			hdr, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if hdr.Uid != 0 || hdr.Gid != 0 || hdr.Uname != "" && hdr.Uname != "root" {
				t.Errorf("%s: %s owned by %d:%d (%s)", name, hdr.Name, hdr.Uid, hdr.Gid, hdr.Uname)
			}
			names = append(names, strings.TrimSuffix(hdr.Name, "/"))
		}
		want := []string{top, top + "/README.md"}
		want = append(want, docsEntries(t, top)...)
		want = append(want, top+"/xtraefik", top+"/xtraefik-yaegi-v0.15.0", top+"/xtraefik-yaegi-v0.15.1")
		if fmt.Sprint(names) != fmt.Sprint(want) {
			t.Errorf("%s holds %v, want %v", name, names, want)
		}
	}
	if n == 0 {
		t.Fatal("SHA256SUMS is empty")
	}
}

// docsEntries are the archive entries of the repository's docs/ under top,
// in tar's sorted order: the README's links must resolve in an archive too.
func docsEntries(t *testing.T, top string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir("../../docs", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel("../..", p)
		if err != nil {
			return err
		}
		out = append(out, top+"/"+filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out // WalkDir's lexical, depth-first order is tar --sort=name's
}

// hostImage is the image of platform in the layout's index digest.
func hostImage(t *testing.T, dir, digest, platform string) v1.Image {
	t.Helper()
	lp, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	h, err := v1.NewHash(digest)
	if err != nil {
		t.Fatalf("image.digest: %v", err)
	}
	root, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	idx, err := root.ImageIndex(h)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range im.Manifests {
		if d.Platform != nil && d.Platform.String() == platform {
			img, err := idx.Image(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			return img
		}
	}
	t.Fatalf("the image has no %s", platform)
	return nil
}

// runcRun runs args in rootfs with runc as the image says (user, env,
// working directory), confined like a locked-down pod: read-only root, a
// tmpfs /tmp, no capabilities, no_new_privs, its own namespaces and no
// network but loopback. It returns stdout; a non-zero exit fails the test.
func runcRun(t *testing.T, rootfs string, cfg v1.Config, args ...string) string {
	t.Helper()
	var uid, gid uint32
	if _, err := fmt.Sscanf(cfg.User, "%d:%d", &uid, &gid); err != nil {
		t.Fatalf("image user %q: %v", cfg.User, err)
	}
	spec := &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			User:            specs.User{UID: uid, GID: gid},
			Args:            args,
			Env:             cfg.Env,
			Cwd:             cfg.WorkingDir,
			NoNewPrivileges: true,
			Capabilities:    &specs.LinuxCapabilities{},
		},
		Root:     &specs.Root{Path: rootfs, Readonly: true},
		Hostname: "xtraefik-release-e2e",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777", "size=262144k"}},
		},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace}, {Type: specs.MountNamespace},
			},
			MaskedPaths:   []string{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug"},
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
	}
	bundle := t.TempDir()
	data, err := json.MarshalIndent(spec, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatal(err)
	}
	id, state := "xtraefik-release-e2e-"+hex.EncodeToString(rnd[:]), filepath.Join(bundle, "state")
	t.Cleanup(func() { _ = exec.Command("runc", "--root", state, "delete", "--force", id).Run() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "runc", "--root", state, "run", "--bundle", bundle, id)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("runc run %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return strings.TrimSpace(stdout.String())
}

// copyTree copies a plugin tree, files 0644 and directories 0755.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	var files []string
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		files = append(files, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	for _, rel := range files {
		data, err := os.ReadFile(filepath.Join(src, rel))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, rel), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
