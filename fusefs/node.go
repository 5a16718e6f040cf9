package fusefs

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/cowfs/cowfs"
	"github.com/cowfs/cowfs/internal/control"
	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// node is a file, directory, symlink or special file of a volume (the live
// one or a snapshot). It holds the engine's handle on that node, which
// follows it through renames and keeps a file removed while open usable
// until it is closed; the handle is released when the kernel forgets the
// node (OnForget), or when go-fuse drops a node it already knew (rawFS).
type node struct {
	fs.Inode
	m    *mount
	vol  *cowfs.Volume
	h    *cowfs.Inode
	snap *control.Snapshot // the snapshot vol is, under .cowfs/snapshots; nil on the live volume
	once sync.Once         // releases h

	mu   sync.Mutex
	open map[*handle]struct{} // open handles of a regular file
}

// handle is an open regular file.
type handle struct {
	f      *cowfs.File
	writer bool // opened by the kernel for writing
}

var (
	_ fs.InodeEmbedder      = (*node)(nil)
	_ fs.FileHandle         = (*handle)(nil)
	_ fs.NodeOnForgetter    = (*node)(nil)
	_ fs.NodeLookuper       = (*node)(nil)
	_ fs.NodeGetattrer      = (*node)(nil)
	_ fs.NodeSetattrer      = (*node)(nil)
	_ fs.NodeOpener         = (*node)(nil)
	_ fs.NodeCreater        = (*node)(nil)
	_ fs.NodeReader         = (*node)(nil)
	_ fs.NodeWriter         = (*node)(nil)
	_ fs.NodeFlusher        = (*node)(nil)
	_ fs.NodeFsyncer        = (*node)(nil)
	_ fs.NodeReleaser       = (*node)(nil)
	_ fs.NodeMkdirer        = (*node)(nil)
	_ fs.NodeMknoder        = (*node)(nil)
	_ fs.NodeSymlinker      = (*node)(nil)
	_ fs.NodeReadlinker     = (*node)(nil)
	_ fs.NodeLinker         = (*node)(nil)
	_ fs.NodeUnlinker       = (*node)(nil)
	_ fs.NodeRmdirer        = (*node)(nil)
	_ fs.NodeRenamer        = (*node)(nil)
	_ fs.NodeReaddirer      = (*node)(nil)
	_ fs.NodeGetxattrer     = (*node)(nil)
	_ fs.NodeSetxattrer     = (*node)(nil)
	_ fs.NodeListxattrer    = (*node)(nil)
	_ fs.NodeRemovexattrer  = (*node)(nil)
	_ fs.NodeStatfser       = (*node)(nil)
	_ fs.NodeLseeker        = (*node)(nil)
	_ fs.NodeAllocater      = (*node)(nil)
	_ fs.NodeCopyFileRanger = (*node)(nil)
)

// newNode returns the node of the engine node h of vol, made while
// serving the request ctx (or none).
func (m *mount) newNode(ctx context.Context, vol *cowfs.Volume, h *cowfs.Inode, snap *control.Snapshot) *node {
	n := &node{m: m, vol: vol, h: h, snap: snap}
	m.raw.made(ctx, n)
	return n
}

// OnForget releases the engine handle: the kernel forgot the node.
func (n *node) OnForget() { n.release() }

// release releases the engine handle, once.
func (n *node) release() { n.once.Do(n.h.Release) }

// as returns the context of the engine calls serving the request ctx
// (a call; the handler defers its end): it carries the request's caller
// (none: root) with umask, unchecked, for the kernel has checked
// permissions and applied the set-ID rules that need the caller's groups
// (default_permissions; see cowfs.Cred). An interrupt of the request
// cancels it only after interruptGrace.
func as(ctx context.Context, umask uint32) *call { return asKill(ctx, umask, false) }

// asKill is as for a request that writes, truncates, opens with O_TRUNC
// or changes an owner, where kill says that the kernel leaves clearing
// set-ID bits to the file system (FUSE_HANDLE_KILLPRIV_V2) and the caller
// has no CAP_FSETID: the engine then clears them as Linux would
// (cowfs.Cred.KillSetID), reading the caller's groups from /proc only if
// a rule needs them.
func asKill(ctx context.Context, umask uint32, kill bool) *call {
	c := cowfs.Cred{Umask: umask, KillSetID: kill}
	if caller, ok := fuse.FromContext(ctx); ok {
		c.UID, c.GID = caller.Uid, caller.Gid
		if kill {
			c.InGroup = procGroups(caller.Pid)
		}
	}
	return newCall(cowfs.WithCred(context.WithoutCancel(ctx), c), ctx.Done())
}

