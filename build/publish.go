package build

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/xtraefik/xtraefik/images"
	"github.com/xtraefik/xtraefik/internal/publish"
	"github.com/xtraefik/xtraefik/internal/sign"
	"github.com/xtraefik/xtraefik/internal/traefikcfg"
	"github.com/xtraefik/xtraefik/recipe"
)

// Outputs says where a built image goes. Any combination may be given.
type Outputs struct {
	OCILayout string
	Tarball   string
	// Tag names the image: `docker load` gives a tarball image this name, and the
	// OCI layout records its tag part (org.opencontainers.image.ref.name).
	Tag string
	// TarballPlatform picks the platform of a multi-platform image for the tarball
	// (docker load takes one); nil means the host's.
	TarballPlatform *v1.Platform
	// Push lists registry references; blobs go once to each repository.
	Push       []string
	DigestFile string
	// ValuesFile receives the Helm values snippet that enables the plugins.
	ValuesFile string
	// SBOMDir receives sbom.spdx.json; a pushed image then also gets the SBOM
	// attached as an OCI referrer.
	SBOMDir string
	// SaveRecipe receives the recipe the build ran (directory plugins'
	// paths relative to it), and recipe.LockPath(SaveRecipe) its lock: a
	// build made in code becomes one `build -f` repeats.
	SaveRecipe string
	// Overwrite replaces what exists at an output path (until a later output
	// fails: then it is put back). Without it, an existing output is an error.
	Overwrite bool
	// SignKey signs every pushed image and attaches its SLSA provenance and
	// verification record as signed attestations (package sign): a cosign
	// key file, opened with SignPassword, or a KMS URI.
	SignKey      string
	SignPassword sign.PasswordFunc
	// PluginsImage lists registry references for the plugins image
	// (assemblePluginsImage: the plugin tree alone, mounted at
	// <WORKDIR>/plugins-local of the unmodified base); PluginsLayout
	// receives it as an OCI image layout. With either, ValuesFile
	// describes the plugins image on the unmodified base, a push of it is
	// signed and gets its SBOM like the full image's, and, when none of
	// OCILayout, Tarball and Push is given, only the plugins image is built
	// and DigestFile and SBOMDir are its.
	PluginsImage  []string
	PluginsLayout string

	// custom are BuildRequest.Publishers, written after every other output.
	custom []Publisher
}

// Empty reports whether no output was asked for.
func (o Outputs) Empty() bool {
	return o.OCILayout == "" && o.Tarball == "" && len(o.Push) == 0 && o.DigestFile == "" && o.SBOMDir == "" && o.ValuesFile == "" && o.SaveRecipe == "" &&
		!o.wantsPlugins() && len(o.custom) == 0
}

// wantsPlugins says a plugins image is asked for.
func (o Outputs) wantsPlugins() bool { return len(o.PluginsImage) > 0 || o.PluginsLayout != "" }

// wantsImage says the full image is asked for: one of its own outputs, or
// no plugins image (the outputs beside them are then the full image's).
func (o Outputs) wantsImage() bool {
	return o.OCILayout != "" || o.Tarball != "" || len(o.Push) > 0 || !o.wantsPlugins()
}

// SBOMFile is the SPDX document's name in Outputs.SBOMDir.
const SBOMFile = publish.SBOMFile

// DefaultTag names a tarball image when no tag is given.
const DefaultTag = "localhost/xtraefik/traefik:latest"

// publishers are the outputs in the order they are written: local files
// first, then the registry, which cannot be taken back.
type publishers struct {
	all publish.Multi
	// steps name each of all for a Status.
	steps    []pubStep
	layout   *publish.Layout
	registry *publish.Registry
	sign     *publish.Sign
	// plugins is what the plugins image's own outputs write (through
	// publish.Substitute), filled once it is built.
	plugins         *publish.Artifact
	pluginsLayout   *publish.Layout
	pluginsRegistry *publish.Registry
	pluginsSign     *publish.Sign
	// custom runs BuildRequest.Publishers, last.
	custom *custom
}

