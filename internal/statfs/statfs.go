// Package statfs reports the space a cowfs store can grow into, for the
// statfs answers of the FUSE and 9P frontends.
package statfs

import (
	"math"
	"syscall"
)

// Statfs is what a frontend reports: sizes in blocks of Bsize bytes.
type Statfs struct {
	Bsize, Frsize         uint32
	Blocks, Bfree, Bavail uint64
	Files, Ffree          uint64
	Namelen               uint32
}

// Avail is the space available to unprivileged users in bytes (df's
// Avail), at most math.MaxInt64.
func (s Statfs) Avail() int64 {
	unit := uint64(s.Frsize)
	if unit == 0 {
		unit = uint64(s.Bsize)
	}
	if unit != 0 && s.Bavail > math.MaxInt64/unit {
		return math.MaxInt64
	}
	return int64(s.Bavail * unit)
}

// Of reports the file system holding storeDir, or for an in-memory store
// (storeDir empty) the machine's memory.
func Of(storeDir string) (Statfs, error) {
	out := Statfs{Namelen: 255}
	if storeDir != "" {
		var s syscall.Statfs_t
		if err := syscall.Statfs(storeDir, &s); err != nil {
			return out, err
		}
		out.Blocks, out.Bfree, out.Bavail = s.Blocks, s.Bfree, s.Bavail
		out.Files, out.Ffree = s.Files, s.Ffree
		out.Bsize, out.Frsize = uint32(s.Bsize), uint32(s.Frsize)
		return out, nil
	}
	var si syscall.Sysinfo_t
	if err := syscall.Sysinfo(&si); err != nil {
		return out, err
	}
	const bsize = 4096
	unit := uint64(si.Unit)
	out.Bsize, out.Frsize = bsize, bsize
	out.Blocks = si.Totalram * unit / bsize
	out.Bfree = si.Freeram * unit / bsize
	out.Bavail = out.Bfree
	// Inodes cost memory only: report one per free 4 KiB block.
	out.Files, out.Ffree = out.Blocks, out.Bfree
	return out, nil
}
