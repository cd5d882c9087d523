package verify

import (
	"os"

	"golang.org/x/sys/unix"
)

// minShm is the free space a memory filesystem needs to hold the trees.
const minShm = 256 << 20

// workBase is where the plugin trees are laid out: a memory filesystem when
// the caller named no TMPDIR and /dev/shm is a tmpfs with room that allows
// exec (writing a tree of small files there is tens of times faster than on
// a disk, and verification pays it for every plugin), else the temporary
// directory.
func workBase() string {
	if os.Getenv("TMPDIR") != "" {
		return ""
	}
	const shm = "/dev/shm"
	var st unix.Statfs_t
	if err := unix.Statfs(shm, &st); err != nil || st.Type != unix.TMPFS_MAGIC || st.Flags&unix.ST_NOEXEC != 0 || st.Flags&unix.ST_RDONLY != 0 {
		return ""
	}
	if int64(st.Bavail)*st.Bsize < minShm || unix.Access(shm, unix.W_OK|unix.X_OK) != nil {
		return ""
	}
	return shm
}