// asMaker is as with the umask the kernel sent with a create, mkdir or
// mknod request (none when it sent none).
func (n *node) asMaker(ctx context.Context) *call {
	mask, _ := n.m.raw.extraOf(ctx)
	return as(ctx, mask)
}

// isLiveRoot reports whether n is the mount's root directory.
func (n *node) isLiveRoot() bool { return n == n.m.root }

// ino returns the FUSE inode number of the cowfs inode ino of n's volume.
func (n *node) ino(ino uint64) uint64 {
	if n.snap == nil {
		return ino
	}
	return n.snap.Ino(ino)
}

// fill copies st, a file of n's volume, into the kernel's attributes.
func (n *node) fill(out *fuse.Attr, st *cowfs.Stat) {
	fillAttr(out, st)
	out.Ino = n.ino(st.Ino)
}

func setTimes(out *fuse.Attr, st *cowfs.Stat) {
	out.Atime, out.Atimensec = splitTime(st.Atime)
	out.Mtime, out.Mtimensec = splitTime(st.Mtime)
	out.Ctime, out.Ctimensec = splitTime(st.Ctime)
}

// splitTime is t as the kernel's fuse_attr has it: seconds since 1970 as a
// u64 the kernel reads as signed (so times before 1970 are negative) and
// nanoseconds past them, 0 to 999,999,999.
func splitTime(t time.Time) (uint64, uint32) {
	return uint64(t.Unix()), uint32(t.Nanosecond())
}

// wireTime is the time the kernel sends as seconds (signed, in a u64) and
// nanoseconds, within the range cowfs keeps (cowfs.UnixTime).
func wireTime(sec uint64, nsec uint32) time.Time { return cowfs.UnixTime(int64(sec), int64(nsec)) }

// newChild returns the node for x, an entry of directory n that st
// describes; it takes over the handle x.
func (n *node) newChild(ctx context.Context, x *cowfs.Inode, st *cowfs.Stat, out *fuse.EntryOut) *fs.Inode {
	n.fill(&out.Attr, st)
	return n.NewInode(ctx, n.m.newNode(ctx, n.vol, x, n.snap), n.stableAttr(st))
}

// made returns the node of x, a new entry of n, or fails as the engine did.
func (n *node) made(ctx context.Context, x *cowfs.Inode, err error, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	ec := as(ctx, 0)
	defer ec.end()
	if err != nil {
		return nil, errno(err)
	}
	fi, err := x.Stat(ec)
	if err != nil {
		x.Release()
		return nil, errno(err)
	}
	return n.newChild(ctx, x, fi.Stat(), out), 0
}

// Lookup finds a directory entry; at the mount root, .cowfs is the control
// directory.
func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	ec := as(ctx, 0)
	defer ec.end()
	if n.reserved(name) {
		return n.m.fixed(ctx, &n.Inode, control.Root, out)
	}
	x, fi, err := n.h.Lookup(ec, name)
	if err != nil {
		return nil, errno(err)
	}
	return n.newChild(ctx, x, fi.Stat(), out), 0
}

// stat describes n.
func (n *node) stat(ctx context.Context) (*cowfs.Stat, syscall.Errno) {
	ec := as(ctx, 0)
	defer ec.end()
	fi, err := n.h.Stat(ec)
	if err != nil {
		return nil, errno(err)
	}
	return fi.Stat(), 0
}

// Getattr describes n.
func (n *node) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	st, e := n.stat(ctx)
	if e != 0 {
		return e
	}
	n.fill(&out.Attr, st)
	return 0
}

// Setattr changes mode, owner, size and times in one step: through the
// open file if the kernel names one (ftruncate), else through the node
// (chmod, utimensat, truncate, and also fchmod and futimens, which the
// kernel sends without a handle).
func (n *node) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	ec := asKill(ctx, 0, in.Valid&fuse.FATTR_KILL_SUIDGID != 0)
	defer ec.end()
	a := setAttr(in)
	var err error
	if h, ok := f.(*handle); ok {
		err = h.f.Setattr(ec, a)
	} else {
		_, err = n.h.Setattr(ec, a)
	}
	if err != nil {
		return errno(err)
	}
	return n.Getattr(ctx, f, out)
}

