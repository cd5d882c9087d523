//go:build !unix

package verify

// private has no owner to compare on this OS.
func private(string) error { return nil }
