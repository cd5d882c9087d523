// Package private keeps caches whose content decides what is trusted (the
// verdict cache and its key, the base blob cache) to the user running
// xtraefik: whoever else could write there could make a plugin pass or
// put bytes in an image.
package private

import "os"

// MkdirAll makes dir (0700) when missing and checks it is private.
func MkdirAll(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return Check(dir)
}
