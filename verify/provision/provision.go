// Package provision builds xtraefik's verification workers for the Yaegi
// versions it does not link (Traefik v2.9–v2.11.0 embed yaegi v0.15.x, and a
// future release may embed a Yaegi no xtraefik knows yet), on first use, from
// the source embedded in the xtraefik binary itself (source.zip, written by
// go generate from this module's files)
// and the Go module proxy: a plain install needs no manual step beyond having
// a Go toolchain. Workers are cached per xtraefik source and Yaegi version; a
// file lock serialises concurrent builds.
//
// Trust: every module a worker links is checked against a hash before the go
// command compiles it. For the versions in Versions the hashes are pinned in
// xtraefik's source (go.sum, worker.sum). Any other Yaegi is checked by the go
// command against the checksum database (GOSUMDB, sum.golang.org unless the
// user's environment names another), exactly as `go get` would; the user's
// GONOSUMDB/GOPRIVATE patterns are honoured, as the go command honours them,
// and GOSUMDB=off is refused: then nothing would vouch for the code.
package provision

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/semver"

	"github.com/xtraefik/xtraefik/internal/place"
)

//go:generate go run ./internal/gensource -o source.zip

// sourceZip is the worker source: go.mod, go.sum and every non-test file of
// the packages verify builds from. It is an archive because //go:embed cannot
// reach go.mod or the verify tree from here; TestEmbeddedSourceCurrent fails
// while it is stale (go generate ./verify/provision writes it again).
//
//go:embed source.zip
var sourceZip []byte

// sourceArchive is the path of sourceZip in the module, written back into the
// worker's copy of this package, which embeds it too.
const sourceArchive = "verify/provision/source.zip"

// workerSum holds the go.sum lines of the modules a worker replaces, on top
// of xtraefik's own go.sum.
//
//go:embed worker.sum
var workerSum []byte

// CacheEnv overrides the cache directory workers are built into.
const CacheEnv = "XTRAEFIK_CACHE"

// ErrNoToolchain is returned when no Go toolchain is found to build a worker.
var ErrNoToolchain = errors.New("no Go toolchain (go) in $PATH")

const modulePath = "github.com/xtraefik/xtraefik"

// WorkerName is the file name of the worker for a Yaegi version
// ("xtraefik-yaegi-v0.15.1"), built here or shipped next to xtraefik.
func WorkerName(yaegi string) string { return "xtraefik-yaegi-" + yaegi }

// Versions are the Yaegi versions whose worker checksums xtraefik pins
// (worker.sum): those Traefik releases in the table embed
// (verify/interpreters) other than the one xtraefik links. Install builds
// these; Build takes any Buildable version.
func Versions() []string { return []string{"v0.15.0", "v0.15.1"} }

// Floor is the oldest Yaegi a worker build is attempted for: Traefik v2.3,
// the first release with plugins, embeds yaegi v0.9.x. Whether the worker
// source still compiles against an old (or a new) Yaegi is the build's to say
// (BuildError).
const Floor = "v0.9.0"

// mapstructureFor is the mapstructure the Traefik releases embedding a Yaegi
// version decode plugin configurations with (their go.mod), and whether the
// worker's checksums are pinned. A Yaegi outside the table keeps the
// mapstructure xtraefik links ("": no replacement), the one Traefik v2.11.1
// and v3 use.
func mapstructureFor(yaegi string) (version string, pinned bool) {
	switch yaegi {
	case "v0.15.0", "v0.15.1": // Traefik v2.9.8–v2.11.0
		return "v1.5.0", true
	}
	return "", false
}

// Install builds (or takes from cacheDir, when its record sealed with key
// matches) the worker of every version in Versions and copies it into dir,
// where xtraefik finds it when dir is its own directory or in $PATH: a
// release archive or an image ships them so. The bytes copied are the bytes
// hashed.
func Install(ctx context.Context, cacheDir, dir string, key []byte, warn func(string)) ([]string, error) {
	var out []string
	for _, v := range Versions() {
		exe, sum, err := Build(ctx, cacheDir, v, false, key, warn)
		if err != nil {
			return out, err
		}
		data, err := os.ReadFile(exe)
		if err != nil {
			return out, fmt.Errorf("read the yaegi %s worker: %w", v, err)
		}
		if got := sha256.Sum256(data); hex.EncodeToString(got[:]) != sum {
			warn(fmt.Sprintf("the cached yaegi %s worker %s does not match its sealed record: rebuilding it", v, exe))
			if err := Discard(cacheDir, v); err != nil {
				return out, err
			}
			if exe, _, err = Build(ctx, cacheDir, v, false, key, warn); err != nil {
				return out, err
			}
			if data, err = os.ReadFile(exe); err != nil {
				return out, fmt.Errorf("read the yaegi %s worker: %w", v, err)
			}
		}
		dst := filepath.Join(dir, WorkerName(v))
		if err := place.WriteFile(dst, data, 0o755); err != nil {
			return out, fmt.Errorf("install the yaegi %s worker into %s: %w", v, dir, err)
		}
		out = append(out, dst)
	}
	return out, nil
}

