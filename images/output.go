package images

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/xtraefik/xtraefik/internal/place"
)

// LayoutOptions configure WriteLayout.
type LayoutOptions struct {
	// Tag is written as org.opencontainers.image.ref.name, so that
	// "oci:<dir>:<tag>" finds the image; empty writes no tag.
	Tag string
	// Overwrite replaces an existing target; without it a non-empty directory
	// or a file at the target is an error.
	Overwrite bool
}

// WriteLayout writes r as a new OCI image layout at dir, creating missing
// parents like `crane pull --format oci` and skopeo do. The layout is built in
// a temporary directory beside dir and renamed into place only when complete;
// on error nothing is left behind. For an output that a later step may have
// to take back, see package publish.
func WriteLayout(ctx context.Context, dir string, r *Result, opts LayoutOptions) error {
	if r == nil {
		return errors.New("write OCI layout: no result")
	}
	t, err := place.New(dir, place.Dir, opts.Overwrite, true)
	if err != nil {
		return fmt.Errorf("write OCI layout %s: %w", dir, err)
	}
	if err := WriteLayoutDir(ctx, t.Temp(), r, opts.Tag); err != nil {
		t.Undo()
		return fmt.Errorf("write OCI layout %s: %w", dir, err)
	}
	if err := t.Place(); err != nil {
		t.Undo()
		return fmt.Errorf("write OCI layout %s: %w", dir, err)
	}
	r.ReleaseLayout(t.Aside())
	return t.Commit()
}

// ReleaseLayout unlinks the blobs an OCI layout at dir, about to be
// deleted (the one an overwrite replaced), shares with the blob cache r
// was built through, keeping them stamped as verified
// (blobstore.Store.Release); the rest of dir is left to the caller. An
// empty dir, or a result without a cache, does nothing.
func (r *Result) ReleaseLayout(dir string) {
	if dir == "" || r == nil || r.blobs == nil || r.blobs.store == nil {
		return
	}
	r.blobs.store.Release(filepath.Join(dir, "blobs", "sha256"))
}

// WriteLayoutDir writes r as an OCI image layout into dir, an empty directory.
// Docker-typed results are written with OCI media types (see Result.OCI), since
// layout readers accept only those. Files are made 0644 and directories 0755:
// a layout is read by scanners and CI steps running as other users.
func WriteLayoutDir(ctx context.Context, dir string, r *Result, tag string) error {
	r, err := r.OCI()
	if err != nil {
		return err
	}
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	if err := r.linkCached(dir); err != nil {
		return err
	}
	var lopts []layout.Option
	if tag != "" {
		lopts = append(lopts, layout.WithAnnotations(map[string]string{annotationRefName: tag}))
	}
	if r.index != nil {
		err = lp.AppendIndex(r.index, lopts...)
		if err == nil && tag != "" {
			err = tagPlatforms(lp, r, tag)
		}
	} else {
		err = lp.AppendImage(r.images[0], lopts...)
	}
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// go-containerregistry writes blobs 0600 and the rest with the umask.
	// Blobs placed from the cache are 0444 and stay untouched: a chmod
	// would change a hard-linked cached file's ctime, which the cache
	// takes for an edit (a re-hash next time).
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		mode := fs.FileMode(0o644)
		if d.IsDir() {
			mode = 0o755
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		// Blobs placed from the cache are read-only (0444): readable, and
		// left as they are.
		if perm := info.Mode().Perm(); perm == mode || !d.IsDir() && perm == 0o444 {
			return nil
		}
		return os.Chmod(p, mode)
	})
}

