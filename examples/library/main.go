// Command library is a platform team's image builder with xtraefik
// embedded as a Go library, as docs/go-library.md describes: it makes the
// recipe in code, opens one build.Session, verifies the plugin several
// times side by side while the image builds into an OCI layout, and hands
// the built image, a go-containerregistry v1.ImageIndex, to its own
// publisher, which pushes it with go-containerregistry's remote package
// (the way ko's publishers take a build result).
//
// It does not call verify.MaybeRunWorker: importing the library is enough,
// a verification worker never runs this program's main.
//
//	go run ./examples/library -base oci:base-layout:v3.6 \
//	  -plugin ./myplugin -module example.com/myplugin \
//	  -layout out -push 127.0.0.1:5000/team/traefik:v1 -save team.yaml
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/xtraefik/xtraefik/build"
	"github.com/xtraefik/xtraefik/images"
	"github.com/xtraefik/xtraefik/recipe"
)

func main() {
	var c config
	flag.StringVar(&c.Base, "base", "docker.io/library/traefik:v3.6", "the Traefik base image (a registry reference, oci:<dir>:<tag>, docker-archive:<file>)")
	flag.StringVar(&c.PluginDir, "plugin", "", "the plugin's directory")
	flag.StringVar(&c.Module, "module", "", "the plugin's module path")
	flag.StringVar(&c.Layout, "layout", "out", "the OCI layout to write")
	flag.StringVar(&c.Push, "push", "", "the registry reference the team's publisher pushes to (none: no push)")
	flag.StringVar(&c.Save, "save", "", "save the recipe and its lock here, for `xtraefik build -f`")
	flag.StringVar(&c.CacheDir, "cache-dir", "", "the cache directory (default: xtraefik's)")
	flag.IntVar(&c.Verifications, "verify", 2, "how many verifications run beside the build")
	flag.Parse()
	c.Env, c.Log = os.Getenv, os.Stderr

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	out, err := run(ctx, c)
	if err != nil {
		fmt.Fprintln(os.Stderr, "library:", err)
		os.Exit(1)
	}
	fmt.Printf("built %s (%d verifications passed)\n", out.Image.Digest, out.Verified)
	if out.Image.Index != nil {
		// Each platform's image, as the index lists it.
		im, err := out.Image.Index.IndexManifest()
		if err != nil {
			fmt.Fprintln(os.Stderr, "library:", err)
			os.Exit(1)
		}
		for _, d := range im.Manifests {
			if d.Platform != nil {
				fmt.Printf("  %s %s\n", d.Platform, d.Digest)
			}
		}
	}
	if out.Pushed != nil {
		fmt.Printf("pushed %s\n", out.Pushed)
	}
}

// config is what the team's tool takes; Env and Log are what it gives the
// library (os.Getenv and standard error in main, a test's own in tests).
type config struct {
	Base, PluginDir, Module string
	Layout, Push, Save      string
	CacheDir                string
	Verifications           int
	Env                     func(string) string
	Log                     io.Writer
}

// outcome is what run made.
type outcome struct {
	// Image is the built image as go-containerregistry values.
	Image *build.Image
	// Pushed is what the team's publisher returned (nil without -push).
	Pushed name.Reference
	// Verified counts the verifications that passed.
	Verified int
	Report   *build.Report
}

func run(ctx context.Context, c config) (*outcome, error) {
	if c.PluginDir == "" || c.Module == "" {
		return nil, errors.New("give the plugin: -plugin <dir> -module <module path>")
	}
	dir, err := filepath.Abs(c.PluginDir)
	if err != nil {
		return nil, err
	}
	// The recipe is made in code; Open checks it as it checks a file.
	r := &recipe.Recipe{
		Base:    c.Base,
		Plugins: map[string]*recipe.Plugin{"team": {Module: c.Module, Path: dir}},
		Labels:  map[string]string{"org.example.team": "platform"},
	}
	s, err := build.Open(build.Config{Recipe: r, CacheDir: c.CacheDir, Env: c.Env, Log: c.Log})
	if err != nil {
		return nil, err
	}

	req := build.BuildRequest{Outputs: build.Outputs{OCILayout: c.Layout, Tag: "team/traefik:latest", SaveRecipe: c.Save}}
	if c.Push != "" {
		ref, err := name.ParseReference(c.Push)
		if err != nil {
			return nil, fmt.Errorf("-push: %w", err)
		}
		// The same credentials the session uses: Docker's or Podman's auth
		// file, found through the same environment.
		req.Publishers = []build.Publisher{&remotePublisher{ref: ref, keychain: images.EnvKeychain(c.Env)}}
	}

	// One Session, used side by side: verifications run while the image
	// builds.
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		verified int
		errs     []error
	)
	for range c.Verifications {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rep, err := s.Verify(ctx, build.VerifyRequest{})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("verify: %w", err))
				return
			}
			if rep.OK {
				verified++
			}
		}()
	}
	res, err := s.Build(ctx, req)
	wg.Wait()
	if err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	out := &outcome{Image: res.Image, Verified: verified, Report: res.Report}
	if pub := res.Report.Image.Published; len(pub) > 0 {
		if out.Pushed, err = name.ParseReference(pub[0]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// remotePublisher is the team's own output: it writes the index (or a
// single image) with go-containerregistry's remote package, as ko's
// publish.Default does, and answers with the reference by digest.
type remotePublisher struct {
	ref      name.Reference
	keychain authn.Keychain
}

// Publish takes a v1.ImageIndex or a v1.Image, as ko's publishers do.
func (p *remotePublisher) Publish(ctx context.Context, a build.Artifact, _ string) (name.Reference, error) {
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(p.keychain)}
	var err error
	switch img := a.(type) {
	case v1.ImageIndex:
		err = remote.WriteIndex(p.ref, img, opts...)
	case v1.Image:
		err = remote.Write(p.ref, img, opts...)
	default:
		err = fmt.Errorf("a %T is neither an image nor an index", a)
	}
	if err != nil {
		return nil, fmt.Errorf("push %s: %w", p.ref, err)
	}
	d, err := a.Digest()
	if err != nil {
		return nil, err
	}
	return p.ref.Context().Digest(d.String()), nil
}

// String names the publisher in progress lines and errors.
func (p *remotePublisher) String() string { return "remote " + p.ref.String() }
