package fusefs

import (
	"context"
	"errors"
	"io"
	"strings"
	"syscall"
	"time"

	"github.com/cowfs/cowfs"
	"github.com/cowfs/cowfs/internal/control"
	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// The control namespace .cowfs (package internal/control holds what it is
// and its rules): go-fuse nodes for its directories, its control file and
// its served views.

// controlDir is a directory of the control namespace: .cowfs, snapshots/
// or files/. Changes in it fail as the namespace's rules say.
type controlDir struct {
	fs.Inode
	m *mount
	n control.Node
}

var (
	_ fs.NodeLookuper  = (*controlDir)(nil)
	_ fs.NodeReaddirer = (*controlDir)(nil)
	_ fs.NodeGetattrer = (*controlDir)(nil)
	_ fs.NodeSetattrer = (*controlDir)(nil)
	_ fs.NodeCreater   = (*controlDir)(nil)
	_ fs.NodeMkdirer   = (*controlDir)(nil)
	_ fs.NodeMknoder   = (*controlDir)(nil)
	_ fs.NodeSymlinker = (*controlDir)(nil)
	_ fs.NodeLinker    = (*controlDir)(nil)
	_ fs.NodeUnlinker  = (*controlDir)(nil)
	_ fs.NodeRmdirer   = (*controlDir)(nil)
	_ fs.NodeRenamer   = (*controlDir)(nil)

	_ fs.NodeSetxattrer    = (*controlDir)(nil)
	_ fs.NodeRemovexattrer = (*controlDir)(nil)
)

// fixed returns the node of fixed node n, a child of parent, made on first
// use.
func (m *mount) fixed(ctx context.Context, parent *fs.Inode, n control.Node, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if e := m.controlAttr(n, &out.Attr); e != 0 {
		return nil, e
	}
	if ch := parent.GetChild(n.Name()); ch != nil {
		return ch, 0
	}
	var ops fs.InodeEmbedder = &controlDir{m: m, n: n}
	if n == control.Ctl {
		ops = &ctlFile{m: m}
	}
	return parent.NewPersistentInode(ctx, ops, fs.StableAttr{Mode: n.Mode() & syscall.S_IFMT, Ino: n.Ino()}), 0
}

// controlAttr describes fixed node n.
func (m *mount) controlAttr(n control.Node, a *fuse.Attr) syscall.Errno {
	st, err := m.ns.Stat(n)
	if err != nil {
		return errno(err)
	}
	fillAttr(a, st)
	return 0
}

func (d *controlDir) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	return d.m.controlAttr(d.n, &out.Attr)
}

func (d *controlDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	switch d.n {
	case control.Root:
		if n, ok := control.Lookup(name); ok {
			return d.m.fixed(ctx, &d.Inode, n, out)
		}
	case control.Snapshots:
		s, err := d.m.ns.Snapshot(name)
		if err != nil {
			return nil, errno(err)
		}
		st, err := s.Root()
		if err != nil {
			return nil, errno(err)
		}
		fillAttr(&out.Attr, st)
		root := d.m.newNode(ctx, s.Volume(), s.Volume().RootInode(), s)
		return d.NewInode(ctx, root, fs.StableAttr{Mode: syscall.S_IFDIR, Ino: st.Ino}), 0
	case control.Files:
		if sv, ok := d.m.ns.View(name); ok {
			st := sv.Stat()
			fillAttr(&out.Attr, st)
			return d.NewInode(ctx, &viewFile{sv: sv}, fs.StableAttr{Mode: syscall.S_IFREG, Ino: st.Ino}), 0
		}
	}
	return nil, syscall.ENOENT
}

func (d *controlDir) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	ents := dots(&d.Inode)
	switch d.n {
	case control.Root:
		for _, n := range control.Entries {
			ents = append(ents, fuse.DirEntry{Name: n.Name(), Ino: n.Ino(), Mode: n.Mode() & syscall.S_IFMT})
		}
	case control.Snapshots:
		snaps, err := d.m.ns.Snapshots()
		if err != nil {
			return nil, errno(err)
		}
		for _, s := range snaps {
			if st, err := s.Root(); err == nil {
				ents = append(ents, fuse.DirEntry{Name: s.Name(), Ino: st.Ino, Mode: syscall.S_IFDIR})
			}
		}
	case control.Files:
		for _, sv := range d.m.ns.Views() {
			ents = append(ents, fuse.DirEntry{Name: sv.Name(), Ino: sv.Stat().Ino, Mode: syscall.S_IFREG})
		}
	}
	return fs.NewListDirStream(ents), 0
}

