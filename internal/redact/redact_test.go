package redact

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://user:tok@git.example.com/o/r.git", "https://git.example.com/o/r.git"},
		{"https://ghp_token@github.com/o/r", "https://github.com/o/r"},
		{"http://git.example.com/o/r", "http://git.example.com/o/r"},
		{"ssh://git:secret@host:2222/o/r", "ssh://git@host:2222/o/r"},
		{"ssh://git@host/o/r", "ssh://git@host/o/r"},
		{"git@github.com:o/r.git", "git@github.com:o/r.git"},
		{"deploy:hunter2@git.example.com:o/r.git", "deploy@git.example.com:o/r.git"},
		{"host.example.com:o/r", "host.example.com:o/r"},
		{"/srv/git/repo", "/srv/git/repo"},
		{"file:///srv/git/repo", "file:///srv/git/repo"},
		{"./relative/repo", "./relative/repo"},
		{"https://reg.example/v2/x/blobs/uploads/abc?_state=SECRETSTATE&digest=sha256:00", "https://reg.example/v2/x/blobs/uploads/abc?_state=REDACTED&digest=sha256%3A00"},
		{"https://s3.example/blob?X-Amz-Signature=abc&n=1", "https://s3.example/blob?X-Amz-Signature=REDACTED&n=1"},
		{"https://u:p@%zz/", "<unparsable URL>"},
	} {
		if got := URL(tc.in); got != tc.want {
			t.Errorf("URL(%q) = %q, want %q", tc.in, got, tc.want)
		}
		for _, secret := range []string{"tok", "ghp_token", "secret", "hunter2", "SECRETSTATE"} {
			if strings.Contains(URL(tc.in), secret) {
				t.Errorf("URL(%q) = %q keeps %q", tc.in, URL(tc.in), secret)
			}
		}
	}
}

func TestPublic(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"https://user:tok@github.com/o/r", "https://github.com/o/r", true},
		{"git@github.com:o/r.git", "ssh://git@github.com/o/r.git", true},
		{"deploy:pw@host:o/r", "ssh://deploy@host/o/r", true},
		{"ssh://git:pw@host/o/r", "ssh://git@host/o/r", true},
		{"git://host/o/r#frag", "git://host/o/r", true},
		{"/srv/git/repo", "", false},
		{"file:///srv/git/repo", "", false},
		{"", "", false},
		{"ftp://host/r", "", false},
	} {
		got, ok := Public(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("Public(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`PATCH https://reg.example/v2/a/blobs/uploads/x?_state=S3CR3T: unexpected status code 500`,
			`PATCH https://reg.example/v2/a/blobs/uploads/x?_state=REDACTED: unexpected status code 500`},
		{`clone "https://bob:pw@git.example/r.git": auth failed.`, `clone "https://git.example/r.git": auth failed.`},
		{`fetch bob:pw@git.example:team/r.git: refused`, `fetch bob@git.example:team/r.git: refused`},
		{`fetch bob:pa:ss@git.example:team/r.git: refused`, `fetch bob@git.example:team/r.git: refused`},
		{`fetch "bob:p@ss@git.example:team/r.git"`, `fetch "bob@git.example:team/r.git"`},
		{`nothing to hide at /tmp/x`, `nothing to hide at /tmp/x`},
	} {
		if got := Text(tc.in); got != tc.want {
			t.Errorf("Text(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
}

func TestError(t *testing.T) {
	if Error(nil) != nil {
		t.Fatal("Error(nil) is not nil")
	}
	base := fmt.Errorf("GET https://reg.example/v2/?token=abc: %w", fs.ErrPermission)
	err := Error(base)
	if strings.Contains(err.Error(), "abc") || !strings.Contains(err.Error(), "token=REDACTED") {
		t.Errorf("Error: %q", err)
	}
	if !errors.Is(err, fs.ErrPermission) {
		t.Error("errors.Is lost through the redacted error")
	}
	plain := errors.New("no URL here")
	if Error(plain) != plain {
		t.Error("an error without a URL is wrapped")
	}
}
