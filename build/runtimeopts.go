package build

import (
	"io"
	"time"

	"github.com/xtraefik/xtraefik/internal/runcheck"
)

// Isolations of the runtime check and of Run: how the image's own Traefik
// is isolated from the host while it runs plugin code.
const (
	IsolationAuto   = runcheck.IsolationAuto   // runc, else chroot, else none
	IsolationRunc   = runcheck.IsolationRunc   // a runc container: the verifier's guarantees
	IsolationChroot = runcheck.IsolationChroot // a chroot into the unpacked image
	IsolationNone   = runcheck.IsolationNone   // the unpacked image's Traefik as a plain process
)

// RuntimeCheck asks Build or Verify to start the image's own Traefik with
// its plugins enabled the way the image enables them, send each middleware
// the verification request, and fail unless every plugin passed (the CLI's
// --runtime-check). The image's mode and plugins come from the build.
type RuntimeCheck struct {
	// Isolation is IsolationAuto (default), IsolationRunc, IsolationChroot
	// or IsolationNone; under verify.Options.Sandbox "require" only runc.
	Isolation string
	// Timeout bounds the wait for Traefik once started (default 2 minutes).
	Timeout time.Duration
	// ExtraArgs are passed to the image like `docker run image ARGS...`,
	// after the plugin flags in flags mode.
	ExtraArgs []string
	// Log receives progress and Traefik's warnings and errors; may be nil.
	Log io.Writer
	// TempDir holds the work directory (default os.TempDir()).
	TempDir string
}

// options is the runtime check's own form of rc; nil stays nil.
func (rc *RuntimeCheck) options() *runcheck.Options {
	if rc == nil {
		return nil
	}
	return &runcheck.Options{Isolation: rc.Isolation, Timeout: rc.Timeout, ExtraArgs: append([]string(nil), rc.ExtraArgs...), Log: rc.Log, TempDir: rc.TempDir}
}

// EntryPoint is an entry point Run gives Traefik: Address is host:port, the
// host's loopback when the host is empty.
type EntryPoint struct{ Name, Address string }

// ServeOptions say how Run serves the image it built; its mode and plugins
// come from each build.
type ServeOptions struct {
	// Dynamic is the user's dynamic configuration, a file or a directory
	// for Traefik's file provider.
	Dynamic string
	// EntryPoints are published on the host's network (default: web on
	// 127.0.0.1:8080).
	EntryPoints []EntryPoint
	// ExtraArgs are passed to Traefik after the plugin flags.
	ExtraArgs []string
	// Isolation is as for RuntimeCheck. Traefik stays on the host's network
	// under each: the backends of the dynamic configuration are the host's.
	Isolation string
	// Timeout bounds the wait for the entry points to accept connections
	// (default 2 minutes).
	Timeout time.Duration
	// Log receives Traefik's output as it comes, and progress lines.
	Log io.Writer
	// TempDir holds the work directory (default os.TempDir()).
	TempDir string
}

// options is Serve's own form of so.
func (so ServeOptions) options() runcheck.ServeOptions {
	var eps []runcheck.EntryPoint
	for _, ep := range so.EntryPoints {
		eps = append(eps, runcheck.EntryPoint{Name: ep.Name, Address: ep.Address})
	}
	return runcheck.ServeOptions{Dynamic: so.Dynamic, EntryPoints: eps, ExtraArgs: append([]string(nil), so.ExtraArgs...),
		Isolation: so.Isolation, Timeout: so.Timeout, Log: so.Log, TempDir: so.TempDir}
}