func (d *controlDir) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return control.ErrAttr
}

func (d *controlDir) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, control.ErrReadOnly
}

func (d *controlDir) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, control.ErrReadOnly
}

func (d *controlDir) Mknod(ctx context.Context, name string, mode uint32, dev uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, control.ErrReadOnly
}

func (d *controlDir) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, control.ErrReadOnly
}

func (d *controlDir) Link(ctx context.Context, target fs.InodeEmbedder, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, control.ErrReadOnly
}

// Unlink releases a served view (files/N); files open on it keep reading
// it until closed. Nothing else here can be removed.
func (d *controlDir) Unlink(ctx context.Context, name string) syscall.Errno {
	if d.n != control.Files {
		return control.ErrReadOnly
	}
	return errno(d.m.ns.RemoveView(name))
}

func (d *controlDir) Rmdir(ctx context.Context, name string) syscall.Errno {
	return control.ErrReadOnly
}

func (d *controlDir) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	return control.ErrMove
}

// ctlFile is the control file: each write(2) runs one command (package
// ctl); then reading the same open file returns that command's reply
// (control.Handle). The file is a stream (no offsets, so pread fails with
// ESPIPE), like a pipe to the server.
type ctlFile struct {
	fs.Inode
	m *mount
}

var (
	_ fs.NodeOpener    = (*ctlFile)(nil)
	_ fs.NodeGetattrer = (*ctlFile)(nil)
	_ fs.NodeSetattrer = (*ctlFile)(nil)

	_ fs.NodeSetxattrer    = (*ctlFile)(nil)
	_ fs.NodeRemovexattrer = (*ctlFile)(nil)
)

func (c *ctlFile) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	return c.m.controlAttr(control.Ctl, &out.Attr)
}

// Setattr accepts (and ignores) the truncation a shell's "> ctl" asks for.
func (c *ctlFile) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if in.Valid&^(fuse.FATTR_SIZE|fuse.FATTR_FH|fuse.FATTR_LOCKOWNER) != 0 {
		return control.ErrAttr
	}
	return c.m.controlAttr(control.Ctl, &out.Attr)
}

func (c *ctlFile) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	return ctlHandle{control.NewHandle(c.m.exec)}, fuse.FOPEN_DIRECT_IO | fuse.FOPEN_STREAM, 0
}

// How long a control command that finds files still open retries: 1 s.
const (
	busyRetries = 20
	busyWait    = 50 * time.Millisecond
)

// exec runs one command line of the control file, counted in the mount's
// stats.
func (m *mount) exec(line string) (string, error) {
	m.stats.ctl.Add(1)
	reply, err := m.ctl.Exec(line)
	// The kernel releases a file after close(2) has returned, so a file of
	// a snapshot closed just before "snapshot delete" may still count as
	// open: give such releases a moment to arrive.
	for try := 0; errors.Is(err, syscall.EBUSY) && try < busyRetries; try++ {
		time.Sleep(busyWait)
		reply, err = m.ctl.Exec(line)
	}
	if err != nil {
		m.stats.ctlFails.Add(1)
	}
	return reply, err
}

// ctlHandle is one open of the control file.
type ctlHandle struct{ h *control.Handle }

var (
	_ fs.FileWriter = ctlHandle{}
	_ fs.FileReader = ctlHandle{}
)

// Write runs the command line in data; the write fails with the command's
// errno.
func (c ctlHandle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	n, err := c.h.Write(data)
	if err != nil {
		return 0, errno(err)
	}
	return uint32(n), 0
}

// Read returns what is left of the last command's reply.
func (c ctlHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	return fuse.ReadResultData(dest[:c.h.Read(dest)]), 0
}

// viewFile is a served view, .cowfs/files/N (control.View): a private
// snapshot of a volume file, made by the control command snapshot-file.
// Mapping it with mmap(MAP_PRIVATE) is a deferred read through the kernel:
// pages fill on first touch and later writes to the file never show.
type viewFile struct {
	fs.Inode
	sv *control.View
}

var (
	_ fs.NodeGetattrer      = (*viewFile)(nil)
	_ fs.NodeSetattrer      = (*viewFile)(nil)
	_ fs.NodeOpener         = (*viewFile)(nil)
	_ fs.NodeReader         = (*viewFile)(nil)
	_ fs.NodeReleaser       = (*viewFile)(nil)
	_ fs.NodeCopyFileRanger = (*viewFile)(nil)
	_ fs.NodeSetxattrer     = (*viewFile)(nil)
	_ fs.NodeRemovexattrer  = (*viewFile)(nil)
)

