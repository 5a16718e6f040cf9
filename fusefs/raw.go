package fusefs

import (
	"context"
	"sync"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// rawFS is go-fuse's node file system with what its node API leaves out
// passed on to the node methods: the umask of a create, mkdir or mknod
// (the mount asks for FUSE_DONT_MASK, so the kernel leaves the umask to
// cowfs, which applies it only where no default ACL decides), and the
// FUSE_SETXATTR_ACL_KILL_SGID flag of a setxattr. Each request's extra is
// kept under its cancel channel, which is unique while the request runs.
type rawFS struct {
	fuse.RawFileSystem
	mu    sync.Mutex
	extra map[<-chan struct{}]uint32
}

var _ fuse.RawFileSystem = (*rawFS)(nil)

func newRawFS(fs fuse.RawFileSystem) *rawFS {
	return &rawFS{RawFileSystem: fs, extra: map[<-chan struct{}]uint32{}}
}

// with runs a request with v as its extra.
func (r *rawFS) with(cancel <-chan struct{}, v uint32, serve func() fuse.Status) fuse.Status {
	r.mu.Lock()
	r.extra[cancel] = v
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.extra, cancel)
		r.mu.Unlock()
	}()
	return serve()
}

// extraOf returns the extra of the request ctx serves, and whether it has one.
func (r *rawFS) extraOf(ctx context.Context) (uint32, bool) {
	c, ok := ctx.(*fuse.Context)
	if !ok || r == nil {
		return 0, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.extra[c.Cancel]
	return v, ok
}

// Create passes the caller's umask on.
func (r *rawFS) Create(cancel <-chan struct{}, in *fuse.CreateIn, name string, out *fuse.CreateOut) fuse.Status {
	return r.with(cancel, in.Umask, func() fuse.Status { return r.RawFileSystem.Create(cancel, in, name, out) })
}

// Mkdir passes the caller's umask on.
func (r *rawFS) Mkdir(cancel <-chan struct{}, in *fuse.MkdirIn, name string, out *fuse.EntryOut) fuse.Status {
	return r.with(cancel, in.Umask, func() fuse.Status { return r.RawFileSystem.Mkdir(cancel, in, name, out) })
}

// Mknod passes the caller's umask on.
func (r *rawFS) Mknod(cancel <-chan struct{}, in *fuse.MknodIn, name string, out *fuse.EntryOut) fuse.Status {
	return r.with(cancel, in.Umask, func() fuse.Status { return r.RawFileSystem.Mknod(cancel, in, name, out) })
}

// SetXAttr passes the kernel's setxattr flags on.
func (r *rawFS) SetXAttr(cancel <-chan struct{}, in *fuse.SetXAttrIn, attr string, data []byte) fuse.Status {
	return r.with(cancel, in.SetXAttrFlags, func() fuse.Status { return r.RawFileSystem.SetXAttr(cancel, in, attr, data) })
}
