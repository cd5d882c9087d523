package build

import (
	"context"
	"strings"

	"github.com/xtraefik/xtraefik/internal/publish"
	"github.com/xtraefik/xtraefik/verify"
)

// The stages a Status hears of, with the subject each names.
const (
	StageResolve      = "resolve"      // the base reference
	StageTraefik      = "traefik"      // the base reference: its Traefik binary is read; Progress counts the layer's bytes
	StageFetch        = "fetch"        // a plugin alias
	StageVerify       = "verify"       // a plugin alias; the outcome is its verdict
	StageAssemble     = "assemble"     // "": the outcome is the image digest
	StageRuntime      = "runtime"      // "": the runtime check
	StageReproducible = "reproducible" // "": the reproducibility check's second build
	StageWrite        = "write"        // a local output's path
	StagePush         = "push"         // a repository; Progress counts its bytes
	StageSign         = "sign"         // the pushed references, comma-separated
)

// Status hears of a session's progress as it goes, for a display (the
// CLI's is internal/status); Config.Log keeps getting its lines beside it.
// Methods may be called from several goroutines.
type Status interface {
	// Start says a step of stage began on subject ("" for the whole stage).
	Start(stage, subject string)
	// Progress says the step moved done bytes of total (0: unknown).
	Progress(stage, subject string, done, total int64)
	// Done says the step ended, with its outcome in a few words, or err.
	Done(stage, subject, outcome string, err error)
}

// verdict is a verification result in a few words: "OK", "OK (cached)",
// "FAIL: why".
func verdict(r verify.Result) string {
	s := r.Status
	if r.Approximate && r.OK {
		s += " (approximate)"
	}
	if r.Cached {
		s += " (cached)"
	}
	if !r.OK && r.Reason != "" {
		s += ": " + r.Reason
	}
	return s
}

// pubStep is what a publisher is called on a Status.
type pubStep struct {
	stage, outcome string
	subjects       []string
}

// reporting tells a Status when its publisher starts and ends.
type reporting struct {
	publish.Publisher
	st   Status
	step pubStep
}

func (r *reporting) Publish(ctx context.Context, a *publish.Artifact) error {
	for _, s := range r.step.subjects {
		r.st.Start(r.step.stage, s)
	}
	err := r.Publisher.Publish(ctx, a)
	for _, s := range r.step.subjects {
		r.st.Done(r.step.stage, s, r.step.outcome, err)
	}
	return err
}

// reported wraps every publisher of p to tell st. The wrappers hide what
// Multi.Validate checks for overlapping paths: validate p.all itself first.
func (p *publishers) reported(st Status) publish.Multi {
	m := make(publish.Multi, len(p.all))
	for i, pub := range p.all {
		m[i] = &reporting{Publisher: pub, st: st, step: p.steps[i]}
	}
	return m
}

// signStep names what a sign publisher signs.
func signStep(refs []string) pubStep {
	return pubStep{stage: StageSign, outcome: "signed", subjects: []string{strings.Join(refs, ", ")}}
}

func writeStep(path string) pubStep {
	return pubStep{stage: StageWrite, outcome: "written", subjects: []string{path}}
}
