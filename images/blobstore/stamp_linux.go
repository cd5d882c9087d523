package blobstore

import (
	"fmt"
	"io/fs"
	"syscall"
	"time"
)

// stampOf identifies the file a verification read: any write, chmod or
// replacement changes one of these.
func stampOf(fi fs.FileInfo) string {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Sprintf("%d %d", fi.Size(), fi.ModTime().UnixNano())
	}
	return fmt.Sprintf("%d %d %d %d.%d %d.%d", fi.Size(), st.Dev, st.Ino, st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec)
}

// changeTime is the inode's last change.
func changeTime(fi fs.FileInfo) time.Time {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return time.Unix(st.Ctim.Sec, st.Ctim.Nsec)
	}
	return fi.ModTime()
}
