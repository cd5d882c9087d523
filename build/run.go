package build

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/xtraefik/xtraefik/internal/redact"
	"github.com/xtraefik/xtraefik/internal/runcheck"
	"github.com/xtraefik/xtraefik/internal/traefikcfg"
	"github.com/xtraefik/xtraefik/recipe"
	"github.com/xtraefik/xtraefik/verify"
)

// RunRequest is what Run builds and serves.
type RunRequest struct {
	Verify verify.Options
	// Serve says how the image is run.
	Serve ServeOptions
	// Watch rebuilds and restarts Traefik when the recipe file or its
	// lock, a directory plugin's files or Serve.Dynamic change.
	Watch bool
	// Interval is how often watched files are polled (default 300ms); a
	// change is acted on once they stay the same for one more interval.
	Interval time.Duration
	// Log receives progress lines; Traefik's output goes to Serve.Log.
	Log io.Writer
}

// Run builds the image cfg describes (writing nothing) and serves it with
// its own Traefik (runcheck.Serve) until ctx ends, then stops Traefik and
// returns nil. With Watch, a change rebuilds the image and restarts
// Traefik on it; a failed rebuild leaves the running Traefik serving the
// previous build, and says why. Without Watch, a failed build or a Traefik
// that exits by itself is the error.
func Run(ctx context.Context, cfg Config, req RunRequest) error {
	if runtime.GOOS != "linux" {
		return fmt.Errorf("run starts the image's own Traefik, a Linux program, under runc or chroot: it needs a Linux host (this one is %s); build an image (--tarball) and run it with docker or podman instead", runtime.GOOS)
	}
	iso, err := runtimeIsolation(req.Serve.Isolation, req.Verify.Sandbox)
	if err != nil {
		return err
	}
	req.Serve.Isolation = iso
	logw := req.Log
	if logw == nil {
		logw = io.Discard
	}
	logf := func(format string, args ...any) { fmt.Fprintf(logw, "xtraefik run: "+format+"\n", args...) }
	interval := req.Interval
	if interval <= 0 {
		interval = 300 * time.Millisecond
	}
	var srv *runcheck.Server
	defer func() {
		if srv != nil {
			logf("stopping Traefik")
			if err := srv.Stop(); err != nil {
				logf("%v", err)
			}
		}
	}()
	// Taken before the build, so that an edit made during it rebuilds.
	initial := cfg.Recipe
	if initial == nil && cfg.RecipeFile != "" {
		// A recipe that does not load is watched as a file until it does.
		initial, _ = recipe.Load(cfg.RecipeFile)
	}
	roots := watchRoots(cfg, initial, req.Serve.Dynamic)
	seen := fingerprint(roots)
	img, s, err := runBuild(ctx, cfg, req, logf)
	if s != nil {
		roots, seen = rewatch(roots, watchRoots(cfg, s.Recipe, req.Serve.Dynamic), seen)
	}
	if err == nil {
		srv, err = serve(ctx, img, req, logf)
	}
	if err != nil {
		if ctx.Err() != nil {
			// Stopped while starting: ending with ctx is how Run ends.
			return nil
		}
		if !req.Watch {
			return err
		}
		logf("%v", err)
		logf("waiting for a change to %s", strings.Join(roots, ", "))
	}
	if !req.Watch {
		select {
		case <-ctx.Done():
			return nil
		case <-srv.Done():
			return errors.New("run Traefik: Traefik exited by itself (its log is above)")
		}
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		var exited <-chan struct{}
		if srv != nil {
			exited = srv.Done()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-exited:
			logf("Traefik exited by itself (its log is above); waiting for a change")
			_ = srv.Stop()
			srv = nil
			continue
		case <-tick.C:
		}
		now := fingerprint(roots)
		if now == seen {
			continue
		}
		// Debounce: an editor saving, or a git checkout, is several writes.
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(interval):
			}
			again := fingerprint(roots)
			if again == now {
				break
			}
			now = again
		}
		seen = now
		logf("change detected: rebuilding")
		img, s, err := runBuild(ctx, cfg, req, logf)
		if s != nil {
			roots, seen = rewatch(roots, watchRoots(cfg, s.Recipe, req.Serve.Dynamic), seen)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if srv != nil {
				logf("rebuild failed, Traefik keeps serving the previous build: %v", err)
			} else {
				logf("rebuild failed: %v", err)
			}
			continue
		}
		if srv != nil {
			logf("restarting Traefik on the new build")
			if err := srv.Stop(); err != nil {
				logf("%v", err)
			}
			srv = nil
		}
		if srv, err = serve(ctx, img, req, logf); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			logf("%v; waiting for a change", err)
		}
	}
}

