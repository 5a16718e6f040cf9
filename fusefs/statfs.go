package fusefs

import (
	"context"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/cowfs/cowfs/store"
)

// statfs reports the space of the mounted FS's store (store.StatFSer): for
// a local store that of the file system holding it, for an in-memory store
// the machine's memory. A store that cannot tell shows no blocks.
func (m *mount) statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	if m.opt.panicOnStatfs {
		panic("statfs: panicOnStatfs is set")
	}
	*out = fuse.StatfsOut{NameLen: 255, Bsize: 4096, Frsize: 4096}
	sf, ok := m.fsys.Store().(store.StatFSer)
	if !ok {
		return 0
	}
	s, err := sf.StatFS(ctx)
	if err != nil {
		return errno(err)
	}
	out.Blocks, out.Bfree, out.Bavail = s.Blocks, s.Bfree, s.Bavail
	out.Files, out.Ffree = s.Files, s.Ffree
	out.Bsize, out.Frsize = s.Bsize, s.Frsize
	return 0
}
