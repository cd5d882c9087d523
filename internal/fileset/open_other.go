//go:build !unix

package fileset

import "os"

// openNoFollow opens p for reading; readOnce's SameFile check catches a
// file replaced meanwhile.
func openNoFollow(p string) (*os.File, error) { return os.Open(p) }
