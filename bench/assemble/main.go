// Command assemble is the library path of an xtraefik build, for benchmarks:
// resolve a base, append one plugin directory as the plugin layer and push the
// result or write an OCI layout. It does no git fetch and no verification, so
// that its figures compare with `crane append` and `buildah bud`, which do
// neither. The full CLI is measured beside it by bench/peers.sh.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"time"

	"github.com/xtraefik/xtraefik/images"
	"github.com/xtraefik/xtraefik/internal/fileset"
	"github.com/xtraefik/xtraefik/internal/plugin"
)

func main() {
	var (
		base       = flag.String("base", "", "base image reference (registry, oci:<dir> or docker-archive:<file>)")
		dir        = flag.String("plugin-dir", "", "plugin working copy")
		module     = flag.String("module", "", "plugin module path")
		push       = flag.String("push", "", "registry reference to push to")
		layout     = flag.String("oci-layout", "", "OCI layout directory to write (replaced)")
		epoch      = flag.Int64("epoch", 0, "SOURCE_DATE_EPOCH of the layer and config")
		digestFile = flag.String("digest-file", "", "write the digest to this file")
		pluginsRef = flag.String("plugins-image", "", "also build the plugins image (images.PluginsImage) and push it to this registry reference")
	)
	flag.Parse()
	if *base == "" || *dir == "" || *module == "" || (*push == "" && *layout == "") {
		fmt.Fprintln(os.Stderr, "usage: assemble -base REF -plugin-dir DIR -module PATH (-push REF | -oci-layout DIR) [-epoch N]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	digest, err := run(ctx, *base, *dir, *module, *push, *layout, *pluginsRef, time.Unix(*epoch, 0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "assemble:", err)
		os.Exit(1)
	}
	if *digestFile != "" {
		if err := os.WriteFile(*digestFile, []byte(digest+"\n"), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "assemble:", err)
			os.Exit(1)
		}
	}
	fmt.Println(digest)
}

func run(ctx context.Context, base, dir, module, push, layout, pluginsRef string, epoch time.Time) (string, error) {
	ref, err := images.ParseReference(base)
	if err != nil {
		return "", err
	}
	b, err := images.Resolve(ctx, ref, images.Options{})
	if err != nil {
		return "", err
	}
	files, err := fileset.FromDir(dir)
	if err != nil {
		return "", err
	}
	res, err := images.Assemble(ctx, b, images.Addition{
		Plugins: []plugin.Plugin{{Module: module, Files: files}},
		Epoch:   epoch,
	})
	if err != nil {
		return "", err
	}
	if layout != "" {
		if err := images.WriteLayout(ctx, layout, res, images.LayoutOptions{Overwrite: true}); err != nil {
			return "", err
		}
	}
	var plugins *images.Result
	if pluginsRef != "" {
		if plugins, err = images.PluginsImage(ctx, b, images.PluginsSpec{Plugins: []plugin.Plugin{{Module: module, Files: files}}, Epoch: epoch}); err != nil {
			return "", err
		}
	}
	// As the CLI: the two images side by side, each with its pusher (one
	// ping and token per repository).
	var wg sync.WaitGroup
	errs := make([]error, 2)
	if push != "" {
		wg.Go(func() { errs[0] = pushWith(ctx, push, res) })
	}
	if plugins != nil {
		wg.Go(func() { errs[1] = pushWith(ctx, pluginsRef, plugins) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return "", err
	}
	return res.Digest.String(), nil
}

// pushWith uploads r to ref's repository and tags it.
func pushWith(ctx context.Context, ref string, r *images.Result) error {
	p := images.NewPusher(images.Options{})
	defer p.Close()
	repo, err := images.CheckPushReference(ref, r, images.Options{})
	if err != nil {
		return err
	}
	if err := p.Upload(ctx, repo, r); err != nil {
		return err
	}
	return p.Tag(ctx, ref, r)
}