// Buildable reports whether a worker build is attempted for a Yaegi version:
// a canonical semantic version (a pseudo-version included) no older than
// Floor. Its checksums are pinned (Versions) or come from the checksum
// database.
func Buildable(yaegi string) bool {
	return semver.IsValid(yaegi) && semver.Canonical(yaegi) == yaegi && semver.Compare(yaegi, Floor) >= 0
}

// BuildError is a worker that the go command could not compile: the embedded
// worker source does not build against that Yaegi (its API changed). A new
// xtraefik is the fix, not the network.
type BuildError struct {
	Yaegi string
	// Line is the compiler's first error, paths relative to the worker module
	// ("xtraefik/verify/yaegi.go:191:3: unknown field Env in struct literal").
	Line string
	// Output is the tail of the go command's output.
	Output string
}

func (e *BuildError) Error() string {
	return fmt.Sprintf("xtraefik's worker source does not compile with yaegi %s: %s", e.Yaegi, e.Line)
}

// compileLine matches a compiler diagnostic ("dir/file.go:12:3: message").
var compileLine = regexp.MustCompile(`^\S+\.go:\d+(:\d+)?: `)

// compileError returns the go command's first compiler diagnostic in out,
// with the build directory src made relative; false when out holds none.
// The compiler's diagnostics follow a "# <package>" header; a download or
// checksum failure is reported at an import's position too
// ("x.go:19:2: github.com/traefik/yaegi@v0.16.0: verifying module: …"), but
// without that header.
func compileError(out []byte, src string) (string, bool) {
	compiling := false
	for _, l := range strings.Split(string(out), "\n") {
		l = strings.TrimSpace(strings.ReplaceAll(l, src+string(filepath.Separator), ""))
		switch {
		case strings.HasPrefix(l, "# "):
			compiling = true
		case compiling && compileLine.MatchString(l):
			return l, true
		}
	}
	return "", false
}

// checksumError returns the go command's first checksum refusal in out
// ("github.com/traefik/yaegi@v0.16.0: verifying module: checksum mismatch").
func checksumError(out []byte) (string, bool) {
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "checksum mismatch") || strings.Contains(l, "SECURITY ERROR") {
			return compileLine.ReplaceAllString(strings.TrimSpace(l), ""), true
		}
	}
	return "", false
}

// ErrModuleCache is a module in the Go module cache whose extracted files
// (or zip) are no longer what was downloaded and checked against go.sum.
var ErrModuleCache = errors.New("the Go module cache holds a module changed since it was downloaded")

