package fusefs

import (
	"context"
	"sync"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// rawFS is go-fuse's node file system with what its node API leaves out
// passed on to the node methods, and one thing it does not tell them done.
//
// Passed on, as each request's extra: the umask of a create, mkdir or
// mknod (the mount asks for FUSE_DONT_MASK, so the kernel leaves the umask
// to cowfs, which applies it only where no default ACL decides), the
// FUSE_SETXATTR_ACL_KILL_SGID flag of a setxattr, and whether the kernel
// asks cowfs to clear set-ID bits as for a caller without CAP_FSETID (the
// mount asks for FUSE_HANDLE_KILLPRIV_V2: FUSE_WRITE_KILL_SUIDGID of a
// write, FUSE_OPEN_KILL_SUIDGID of an open or create; a setattr's
// FATTR_KILL_SUIDGID reaches the node in its SetAttrIn).
//
// Done: go-fuse drops a node a request made when it already knows one of
// that number (two lookups of one file racing, a hard link's second name),
// without a word to the dropped node; so each request that may make nodes
// lists them, and when it ends, those go-fuse dropped release their engine
// handles (node.release).
//
// A request's state is kept under its cancel channel, which is unique
// while the request runs.
type rawFS struct {
	fuse.RawFileSystem
	mu   sync.Mutex
	reqs map[<-chan struct{}]*request
}

// request is what rawFS keeps of a request while it runs.
type request struct {
	extra uint32
	kill  bool    // clear set-ID bits (KILLPRIV_V2)
	made  []*node // nodes made while serving it
}

var _ fuse.RawFileSystem = (*rawFS)(nil)

func newRawFS(fs fuse.RawFileSystem) *rawFS {
	return &rawFS{RawFileSystem: fs, reqs: map[<-chan struct{}]*request{}}
}

// with runs a request with v as its extra, then releases the nodes it
// made that go-fuse did not keep.
func (r *rawFS) with(cancel <-chan struct{}, v uint32, serve func() fuse.Status) fuse.Status {
	return r.serve(cancel, &request{extra: v}, serve)
}

// serve runs a request with req as its state, then releases the nodes it
// made that go-fuse did not keep.
func (r *rawFS) serve(cancel <-chan struct{}, req *request, serve func() fuse.Status) fuse.Status {
	r.mu.Lock()
	r.reqs[cancel] = req
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.reqs, cancel)
		r.mu.Unlock()
		for _, n := range req.made {
			// Deprecated as a way to learn of forgetting (OnForget
			// is that), but the only way to ask whether go-fuse
			// kept a node: a dropped one has no kernel reference
			// and no parent, and it can get neither any more.
			//lint:ignore SA1019 see above
			if n.Forgotten() {
				n.release()
			}
		}
	}()
	return serve()
}

// request returns the state of the request ctx serves; nil if none.
func (r *rawFS) request(ctx context.Context) *request {
	c, ok := ctx.(*fuse.Context)
	if !ok || r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reqs[c.Cancel]
}

// extraOf returns the extra of the request ctx serves, and whether it has one.
func (r *rawFS) extraOf(ctx context.Context) (uint32, bool) {
	if req := r.request(ctx); req != nil {
		return req.extra, true
	}
	return 0, false
}

// kills reports whether the kernel asked the request ctx serves to clear
// set-ID bits.
func (r *rawFS) kills(ctx context.Context) bool {
	req := r.request(ctx)
	return req != nil && req.kill
}

// made records n as made by the request ctx serves. A node made outside
// the requests rawFS wraps is kept (it may leak its handle, never lose it).
func (r *rawFS) made(ctx context.Context, n *node) {
	if req := r.request(ctx); req != nil {
		r.mu.Lock()
		req.made = append(req.made, n)
		r.mu.Unlock()
	}
}

// Lookup tracks the nodes a lookup makes.
func (r *rawFS) Lookup(cancel <-chan struct{}, header *fuse.InHeader, name string, out *fuse.EntryOut) fuse.Status {
	return r.with(cancel, 0, func() fuse.Status { return r.RawFileSystem.Lookup(cancel, header, name, out) })
}

// ReadDirPlus tracks the nodes the lookups of a listing make.
func (r *rawFS) ReadDirPlus(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	return r.with(cancel, 0, func() fuse.Status { return r.RawFileSystem.ReadDirPlus(cancel, in, out) })
}

// Create passes the caller's umask on, and FUSE_OPEN_KILL_SUIDGID.
func (r *rawFS) Create(cancel <-chan struct{}, in *fuse.CreateIn, name string, out *fuse.CreateOut) fuse.Status {
	req := &request{extra: in.Umask, kill: in.OpenFlags&fuse.OPEN_KILL_SUIDGID != 0}
	return r.serve(cancel, req, func() fuse.Status { return r.RawFileSystem.Create(cancel, in, name, out) })
}

// Open passes FUSE_OPEN_KILL_SUIDGID on.
func (r *rawFS) Open(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	if in.Mode&fuse.OPEN_KILL_SUIDGID == 0 {
		return r.RawFileSystem.Open(cancel, in, out)
	}
	return r.serve(cancel, &request{kill: true}, func() fuse.Status { return r.RawFileSystem.Open(cancel, in, out) })
}

// Writev (go-fuse's way in for every write) passes FUSE_WRITE_KILL_SUIDGID
// on.
func (r *rawFS) Writev(cancel <-chan struct{}, in *fuse.WriteIn, data [][]byte) (uint32, fuse.Status) {
	if in.WriteFlags&fuse.WRITE_KILL_SUIDGID == 0 {
		return r.RawFileSystem.Writev(cancel, in, data)
	}
	var n uint32
	st := r.serve(cancel, &request{kill: true}, func() (st fuse.Status) {
		n, st = r.RawFileSystem.Writev(cancel, in, data)
		return st
	})
	return n, st
}

// Mkdir passes the caller's umask on.
func (r *rawFS) Mkdir(cancel <-chan struct{}, in *fuse.MkdirIn, name string, out *fuse.EntryOut) fuse.Status {
	return r.with(cancel, in.Umask, func() fuse.Status { return r.RawFileSystem.Mkdir(cancel, in, name, out) })
}

// Mknod passes the caller's umask on.
func (r *rawFS) Mknod(cancel <-chan struct{}, in *fuse.MknodIn, name string, out *fuse.EntryOut) fuse.Status {
	return r.with(cancel, in.Umask, func() fuse.Status { return r.RawFileSystem.Mknod(cancel, in, name, out) })
}

// Symlink tracks the node it makes.
func (r *rawFS) Symlink(cancel <-chan struct{}, header *fuse.InHeader, target, name string, out *fuse.EntryOut) fuse.Status {
	return r.with(cancel, 0, func() fuse.Status { return r.RawFileSystem.Symlink(cancel, header, target, name, out) })
}

// SetXAttr passes the kernel's setxattr flags on.
func (r *rawFS) SetXAttr(cancel <-chan struct{}, in *fuse.SetXAttrIn, attr string, data []byte) fuse.Status {
	return r.with(cancel, in.SetXAttrFlags, func() fuse.Status { return r.RawFileSystem.SetXAttr(cancel, in, attr, data) })
}