// linkCached puts the base layers the blob cache holds into the layout's
// blobs directory (clone, hard link or copy: blobstore.Store.Link) before
// the layout is written; go-containerregistry then skips them. A layer the
// cache lacks, or holds damaged, is written from the registry as usual
// (and kept in the cache on the way).
func (r *Result) linkCached(dir string) error {
	if r.blobs == nil || r.blobs.store == nil {
		return nil
	}
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return err
	}
	for _, img := range r.images {
		m, err := img.Manifest()
		if err != nil {
			return err
		}
		for _, l := range m.Layers {
			if l.Digest.Algorithm != "sha256" {
				continue
			}
			dst := filepath.Join(blobs, l.Digest.Hex)
			if _, err := os.Lstat(dst); err == nil {
				continue // platforms share layers
			}
			// Whatever fails here (not cached, damaged, another
			// filesystem's rules) leaves the blob to the layout writer.
			_ = r.blobs.store.Link(l.Digest, dst)
		}
	}
	return nil
}

// tagPlatforms also lists each platform's manifest of a multi-platform
// result in index.json, tagged "<tag>-<os>-<arch>[-<variant>]". The tag itself
// names the image index, which skopeo, crane and container engines pick a
// platform from; umoci 0.4 cannot (a tag reaching several manifests is
// "ambiguous" to it, attestations included), so it unpacks a platform tag.
// Without a tag nothing is added: skopeo's oci:<dir> wants one entry.
func tagPlatforms(lp layout.Path, r *Result, tag string) error {
	im, err := r.index.IndexManifest()
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, d := range im.Manifests {
		if d.Platform == nil || d.Platform.OS == "unknown" || !d.MediaType.IsImage() {
			continue // attestations are not runnable platforms
		}
		ref := tag + "-" + strings.Join(strings.Split(d.Platform.String(), "/"), "-")
		if seen[ref] {
			continue // one manifest per tag, or umoci refuses it
		}
		seen[ref] = true
		annotations := maps.Clone(d.Annotations)
		if annotations == nil {
			annotations = map[string]string{}
		}
		annotations[annotationRefName] = ref
		d.Annotations = annotations
		if err := lp.AppendDescriptor(d); err != nil {
			return err
		}
	}
	return nil
}

// TarballOptions configure WriteTarball and WriteArchive.
type TarballOptions struct {
	// Tag is the name `docker load` gives the image ("traefik-plugins:v1");
	// empty loads it untagged.
	Tag string
	// Platform picks the image of a multi-platform result; nil means the host's
	// linux/GOARCH.
	Platform *v1.Platform
	// Overwrite replaces an existing file (WriteTarball).
	Overwrite bool
}

// WriteTarball writes one image of r as a `docker save` tarball at path (see
// WriteArchive). The file is written beside path and renamed into place when
// complete; on error nothing is left behind.
func WriteTarball(ctx context.Context, path string, r *Result, opts TarballOptions) error {
	if r == nil {
		return errors.New("write docker archive: no result")
	}
	t, err := place.New(path, place.File, opts.Overwrite, true)
	if err != nil {
		return fmt.Errorf("write docker archive %s: %w", path, err)
	}
	if err := WriteArchive(ctx, t.File(), r, opts); err != nil {
		t.Undo()
		return fmt.Errorf("write docker archive %s: %w", path, err)
	}
	if err := t.Place(); err != nil {
		t.Undo()
		return fmt.Errorf("write docker archive %s: %w", path, err)
	}
	return t.Commit()
}

// WriteArchive writes one image of r to w as a `docker save` tarball that
// `docker load` reads (which takes single images only).
func WriteArchive(ctx context.Context, w io.Writer, r *Result, opts TarballOptions) error {
	img, err := r.tarballImage(opts.Platform)
	if err != nil {
		return err
	}
	var ref name.Reference
	if opts.Tag != "" {
		if ref, err = name.NewTag(opts.Tag, name.WeakValidation); err != nil {
			return fmt.Errorf("tag: %w", err)
		}
	} else {
		digest, err := img.Digest()
		if err != nil {
			return err
		}
		// A digest reference writes no RepoTags: the image loads untagged.
		if ref, err = name.NewDigest("xtraefik@" + digest.String()); err != nil {
			return err
		}
	}
	if err := tarball.Write(ref, img, w); err != nil {
		return err
	}
	return ctx.Err()
}

