//go:build !linux && !darwin

package blobstore

import (
	"fmt"
	"io/fs"
	"time"
)

// hardLinks: without a ctime in the stamp an edit through an output's hard
// link could go unnoticed, so outputs get copies.
const hardLinks = false

// linkCount is unknown here.
func linkCount(fs.FileInfo) uint64 { return 0 }

// stampOf identifies the file a verification read. Without inode and ctime
// an edit that keeps size and mtime goes unnoticed until the reader's own
// hash fails at the end.
func stampOf(fi fs.FileInfo) string {
	return fmt.Sprintf("%d %d", fi.Size(), fi.ModTime().UnixNano())
}

// changeTime is the last modification (no ctime here).
func changeTime(fi fs.FileInfo) time.Time { return fi.ModTime() }
