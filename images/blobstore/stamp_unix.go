//go:build linux || darwin

package blobstore

import (
	"fmt"
	"io/fs"
	"syscall"
)

// stampOf identifies the file a verification read: an edit changes its
// size or mtime, a replacement its inode. The ctime is left out on purpose:
// hard links (a layout output's) are made and removed without touching the
// content, and each would change it.
func stampOf(fi fs.FileInfo) string {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Sprintf("%d %d", fi.Size(), fi.ModTime().UnixNano())
	}
	return fmt.Sprintf("%d %d %d %d", fi.Size(), st.Dev, st.Ino, fi.ModTime().UnixNano())
}