// tarballImage picks the image for a docker archive: the only one, or the one
// for platform (default: the host's linux/GOARCH).
func (r *Result) tarballImage(p *v1.Platform) (v1.Image, error) {
	if r.index == nil {
		if p != nil && !r.Platforms[0].Platform.Satisfies(*p) {
			return nil, fmt.Errorf("the image is %s, not %s", r.Platforms[0].Platform, p)
		}
		return r.images[0], nil
	}
	spec := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	if p != nil {
		spec = *p
	}
	i, err := r.pick(spec)
	if err != nil {
		if p == nil {
			return nil, fmt.Errorf("docker load takes one platform and the host's default is unusable: %w; choose a platform", err)
		}
		return nil, err
	}
	return r.images[i], nil
}

// Push writes r to the registry reference ref (a tag, or a digest that must be
// r's): Upload, then Tag.
func Push(ctx context.Context, ref string, r *Result, opts Options) (v1.Hash, error) {
	if r == nil {
		return v1.Hash{}, errors.New("push: no result")
	}
	repo, err := CheckPushReference(ref, r, opts)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("push %s: %w", ref, err)
	}
	p := NewPusher(opts)
	defer p.Close()
	if err := p.Upload(ctx, repo, r); err != nil {
		return v1.Hash{}, fmt.Errorf("push %s: %w", ref, err)
	}
	if err := p.Tag(ctx, ref, r); err != nil {
		return v1.Hash{}, fmt.Errorf("push %s: %w", ref, err)
	}
	return r.Digest, nil
}

// CheckPushReference parses ref as a place to push r to (a registry tag, or
// r's digest; r may be nil before the build) and returns its repository.
func CheckPushReference(ref string, r *Result, opts Options) (repo string, err error) {
	parsed, err := ParseReference(ref)
	if err != nil {
		return "", err
	}
	if parsed.Transport != TransportDocker {
		return "", errors.New("not a registry reference")
	}
	if r != nil && parsed.Digest != "" && parsed.Digest != r.Digest.String() {
		return "", fmt.Errorf("the image is %s, not %s", r.Digest, parsed.Digest)
	}
	target, err := opts.parseName(parsed.registryString())
	if err != nil {
		return "", err
	}
	return target.Context().Name(), nil
}

// Pusher writes built images to registries: Upload, then AttachSBOM and
// Tag. It keeps one go-containerregistry pusher per repository, made on the
// repository's first call (its ping and token lookup use that call's ctx),
// so that the ping and token serve its blobs, its manifests, the SBOM and the
// tags alike. A Pusher is for one goroutine at a time. Close it when done:
// with Options.Progress it holds a goroutine per repository until then.
// After Close every method returns an error; closing twice is harmless.
type Pusher struct {
	opts   Options
	repos  map[string]*repoPusher
	closed bool
}

// repoPusher pushes to one repository and forwards its progress.
type repoPusher struct {
	p       *remote.Pusher
	updates chan v1.Update // nil without Options.Progress
	done    chan struct{}
	heads   *manifestHeads
}

// manifestHeads records the manifests the registry said it has when asked
// by digest (HEAD .../manifests/sha256:...): an Upload that found its image
// there already. Only then may a tag name it already, so only then is the
// tag looked at before it is written.
type manifestHeads struct {
	next  http.RoundTripper
	mu    sync.Mutex
	found map[string]bool // URL paths
}

func (m *manifestHeads) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := m.next.RoundTrip(req)
	if err == nil && req.Method == http.MethodHead && resp.StatusCode == http.StatusOK && strings.Contains(req.URL.Path, "/manifests/sha256:") {
		m.mu.Lock()
		m.found[req.URL.Path] = true
		m.mu.Unlock()
	}
	return resp, err
}

// has says whether the registry answered that repository repo has the
// manifest d.
func (m *manifestHeads) has(repo name.Repository, d v1.Hash) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.found["/v2/"+repo.RepositoryStr()+"/manifests/"+d.String()]
}

// NewPusher returns a Pusher with opts' registry settings and progress.
func NewPusher(opts Options) *Pusher {
	return &Pusher{opts: opts, repos: map[string]*repoPusher{}}
}