// runBuild opens cfg afresh (the recipe file may have changed) and builds
// the host platform's image.
func runBuild(ctx context.Context, cfg Config, req RunRequest, logf func(string, ...any)) (*built, *Session, error) {
	s, err := Open(cfg)
	if err != nil {
		return nil, nil, err
	}
	// The session's caches: a restart with the same plugin files verifies
	// nothing again.
	rep := s.newReport("run")
	j := s.newJob(s.copyOptions(), rep)
	defer j.close()
	err = j.r.run(ctx,
		j.prepare(req.Verify, false, nil, true),
		j.resolve(),
		j.verify(true),
		j.assemble(wantImages{full: true}),
	)
	for _, w := range rep.Warnings {
		logf("warning: %s", w)
	}
	if err != nil {
		return nil, s, redact.Error(err)
	}
	res := j.res
	img, skipped, err := hostImage(res)
	if err != nil {
		return nil, s, err
	}
	if skipped != "" {
		return nil, s, errors.New("run: " + skipped)
	}
	logf("built %s", res.Image.Digest)
	return &built{img: img, res: res}, s, nil
}

// built is the host platform's image of a build.
type built struct {
	img v1.Image
	res *result
}

// serve starts Traefik on b's image with its plugins.
func serve(ctx context.Context, b *built, req RunRequest, logf func(string, ...any)) (*runcheck.Server, error) {
	opts := req.Serve.options()
	opts.Mode = traefikcfg.Mode(b.res.Resolution.Recipe.Mode())
	opts.Plugins = b.res.Resolution.Plugins
	srv, err := runcheck.Serve(ctx, b.img, opts)
	if err != nil {
		return nil, err
	}
	for _, m := range srv.Missing {
		logf("not contained under %s: %s", srv.Isolation, m)
	}
	for _, n := range srv.Notes {
		logf("note: %s", n)
	}
	for _, ep := range srv.EntryPoints {
		logf("serving entry point %s on http://%s", ep.Name, ep.Address)
	}
	return srv, nil
}

// watchRoots are the files and directories whose change rebuilds: the
// recipe file and its lock, the directory plugins, the dynamic
// configuration.
func watchRoots(cfg Config, r *recipe.Recipe, dynamic string) []string {
	var roots []string
	if cfg.RecipeFile != "" {
		roots = append(roots, cfg.RecipeFile, recipe.LockPath(cfg.RecipeFile))
	}
	if r == nil {
		r = cfg.Recipe
	}
	if r != nil {
		for _, a := range r.Aliases() {
			if p := r.Plugins[a]; p.Source() == recipe.SourcePath {
				roots = append(roots, r.Dir(p))
			}
		}
	}
	if dynamic != "" {
		roots = append(roots, dynamic)
	}
	return roots
}

// rewatch moves to the roots of the recipe as built: when they changed (a
// plugin added to the recipe), their fingerprint is taken afresh.
func rewatch(old, roots []string, seen uint64) ([]string, uint64) {
	if slices.Equal(old, roots) {
		return old, seen
	}
	return roots, fingerprint(roots)
}

// fingerprint sums the names, sizes, modes and modification times of
// everything under roots (.git directories left out, as the image leaves
// them out): polling needs no file notification support.
func fingerprint(roots []string) uint64 {
	h := fnv.New64a()
	for _, root := range roots {
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				fmt.Fprintf(h, "%s\x00error\x00", p)
				return nil
			}
			if d.IsDir() && d.Name() == ".git" {
				return filepath.SkipDir
			}
			fi, err := d.Info()
			if err != nil {
				return nil
			}
			fmt.Fprintf(h, "%s\x00%d\x00%v\x00%d\x00", p, fi.Size(), fi.Mode(), fi.ModTime().UnixNano())
			return nil
		})
		if _, err := os.Lstat(root); err != nil {
			fmt.Fprintf(h, "%s\x00missing\x00", root)
		}
	}
	return h.Sum64()
}
