package runcheck

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/xtraefik/xtraefik/internal/plugin"
	"github.com/xtraefik/xtraefik/internal/traefikcfg"
)

// EntryPoint is an entry point Serve gives Traefik: Address is host:port,
// the host's loopback when the host is empty.
type EntryPoint struct{ Name, Address string }

var reEntryPoint = regexp.MustCompile(`^[A-Za-z0-9]+$`)

// ParseEntryPoint reads NAME=[HOST]:PORT.
func ParseEntryPoint(s string) (EntryPoint, error) {
	name, addr, ok := strings.Cut(s, "=")
	if !ok || !reEntryPoint.MatchString(name) {
		return EntryPoint{}, fmt.Errorf("entry point %q: want NAME=[HOST]:PORT, NAME of letters and digits (it is also a TRAEFIK_ENTRYPOINTS_<NAME> variable)", s)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		return EntryPoint{}, fmt.Errorf("entry point %q: want NAME=[HOST]:PORT: %v", s, err)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return EntryPoint{Name: name, Address: net.JoinHostPort(host, port)}, nil
}

// DefaultEntryPoint is the entry point Serve uses when none is given.
func DefaultEntryPoint() EntryPoint { return EntryPoint{Name: "web", Address: "127.0.0.1:8080"} }

// ServeOptions configure Serve.
type ServeOptions struct {
	// Mode and Plugins are the image's, as for Run.
	Mode    traefikcfg.Mode
	Plugins []plugin.Plugin
	// Dynamic is the user's dynamic configuration, a file or a directory
	// for Traefik's file provider; it is copied into the unpacked root.
	Dynamic string
	// EntryPoints are published on the host's network (default
	// DefaultEntryPoint).
	EntryPoints []EntryPoint
	// ExtraArgs are passed to Traefik as for Run.
	ExtraArgs []string
	// Isolation is auto, runc, chroot or none. Traefik stays on the host's
	// network under each: its entry points are reached there, and the
	// backends of the user's dynamic configuration are the host's.
	Isolation string
	// Timeout bounds the wait for the entry points to accept connections
	// (default 2 minutes).
	Timeout time.Duration
	// Log receives Traefik's output as it comes, and progress lines.
	Log io.Writer
	// TempDir holds the work directory (default os.TempDir()).
	TempDir string
}

// Server is a Traefik Serve started.
type Server struct {
	// Isolation is how Traefik is confined; Missing what that lacks.
	Isolation string
	Missing   []string
	// ConfigSource and Args are as in Report.
	ConfigSource string
	Args         []string
	EntryPoints  []EntryPoint
	Notes        []string

	u        *unpacked
	proc     process
	stopOnce sync.Once
	stopErr  error
}

// Where Serve puts the user's dynamic configuration in the unpacked root.
const serveDynamicDir = harnessDir + "/dynamic"

// Serve unpacks img (single-platform, the host's) and starts its own
// Traefik with the plugins enabled the way the image's mode enables them,
// the user's dynamic configuration and entry points, and returns once
// every entry point accepts connections. Traefik runs until Stop or ctx
// ends; its output goes to opts.Log throughout.
func Serve(ctx context.Context, img v1.Image, opts ServeOptions) (srv *Server, err error) {
	mode, err := traefikcfg.ParseMode(string(opts.Mode))
	if err != nil {
		return nil, err
	}
	isolations, err := isolationOrder(opts.Isolation)
	if err != nil {
		return nil, err
	}
	log := opts.Log
	if log == nil {
		log = io.Discard
	}
	logf := func(format string, args ...any) { fmt.Fprintf(log, "xtraefik run: "+format+"\n", args...) }
	u, skipped, err := unpackFor(ctx, img, opts.TempDir, logf)
	if err == nil && skipped != "" {
		err = errors.New(skipped)
	}
	if err != nil {
		_ = u.remove()
		return nil, fmt.Errorf("run Traefik: %w", err)
	}
	defer func() {
		if err != nil {
			_ = u.remove()
		}
	}()
	// A stopped run must end well within xtraefik's own grace after a
	// signal (10s), which Traefik's default graceTimeOut (10s) would use up.
	h := harness{entryPoints: opts.EntryPoints, graceTimeOut: "2s", logLevel: "INFO", logFormat: "common"}
	if len(h.entryPoints) == 0 {
		h.entryPoints = []EntryPoint{DefaultEntryPoint()}
	}
	if opts.Dynamic != "" {
		if h.dynamic, h.dynamicDir, err = copyDynamic(u.rootfs, opts.Dynamic); err != nil {
			return nil, fmt.Errorf("run Traefik: dynamic configuration %s: %w", opts.Dynamic, err)
		}
	}
	var userArgs []string
	if mode == traefikcfg.ModeFlags {
		userArgs = append(userArgs, traefikcfg.Flags(opts.Plugins)...)
	}
	userArgs = append(userArgs, opts.ExtraArgs...)
	st, err := launchTraefik(ctx, u, isolations, userArgs, h, true, func() io.Writer { return log }, logf)
	if err != nil {
		return nil, fmt.Errorf("run Traefik: %w", err)
	}
	srv = &Server{Isolation: st.isolation, Missing: serveMissing(st.isolation), ConfigSource: st.l.source, Args: st.l.argv,
		EntryPoints: h.entryPoints, Notes: st.notes, u: u, proc: st.proc}
	if opts.Dynamic == "" {
		srv.Notes = append(srv.Notes, "no dynamic configuration: Traefik has no routers, so every request gets 404")
	}
	if mode == traefikcfg.ModeFile && st.l.configFile == "" {
		srv.Notes = append(srv.Notes, "file mode, but the image has no configuration file where Traefik looks for one: nothing enables the plugins")
	}
	logf("started Traefik with %s isolation, static configuration from %s: %s", srv.Isolation, srv.ConfigSource, strings.Join(srv.Args, " "))
	if err := srv.await(ctx, opts.Timeout); err != nil {
		_ = srv.Stop()
		return nil, err
	}
	return srv, nil
}

// await returns once every entry point accepts connections.
func (s *Server) await(ctx context.Context, timeout time.Duration) error {
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	deadline := time.Now().Add(timeout)
	for _, ep := range s.EntryPoints {
		for {
			c, err := net.DialTimeout("tcp", ep.Address, time.Second)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-s.proc.done():
				return fmt.Errorf("run Traefik: Traefik exited before entry point %s (%s) accepted connections (its log is above)", ep.Name, ep.Address)
			case <-time.After(pollInterval):
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("run Traefik: entry point %s (%s) accepted no connection within %v", ep.Name, ep.Address, timeout)
			}
		}
	}
	return nil
}