// repo returns the pusher of repository repo, made on first use.
func (p *Pusher) repo(ctx context.Context, repo string) (*repoPusher, error) {
	if p.closed {
		return nil, errors.New("the pusher is closed")
	}
	if rp := p.repos[repo]; rp != nil {
		return rp, nil
	}
	if p.opts.Offline {
		return nil, errors.New("offline: pushing needs the network")
	}
	rp := &repoPusher{heads: &manifestHeads{found: map[string]bool{}}}
	ropts := p.opts.remoteOptionsWith(ctx, func(rt http.RoundTripper) http.RoundTripper {
		rp.heads.next = rt
		return rp.heads
	})
	if p.opts.Progress != nil {
		// remote sends on the channel while it writes (blocking when it is
		// full); a remote.Pusher never closes it: Close does, once no push
		// is running.
		rp.updates = make(chan v1.Update, 64)
		rp.done = make(chan struct{})
		go func() {
			defer close(rp.done)
			for u := range rp.updates {
				if u.Error == nil {
					p.opts.Progress(repo, u.Complete, u.Total)
				}
			}
		}()
		ropts = append(ropts, remote.WithProgress(rp.updates))
	}
	rem, err := remote.NewPusher(ropts...)
	if err != nil {
		if rp.updates != nil {
			close(rp.updates)
			<-rp.done
		}
		return nil, err
	}
	rp.p = rem
	p.repos[repo] = rp
	return rp, nil
}

// Upload writes r's blobs and manifests to the repository repo ("host/path"),
// by digest, so that no tag moves yet. Only blobs the registry lacks are
// uploaded; blobs of a base in the same registry are mounted across
// repositories, never pulled.
func (p *Pusher) Upload(ctx context.Context, repo string, r *Result) error {
	target, err := p.opts.parseName(repo + "@" + r.Digest.String())
	if err != nil {
		return err
	}
	rp, err := p.repo(ctx, target.Context().Name())
	if err != nil {
		return err
	}
	return p.opts.explain(rp.p.Push(ctx, target, r.taggable()), target)
}

// Tag points the registry reference ref at r, which Upload put in ref's
// repository: only the top manifest is written. A reference by digest names
// what Upload wrote already. When Upload found r in the repository already
// (a rebuild of the same inputs), the tag is looked at first and not
// written again if it names r: the registry does less with a HEAD than
// with a manifest PUT, as crane does.
func (p *Pusher) Tag(ctx context.Context, ref string, r *Result) error {
	parsed, err := ParseReference(ref)
	if err != nil {
		return err
	}
	if parsed.Digest != "" {
		return nil
	}
	target, err := p.opts.parseName(parsed.registryString())
	if err != nil {
		return err
	}
	rp, err := p.repo(ctx, target.Context().Name())
	if err != nil {
		return err
	}
	if rp.heads.has(target.Context(), r.Digest) {
		// remote's Push of a tag: a HEAD of the tag, then the PUT only
		// when it names another manifest. A registry whose HEAD of a tag
		// fails (some answer 401 or 405 to it) still gets the PUT.
		if err := rp.p.Push(ctx, target, r.taggable()); err == nil || ctx.Err() != nil {
			return p.opts.explain(err, target)
		}
	}
	return p.opts.explain(rp.p.Put(ctx, target, r.taggable()), target)
}

// Close ends progress reporting; p pushes no more.
func (p *Pusher) Close() {
	p.closed = true
	for repo, rp := range p.repos {
		if rp.updates != nil {
			close(rp.updates)
			<-rp.done
		}
		delete(p.repos, repo)
	}
}

// topManifest is what a push writes at the top: an index or an image.
type topManifest interface {
	RawManifest() ([]byte, error)
	MediaType() (types.MediaType, error)
}

// taggable is what a push writes at the top: the index, else the image.
func (r *Result) taggable() topManifest {
	if r.index != nil {
		return r.index
	}
	return r.images[0]
}
