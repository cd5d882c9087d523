package testenv

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// gitEpoch is the date of a Repo's first commit; each further commit is one
// hour later, so commit and tag hashes depend only on what the test does.
var gitEpoch = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// gitBinary returns the git CLI, or skips/fails the test as the package doc says.
func gitBinary(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("git")
	if err != nil {
		missing(t, "git", err)
	}
	return p
}

// gitHelper returns a program from git's exec path (git-daemon,
// git-http-backend). Running it directly, not through the git wrapper, means
// killing the process really stops the server.
func gitHelper(t testing.TB, name string) string {
	t.Helper()
	out, err := exec.Command(gitBinary(t), "--exec-path").Output()
	if err != nil {
		t.Fatalf("git --exec-path: %v", err)
	}
	p := filepath.Join(strings.TrimSpace(string(out)), name)
	if _, err := os.Stat(p); err != nil {
		missing(t, name, err)
	}
	return p
}

// gitEnv is the environment of every git process the harness starts: no
// GIT_* variable of the caller (a hook's GIT_DIR would redirect everything),
// no system or user configuration, and the few settings that make repositories
// reproducible and servable whoever owns the files.
func gitEnv(home string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GIT_") && !strings.HasPrefix(kv, "HOME=") && !strings.HasPrefix(kv, "XDG_CONFIG_HOME=") {
			env = append(env, kv)
		}
	}
	cfg := [][2]string{
		{"init.defaultBranch", "main"},
		{"safe.directory", "*"},
		{"commit.gpgSign", "false"},
		{"tag.gpgSign", "false"},
		{"core.autocrlf", "false"},
		{"protocol.file.allow", "always"},
	}
	env = append(env,
		"HOME="+home,
		"XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_TERMINAL_PROMPT=0",
		"LC_ALL=C",
		"GIT_CONFIG_COUNT="+strconv.Itoa(len(cfg)),
	)
	for i, kv := range cfg {
		env = append(env, fmt.Sprintf("GIT_CONFIG_KEY_%d=%s", i, kv[0]), fmt.Sprintf("GIT_CONFIG_VALUE_%d=%s", i, kv[1]))
	}
	return env
}

// Repo is a non-bare git repository built with the git CLI for tests. Commits
// have a fixed author, committer and date sequence, so the same steps give the
// same commit hashes on every machine.
type Repo struct {
	// Dir is the working tree; the repository is Dir/.git. git daemon and
	// git http-backend serve it as-is.
	Dir string

	t     testing.TB
	git   string
	home  string
	ticks int
	// gitlinks are staged again at every commit: `git add --all` would
	// drop them, having no submodule checkout to look at.
	gitlinks map[string]string
}

// NewRepo creates dir (if needed) and initialises a repository there on
// branch main.
func NewRepo(t testing.TB, dir string) *Repo {
	t.Helper()
	r := &Repo{Dir: dir, t: t, git: gitBinary(t), home: t.TempDir()}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("create repository dir: %v", err)
	}
	r.Git("init", "--quiet")
	return r
}

// Git runs git in the repository and returns its trimmed standard output. A
// failure fails the test.
func (r *Repo) Git(args ...string) string {
	r.t.Helper()
	out, err := r.TryGit(args...)
	if err != nil {
		r.t.Fatal(err)
	}
	return out
}

// TryGit is Git for commands that are expected to fail.
func (r *Repo) TryGit(args ...string) (string, error) {
	return r.run("", args)
}

// GitStdin is Git with stdin as the command's standard input (git mktree,
// git hash-object --stdin).
func (r *Repo) GitStdin(stdin string, args ...string) string {
	r.t.Helper()
	out, err := r.run(stdin, args)
	if err != nil {
		r.t.Fatal(err)
	}
	return out
}

