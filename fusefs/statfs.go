package fusefs

import (
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// statfs reports the free space the store can grow into: that of the file
// system holding the store's directory, or the machine's memory for an
// in-memory store.
func (m *mount) statfs(out *fuse.StatfsOut) syscall.Errno {
	out.NameLen = 255
	if m.opt.StoreDir != "" {
		var s syscall.Statfs_t
		if err := syscall.Statfs(m.opt.StoreDir, &s); err != nil {
			return err.(syscall.Errno)
		}
		out.Blocks, out.Bfree, out.Bavail = s.Blocks, s.Bfree, s.Bavail
		out.Files, out.Ffree = s.Files, s.Ffree
		out.Bsize, out.Frsize = uint32(s.Bsize), uint32(s.Frsize)
		return 0
	}
	var si syscall.Sysinfo_t
	if err := syscall.Sysinfo(&si); err != nil {
		return err.(syscall.Errno)
	}
	const bsize = 4096
	unit := uint64(si.Unit)
	out.Bsize, out.Frsize = bsize, bsize
	out.Blocks = si.Totalram * unit / bsize
	out.Bfree = si.Freeram * unit / bsize
	out.Bavail = out.Bfree
	// Inodes cost memory only: report one per free 4 KiB block.
	out.Files, out.Ffree = out.Blocks, out.Bfree
	return 0
}