// setAttr is the change in asks for. A time the kernel asks to be now
// (FATTR_ATIME_NOW, FATTR_MTIME_NOW: utimensat with UTIME_NOW or no
// times) is the current time, and the change is TimesNow when every time
// it sets is.
func setAttr(in *fuse.SetAttrIn) cowfs.SetAttr {
	var a cowfs.SetAttr
	if mode, ok := in.GetMode(); ok {
		a.Mode = &mode
	}
	if uid, ok := in.GetUID(); ok {
		a.UID = &uid
	}
	if gid, ok := in.GetGID(); ok {
		a.GID = &gid
	}
	if size, ok := in.GetSize(); ok {
		s := int64(size)
		a.Size = &s
	}
	now := time.Now()
	a.TimesNow = true
	if in.Valid&fuse.FATTR_ATIME != 0 {
		t := wireTime(in.Atime, in.Atimensec)
		if in.Valid&fuse.FATTR_ATIME_NOW != 0 {
			t = now
		} else {
			a.TimesNow = false
		}
		a.Atime = &t
	}
	if in.Valid&fuse.FATTR_MTIME != 0 {
		t := wireTime(in.Mtime, in.Mtimensec)
		if in.Valid&fuse.FATTR_MTIME_NOW != 0 {
			t = now
		} else {
			a.TimesNow = false
		}
		a.Mtime = &t
	}
	if a.Atime == nil && a.Mtime == nil {
		a.TimesNow = false
	}
	return a
}

// hasWriter reports whether an open handle of n may write.
func (n *node) hasWriter() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for h := range n.open {
		if h.writer {
			return true
		}
	}
	return false
}

// opened records h as an open handle of n and returns it.
func (n *node) opened(h *handle) *handle {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.open == nil {
		n.open = map[*handle]struct{}{}
	}
	n.open[h] = struct{}{}
	return h
}

// openFlags returns the flags a cowfs file opened for the kernel gets:
// read-write on a writable volume whatever the kernel's access mode (the
// kernel enforces that; it may read through a write-only descriptor to fill
// pages), read-only on a snapshot.
func (n *node) openFlags(kernel uint32) (int, syscall.Errno) {
	write := kernel&syscall.O_ACCMODE != syscall.O_RDONLY
	if n.vol.ReadOnly() {
		if write || kernel&syscall.O_TRUNC != 0 {
			return 0, syscall.EROFS
		}
		return os.O_RDONLY, 0
	}
	fl := os.O_RDWR
	if write && kernel&syscall.O_TRUNC != 0 {
		fl |= os.O_TRUNC
	}
	return fl, 0
}

// Open opens a regular file. The kernel keeps the file's cached pages
// (FOPEN_KEEP_CACHE), whose reads never reach cowfs, except when the open
// is for reading, a read would update the access time (Options.Atime) and
// no other open of the file may write: then the pages are dropped and the
// first read comes through. (Dropping them while another descriptor
// writes raced with writes in flight: a reader could fetch and keep bytes
// not yet written, TestConcurrentAppendReaders.)
func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	ec := asKill(ctx, 0, n.m.raw.kills(ctx))
	defer ec.end()
	fl, e := n.openFlags(flags)
	if e != 0 {
		return nil, 0, e
	}
	f, err := n.h.Open(ec, fl)
	if err != nil {
		return nil, 0, errno(err)
	}
	keep := uint32(fuse.FOPEN_KEEP_CACHE)
	if flags&syscall.O_ACCMODE != syscall.O_WRONLY && !n.hasWriter() && f.AtimeDue() {
		keep = 0
	}
	return n.opened(&handle{f: f, writer: flags&syscall.O_ACCMODE != syscall.O_RDONLY}), keep, 0
}

// Create creates and opens a regular file, as the caller's in one step.
func (n *node) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	mask, _ := n.m.raw.extraOf(ctx)
	ec := asKill(ctx, mask, n.m.raw.kills(ctx))
	defer ec.end()
	if n.reserved(name) {
		return nil, nil, 0, control.ErrMake
	}
	fl, e := n.openFlags(flags | syscall.O_RDWR)
	if e != 0 {
		return nil, nil, 0, e
	}
	fl |= int(flags & syscall.O_EXCL)
	x, f, _, err := n.h.Create(ec, name, fl, mode&0o7777)
	if err != nil {
		return nil, nil, 0, errno(err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		x.Release()
		return nil, nil, 0, errno(err)
	}
	ch := n.newChild(ctx, x, fi.Stat(), out)
	return ch, ch.Operations().(*node).opened(&handle{f: f, writer: true}), fuse.FOPEN_KEEP_CACHE, 0
}

