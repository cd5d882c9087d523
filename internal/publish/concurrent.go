package publish

import (
	"context"
	"errors"
	"sync"
)

// Concurrent publishes its publishers side by side, for pushes of two
// images (the full image and the plugins image): each spends its time
// waiting on a registry, and neither can be undone, so running them one
// after the other would only add their round trips. When one fails, the
// others' context is cancelled. Validate, Undo and Commit run them in order.
type Concurrent []Publisher

func (c Concurrent) Validate(ctx context.Context) error {
	var errs []error
	for _, p := range c {
		errs = append(errs, p.Validate(ctx))
	}
	return errors.Join(errs...)
}

func (c Concurrent) Publish(ctx context.Context, a *Artifact) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, len(c))
	var wg sync.WaitGroup
	for i, p := range c {
		wg.Go(func() {
			if errs[i] = p.Publish(ctx, a); errs[i] != nil {
				cancel()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (c Concurrent) Undo() error {
	var errs []error
	for _, p := range c {
		errs = append(errs, p.Undo())
	}
	return errors.Join(errs...)
}

func (c Concurrent) Commit() error {
	var errs []error
	for _, p := range c {
		errs = append(errs, p.Commit())
	}
	return errors.Join(errs...)
}