// verifyModules runs go mod verify for the worker module src: the go
// command checks a module against go.sum when it downloads it, and later
// trusts the directory it extracted, which a restored CI cache
// (~/go/pkg/mod) may have changed — Yaegi's source, and the worker sealed
// after it. go mod verify hashes every extracted directory and zip again and
// compares them with the hash recorded at download, which go.sum pins. It
// checks the versions a module requires, not those its replace directives
// substitute (Yaegi, mapstructure): a module of its own beside src requires
// those, and is verified too.
func verifyModules(ctx context.Context, goBin, src string, env []string) error {
	dirs := []string{src}
	replaced, err := replacedModule(src)
	if err != nil {
		return fmt.Errorf("write the module that verifies the replaced modules: %w", err)
	}
	if replaced != "" {
		dirs = append(dirs, replaced)
	}
	for _, dir := range dirs {
		cmd := exec.CommandContext(ctx, goBin, "mod", "verify")
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.CombinedOutput()
		if err == nil {
			continue
		}
		var changed []string
		for _, l := range strings.Split(string(out), "\n") {
			l = strings.TrimSpace(l)
			for _, why := range []string{": dir has been modified", ": zip has been modified", ": missing ziphash"} {
				if mod, _, ok := strings.Cut(l, why); ok {
					changed = append(changed, mod+" ("+strings.TrimPrefix(why, ": ")+")")
				}
			}
		}
		if len(changed) > 0 {
			return fmt.Errorf("%w: %s; refusing to build from it. Fix: remove the module cache's copy (go clean -modcache, or delete the directory and its cache/download entry) and run again; in CI, do not restore the Go module cache from a cache others can write",
				ErrModuleCache, strings.Join(changed, ", "))
		}
		if line, ok := checksumError(out); ok {
			return fmt.Errorf("%w, the go command refused it: %s", ErrChecksum, line)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("go mod verify in %s: %w\n%s", dir, err, tail(out, 2000))
	}
	return nil
}

// replacedModule writes, in src/replaced, a module requiring the module
// versions src's go.mod substitutes by replace directives, with src's
// go.sum, and returns its directory; "" when there are none.
func replacedModule(src string) (string, error) {
	data, err := os.ReadFile(filepath.Join(src, "go.mod"))
	if err != nil {
		return "", err
	}
	f, err := modfile.Parse("go.mod", data, nil)
	if err != nil {
		return "", err
	}
	mod := &modfile.File{}
	if err := errors.Join(mod.AddModuleStmt("xtraefik-worker-replaced"), mod.AddGoStmt(f.Go.Version)); err != nil {
		return "", err
	}
	for _, r := range f.Replace {
		if r.New.Version != "" { // not a directory
			mod.AddNewRequire(r.New.Path, r.New.Version, false)
		}
	}
	if len(mod.Require) == 0 {
		return "", nil
	}
	goMod, err := mod.Format()
	if err != nil {
		return "", err
	}
	sum, err := os.ReadFile(filepath.Join(src, "go.sum"))
	if err != nil {
		return "", err
	}
	dir := filepath.Join(src, "replaced")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", err
	}
	return dir, errors.Join(os.WriteFile(filepath.Join(dir, "go.mod"), goMod, 0o644), os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644))
}

// ErrChecksum is a module whose content is not what its checksum (go.sum,
// the checksum database) says: the go command refused it before compiling.
var ErrChecksum = errors.New("a module's checksum does not match")

// checkSumDB refuses to build an unpinned worker when the user's environment
// turns the checksum database off: nothing would vouch for the Yaegi module.
func checkSumDB(ctx context.Context, goBin string, env []string) error {
	cmd := exec.CommandContext(ctx, goBin, "env", "GOSUMDB")
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("read GOSUMDB with %s env: %w", goBin, err)
	}
	if strings.TrimSpace(string(out)) == "off" {
		return errors.New("GOSUMDB=off: xtraefik pins no checksums for this Yaegi and builds a worker only from modules the checksum database vouches for. Fix: unset GOSUMDB (or name a checksum database), or pass --yaegi-worker")
	}
	return nil
}

// DefaultCacheDir is $XTRAEFIK_CACHE, else xtraefik under the user cache
// directory ($XDG_CACHE_HOME or ~/.cache).
func DefaultCacheDir() (string, error) {
	if d := os.Getenv(CacheEnv); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory for verification workers (set %s): %w", CacheEnv, err)
	}
	return filepath.Join(d, "xtraefik"), nil
}

// Path is where the worker for yaegi is (or will be) cached in cacheDir, named
// by a hash of the embedded source and the Yaegi version: a new xtraefik
// build never runs an older build's worker.
func Path(cacheDir, yaegi string) (string, error) {
	key, err := sourceKey(yaegi)
	if err != nil {
		return "", err
	}
	return filepath.Join(cacheDir, "workers", yaegi+"-"+key, WorkerName(yaegi)), nil
}