func (o Outputs) publishers(opts images.Options) (*publishers, error) {
	tag := o.Tag
	if tag == "" {
		tag = DefaultTag
	}
	p := &publishers{plugins: &publish.Artifact{}}
	sub := func(pub publish.Publisher) publish.Publisher {
		return &publish.Substitute{Publisher: pub, Artifact: p.plugins}
	}
	if o.SBOMDir != "" {
		p.add(publish.SBOMDir(o.SBOMDir, o.Overwrite), writeStep(o.SBOMDir))
	}
	if o.ValuesFile != "" {
		p.add(publish.ValuesFile(o.ValuesFile, o.Overwrite), writeStep(o.ValuesFile))
	}
	if o.SaveRecipe != "" {
		lock := recipe.LockPath(o.SaveRecipe)
		if lock == o.SaveRecipe {
			return nil, fmt.Errorf("save the recipe as %s: its lock would be the same file; name the recipe with another extension (.yaml)", o.SaveRecipe)
		}
		p.add(publish.RecipeFile(o.SaveRecipe, o.Overwrite), writeStep(o.SaveRecipe))
		p.add(publish.LockFile(lock, o.Overwrite), writeStep(lock))
	}
	if o.OCILayout != "" {
		t, err := name.NewTag(tag)
		if err != nil {
			return nil, fmt.Errorf("image name %q: %w", tag, err)
		}
		p.layout = &publish.Layout{Dir: o.OCILayout, Tag: t.TagStr(), Overwrite: o.Overwrite}
		p.add(p.layout, writeStep(o.OCILayout))
	}
	if o.Tarball != "" {
		p.add(&publish.Tarball{Path: o.Tarball, Tag: tag, Platform: o.TarballPlatform, Overwrite: o.Overwrite}, writeStep(o.Tarball))
	}
	if o.PluginsLayout != "" {
		t, err := name.NewTag(tag)
		if err != nil {
			return nil, fmt.Errorf("image name %q: %w", tag, err)
		}
		p.pluginsLayout = &publish.Layout{Dir: o.PluginsLayout, Tag: t.TagStr(), Overwrite: o.Overwrite}
		p.add(sub(p.pluginsLayout), writeStep(o.PluginsLayout))
	}
	if o.DigestFile != "" {
		p.add(publish.DigestFile(o.DigestFile, o.Overwrite), writeStep(o.DigestFile))
	}
	// The two images are pushed side by side (publish.Concurrent) when
	// they go to different repositories: a repository's progress is told
	// one call at a time (images.Options.Progress). Then they are signed.
	var full, plugins []string
	if len(o.Push) > 0 {
		p.registry = &publish.Registry{Refs: o.Push, Options: opts, AttachSBOM: o.SBOMDir != ""}
		full = pushRepos(o.Push, opts)
	}
	if len(o.PluginsImage) > 0 {
		p.pluginsRegistry = &publish.Registry{Refs: o.PluginsImage, Options: opts, AttachSBOM: o.SBOMDir != ""}
		plugins = pushRepos(o.PluginsImage, opts)
	}
	switch shared := slices.ContainsFunc(plugins, func(r string) bool { return slices.Contains(full, r) }); {
	case p.registry != nil && p.pluginsRegistry != nil && !shared:
		p.add(publish.Concurrent{p.registry, sub(p.pluginsRegistry)}, pubStep{stage: StagePush, outcome: "pushed", subjects: append(full, plugins...)})
	default:
		if p.registry != nil {
			p.add(p.registry, pubStep{stage: StagePush, outcome: "pushed", subjects: full})
		}
		if p.pluginsRegistry != nil {
			p.add(sub(p.pluginsRegistry), pubStep{stage: StagePush, outcome: "pushed", subjects: plugins})
		}
	}
	if o.SignKey != "" {
		if p.registry == nil && p.pluginsRegistry == nil {
			return nil, errors.New("signing needs a push: signatures and attestations are attached to a pushed image")
		}
		if p.registry != nil {
			p.sign = &publish.Sign{Registry: p.registry, Key: o.SignKey, Password: o.SignPassword}
			p.add(p.sign, signStep(o.Push))
		}
		if p.pluginsRegistry != nil {
			p.pluginsSign = &publish.Sign{Registry: p.pluginsRegistry, Key: o.SignKey, Password: o.SignPassword}
			p.add(sub(p.pluginsSign), signStep(o.PluginsImage))
		}
	}
	if len(o.custom) > 0 {
		p.custom = &custom{pubs: o.custom, tag: tag}
		var names []string
		for _, c := range o.custom {
			names = append(names, publisherName(c))
		}
		p.add(p.custom, pubStep{stage: StagePublish, outcome: "published", subjects: names})
	}
	return p, nil
}

func (p *publishers) add(pub publish.Publisher, step pubStep) {
	p.all = append(p.all, pub)
	p.steps = append(p.steps, step)
}

// pushRepos are the repositories refs push to, each once, in order (as
// publish.Registry pushes them); a bad reference is Validate's to report.
func pushRepos(refs []string, opts images.Options) []string {
	var repos []string
	for _, ref := range refs {
		if repo, err := images.CheckPushReference(ref, nil, opts); err == nil && !slices.Contains(repos, repo) {
			repos = append(repos, repo)
		}
	}
	return repos
}

// Validate checks every output without writing anything, as Session.Build
// does before anything is fetched, so that a bad output path fails at once
// rather than after the build; writing them checks again.
func (o Outputs) Validate(ctx context.Context, opts images.Options) error {
	p, err := o.publishers(opts)
	if err != nil {
		return err
	}
	return p.all.Validate(ctx)
}

// published records what publishResult wrote.
type published struct {
	Digest v1.Hash
	// Pushed lists name@digest for each repository pushed to; Tags the
	// references written (the --push references).
	Pushed []string
	Tags   []string
	// Signed lists name@digest of each image signed and attested.
	Signed []string
	// SBOMDigest is the referrer artifact attached to the pushed image.
	SBOMDigest v1.Hash
	// Plugins is what was published of the plugins image, when one was
	// built (its Plugins is nil).
	Plugins *published
	// LayoutDigest differs from Digest when a Docker-typed image was written to
	// the OCI layout with OCI media types.
	LayoutDigest v1.Hash
	// Published are the references BuildRequest.Publishers returned.
	Published []string
}

