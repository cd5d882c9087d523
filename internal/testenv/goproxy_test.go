package testenv

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// goDownload runs the real go command against the servers, with an empty
// module cache so that everything comes through them, and its own GOPATH:
// the go command keeps each checksum database's signed tree head in
// $GOPATH/pkg/sumdb/<name>, and every test database is named sumdb.test.
func goDownload(t *testing.T, env []string, mv string) (downloaded, string) {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		missing(t, "go", err)
	}
	cmd := exec.Command(goBin, "mod", "download", "-json", mv)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), append([]string{"GOWORK=off", "GO111MODULE=on", "GOFLAGS=-modcacherw",
		"GOPATH=" + t.TempDir(), "GOMODCACHE=" + filepath.Join(t.TempDir(), "modcache"), "GONOSUMDB=", "GONOPROXY=", "GOPRIVATE="}, env...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	_ = cmd.Run()
	var d downloaded
	_ = json.Unmarshal(stdout.Bytes(), &d)
	return d, d.Error + stderr.String()
}

// TestGoProxyServesTheGoCommand checks both servers against the go
// command itself: it downloads through the proxy and verifies with the
// checksum database, and refuses the same module once the database lies.
func TestGoProxyServesTheGoCommand(t *testing.T) {
	const mod, version = "github.com/traefik/plugindemo", "v0.2.2"
	p := GoProxy(t, mod+"@"+version)
	db := SumDB(t, p)
	d, msg := goDownload(t, []string{"GOPROXY=" + p.URL, "GOSUMDB=" + db.GOSUMDB}, mod+"@"+version)
	want, _, err := p.Sums(mod, version)
	if err != nil {
		t.Fatal(err)
	}
	if d.Sum != want {
		t.Fatalf("go mod download through the loopback servers: sum %q, want %q: %s", d.Sum, want, msg)
	}

	liar := SumDB(t, p)
	liar.Lie(mod, version, "h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
	if _, msg := goDownload(t, []string{"GOPROXY=" + p.URL, "GOSUMDB=" + liar.GOSUMDB}, mod+"@"+version); !strings.Contains(msg, "SECURITY ERROR") {
		t.Errorf("the go command believed a lying database: %s", msg)
	}

	// The proxy proxies the database, as proxy.golang.org does.
	p.ServeSumDB(db)
	if _, msg := goDownload(t, []string{"GOPROXY=" + p.URL, "GOSUMDB=" + db.VerifierKey}, mod+"@"+version); msg != "" {
		t.Errorf("database through the proxy: %s", msg)
	}
}

func TestGoProxyAuthAndFailures(t *testing.T) {
	const mod, version = "github.com/traefik/plugindemo", "v0.2.2"
	p := NewGoProxy(t, GoProxyOptions{User: "u", Password: "p"}, mod+"@"+version)
	if !strings.HasPrefix(p.URL, "https://") {
		t.Fatalf("URL %s: credentials need https", p.URL)
	}
	get := func(user string) int {
		req, _ := http.NewRequest(http.MethodGet, p.URL+"/github.com/traefik/plugindemo/@v/list", nil)
		if user != "" {
			req.SetBasicAuth(user, "p")
		}
		resp, err := p.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK && string(b) != version+"\n" {
			t.Errorf("list = %q", b)
		}
		return resp.StatusCode
	}
	if s := get(""); s != http.StatusUnauthorized {
		t.Errorf("without credentials: %d", s)
	}
	if s := get("u"); s != http.StatusOK {
		t.Errorf("with credentials: %d", s)
	}
	p.Fail(http.StatusGone)
	if s := get("u"); s != http.StatusGone {
		t.Errorf("Fail(410): %d", s)
	}
	if n := len(p.Requests()); n != 3 {
		t.Errorf("%d requests logged, want 3", n)
	}
}