// reserved reports whether entry name of n is the control directory.
func (n *node) reserved(name string) bool { return control.Reserved(n.isLiveRoot(), name) }

// Mkdir makes a directory (the engine gives it the caller and the
// set-group-ID directory's group and bit).
func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	ec := n.asMaker(ctx)
	defer ec.end()
	if n.reserved(name) {
		return nil, control.ErrMake
	}
	x, err := n.h.Mkdir(ec, name, mode&0o7777)
	return n.made(ctx, x, err, out)
}

// Mknod makes a fifo, socket, device or empty regular file.
func (n *node) Mknod(ctx context.Context, name string, mode uint32, dev uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	ec := n.asMaker(ctx)
	defer ec.end()
	if n.reserved(name) {
		return nil, control.ErrMake
	}
	x, err := n.h.Mknod(ec, name, mode, uint64(dev))
	return n.made(ctx, x, err, out)
}

// Symlink makes a symbolic link.
func (n *node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	ec := as(ctx, 0)
	defer ec.end()
	if n.reserved(name) {
		return nil, control.ErrMake
	}
	x, err := n.h.Symlink(ec, target, name)
	return n.made(ctx, x, err, out)
}

// Readlink returns a symlink's target.
func (n *node) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	ec := as(ctx, 0)
	defer ec.end()
	t, err := n.h.Readlink(ec)
	if err != nil {
		return nil, errno(err)
	}
	return []byte(t), 0
}

// Link makes a hard link to target, whose node (the kernel holds it while
// it asks) is the new entry's.
func (n *node) Link(ctx context.Context, target fs.InodeEmbedder, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	ec := as(ctx, 0)
	defer ec.end()
	t, ok := target.(*node)
	if !ok || t.vol != n.vol {
		return nil, syscall.EXDEV
	}
	if n.reserved(name) {
		return nil, control.ErrMake
	}
	if err := n.h.Link(ec, t.h, name); err != nil {
		return nil, errno(err)
	}
	st, e := t.stat(ctx)
	if e != 0 {
		return nil, e
	}
	t.fill(&out.Attr, st)
	return &t.Inode, 0
}

// Unlink removes a non-directory.
func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	ec := as(ctx, 0)
	defer ec.end()
	if n.reserved(name) {
		return control.ErrRemove
	}
	return errno(n.h.Unlink(ec, name))
}

// Rmdir removes an empty directory.
func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	ec := as(ctx, 0)
	defer ec.end()
	if n.reserved(name) {
		return control.ErrRemove
	}
	return errno(n.h.Rmdir(ec, name))
}

// Rename renames, honouring RENAME_NOREPLACE and RENAME_EXCHANGE. The
// nodes moved keep their handles.
func (n *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	ec := as(ctx, 0)
	defer ec.end()
	np, ok := newParent.(*node)
	if !ok || np.vol != n.vol {
		return syscall.EXDEV
	}
	if n.reserved(name) || np.reserved(newName) {
		return control.ErrRemove
	}
	return errno(n.h.Rename(ec, name, np.h, newName, int(flags)))
}

// Readdir lists a directory; the root's listing leaves out .cowfs.
func (n *node) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	ec := as(ctx, 0)
	defer ec.end()
	list, err := n.h.ReadDir(ec, 0, -1)
	if err != nil {
		return nil, errno(err)
	}
	ents := make([]fuse.DirEntry, 0, len(list)+2)
	ents = append(ents, dots(&n.Inode)...)
	for _, fi := range list {
		st := fi.Stat()
		if n.reserved(fi.Name()) {
			continue
		}
		ents = append(ents, fuse.DirEntry{Name: fi.Name(), Ino: n.ino(st.Ino), Mode: st.Mode})
	}
	return fs.NewListDirStream(ents), 0
}

// Getxattr reads an extended attribute; with an empty dest it returns the
// size.
func (n *node) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	ec := as(ctx, 0)
	defer ec.end()
	v, err := n.h.GetXattr(ec, attr)
	if err != nil {
		return 0, errno(err)
	}
	if len(dest) == 0 {
		return uint32(len(v)), 0
	}
	if len(dest) < len(v) {
		return uint32(len(v)), syscall.ERANGE
	}
	return uint32(copy(dest, v)), 0
}

