package build

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/xtraefik/xtraefik/internal/source"
	"github.com/xtraefik/xtraefik/internal/source/modproxy"
)

// Every command (Session.Build, Verify, Lock, rebase, Run) is a list of
// stages over one runner: it checks the caller's context between stages,
// times each into the report, tells the Status of the steps within them,
// and wraps the error of the one that fails once, as a *StageError.

// Stages a StageError names besides those a Status hears of.
const (
	// StagePrepare opens the caches and starts the verification workers.
	StagePrepare = "prepare"
	// StagePublish writes the outputs (the Status hears of StageWrite,
	// StagePush and StageSign steps within it).
	StagePublish = "publish"
	// StageLock writes the lock file.
	StageLock = "lock"
)

// stageWords say what a stage does, in the words of an error that the
// runner makes itself (the stages' own errors already say it).
func stageWords(stage string) string {
	switch stage {
	case StagePrepare:
		return "prepare the caches and the verification workers"
	case StageResolve:
		return "resolve the recipe"
	case StageVerify:
		return "verify the plugins"
	case StageAssemble:
		return "assemble the image"
	case StageRuntime:
		return "runtime check"
	case StageReproducible:
		return "reproducibility check"
	case StagePublish:
		return "write the outputs"
	case StageLock:
		return "write the lock"
	}
	return stage
}

// ErrVerificationFailed is the error (errors.Is) of a command that a FAIL
// or UNVERIFIED verdict stopped; the report's Verify holds the verdicts.
var ErrVerificationFailed = errors.New("verification failed")

// ErrNotFound is the error (errors.Is) of a command that a missing thing
// stopped: a base image, tag or repository the registry does not have, a
// git ref or commit the remote does not have, a module version the proxy
// does not know. Offline, what the cache lacks is ErrNotCached instead.
var ErrNotFound = errors.New("not found")

// StageError is the error of a command, naming the stage that failed and,
// when the failure is one plugin's, the plugin's alias. Its message is the
// stage's own, which says what failed in the user's words (a plugin's
// errors begin "plugin <alias> (<module>)"); errors.Is finds the cause
// through it: context.Canceled whenever the caller's context ended,
// ErrVerificationFailed, ErrNotFound, ErrNotCached, ErrFrozen.
type StageError struct {
	// Stage is one of the Stage constants: StagePrepare, StageResolve,
	// StageFetch, StageVerify, StageAssemble, StageRuntime,
	// StageReproducible, StagePublish, StageLock.
	Stage string
	// Plugin is the alias of the plugin that failed; "" when the error is
	// not one plugin's.
	Plugin string
	Err    error
}

func (e *StageError) Error() string { return e.Err.Error() }
func (e *StageError) Unwrap() error { return e.Err }

// Is makes every not-found cause errors.Is(err, ErrNotFound).
func (e *StageError) Is(target error) bool { return target == ErrNotFound && notFound(e.Err) }

// notFound tells the not-found errors of the sources: a registry's 404
// (manifest, tag or repository unknown), a git ref or commit, a module
// version.
func notFound(err error) bool {
	if errors.Is(err, source.ErrNotFound) || errors.Is(err, modproxy.ErrNotFound) {
		return true
	}
	var terr *transport.Error
	if !errors.As(err, &terr) {
		return false
	}
	if terr.StatusCode == http.StatusNotFound {
		return true
	}
	for _, d := range terr.Errors {
		if d.Code == transport.ManifestUnknownErrorCode || d.Code == transport.NameUnknownErrorCode {
			return true
		}
	}
	return false
}

// canceledError is a stage's error when the caller's context ended and
// the error does not say so (a git transport or a lock that returns its
// own error on cancel): errors.Is finds both.
type canceledError struct {
	err, cause error
}

func (e *canceledError) Error() string {
	msg := e.err.Error()
	if strings.Contains(msg, e.cause.Error()) {
		return msg
	}
	return msg + " (" + e.cause.Error() + ")"
}

func (e *canceledError) Unwrap() []error { return []error{e.err, e.cause} }

// stage is one step of a command: name is what a StageError calls it;
// timing, when not nil, is the report's field its time adds to; run nil
// is a stage the request did not ask for.
type stage struct {
	name   string
	timing *float64
	run    func(ctx context.Context) error
}

// runner runs a command's stages and tells st (nil: nobody) of the steps
// within them. A nil *runner tells nobody. It is a Status itself, for
// the steps a stage hands on (the publishers, the binary's bytes).
type runner struct {
	st Status
}

// run runs stages in order until one fails, checking ctx before each.
func (r *runner) run(ctx context.Context, stages ...stage) error {
	for _, s := range stages {
		if s.run == nil {
			continue
		}
		if err := ctx.Err(); err != nil {
			return &StageError{Stage: s.name, Err: fmt.Errorf("%s: %w", stageWords(s.name), err)}
		}
		start := time.Now()
		err := s.run(ctx)
		if s.timing != nil {
			*s.timing += ms(time.Since(start))
		}
		if err != nil {
			return stageFailed(ctx, s.name, "", err)
		}
	}
	return nil
}

// stageFailed wraps err, of stage (and plugin), as a *StageError unless
// a stage within already did, and, when ctx has ended, so that errors.Is
// finds ctx's error whatever the failing code returned.
func stageFailed(ctx context.Context, stage, plugin string, err error) error {
	var se *StageError
	if !errors.As(err, &se) {
		se = &StageError{Stage: stage, Plugin: plugin, Err: err}
		err = se
	}
	if c := ctx.Err(); c != nil && !errors.Is(err, c) {
		se.Err = &canceledError{err: se.Err, cause: c}
	}
	return err
}

// Start, Progress and Done tell the runner's Status of a step within a
// stage.
func (r *runner) Start(stage, subject string) {
	if r != nil && r.st != nil {
		r.st.Start(stage, subject)
	}
}

func (r *runner) Progress(stage, subject string, done, total int64) {
	if r != nil && r.st != nil {
		r.st.Progress(stage, subject, done, total)
	}
}

func (r *runner) Done(stage, subject, outcome string, err error) {
	if r != nil && r.st != nil {
		r.st.Done(stage, subject, outcome, err)
	}
}

// listening says a Status hears the steps.
func (r *runner) listening() bool { return r != nil && r.st != nil }

// step tells the Status that subject's step of stage starts, runs fn,
// and tells it fn's outcome or error, which it returns.
func (r *runner) step(ctx context.Context, stage, subject string, fn func(context.Context) (string, error)) error {
	r.Start(stage, subject)
	outcome, err := fn(ctx)
	r.Done(stage, subject, outcome, err)
	return err
}