func (r *Repo) run(stdin string, args []string) (string, error) {
	cmd := exec.Command(r.git, args...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Dir = r.Dir
	date := gitEpoch.Add(time.Duration(r.ticks) * time.Hour).Format(time.RFC3339)
	cmd.Env = append(gitEnv(r.home),
		"GIT_AUTHOR_NAME=Test Author", "GIT_AUTHOR_EMAIL=author@example.test", "GIT_AUTHOR_DATE="+date,
		"GIT_COMMITTER_NAME=Test Committer", "GIT_COMMITTER_EMAIL=committer@example.test", "GIT_COMMITTER_DATE="+date,
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git %s in %s: %w: %s", strings.Join(args, " "), r.Dir, err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

func (r *Repo) path(name string) string {
	r.t.Helper()
	p := filepath.Join(r.Dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		r.t.Fatal(err)
	}
	return p
}

// WriteFile writes a regular (0644) file at the slash-separated name.
func (r *Repo) WriteFile(name, content string) {
	r.t.Helper()
	r.write(name, content, 0o644)
}

// WriteExecutable writes an executable (0755) file.
func (r *Repo) WriteExecutable(name, content string) {
	r.t.Helper()
	r.write(name, content, 0o755)
}

func (r *Repo) write(name, content string, mode os.FileMode) {
	r.t.Helper()
	p := r.path(name)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		r.t.Fatal(err)
	}
	// WriteFile keeps the mode of an existing file and the umask narrows new ones.
	if err := os.Chmod(p, mode); err != nil {
		r.t.Fatal(err)
	}
}

// Symlink creates a symbolic link name -> target (target is stored verbatim).
func (r *Repo) Symlink(name, target string) {
	r.t.Helper()
	p := r.path(name)
	_ = os.Remove(p)
	if err := os.Symlink(target, p); err != nil {
		r.t.Fatal(err)
	}
}

// Remove deletes a file or directory from the working tree.
func (r *Repo) Remove(name string) {
	r.t.Helper()
	if err := os.RemoveAll(filepath.Join(r.Dir, filepath.FromSlash(name))); err != nil {
		r.t.Fatal(err)
	}
}

// Gitlink records a submodule entry (mode 160000) at path pointing to
// commit in this and every later commit, the way `git submodule add` does,
// without needing the submodule itself.
func (r *Repo) Gitlink(path, commit string) {
	r.t.Helper()
	if r.gitlinks == nil {
		r.gitlinks = make(map[string]string)
	}
	r.gitlinks[path] = commit
}

// Commit stages everything (ignored files included) and commits it on the
// current branch, one hour after the previous commit. It returns the commit hash.
func (r *Repo) Commit(msg string) string {
	r.t.Helper()
	r.ticks++
	r.Git("add", "--all", "--force", ".")
	for path, commit := range r.gitlinks {
		r.Git("update-index", "--add", "--cacheinfo", "160000,"+commit+","+path)
	}
	r.Git("commit", "--quiet", "--allow-empty", "-m", msg)
	return r.Rev("HEAD")
}

// Rev resolves rev to a commit hash (annotated tags are peeled).
func (r *Repo) Rev(rev string) string {
	r.t.Helper()
	return r.Git("rev-parse", "--verify", "--quiet", rev+"^{commit}")
}

// Tag creates a lightweight tag at HEAD.
func (r *Repo) Tag(name string) {
	r.t.Helper()
	r.Git("tag", name)
}

// AnnotatedTag creates an annotated tag object at HEAD.
func (r *Repo) AnnotatedTag(name, msg string) {
	r.t.Helper()
	r.Git("tag", "-a", "-m", msg, name)
}

// MoveTag re-points an existing tag to rev, keeping it annotated (with the
// same message) if it was.
func (r *Repo) MoveTag(name, rev string) {
	r.t.Helper()
	if r.Git("cat-file", "-t", "refs/tags/"+name) == "tag" {
		msg := r.Git("tag", "-l", "--format=%(contents)", name)
		r.Git("tag", "-f", "-a", "-m", msg, name, rev)
		return
	}
	r.Git("tag", "-f", name, rev)
}

// Branch creates a branch at HEAD without switching to it.
func (r *Repo) Branch(name string) {
	r.t.Helper()
	r.Git("branch", name)
}

// Checkout switches the working tree to rev (a branch, or a detached commit).
func (r *Repo) Checkout(rev string) {
	r.t.Helper()
	r.Git("checkout", "--quiet", rev)
}

// GitServer is a git server running for the duration of a test.
type GitServer struct {
	// URL is the base URL with a trailing slash; append a repository's path
	// relative to the served root.
	URL string

	stop     func()
	once     sync.Once
	requests *atomic.Int64
}

// Stop shuts the server down before the test ends; later connections are
// refused. It is also called on cleanup.
func (s *GitServer) Stop() { s.once.Do(s.stop) }

// Requests is the number of HTTP requests the server received (smart HTTP
// servers only; always 0 for git daemon).
func (s *GitServer) Requests() int64 {
	if s.requests == nil {
		return 0
	}
	return s.requests.Load()
}

// GitDaemon serves every repository under root over git:// on 127.0.0.1 and
// returns the base URL (git://127.0.0.1:port/).
func GitDaemon(t testing.TB, root string) string {
	t.Helper()
	return StartGitDaemon(t, root).URL
}

// StartGitDaemon is GitDaemon returning a server that can be stopped early.
func StartGitDaemon(t testing.TB, root string) *GitServer {
	t.Helper()
	daemon := gitHelper(t, "git-daemon")
	home := t.TempDir()
	var lastErr error
	// Picking a free port and binding it are two steps; retry if someone
	// else took the port in between.
	for attempt := 0; attempt < 5; attempt++ {
		port, err := gitFreePort()
		if err != nil {
			t.Fatalf("git daemon: find a free port: %v", err)
		}
		srv, err := startGitDaemon(daemon, home, root, port)
		if err == nil {
			t.Cleanup(srv.Stop)
			return srv
		}
		lastErr = err
	}
	t.Fatalf("start git daemon: %v", lastErr)
	return nil
}

func startGitDaemon(daemon, home, root string, port int) (*GitServer, error) {
	cmd := exec.Command(daemon, "--export-all", "--reuseaddr", "--informative-errors",
		"--base-path="+root, "--listen=127.0.0.1", "--port="+strconv.Itoa(port))
	cmd.Dir = root
	cmd.Env = gitEnv(home)
	stderr := new(gitLockedBuffer)
	cmd.Stderr = stderr
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	stop, err := startServer(cmd, stderr, "git daemon on "+addr, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	if err != nil {
		return nil, err
	}
	return &GitServer{URL: "git://" + addr + "/", stop: stop}, nil
}

// GitHTTP serves every repository under root over smart HTTP (git
// http-backend behind net/http/cgi) on 127.0.0.1 and returns the base URL
// (http://127.0.0.1:port/). When user is not empty, every request needs HTTP
// basic auth with user and pass.
func GitHTTP(t testing.TB, root, user, pass string) string {
	t.Helper()
	return StartGitHTTP(t, root, user, pass).URL
}

// StartGitHTTP is GitHTTP returning a server that can be stopped early and
// counts requests.
func StartGitHTTP(t testing.TB, root, user, pass string) *GitServer {
	t.Helper()
	backend := gitHelper(t, "git-http-backend")
	var env []string
	for _, kv := range gitEnv(t.TempDir()) {
		// cgi.Handler takes PATH from its own environment.
		if !strings.HasPrefix(kv, "PATH=") {
			env = append(env, kv)
		}
	}
	cgiHandler := &cgi.Handler{
		Path: backend,
		Dir:  root,
		Env:  append(env, "GIT_PROJECT_ROOT="+root, "GIT_HTTP_EXPORT_ALL=1"),
	}
	requests := new(atomic.Int64)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if user != "" {
			u, p, ok := r.BasicAuth()
			if !ok || subtle.ConstantTimeCompare([]byte(u), []byte(user)) != 1 || subtle.ConstantTimeCompare([]byte(p), []byte(pass)) != 1 {
				w.Header().Set("WWW-Authenticate", `Basic realm="xtraefik test git"`)
				http.Error(w, "authentication required", http.StatusUnauthorized)
				return
			}
		}
		cgiHandler.ServeHTTP(w, r)
	})
	srv := httptest.NewServer(handler)
	s := &GitServer{URL: srv.URL + "/", stop: srv.Close, requests: requests}
	t.Cleanup(s.Stop)
	return s
}

// gitFreePort asks the kernel for a free loopback port.
func gitFreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	addr, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		return 0, errors.New("not a TCP address")
	}
	return addr.Port, nil
}

// gitLockedBuffer collects a server's stderr while the test reads it.
type gitLockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *gitLockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *gitLockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