// Build returns the worker for yaegi in cacheDir and the SHA-256 its record
// holds, building it first when it is not there. A cached worker whose
// record was not sealed with key (the host key kept outside the cache) is
// removed and rebuilt, and warn says so; the caller checks the bytes it runs
// against the SHA-256. It needs a Go toolchain (ErrNoToolchain) and the
// modules the worker links, from the module cache or the module proxy.
//
// Offline, the go command reads modules from its module cache only
// (GOPROXY=off) and uses the toolchain installed (GOTOOLCHAIN=local).
//
// A Yaegi whose checksums are not pinned (not in Versions) is built with
// GOFLAGS=-mod=mod: the go command adds its go.sum lines after checking them
// against GOSUMDB. A worker source that does not compile against it is a
// *BuildError.
func Build(ctx context.Context, cacheDir, yaegi string, offline bool, key []byte, warn func(string)) (exe, sum string, err error) {
	if !Buildable(yaegi) {
		return "", "", fmt.Errorf("xtraefik cannot build a worker for yaegi %q: not a Go module version from %s on", yaegi, Floor)
	}
	if len(key) < minKey {
		return "", "", fmt.Errorf("no host key (at least %d bytes) to seal the record of the yaegi %s worker with", minKey, yaegi)
	}
	ms, pinned := mapstructureFor(yaegi)
	if exe, err = Path(cacheDir, yaegi); err != nil {
		return "", "", err
	}
	if _, err := os.Stat(exe); err == nil {
		if sum, err := open(key, exe, yaegi); err == nil {
			return exe, sum, nil
		}
	}
	goBin, lookErr := exec.LookPath("go")
	if _, err := os.Lstat(exe); lookErr != nil && errors.Is(err, fs.ErrNotExist) {
		// Nothing to build with and nothing to take away: leave no trace.
		return "", "", ErrNoToolchain
	}
	dir := filepath.Dir(exe)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", fmt.Errorf("create worker cache %s: %w", dir, err)
	}
	unlock, err := place.Lock(ctx, dir+".lock", nil)
	if err != nil {
		return "", "", err
	}
	defer unlock()
	// Another process may have built it while this one waited.
	if _, err := os.Stat(exe); err == nil {
		sum, why := open(key, exe, yaegi)
		if why == nil {
			return exe, sum, nil
		}
		warn(fmt.Sprintf("the cached yaegi %s worker %s is not run: %v; rebuilding it", yaegi, exe, why))
		if err := errors.Join(remove(exe), remove(recordPath(exe))); err != nil {
			return "", "", fmt.Errorf("remove the untrusted worker %s: %w", exe, err)
		}
	}
	if lookErr != nil {
		return "", "", ErrNoToolchain
	}
	src, err := os.MkdirTemp(dir, "src-")
	if err != nil {
		return "", "", fmt.Errorf("create worker build directory: %w", err)
	}
	defer os.RemoveAll(src)
	if err := writeModule(src, yaegi, ms); err != nil {
		return "", "", fmt.Errorf("write the source of the yaegi %s worker into %s: %w", yaegi, src, err)
	}
	tmp := exe + ".tmp"
	// GOFLAGS replaces the user's (no -insecure can come in); -mod=mod only
	// lets the go command add checksums it verified itself.
	mod := "-mod=readonly"
	if !pinned {
		mod = "-mod=mod"
	}
	env := append(os.Environ(), "GOWORK=off", "GOFLAGS="+mod+" -buildvcs=false", "CGO_ENABLED=0")
	if offline {
		env = append(env, "GOPROXY=off", "GOTOOLCHAIN=local")
	}
	if !pinned {
		if err := checkSumDB(ctx, goBin, env); err != nil {
			return "", "", fmt.Errorf("build the yaegi %s worker: %w", yaegi, err)
		}
	}
	if err := verifyModules(ctx, goBin, src, env); err != nil {
		return "", "", fmt.Errorf("build the yaegi %s worker: %w", yaegi, err)
	}
	cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-o", tmp, ".")
	cmd.Dir = src
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		if line, ok := compileError(out, src); ok && ctx.Err() == nil {
			return "", "", &BuildError{Yaegi: yaegi, Line: line, Output: tail(out, 2000)}
		}
		if line, ok := checksumError(out); ok {
			return "", "", fmt.Errorf("build the yaegi %s worker: %w, the go command refused it before compiling: %s", yaegi, ErrChecksum, line)
		}
		return "", "", fmt.Errorf("build the yaegi %s worker with %s: %w\n%s", yaegi, goBin, err, tail(out, 2000))
	}
	if err := os.Rename(tmp, exe); err != nil {
		return "", "", fmt.Errorf("install the yaegi %s worker: %w", yaegi, err)
	}
	if sum, err = Seal(key, exe, yaegi); err != nil {
		return "", "", fmt.Errorf("record the yaegi %s worker: %w", yaegi, err)
	}
	return exe, sum, nil
}

