// Package memstat measures what a call allocates, for tests that bound the
// memory of streaming code.
package memstat

import "runtime"

// Allocated runs f and returns the bytes of heap it allocated. The count is
// cumulative, so garbage collections during f hide none of it.
func Allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}
