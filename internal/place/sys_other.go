//go:build !unix && !windows

package place

import (
	"errors"
	"os"
)

// Without advisory locks a live writer cannot be told from a dead one:
// temporaries are never taken for stale, and Lock fails.
const tempLocks = false

func tryLock(*os.File) (bool, error) { return false, errors.ErrUnsupported }

func unlockFile(*os.File) error { return nil }

func syncDir(string) error { return nil }
