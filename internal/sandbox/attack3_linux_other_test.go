//go:build linux && !amd64

package sandbox

import "fmt"

// attack3Child: the raw-call checks are written for amd64's system call
// numbers; elsewhere the child says so and fails.
func attack3Child(mode string) int {
	fmt.Printf("raw-call checks (%s) are amd64 only\n", mode)
	return 2
}