func (f *viewFile) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	fillAttr(&out.Attr, f.sv.Stat())
	return 0
}

func (f *viewFile) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return control.ErrReadOnly
}

// Open opens the view for reading; it is read-only.
func (f *viewFile) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if err := f.sv.Open(int(flags)); err != nil {
		return nil, 0, errno(err)
	}
	return viewHandle{}, fuse.FOPEN_KEEP_CACHE, 0
}

// viewHandle marks a file open on a served view.
type viewHandle struct{}

func (f *viewFile) Read(ctx context.Context, fh fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	ec := as(ctx, 0)
	defer ec.end()
	k, err := f.sv.ReadAtContext(ec, dest, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, errno(err)
	}
	return fuse.ReadResultData(dest[:k]), 0
}

func (f *viewFile) Release(ctx context.Context, fh fs.FileHandle) syscall.Errno {
	f.sv.Close()
	return 0
}

// CopyFileRange shares a range of the view into a volume file: a clone, as
// from any file of the volume.
func (f *viewFile) CopyFileRange(ctx context.Context, fhIn fs.FileHandle, offIn uint64, out *fs.Inode, fhOut fs.FileHandle, offOut uint64, size uint64, flags uint64) (uint32, syscall.Errno) {
	dst, ok := fhOut.(*handle)
	if !ok {
		return 0, syscall.EXDEV
	}
	if flags != 0 {
		return 0, syscall.EINVAL
	}
	ec := as(ctx, 0)
	defer ec.end()
	k, err := f.sv.CopyRange(ec, int64(offIn), dst.f, int64(offOut), int64(min(size, maxCopy)))
	if n, ok := out.Operations().(*node); ok {
		n.m.stats.copies.Add(1)
		n.m.stats.copyBytes.Add(k)
	}
	if err != nil && k == 0 {
		return 0, errno(err)
	}
	return uint32(k), 0
}

// The nodes of .cowfs have no extended attributes: go-fuse answers a read
// with ENODATA and a list with none; a change fails as a chmod does.

func (d *controlDir) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	return control.ErrAttr
}

func (d *controlDir) Removexattr(ctx context.Context, attr string) syscall.Errno {
	return control.ErrAttr
}

func (c *ctlFile) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	return control.ErrAttr
}

func (c *ctlFile) Removexattr(ctx context.Context, attr string) syscall.Errno {
	return control.ErrAttr
}

func (f *viewFile) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	return control.ErrReadOnly
}

func (f *viewFile) Removexattr(ctx context.Context, attr string) syscall.Errno {
	return control.ErrReadOnly
}

// changed drops what the kernel caches of the volume path p after a
// control command changed it: its directory entry and its pages.
func (m *mount) changed(p string) {
	parts := strings.Split(strings.Trim(p, "/"), "/")
	dir := &m.root.Inode
	for i, name := range parts {
		if name == "" || name == "." {
			continue
		}
		ch := dir.GetChild(name)
		if i == len(parts)-1 {
			dir.NotifyEntry(name)
			if ch != nil {
				ch.NotifyContent(0, 0)
			}
			return
		}
		if ch == nil {
			return // nothing below is cached
		}
		dir = ch
	}
}

// snapshotsChanged runs after a snapshot was created or deleted: the mount
// forgets the snapshots that are gone (a new one of the same name gets new
// inode numbers) and drops the kernel's entries for them.
func (m *mount) snapshotsChanged() {
	gone := m.ns.Forget()
	ctlDir := m.root.GetChild(control.DirName)
	if ctlDir == nil {
		return
	}
	if d := ctlDir.GetChild(control.SnapshotsName); d != nil {
		for _, name := range gone {
			d.NotifyEntry(name)
		}
	}
}

// fillAttr copies st into the kernel's attributes.
func fillAttr(out *fuse.Attr, st *cowfs.Stat) {
	out.Ino = st.Ino
	out.Size = uint64(st.Size)
	out.Blocks = uint64(st.Blocks)
	out.Mode = st.Mode
	out.Nlink = st.Nlink
	out.Uid, out.Gid = st.UID, st.GID
	out.Rdev = uint32(st.Rdev)
	out.Blksize = cowfs.BlockSize
	setTimes(out, st)
}
