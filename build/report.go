package build

import (
	"errors"
	"maps"
	"slices"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/xtraefik/xtraefik/images"
	"github.com/xtraefik/xtraefik/internal/plugin"
	"github.com/xtraefik/xtraefik/internal/redact"
	"github.com/xtraefik/xtraefik/internal/runcheck"
	"github.com/xtraefik/xtraefik/verify"
)

// Report is what one command did, as one JSON document for CI: filled as
// far as the command got, with Error set when it failed.
type Report struct {
	Command string `json:"command"`
	Recipe  string `json:"recipe,omitempty"`
	OK      bool   `json:"ok"`
	Error   string `json:"error,omitempty"`

	Base    *BaseReport     `json:"base,omitempty"`
	Traefik *Target         `json:"traefik,omitempty"`
	Plugins []PluginReport  `json:"plugins,omitempty"`
	Verify  []verify.Result `json:"verify,omitempty"`
	Runtime *RuntimeReport  `json:"runtime,omitempty"`
	// Reproducible is true when a second build gave the same digest.
	Reproducible bool         `json:"reproducible,omitempty"`
	Image        *ImageReport `json:"image,omitempty"`
	// PluginsImage is the plugins image, when one was asked for; its
	// Layers key is the path it is mounted at.
	PluginsImage *ImageReport `json:"pluginsImage,omitempty"`
	// Mode is the static configuration mode; Flags enable the plugins in
	// Traefik (to pass in flags mode, informational otherwise).
	Mode  string   `json:"mode,omitempty"`
	Flags []string `json:"flags,omitempty"`

	Lock *LockReport `json:"lock,omitempty"`
	// CacheRepo is the cache repository the command read (and wrote).
	CacheRepo *CacheRepoReport `json:"cacheRepo,omitempty"`
	// Saved are the recipe and lock files Outputs.SaveRecipe wrote.
	Saved    []string `json:"saved,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
	// Missing lists, offline, what the cache directory lacked (the
	// error's items, one each).
	Missing []string `json:"missing,omitempty"`
	Timings Timings  `json:"timingsMs"`

	start time.Time
	// built is the build's result, for Session.Build to hand on.
	built *result
}

// BaseReport is the base the recipe resolved to.
type BaseReport struct {
	Ref       string           `json:"ref"`
	Digest    string           `json:"digest"`
	Platforms []PlatformReport `json:"platforms"`
}

// PlatformReport is one platform's manifest.
type PlatformReport struct {
	Platform string `json:"platform"`
	Digest   string `json:"digest"`
}

// PluginReport is one plugin as resolved: its source (git, module proxy or
// directory) as the lock pins it, and its content hash.
type PluginReport struct {
	Alias  string `json:"alias"`
	Module string `json:"module"`
	// Its json tags leave out the exclusions and the time.
	plugin.Source
	ContentHash string `json:"contentHash"`
	UseUnsafe   bool   `json:"useUnsafe,omitempty"`
}

// ImageReport is the built image and where it went.
type ImageReport struct {
	Digest    string           `json:"digest"`
	MediaType string           `json:"mediaType"`
	Platforms []PlatformReport `json:"platforms"`
	// Layers maps each WORKDIR to its plugin layer's digest.
	Layers map[string]string `json:"layers"`
	// LayoutDigest differs from Digest when a Docker-typed image was written
	// to the OCI layout with OCI media types.
	LayoutDigest string `json:"layoutDigest,omitempty"`
	// Pushed lists name@digest per repository; Tags the references written.
	Pushed []string `json:"pushed,omitempty"`
	Tags   []string `json:"tags,omitempty"`
	// SBOM is the digest of the SBOM attached as a referrer.
	SBOM string `json:"sbom,omitempty"`
	// Signed lists name@digest of each image signed, with its provenance
	// and verification attestations.
	Signed []string `json:"signed,omitempty"`
	// Published are the references the build's custom publishers returned
	// (BuildRequest.Publishers, a Go caller's).
	Published []string `json:"published,omitempty"`
}

// RuntimeReport is the runtime check's outcome.
type RuntimeReport struct {
	Skipped      string                  `json:"skipped,omitempty"`
	Isolation    string                  `json:"isolation,omitempty"`
	Missing      []string                `json:"missing,omitempty"`
	ConfigSource string                  `json:"configSource,omitempty"`
	Plugins      []runcheck.PluginResult `json:"plugins,omitempty"`
	Summary      string                  `json:"summary"`
	OK           bool                    `json:"ok"`
}

// CacheRepoReport is a cache repository and the keys it is used with.
type CacheRepoReport struct {
	Repository string `json:"repository"`
	// Signer is the fingerprint of the key what the runner writes is
	// signed with; ReadOnly (no signing key) says it writes nothing.
	Signer   string `json:"signer,omitempty"`
	ReadOnly bool   `json:"readOnly"`
	// Trusted are the fingerprints of the keys whose entries are read.
	Trusted []string `json:"trusted"`
}

// LockReport says how the lock moved.
type LockReport struct {
	File string `json:"file"`
	// Changes are "what: old -> new" lines; empty when nothing moved.
	Changes []string `json:"changes"`
	Written bool     `json:"written"`
}

// Timings are in milliseconds, to the microsecond.
type Timings struct {
	Resolve  float64 `json:"resolve,omitempty"`
	Verify   float64 `json:"verify,omitempty"`
	Assemble float64 `json:"assemble,omitempty"`
	Runtime  float64 `json:"runtime,omitempty"`
	Publish  float64 `json:"publish,omitempty"`
	Total    float64 `json:"total"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (s *Session) newReport(command string) *Report {
	rep := &Report{Command: command, Recipe: s.Recipe.Path, start: time.Now()}
	if f := s.fleet; f != nil {
		rep.CacheRepo = &CacheRepoReport{Repository: f.String(), Signer: f.Signer(), ReadOnly: f.ReadOnly(), Trusted: f.Trusted()}
	}
	return rep
}

// fail records err (redacted: it is shown and stored) and returns it.
func (r *Report) fail(err error) (*Report, error) {
	var nc *NotCachedError
	if errors.As(err, &nc) {
		for _, m := range nc.Missing {
			r.Missing = append(r.Missing, redact.Text(m))
		}
	}
	err = redact.Error(err)
	r.OK, r.Error = false, err.Error()
	r.Timings.Total = ms(time.Since(r.start))
	return r, err
}

func (r *Report) done() *Report {
	r.OK = true
	r.Timings.Total = ms(time.Since(r.start))
	return r
}

func (r *Report) setResolution(res *resolution) {
	if res.Base != nil {
		b := &BaseReport{Ref: res.Recipe.Base, Digest: res.Base.Digest.String(), Platforms: []PlatformReport{}}
		for _, p := range res.Base.Platforms {
			b.Platforms = append(b.Platforms, PlatformReport{Platform: p.Platform.String(), Digest: p.Digest.String()})
		}
		r.Base = b
	}
	t := res.Traefik
	r.Traefik = &t
	r.Plugins = r.Plugins[:0]
	for _, p := range res.Plugins {
		r.Plugins = append(r.Plugins, PluginReport{Alias: p.Alias, Module: p.Module, Source: p.Source, ContentHash: p.Hash, UseUnsafe: p.UseUnsafe})
	}
	r.Mode = res.Recipe.Mode()
}

func imageReport(res *images.Result) *ImageReport {
	img := &ImageReport{Digest: res.Digest.String(), MediaType: string(res.MediaType),
		Platforms: []PlatformReport{}, Layers: map[string]string{}}
	for _, p := range res.Platforms {
		img.Platforms = append(img.Platforms, PlatformReport{Platform: p.Platform.String(), Digest: p.Digest.String()})
	}
	for _, wd := range slices.Sorted(maps.Keys(res.Layers)) {
		img.Layers[wd] = res.Layers[wd].String()
	}
	return img
}

func (r *Report) setRuntime(rt *runcheck.Report) {
	r.Runtime = &RuntimeReport{Skipped: rt.Skipped, Isolation: rt.Isolation, Missing: rt.Missing,
		ConfigSource: rt.ConfigSource, Plugins: rt.Plugins, Summary: rt.Summary(), OK: rt.OK()}
}

func (r *Report) setPublished(p *published) {
	if p.Plugins != nil && r.PluginsImage != nil {
		r.PluginsImage.record(p.Plugins)
	}
	if r.Image != nil {
		r.Image.record(p)
	}
}

func (r *ImageReport) record(p *published) {
	if p.LayoutDigest != (v1.Hash{}) && p.LayoutDigest != p.Digest {
		r.LayoutDigest = p.LayoutDigest.String()
	}
	r.Pushed, r.Tags, r.Signed, r.Published = p.Pushed, p.Tags, p.Signed, p.Published
	if p.SBOMDigest != (v1.Hash{}) {
		r.SBOM = p.SBOMDigest.String()
	}
}
