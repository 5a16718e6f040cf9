package fusefs

import (
	"context"
	"errors"
	"io"
	"sort"
	"strconv"
	"sync/atomic"
	"syscall"

	"github.com/cowfs/cowfs"
	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// filesDir is .cowfs/files: each file in it is a private snapshot of a
// volume file, a cowfs.View, made by the control command snapshot-file.
// Mapping one with mmap(MAP_PRIVATE) is a deferred read through the kernel:
// pages fill on first touch and later writes to the file never show.
// Removing one releases its snapshot.
type filesDir struct {
	fs.Inode
	m *mount
}

// servedView is a view served as .cowfs/files/N.
type servedView struct {
	v     *cowfs.View
	n     uint64 // its name in .cowfs/files
	ino   uint64
	st    cowfs.Stat   // of the file it was taken of, for owner and mode
	opens atomic.Int64 // files open on it
	gone  atomic.Bool  // removed: released at the last close
}

var (
	_ fs.InodeEmbedder = (*filesDir)(nil)
	_ fs.NodeLookuper  = (*filesDir)(nil)
	_ fs.NodeReaddirer = (*filesDir)(nil)
	_ fs.NodeGetattrer = (*filesDir)(nil)
	_ fs.NodeUnlinker  = (*filesDir)(nil)
)

// serveView registers v as .cowfs/files/N and returns that path.
func (m *mount) serveView(v *cowfs.View, st *cowfs.Stat) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.viewSeq++
	n := m.viewSeq
	m.views[n] = &servedView{v: v, n: n, ino: m.inos.Next(), st: *st}
	return controlName + "/files/" + strconv.FormatUint(n, 10), nil
}

func (d *filesDir) view(name string) (*servedView, bool) {
	n, err := strconv.ParseUint(name, 10, 64)
	if err != nil {
		return nil, false
	}
	d.m.mu.Lock()
	defer d.m.mu.Unlock()
	sv, ok := d.m.views[n]
	return sv, ok
}

func (d *filesDir) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	d.m.dirAttr(&out.Attr, filesDirIno)
	return 0
}

func (d *filesDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	sv, ok := d.view(name)
	if !ok {
		return nil, syscall.ENOENT
	}
	sv.attr(&out.Attr)
	return d.NewInode(ctx, &viewFile{sv: sv}, fs.StableAttr{Mode: syscall.S_IFREG, Ino: sv.ino}), 0
}

func (d *filesDir) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	d.m.mu.Lock()
	ents := dots(&d.Inode)
	for n, sv := range d.m.views {
		ents = append(ents, fuse.DirEntry{Name: strconv.FormatUint(n, 10), Ino: sv.ino, Mode: syscall.S_IFREG})
	}
	d.m.mu.Unlock()
	sort.Slice(ents[2:], func(i, j int) bool { return ents[2+i].Ino < ents[2+j].Ino })
	return fs.NewListDirStream(ents), 0
}

// Unlink releases a served snapshot; files open on it keep reading it
// until closed.
func (d *filesDir) Unlink(ctx context.Context, name string) syscall.Errno {
	sv, ok := d.view(name)
	if !ok {
		return syscall.ENOENT
	}
	d.m.mu.Lock()
	delete(d.m.views, sv.n)
	d.m.mu.Unlock()
	sv.released()
	return 0
}

// released releases the view once nothing reads it: at once if no file is
// open on it, else at the last close (viewFile.Release).
func (sv *servedView) released() {
	sv.gone.Store(true)
	if sv.opens.Load() == 0 {
		sv.v.Release()
	}
}

// attr describes a served snapshot: read-only, with its file's owner and
// permission bits.
func (sv *servedView) attr(a *fuse.Attr) {
	a.Ino = sv.ino
	a.Mode = syscall.S_IFREG | sv.st.Mode&0o7555
	a.Nlink = 1
	a.Uid, a.Gid = sv.st.UID, sv.st.GID
	a.Size = uint64(sv.v.Len())
	a.Blocks = uint64(cowfs.SizeBlocks(int64(a.Size)))
	a.Blksize = cowfs.BlockSize
	setTimes(a, &sv.st)
}

// viewFile is one served snapshot.
type viewFile struct {
	fs.Inode
	sv *servedView
}

var (
	_ fs.InodeEmbedder      = (*viewFile)(nil)
	_ fs.FileHandle         = viewHandle{}
	_ fs.NodeGetattrer      = (*viewFile)(nil)
	_ fs.NodeSetattrer      = (*viewFile)(nil)
	_ fs.NodeOpener         = (*viewFile)(nil)
	_ fs.NodeReader         = (*viewFile)(nil)
	_ fs.NodeReleaser       = (*viewFile)(nil)
	_ fs.NodeCopyFileRanger = (*viewFile)(nil)
)

func (f *viewFile) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	f.sv.attr(&out.Attr)
	return 0
}

func (f *viewFile) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return syscall.EROFS
}

// Open opens the snapshot for reading; it is read-only.
func (f *viewFile) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if flags&syscall.O_ACCMODE != syscall.O_RDONLY || flags&syscall.O_TRUNC != 0 {
		return nil, 0, syscall.EROFS
	}
	if f.sv.gone.Load() {
		return nil, 0, syscall.ENOENT
	}
	f.sv.opens.Add(1)
	return viewHandle{}, fuse.FOPEN_KEEP_CACHE, 0
}

// viewHandle marks a file open on a served snapshot.
type viewHandle struct{}

func (f *viewFile) Read(ctx context.Context, fh fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	k, err := f.sv.v.ReadAt(dest, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, errno(err)
	}
	return fuse.ReadResultData(dest[:k]), 0
}

func (f *viewFile) Release(ctx context.Context, fh fs.FileHandle) syscall.Errno {
	if f.sv.opens.Add(-1) == 0 && f.sv.gone.Load() {
		f.sv.v.Release()
	}
	return 0
}

// CopyFileRange shares a range of the snapshot into a volume file: a clone,
// as from any file of the volume.
func (f *viewFile) CopyFileRange(ctx context.Context, fhIn fs.FileHandle, offIn uint64, out *fs.Inode, fhOut fs.FileHandle, offOut uint64, size uint64, flags uint64) (uint32, syscall.Errno) {
	dst, ok := fhOut.(*handle)
	if !ok {
		return 0, syscall.EXDEV
	}
	if flags != 0 {
		return 0, syscall.EINVAL
	}
	k, err := f.sv.v.CopyRange(int64(offIn), dst.f, int64(offOut), int64(min(size, maxCopy)))
	if n, ok := out.Operations().(*node); ok {
		n.m.stats.copies.Add(1)
		n.m.stats.copyBytes.Add(k)
	}
	if err != nil && k == 0 {
		return 0, errno(err)
	}
	return uint32(k), 0
}
