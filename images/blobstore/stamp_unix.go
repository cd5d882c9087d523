//go:build linux || darwin

package blobstore

import (
	"fmt"
	"io/fs"
	"syscall"
)

// hardLinks: blobs may be handed to outputs as hard links, because the
// stamp below holds the ctime, which every write, chmod or utimes through
// any link changes and no user can set back.
const hardLinks = true

// stampOf identifies the file a verification read: an edit changes its
// size, mtime or ctime (an edit through an output's hard link that keeps
// size and mtime still moves the ctime), a replacement its inode. Links
// made and removed by the store (Link, Release) move the ctime too; the
// store stamps the file again after those when nothing else changed.
func stampOf(fi fs.FileInfo) string {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Sprintf("%d %d", fi.Size(), fi.ModTime().UnixNano())
	}
	return fmt.Sprintf("%d %d %d %d %d", fi.Size(), st.Dev, st.Ino, fi.ModTime().UnixNano(), changeTime(fi).UnixNano())
}

// linkCount is the file's number of hard links.
func linkCount(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Nlink)
	}
	return 0
}
