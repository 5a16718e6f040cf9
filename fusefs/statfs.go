package fusefs

import (
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/cowfs/cowfs/internal/statfs"
)

// statfs reports the free space the store can grow into: that of the file
// system holding the store's directory, or the machine's memory for an
// in-memory store.
func (m *mount) statfs(out *fuse.StatfsOut) syscall.Errno {
	if m.opt.panicOnStatfs {
		panic("statfs: panicOnStatfs is set")
	}
	s, err := statfs.Of(m.opt.StoreDir)
	if err != nil {
		return err.(syscall.Errno)
	}
	out.NameLen = s.Namelen
	out.Blocks, out.Bfree, out.Bavail = s.Blocks, s.Bfree, s.Bavail
	out.Files, out.Ffree = s.Files, s.Ffree
	out.Bsize, out.Frsize = s.Bsize, s.Frsize
	return 0
}
