// Package build is xtraefik as a Go library: it turns a recipe (a file, or
// one made in code) and its lock into a verified custom Traefik image, with
// the guarantees of the CLI, which only binds flags and prints.
//
// Open merges the recipe with a Config, the only input: every location
// and variable a Session uses comes from it (Config.Env stands for the
// environment; nil is the process's), so an embedding program decides
// where caches, keys and credentials are. A Session's Lock, Build (and
// rebase) and Verify return the Report that `--output json` prints; one
// Session may run them concurrently.
//
// Build returns a BuildResult: the Report, and the built image as
// go-containerregistry values (Image: a v1.ImageIndex, or a v1.Image for a
// single-manifest base, and each platform's v1.Image), to hand to
// go-containerregistry or ko. Besides the built-in Outputs (OCI layout,
// tarball, registries, signatures, files), BuildRequest.Publishers take
// the image as ko's publishers do (Publisher), last and all or nothing as
// far as a publisher can be undone.
//
//	s, err := build.Open(build.Config{Recipe: r, Log: os.Stderr})
//	if err != nil {
//		return err
//	}
//	res, err := s.Build(ctx, build.BuildRequest{
//		Outputs:    build.Outputs{OCILayout: "out"},
//		Publishers: []build.Publisher{myPublisher},
//	})
//	// res.Report.Image.Digest, res.Image.Index ...
//
// Verification runs plugin code in worker processes that re-execute the
// program; the verify package's init serves them, so an embedding
// program's main never runs as a worker and needs no call of its own.
// examples/library is such a program.
package build
