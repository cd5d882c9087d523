package runcheck

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// unpacked is an image unpacked into a work directory of its own, the one
// launcher the runtime check (Run) and Serve share.
type unpacked struct {
	cf           *v1.ConfigFile
	platform     string
	work, rootfs string
}

// unpackFor unpacks img into a new work directory under tempDir; skipped
// says why it was not (another OS or platform: never emulated). The
// caller removes the work directory (remove).
func unpackFor(ctx context.Context, img v1.Image, tempDir string, logf func(string, ...any)) (u *unpacked, skipped string, err error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, "", fmt.Errorf("reading the image configuration: %w", err)
	}
	u = &unpacked{cf: cf, platform: cf.OS + "/" + cf.Architecture}
	if cf.Variant != "" {
		u.platform += "/" + cf.Variant
	}
	if runtime.GOOS != "linux" {
		return u, "Traefik images run on Linux hosts only; this host is " + runtime.GOOS, nil
	}
	if cf.OS != runtime.GOOS || cf.Architecture != runtime.GOARCH {
		return u, fmt.Sprintf("the image is %s and this host runs %s/%s: Traefik is not run for another platform", u.platform, runtime.GOOS, runtime.GOARCH), nil
	}
	if u.work, err = os.MkdirTemp(tempDir, "xtraefik-runcheck-"); err != nil {
		return nil, "", err
	}
	u.rootfs = filepath.Join(u.work, "rootfs")
	if err := os.Chmod(u.work, 0o755); err != nil {
		return u, "", err
	}
	if err := os.Mkdir(u.rootfs, 0o755); err != nil {
		return u, "", err
	}
	logf("unpacking the %s image into %s", u.platform, u.rootfs)
	if err := Unpack(ctx, img, u.rootfs); err != nil {
		return u, "", err
	}
	return u, "", nil
}

// remove removes the work directory.
func (u *unpacked) remove() error {
	if u == nil || u.work == "" {
		return nil
	}
	if err := os.RemoveAll(u.work); err != nil {
		return fmt.Errorf("removing %s: %w", u.work, err)
	}
	return nil
}

// workdir is the image's working directory, defaulted as runtimes do.
func (u *unpacked) workdir() string {
	if u.cf.Config.WorkingDir == "" {
		return "/"
	}
	return u.cf.Config.WorkingDir
}

// started is a Traefik launchTraefik started.
type started struct {
	proc      process
	l         *launch
	isolation string
	// out is the writer the process writes to (newOut's for the isolation
	// that worked).
	out io.Writer
	// notes say which isolations were not used, and why.
	notes []string
}

// launchTraefik plans and starts the image's Traefik under the first of
// isolations that works here; h.dynamic is an in-image path, mapped for
// each isolation. newOut gives each attempt a fresh output writer, so that
// a failed isolation's output does not mix with Traefik's.
func launchTraefik(ctx context.Context, u *unpacked, isolations, userArgs []string, h harness, hostNetwork bool, newOut func() io.Writer, logf func(string, ...any)) (*started, error) {
	dynamic := h.dynamic
	var notes []string
	for i, iso := range isolations {
		inside := func(p string) string { return p }
		if iso == IsolationNone {
			inside = func(p string) string { return filepath.Join(u.rootfs, p) }
		}
		if dynamic != "" {
			h.dynamic = inside(dynamic)
		}
		l, err := plan(u.rootfs, &u.cf.Config, userArgs, h, inside)
		if err != nil {
			return nil, err
		}
		l.hostNetwork = hostNetwork
		out := newOut()
		proc, err := start(ctx, iso, u.work, u.rootfs, l, out)
		if err != nil {
			if errors.Is(err, errUnavailable) && i < len(isolations)-1 {
				notes = append(notes, fmt.Sprintf("%s not used: %v", iso, err))
				logf("%s not used: %v", iso, err)
				continue
			}
			return nil, err
		}
		return &started{proc: proc, l: l, isolation: iso, out: out, notes: notes}, nil
	}
	return nil, errors.New("no isolation to start Traefik with")
}