// publishResult writes the images of res to every output, all or nothing
// (see package publish): when one fails, the outputs written before it are
// removed and whatever they replaced is put back. The registry comes last,
// and gets its tags only once every blob (and the SBOM) is there. It tells
// r's Status of each output, and of the bytes pushed.
func publishResult(ctx context.Context, res *result, out Outputs, opts images.Options, r *runner) (*published, error) {
	if r.listening() && opts.Progress == nil {
		opts.Progress = func(repo string, done, total int64) { r.Progress(StagePush, repo, done, total) }
	}
	p, err := out.publishers(opts)
	if err != nil {
		return nil, err
	}
	all := p.all
	if r.listening() {
		if err := p.all.Validate(ctx); err != nil {
			return nil, err
		}
		all = p.reported(r)
	}
	if out.wantsPlugins() && res.PluginsImage == nil {
		return nil, errors.New("a plugins image output is asked for, and the build made no plugins image")
	}
	if out.wantsImage() && res.Image == nil {
		return nil, errors.New("an image output is asked for, and the build made only the plugins image")
	}
	a := &publish.Artifact{Image: res.Image}
	if res.PluginsImage != nil {
		p.plugins.Image = res.PluginsImage
		if out.SBOMDir != "" {
			if p.plugins.SBOM, err = sbomOf(res, res.PluginsImage, true); err != nil {
				return nil, err
			}
		}
		if !out.wantsImage() {
			a = p.plugins
		}
	}
	if out.SBOMDir != "" && a.SBOM == nil {
		if a.SBOM, err = fullSBOM(res); err != nil {
			return nil, err
		}
	}
	if out.ValuesFile != "" {
		if a.Values, err = valuesFor(res, out, opts); err != nil {
			return nil, fmt.Errorf("render the Helm values: %w", err)
		}
	}
	if p.sign != nil {
		p.sign.Provenance, p.sign.Verification = provenanceFor(res, res.Started), verificationFor(res)
	}
	if p.pluginsSign != nil {
		p.pluginsSign.Provenance, p.pluginsSign.Verification = provenanceFor(res, res.Started), verificationFor(res)
	}
	if out.SaveRecipe != "" {
		if a.Recipe, a.Lock, err = recipe.SaveAs(res.Resolution.Recipe, res.Resolution.Lock(), out.SaveRecipe); err != nil {
			return nil, fmt.Errorf("save the recipe as %s: %w", out.SaveRecipe, err)
		}
	}
	if err := all.Publish(ctx, a); err != nil {
		return nil, err
	}
	pub := &published{}
	if res.Image != nil {
		pub.Digest = res.Image.Digest
	}
	if p.layout != nil {
		pub.LayoutDigest = p.layout.Digest
	}
	if p.registry != nil {
		pub.Pushed, pub.SBOMDigest, pub.Tags = p.registry.Pushed, p.registry.SBOMDigest, out.Push
	}
	if p.sign != nil {
		pub.Signed = p.sign.Signed
	}
	if res.PluginsImage != nil {
		pp := &published{Digest: res.PluginsImage.Digest}
		if p.pluginsLayout != nil {
			pp.LayoutDigest = p.pluginsLayout.Digest
		}
		if p.pluginsRegistry != nil {
			pp.Pushed, pp.SBOMDigest, pp.Tags = p.pluginsRegistry.Pushed, p.pluginsRegistry.SBOMDigest, out.PluginsImage
		}
		if p.pluginsSign != nil {
			pp.Signed = p.pluginsSign.Signed
		}
		pub.Plugins = pp
	}
	if p.custom != nil {
		// The publishers got the image the outputs write.
		if out.wantsImage() {
			pub.Published = p.custom.published()
		} else {
			pub.Plugins.Published = p.custom.published()
		}
	}
	return pub, nil
}

// valuesFor is the Helm values snippet: with a plugins image, the image
// volume that mounts it on the unmodified base, named by its first
// --plugins-image repository (DefaultPluginsName without one) and pinned
// by digest; else the flags that enable the full image's plugins.
func valuesFor(res *result, out Outputs, opts images.Options) ([]byte, error) {
	if res.PluginsImage == nil {
		return traefikcfg.HelmValues(res.Resolution.Plugins)
	}
	mount, err := images.PluginsMountPath(res.Resolution.Base)
	if err != nil {
		return nil, err
	}
	return traefikcfg.HelmPluginsImageValues(res.Resolution.Plugins, traefikcfg.PluginsVolume{
		Reference: pluginsReference(res.PluginsImage, out.PluginsImage, opts), MountPath: mount})
}

// pluginsReference names a plugins image by digest: in the repository of
// the first of refs (where it was pushed), else DefaultPluginsName.
func pluginsReference(img *images.Result, refs []string, opts images.Options) string {
	repo := DefaultPluginsName
	if len(refs) > 0 {
		if r, err := images.CheckPushReference(refs[0], img, opts); err == nil {
			repo = r
		}
	}
	return repo + "@" + img.Digest.String()
}
