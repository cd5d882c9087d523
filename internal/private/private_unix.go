//go:build unix

package private

import (
	"fmt"
	"os"
	"syscall"
)

// Check refuses a file or directory another user owns or may write.
func Check(path string) error {
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	if st, ok := info.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("owned by uid %d, not by this user (%d)", st.Uid, os.Geteuid())
	}
	if info.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("writable by others (mode %v): chmod go-w it, or it is not used", info.Mode().Perm())
	}
	return nil
}