// sourceFS opens the embedded worker source.
func sourceFS() (*zip.Reader, error) {
	src, err := zip.NewReader(bytes.NewReader(sourceZip), int64(len(sourceZip)))
	if err != nil {
		return nil, fmt.Errorf("open the embedded worker source: %w", err)
	}
	return src, nil
}

// sourceFiles walks the embedded worker source in name order.
func sourceFiles(fn func(name string, data []byte) error) error {
	src, err := sourceFS()
	if err != nil {
		return err
	}
	return fs.WalkDir(src, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(src, name)
		if err != nil {
			return err
		}
		return fn(name, data)
	})
}

// sourceFile reads one file of the embedded worker source.
func sourceFile(name string) ([]byte, error) {
	src, err := sourceFS()
	if err != nil {
		return nil, err
	}
	return fs.ReadFile(src, name)
}

func sourceKey(yaegi string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "yaegi %s\n", yaegi)
	err := sourceFiles(func(name string, data []byte) error {
		fmt.Fprintf(h, "%s %d\n", name, len(data))
		h.Write(data)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("read the embedded worker source: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// mainSource is the worker's main package: the verify package's worker mode.
const mainSource = `// Command xtraefik-yaegi is xtraefik's verification worker built with
// another Yaegi; xtraefik runs it, one process per plugin.
package main

import (
	"fmt"
	"os"

	"github.com/xtraefik/xtraefik/verify"
)

func main() {
	verify.MaybeRunWorker()
	fmt.Fprintln(os.Stderr, "this is xtraefik's verification worker: xtraefik verify and xtraefik build run it, it is not meant to be run by hand")
	os.Exit(2)
}
`

// writeModule writes the worker module into dir: main.go, a go.mod requiring
// xtraefik (replaced by its embedded source in dir/xtraefik) with every
// requirement of xtraefik's go.mod, Yaegi and mapstructure (unless "")
// replaced by the versions the target Traefik links, and a go.sum covering
// all of them but an unpinned Yaegi.
// Replacements only apply in the main module: that is why the worker is a
// module of its own.
func writeModule(dir, yaegi, mapstructure string) error {
	err := sourceFiles(func(name string, data []byte) error {
		p := filepath.Join(dir, "xtraefik", filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		return os.WriteFile(p, data, 0o644)
	})
	if err != nil {
		return err
	}
	// The copied provision package embeds the archive too.
	if err := os.WriteFile(filepath.Join(dir, "xtraefik", filepath.FromSlash(sourceArchive)), sourceZip, 0o644); err != nil {
		return err
	}
	rootMod, err := sourceFile("go.mod")
	if err != nil {
		return err
	}
	root, err := modfile.Parse("go.mod", rootMod, nil)
	if err != nil {
		return err
	}
	mod := &modfile.File{}
	if err := mod.AddModuleStmt("xtraefik-worker"); err != nil {
		return err
	}
	if err := mod.AddGoStmt(root.Go.Version); err != nil {
		return err
	}
	mod.AddNewRequire(modulePath, "v0.0.0", false)
	for _, r := range root.Require {
		mod.AddNewRequire(r.Mod.Path, r.Mod.Version, true)
	}
	for _, r := range []struct{ old, newPath, newVersion string }{
		{modulePath, "./xtraefik", ""},
		{"github.com/traefik/yaegi", "github.com/traefik/yaegi", yaegi},
		{"github.com/mitchellh/mapstructure", "github.com/mitchellh/mapstructure", mapstructure},
	} {
		if r.newPath != "./xtraefik" && r.newVersion == "" {
			continue
		}
		if err := mod.AddReplace(r.old, "", r.newPath, r.newVersion); err != nil {
			return err
		}
	}
	mod.Cleanup()
	goMod, err := mod.Format()
	if err != nil {
		return err
	}
	rootSum, err := sourceFile("go.sum")
	if err != nil {
		return err
	}
	for name, data := range map[string][]byte{
		"go.mod":  goMod,
		"go.sum":  append(append(bytes.Clone(rootSum), '\n'), workerSum...),
		"main.go": []byte(mainSource),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func tail(b []byte, n int) string {
	s := strings.TrimSpace(string(b))
	if len(s) > n {
		s = "…" + s[len(s)-n:]
	}
	return s
}
