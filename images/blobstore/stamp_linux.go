package blobstore

import (
	"fmt"
	"io/fs"
	"syscall"
	"time"
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
	return fmt.Sprintf("%d %d %d %d.%d", fi.Size(), st.Dev, st.Ino, st.Mtim.Sec, st.Mtim.Nsec)
}

// changeTime is the inode's last change.
func changeTime(fi fs.FileInfo) time.Time {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return time.Unix(st.Ctim.Sec, st.Ctim.Nsec)
	}
	return fi.ModTime()
}