// Setxattr sets an extended attribute (XATTR_CREATE and XATTR_REPLACE
// are cowfs's flags too); the kernel tells when setting an access ACL must
// clear the set-group-ID bit.
func (n *node) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	ec := as(ctx, 0)
	defer ec.end()
	fl := int(flags & (cowfs.XattrCreate | cowfs.XattrReplace))
	if ext, _ := n.m.raw.extraOf(ctx); ext&fuse.SETXATTR_ACL_KILL_SGID != 0 {
		fl |= cowfs.XattrClearSGID
	}
	return errno(n.h.SetXattr(ec, attr, data, fl))
}

// Listxattr lists the extended attribute names, each NUL-terminated.
func (n *node) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	ec := as(ctx, 0)
	defer ec.end()
	names, err := n.h.ListXattr(ec)
	if err != nil {
		return 0, errno(err)
	}
	var b []byte
	for _, s := range names {
		b = append(append(b, s...), 0)
	}
	if len(dest) == 0 {
		return uint32(len(b)), 0
	}
	if len(dest) < len(b) {
		return uint32(len(b)), syscall.ERANGE
	}
	return uint32(copy(dest, b)), 0
}

// Removexattr removes an extended attribute.
func (n *node) Removexattr(ctx context.Context, attr string) syscall.Errno {
	ec := as(ctx, 0)
	defer ec.end()
	return errno(n.h.RemoveXattr(ec, attr))
}

// Statfs reports the space of the store (mount.statfs).
func (n *node) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	return n.m.statfs(ctx, out)
}

// Read reads from an open file.
func (n *node) Read(ctx context.Context, f fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	h, ok := f.(*handle)
	if !ok {
		return nil, syscall.EBADF
	}
	ec := as(ctx, 0)
	defer ec.end()
	k, err := h.f.ReadAtContext(ec, dest, off)
	if err != nil && k == 0 && !isEOF(err) {
		return nil, errno(err)
	}
	n.m.stats.reads.Add(1)
	n.m.stats.readBytes.Add(int64(k))
	return fuse.ReadResultData(dest[:k]), 0
}

// Write writes to an open file at the offset the kernel chose (for
// O_APPEND, the end of file).
func (n *node) Write(ctx context.Context, f fs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	h, ok := f.(*handle)
	if !ok {
		return 0, syscall.EBADF
	}
	ec := asKill(ctx, 0, n.m.raw.kills(ctx))
	defer ec.end()
	k, err := h.f.WriteAtContext(ec, data, off)
	n.m.stats.writes.Add(1)
	n.m.stats.writeBytes.Add(int64(k))
	if err != nil && k == 0 {
		return 0, errno(err)
	}
	return uint32(k), 0
}

// Flush is a no-op: written data is durable at the next commit (fsync, or
// the background commit of the mount).
func (n *node) Flush(ctx context.Context, f fs.FileHandle) syscall.Errno { return 0 }

// Fsync commits the whole file system.
func (n *node) Fsync(ctx context.Context, f fs.FileHandle, flags uint32) syscall.Errno {
	n.m.stats.fsyncs.Add(1)
	ec := as(ctx, 0)
	defer ec.end()
	if h, ok := f.(*handle); ok {
		return errno(h.f.SyncContext(ec))
	}
	return errno(n.m.fsys.CommitContext(ec))
}

// Release closes an open file.
func (n *node) Release(ctx context.Context, f fs.FileHandle) syscall.Errno {
	h, ok := f.(*handle)
	if !ok {
		return 0
	}
	n.mu.Lock()
	delete(n.open, h)
	n.mu.Unlock()
	return errno(h.f.Close())
}

func isEOF(err error) bool { return errors.Is(err, io.EOF) }

// Lseek answers SEEK_DATA and SEEK_HOLE (the kernel does the others).
func (n *node) Lseek(ctx context.Context, f fs.FileHandle, off uint64, whence uint32) (uint64, syscall.Errno) {
	h, ok := f.(*handle)
	if !ok {
		return 0, syscall.EBADF
	}
	ec := as(ctx, 0)
	defer ec.end()
	pos, err := h.f.SeekContext(ec, int64(off), int(whence))
	if err != nil {
		return 0, errno(err)
	}
	return uint64(pos), 0
}

