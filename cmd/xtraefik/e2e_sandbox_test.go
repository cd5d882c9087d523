package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xtraefik/xtraefik/internal/testenv"
)

// TestVerifyInUnprivilegedContainer runs xtraefik as CI runners often do:
// inside a container without privileges, where Docker's seccomp profile
// refuses new user namespaces. Verification still contains plugin code with
// what is left (Landlock, seccomp), says so in each result, and keeps the
// hostile probe away from the container's secrets, files and network;
// --sandbox=require refuses to run plugin code at all.
func TestVerifyInUnprivilegedContainer(t *testing.T) {
	docker := testenv.Tool(t, "docker")
	busybox := testenv.Tool(t, "busybox")
	if out, err := exec.Command(docker, "info").CombinedOutput(); err != nil {
		testenv.Unavailable(t, "no docker engine: %v\n%s", err, out)
	}
	const secret = "s3cr3t-in-the-container"
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	build := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(rootfs, "xtraefik"), ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	plugin := filepath.Join(rootfs, "plugin")
	if err := os.CopyFS(plugin, os.DirFS(filepath.Join(testenv.FixturesDir(t), "hostile", "probe"))); err != nil {
		t.Fatal(err)
	}
	manifest := `displayName: Hostile probe
type: middleware
import: example.com/hostile/probe
summary: Tries to steal and to reach outside, and reports what happened
testData:
  read: [/etc/secret, /proc/1/environ]
  write: [/written-by-plugin, /plugin/injected.go]
  listen: 127.0.0.1:18080
  holdMS: 10
`
	files := map[string]string{
		"plugin/.traefik.yml": manifest,
		"etc/secret":          secret,
	}
	for name, content := range files {
		p := filepath.Join(rootfs, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"tmp", "bin"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o1777); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "bin", "busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	// A worker binary planted next to xtraefik: run outside the sandbox it
	// would write /written-by-planted and print the container's secret.
	gcc := testenv.Tool(t, "gcc")
	planted := filepath.Join(rootfs, "xtraefik-yaegi-v0.15.1")
	if out, err := exec.Command(gcc, "-static", "-O1", "-o", planted, `-DMARKER="/written-by-planted"`, `-DSECRET="/etc/secret"`,
		filepath.Join(testenv.FixturesDir(t), "hostile", "native", "planted.c")).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	image := fmt.Sprintf("xtraefik-sandbox-test:%d", time.Now().UnixNano())
	imp := exec.Command("sh", "-c", `tar -C "$1" -c . | "$2" import - "$3"`, "sh", rootfs, docker, image)
	if out, err := imp.CombinedOutput(); err != nil {
		t.Fatalf("docker import: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command(docker, "rmi", "-f", image).Run() })

	run := func(args ...string) (string, string, error) {
		cmd := exec.Command(docker, append([]string{"run", "--rm", "--network", "none", "-e", "XTRAEFIK_GIT_TOKEN=" + secret,
			"-e", "TMPDIR=/tmp", image, "/xtraefik", "verify", "--dir", "/plugin", "--traefik-version", "v3.6.12"}, args...)...)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}

	out, errOut, err := run("--output", "json")
	if strings.Contains(out+errOut, secret) {
		t.Fatalf("the secret reached the plugin's report:\n%s\n%s", out, errOut)
	}
	var rep struct {
		Plugins []struct {
			Status      string `json:"status"`
			Reason      string `json:"reason"`
			Containment struct {
				Level   string   `json:"level"`
				Missing []string `json:"missing"`
			} `json:"containment"`
		} `json:"verify"`
	}
	if jerr := json.Unmarshal([]byte(out), &rep); jerr != nil || len(rep.Plugins) != 1 {
		t.Fatalf("verify in the container: %v / %v\nstdout:\n%s\nstderr:\n%s", err, jerr, out, errOut)
	}
	p := rep.Plugins[0]
	if p.Containment.Level != "partial" || !strings.Contains(strings.Join(p.Containment.Missing, " "), "namespaces") {
		t.Fatalf("containment %+v: want partial, namespaces missing", p.Containment)
	}
	_, js, ok := strings.Cut(p.Reason, "probe:")
	var probe map[string]string
	if !ok || json.Unmarshal([]byte(js), &probe) != nil {
		t.Fatalf("no probe report: %+v", p)
	}
	for _, k := range []string{"read /etc/secret", "read /proc/1/environ", "write /written-by-plugin", "write /plugin/injected.go"} {
		if probe[k] == "ok" || probe[k] == "" {
			t.Errorf("%s: %q, want refused", k, probe[k])
		}
	}
	if !strings.Contains(probe["listen 127.0.0.1:18080"], "operation not permitted") {
		t.Errorf("listen: %q, want no sockets without a network namespace", probe["listen 127.0.0.1:18080"])
	}

	// Found next to xtraefik for Traefik v2.11.0 (yaegi v0.15.1), the planted
	// worker starts only inside the sandbox xtraefik entered first.
	cmd := exec.Command(docker, "run", "--rm", "--network", "none", "-e", "TMPDIR=/tmp", image, "/bin/busybox", "sh", "-c",
		"/xtraefik verify --dir /plugin --traefik-version v2.11.0; echo; /bin/busybox cat /written-by-planted && echo MARKER-WRITTEN")
	both, _ := cmd.CombinedOutput()
	if strings.Contains(string(both), secret) || strings.Contains(string(both), "MARKER-WRITTEN") {
		t.Fatalf("the planted worker ran outside the sandbox:\n%s", both)
	}
	if !strings.Contains(string(both), "did not describe its interpreter") {
		t.Fatalf("the planted worker's answer was not refused:\n%s", both)
	}

	_, errOut, err = run("--sandbox", "require")
	if err == nil || !strings.Contains(errOut, "full containment required") {
		t.Fatalf("--sandbox=require in the container: %v\n%s", err, errOut)
	}
}