// Done is closed when Traefik has exited.
func (s *Server) Done() <-chan struct{} { return s.proc.done() }

// Stop stops Traefik (SIGTERM, then SIGKILL after a grace period) and
// removes the unpacked image. It is safe to call more than once.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		s.proc.stop()
		s.stopErr = s.u.remove()
	})
	return s.stopErr
}

// serveMissing is missingProtections for Serve, whose Traefik always
// shares the host's network.
func serveMissing(isolation string) []string {
	m := missingProtections(isolation)
	if isolation == IsolationRunc {
		m = append(m, missingProtections(IsolationChroot)[0])
	}
	return m
}

// copyDynamic copies the user's dynamic configuration (regular files;
// a directory's tree) into the unpacked root, keeping file names, whose
// extension tells Traefik the format. It returns the in-image path.
func copyDynamic(rootfs, src string) (string, bool, error) {
	fi, err := os.Stat(src)
	if err != nil {
		return "", false, err
	}
	dst, err := securejoin.SecureJoin(rootfs, serveDynamicDir)
	if err != nil {
		return "", false, err
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return "", false, err
	}
	if !fi.IsDir() {
		name := filepath.Base(src)
		return serveDynamicDir + "/" + name, false, copyFile(src, filepath.Join(dst, name))
	}
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		return copyFile(p, filepath.Join(dst, rel))
	})
	return serveDynamicDir, true, err
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}
