//go:build !linux

package verify

// workBase is the temporary directory outside Linux.
func workBase() string { return "" }
