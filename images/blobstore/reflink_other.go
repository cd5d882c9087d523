//go:build !linux && !darwin

package blobstore

import "errors"

func reflink(src, dst string) error { return errors.New("no copy-on-write clones here") }
