//go:build !unix

package private

// Check has no owner to compare on this OS.
func Check(string) error { return nil }