// Allocate is fallocate(2): allocate, punch hole, zero, insert or collapse
// a range.
func (n *node) Allocate(ctx context.Context, f fs.FileHandle, off uint64, size uint64, mode uint32) syscall.Errno {
	h, ok := f.(*handle)
	if !ok {
		return syscall.EBADF
	}
	ec := as(ctx, 0)
	defer ec.end()
	return errno(h.f.FallocateContext(ec, mode, int64(off), int64(size)))
}

// maxCopy bounds one copy_file_range reply, whose count is 32 bits: the
// largest multiple of 4 KiB below 4 GiB.
const maxCopy = 1<<32 - 1<<12

// CopyFileRange shares a byte range of one open file into another
// (cowfs.CopyRange); each call copies at most maxCopy bytes and returns
// the count, as copy_file_range(2) allows.
func (n *node) CopyFileRange(ctx context.Context, fhIn fs.FileHandle, offIn uint64, out *fs.Inode, fhOut fs.FileHandle, offOut uint64, size uint64, flags uint64) (uint32, syscall.Errno) {
	src, ok1 := fhIn.(*handle)
	dst, ok2 := fhOut.(*handle)
	if !ok1 || !ok2 {
		return 0, syscall.EBADF
	}
	if flags != 0 {
		return 0, syscall.EINVAL
	}
	size = min(size, maxCopy)
	ec := as(ctx, 0)
	defer ec.end()
	k, err := cowfs.CopyRangeContext(ec, src.f, int64(offIn), dst.f, int64(offOut), int64(size))
	n.m.stats.copies.Add(1)
	n.m.stats.copyBytes.Add(k)
	if err != nil && k == 0 {
		return 0, errno(err)
	}
	return uint32(k), 0
}

// dots returns the entries "." and ".." of directory d.
func dots(d *fs.Inode) []fuse.DirEntry {
	parent := d
	if _, p := d.Parent(); p != nil {
		parent = p
	}
	return []fuse.DirEntry{
		{Name: ".", Ino: d.StableAttr().Ino, Mode: syscall.S_IFDIR},
		{Name: "..", Ino: parent.StableAttr().Ino, Mode: syscall.S_IFDIR},
	}
}

// dirHandle is an open directory: its cowfs file keeps its node usable after
// it is renamed over or removed, and its listing is read once per rewind.
type dirHandle struct {
	n  *node
	f  *cowfs.File
	ds fs.DirStream
}

var (
	_ fs.NodeOpendirHandler = (*node)(nil)
	_ fs.FileReaddirenter   = (*dirHandle)(nil)
	_ fs.FileSeekdirer      = (*dirHandle)(nil)
	_ fs.FileReleasedirer   = (*dirHandle)(nil)
	_ fs.FileFsyncdirer     = (*dirHandle)(nil)
)

// OpendirHandle opens a directory.
func (n *node) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	ec := as(ctx, 0)
	defer ec.end()
	f, err := n.h.Open(ec, os.O_RDONLY)
	if err != nil {
		return nil, 0, errno(err)
	}
	return &dirHandle{n: n, f: f}, 0, 0
}

// Readdirent returns the next entry, listing the directory on first use.
func (d *dirHandle) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	if d.ds == nil {
		ds, e := d.n.Readdir(ctx)
		if e != 0 {
			return nil, e
		}
		d.ds = ds
	}
	if !d.ds.HasNext() {
		return nil, 0
	}
	de, e := d.ds.Next()
	return &de, e
}

// Seekdir moves to the entry at off; a rewind lists the directory anew.
func (d *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	if off == 0 || d.ds == nil {
		ds, e := d.n.Readdir(ctx)
		if e != 0 {
			return e
		}
		d.ds = ds
	}
	if sd, ok := d.ds.(fs.FileSeekdirer); ok {
		return sd.Seekdir(ctx, off)
	}
	return syscall.ENOTSUP
}

// Releasedir closes the directory.
func (d *dirHandle) Releasedir(ctx context.Context, flags uint32) { d.f.Close() }

// Fsyncdir commits the whole file system.
func (d *dirHandle) Fsyncdir(ctx context.Context, flags uint32) syscall.Errno {
	d.n.m.stats.fsyncs.Add(1)
	ec := as(ctx, 0)
	defer ec.end()
	return errno(d.n.m.fsys.CommitContext(ec))
}
