package ninep

import (
	"context"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cowfs/cowfs"
	"github.com/cowfs/cowfs/internal/control"
	"github.com/cowfs/cowfs/store"
)

// The 9P2000.L requests: Linux's v9fs and diod's tools speak them.

// Tgetattr and Tsetattr mask bits (both share the first three).
const (
	attrMode     = 0x1
	attrUID      = 0x2
	attrGID      = 0x4
	attrBasic    = 0x7ff // Rgetattr: mode through blocks
	attrBtime    = 0x800
	setattrSize  = 0x8
	setattrAtime = 0x10
	setattrMtime = 0x20
	setattrAtSet = 0x80
	setattrMtSet = 0x100
)

const (
	v9fsMagic     = 0x01021997 // Rstatfs type
	atRemoveDir   = 0x200      // Tunlinkat flag
	blockSize     = cowfs.BlockSize
	direntHeader  = 13 + 8 + 1 + 2 // Rreaddir entry: qid offset type name-length
	xattrMaxValue = 64 << 10
)

// statfs reports the space of the served FS's store (store.StatFSer), in
// blocks of Rstatfs's bsize bytes, which Linux takes as the unit of the
// counts (the store's Frsize). A store that cannot tell shows no blocks.
func (c *conn) statfs(m, r *Msg) error {
	if _, err := c.fid(m.Fid); err != nil {
		return err
	}
	r.Statfs = Statfs{Type: v9fsMagic, Bsize: 4096, Namelen: 255}
	sf, ok := c.srv.FS.Store().(store.StatFSer)
	if !ok {
		return nil
	}
	s, err := sf.StatFS(c.rctx)
	if err != nil {
		return err
	}
	r.Statfs.Bsize = s.Frsize
	r.Statfs.Blocks, r.Statfs.Bfree, r.Statfs.Bavail = s.Blocks, s.Bfree, s.Bavail
	r.Statfs.Files, r.Statfs.Ffree = s.Files, s.Ffree
	return nil
}

// lopenFlags keeps the open flags the server acts on.
func lopenFlags(fl uint32) int {
	return int(fl) & (syscall.O_ACCMODE | syscall.O_TRUNC | syscall.O_APPEND)
}

func (c *conn) lopen(m, r *Msg) error {
	f, err := c.fid(m.Fid)
	if err != nil {
		return err
	}
	return c.openAs(f, lopenFlags(m.Flags), r)
}

// openAs opens f with os flags and puts its qid and iounit in r.
func (c *conn) openAs(f *fid, flags int, r *Msg) error {
	if err := f.open(c.rctx, flags); err != nil {
		return err
	}
	q, err := f.qid(c.rctx)
	if err != nil {
		f.close(c.rctx)
		return err
	}
	r.Qid, r.Iounit = q, c.msize-ioHeader
	return nil
}

func (c *conn) lcreate(m, r *Msg) error {
	f, err := c.fid(m.Fid)
	if err != nil {
		return err
	}
	ctx := f.asGroup(c.rctx, f.user.groupFor(m.Gid))
	if r.Qid, err = f.createFile(ctx, m.Name, lopenFlags(m.Flags), m.Mode); err != nil {
		return err
	}
	r.Iounit = c.msize - ioHeader
	return nil
}

func (c *conn) symlink(m, r *Msg) error {
	return c.makeEntry(m.Fid, m.Name, m.Gid, r, func(ctx context.Context, d *cowfs.Inode) (*cowfs.Inode, error) {
		return d.Symlink(ctx, m.Target, m.Name)
	})
}

func (c *conn) mknod(m, r *Msg) error {
	return c.makeEntry(m.Dfid, m.Name, m.Gid, r, func(ctx context.Context, d *cowfs.Inode) (*cowfs.Inode, error) {
		switch m.Mode & syscall.S_IFMT {
		case syscall.S_IFCHR, syscall.S_IFBLK, syscall.S_IFIFO, syscall.S_IFSOCK:
		case syscall.S_IFREG, 0:
			return nil, perr(syscall.EINVAL, "mknod of a regular file: use Tlcreate")
		default:
			return nil, syscall.EINVAL
		}
		return d.Mknod(ctx, m.Name, m.Mode&(syscall.S_IFMT|0o7777), unix.Mkdev(m.Major, m.Minor))
	})
}

func (c *conn) mkdir(m, r *Msg) error {
	return c.makeEntry(m.Dfid, m.Name, m.Gid, r, func(ctx context.Context, d *cowfs.Inode) (*cowfs.Inode, error) {
		return d.Mkdir(ctx, m.Name, m.Mode&0o7777)
	})
}

// makeEntry makes entry name of directory fid dfid with mk, as the
// attaching user making entries of the group groupFor picks for gid, and
// returns its qid in r.
func (c *conn) makeEntry(dfid uint32, name string, gid uint32, r *Msg, mk func(ctx context.Context, d *cowfs.Inode) (*cowfs.Inode, error)) error {
	f, err := c.fid(dfid)
	if err != nil {
		return err
	}
	if err := f.makeIn(c.rctx, name); err != nil {
		return err
	}
	n, err := mk(f.asGroup(c.rctx, f.user.groupFor(gid)), f.node)
	if err != nil {
		return err
	}
	r.Qid, err = f.qidOfNode(c.rctx, n)
	return err
}

func (c *conn) readlink(m, r *Msg) error {
	f, err := c.fid(m.Fid)
	if err != nil {
		return err
	}
	if f.kind != volNode {
		return syscall.EINVAL
	}
	r.Target, err = f.node.Readlink(f.as(c.rctx))
	return err
}

func (c *conn) link(m, r *Msg) error {
	d, err := c.fid(m.Dfid)
	if err != nil {
		return err
	}
	f, err := c.fid(m.Fid)
	if err != nil {
		return err
	}
	if f.kind != volNode || f.vol != d.vol {
		return syscall.EXDEV
	}
	if err := d.makeIn(c.rctx, m.Name); err != nil {
		return err
	}
	return d.node.Link(d.as(c.rctx), f.node, m.Name)
}

// Trename moves fid's file into directory dfid as name.
func (c *conn) rename(m, r *Msg) error {
	f, err := c.fid(m.Fid)
	if err != nil {
		return err
	}
	d, err := c.fid(m.Dfid)
	if err != nil {
		return err
	}
	switch {
	case f.kind == controlNode && f.ctlNode == control.Root:
		return control.ErrRemove
	case f.kind != volNode, f.snap != nil && f.atRoot():
		return control.ErrMove
	case f.atRoot():
		return syscall.EBUSY
	}
	p, name, err := f.parent(c.rctx)
	if err != nil {
		return err
	}
	defer p.clunk(c.rctx)
	return c.move(p, name, d, m.Name, 0)
}

func (c *conn) renameat(m, r *Msg) error {
	od, err := c.fid(m.Fid)
	if err != nil {
		return err
	}
	nd, err := c.fid(m.Dfid)
	if err != nil {
		return err
	}
	return c.move(od, m.Name, nd, m.NewName, 0)
}

// move renames entry oldName of directory od to newName of directory nd,
// with Volume.Rename's flags; the engine checks rename(2)'s permissions.
// Fids of what moves keep their handles: nothing to follow.
func (c *conn) move(od *fid, oldName string, nd *fid, newName string, flags int) error {
	if od.kind != volNode || nd.kind != volNode || od.vol != nd.vol {
		return control.ErrMove
	}
	if err := validName(oldName); err != nil {
		return err
	}
	if control.Reserved(od.servedRoot(), oldName) || control.Reserved(nd.servedRoot(), newName) {
		if err := mayChange(c.rctx, od, nd); err != nil {
			return err
		}
		return control.ErrRemove
	}
	if err := validName(newName); err != nil {
		return err
	}
	return od.node.Rename(od.as(c.rctx), oldName, nd.node, newName, flags)
}

func (c *conn) unlinkat(m, r *Msg) error {
	d, err := c.fid(m.Fid)
	if err != nil {
		return err
	}
	if err := validName(m.Name); err != nil {
		return err
	}
	if d.kind != volNode {
		return d.unlinkControl(c.rctx, m.Name)
	}
	if control.Reserved(d.servedRoot(), m.Name) {
		if err := mayChange(c.rctx, d); err != nil {
			return err
		}
		return control.ErrRemove
	}
	if m.Flags&atRemoveDir != 0 {
		return d.node.Rmdir(d.as(c.rctx), m.Name)
	}
	return d.node.Unlink(d.as(c.rctx), m.Name)
}

func (c *conn) getattr(m, r *Msg) error {
	_, st, err := c.fidStat(m.Fid)
	if err != nil {
		return err
	}
	r.Attr = attrOf(st)
	return nil
}

// timespec is t as Rgetattr carries it: seconds since 1970 in a u64 that
// Linux's client reads as signed (before 1970: negative), and nanoseconds.
func timespec(t time.Time) Timespec {
	return Timespec{Sec: uint64(t.Unix()), Nsec: uint64(t.Nanosecond())}
}

// timeOf is the time a Tsetattr carries, as timespec has it; the
// nanoseconds must be below a second.
func timeOf(ts Timespec) (time.Time, error) {
	if ts.Nsec >= 1e9 {
		return time.Time{}, perr(syscall.EINVAL, "%d nanoseconds", ts.Nsec)
	}
	return cowfs.UnixTime(int64(ts.Sec), int64(ts.Nsec)), nil
}

func attrOf(st *cowfs.Stat) Attr {
	return Attr{
		Valid: attrBasic | attrBtime,
		Qid:   qidOf(st, false),
		Mode:  st.Mode, UID: st.UID, GID: st.GID,
		Nlink: uint64(st.Nlink), Rdev: st.Rdev, Size: uint64(st.Size),
		Blksize: blockSize, Blocks: uint64(st.Blocks),
		Atime: timespec(st.Atime), Mtime: timespec(st.Mtime),
		Ctime: timespec(st.Ctime), Btime: timespec(st.Btime),
	}
}

// setattr changes what Tsetattr's valid mask names, in one engine call
// that checks permission as Linux does: through the fid's open file if it
// has one (a size then needs no write permission), else its node.
func (c *conn) setattr(m, r *Msg) error {
	f, st, err := c.fidStat(m.Fid)
	if err != nil {
		return err
	}
	if f.kind != volNode {
		return f.setattrControl(uint32(m.Attr.Valid))
	}
	a, valid := &m.Attr, uint32(m.Attr.Valid)
	switch {
	case st.Mode&syscall.S_IFMT == syscall.S_IFLNK && valid&attrMode != 0:
		return syscall.EOPNOTSUPP // a symlink's mode cannot change
	case valid&setattrSize != 0 && a.Size > 1<<62:
		return syscall.EFBIG
	}
	var sa cowfs.SetAttr
	if valid&attrMode != 0 {
		mode := a.Mode & 0o7777
		sa.Mode = &mode
	}
	if valid&attrUID != 0 {
		sa.UID = &a.UID
	}
	if valid&attrGID != 0 {
		sa.GID = &a.GID
	}
	if valid&setattrSize != 0 {
		size := int64(a.Size)
		sa.Size = &size
	}
	now := time.Now()
	for _, t := range []struct {
		set, given uint32
		ts         Timespec
		t          **time.Time
	}{{setattrAtime, setattrAtSet, a.Atime, &sa.Atime}, {setattrMtime, setattrMtSet, a.Mtime, &sa.Mtime}} {
		if valid&t.set == 0 {
			continue
		}
		tm := now
		if valid&t.given != 0 {
			if tm, err = timeOf(t.ts); err != nil {
				return err
			}
		}
		*t.t = &tm
	}
	sa.TimesNow = valid&(setattrAtSet|setattrMtSet) == 0
	if f.file != nil {
		return f.file.Setattr(f.as(c.rctx), sa)
	}
	_, err = f.node.Setattr(f.as(c.rctx), sa)
	return err
}

// direntType is the d_type of a mode.
func direntType(mode uint32) uint8 { return uint8(mode & syscall.S_IFMT >> 12) }

// readdir answers Treaddir: entries "." and ".." and then the directory's,
// the offset of each being its index + 1; offset 0 lists anew.
func (c *conn) readdir(m, r *Msg) error {
	f, err := c.fid(m.Fid)
	if err != nil {
		return err
	}
	if f.dir == nil {
		return perr(syscall.EBADF, "fid is not an open directory")
	}
	if m.Offset == 0 || f.dir.ents == nil {
		if err := f.relist(c.rctx); err != nil {
			return err
		}
	}
	count := int(min(m.Count, c.msize-ioHeader))
	buf := c.scratch()[:0]
	for i := m.Offset; i < uint64(len(f.dir.ents)); i++ {
		e := f.dir.ents[i]
		if len(buf)+direntHeader+len(e.name) > count {
			if len(buf) == 0 {
				return perr(syscall.EINVAL, "Treaddir count %d too small for the next entry", m.Count)
			}
			break
		}
		e2 := encoder{b: buf}
		e2.qid(qidOf(e.st, f.versioned))
		e2.u64(i + 1)
		e2.u8(direntType(e.st.Mode))
		e2.str(e.name)
		buf = e2.b
	}
	r.Data = buf
	return nil
}

// relist takes a new listing of an open directory; for 9P2000.L it starts
// with "." and "..".
func (f *fid) relist(ctx context.Context) error {
	ents, err := f.list(ctx)
	if err != nil {
		return err
	}
	self, err := f.stat(ctx)
	if err != nil {
		return err
	}
	parent := self
	if !f.servedRoot() {
		up := f.walker()
		if _, err := up.step(ctx, ".."); err == nil {
			if st, err := up.stat(ctx); err == nil {
				parent = st
			}
		}
		up.clunk(ctx)
	}
	f.dir.ents = append([]dirEntry{{".", self}, {"..", parent}}, ents...)
	return nil
}

// scratch is a buffer of msize bytes for one reply's data.
func (c *conn) scratch() []byte {
	if uint32(cap(c.data)) < c.msize {
		c.data = make([]byte, c.msize)
	}
	return c.data[:c.msize]
}

func (c *conn) fsync(m, r *Msg) error {
	f, err := c.fid(m.Fid)
	if err != nil {
		return err
	}
	switch {
	case f.file != nil:
		return f.file.Sync()
	case f.dir != nil:
		return c.srv.FS.Commit() // a directory's entries are durable at a commit
	}
	return syscall.EBADF
}

// xattrFid is a fid turned into an extended attribute: one being read
// (Txattrwalk: its value, or the list of names), or written (Txattrcreate:
// set when the fid is clunked).
type xattrFid struct {
	data   []byte
	create bool
	name   string
	size   uint64
	flags  int
}

func (x *xattrFid) read(buf []byte, off uint64) ([]byte, error) {
	if x.create {
		return nil, syscall.EBADF
	}
	if off >= uint64(len(x.data)) {
		return buf[:0], nil
	}
	return buf[:copy(buf, x.data[off:])], nil
}

func (x *xattrFid) write(data []byte, off uint64) (int, error) {
	if !x.create {
		return 0, syscall.EBADF
	}
	if off != uint64(len(x.data)) || off+uint64(len(data)) > x.size {
		return 0, perr(syscall.EINVAL, "extended attribute written out of order or past its size")
	}
	x.data = append(x.data, data...)
	return len(data), nil
}

// commit sets the attribute written; a size of 0 removes it.
func (x *xattrFid) commit(ctx context.Context, f *fid) error {
	if !x.create {
		return nil
	}
	if x.size == 0 {
		return f.node.RemoveXattr(f.as(ctx), x.name)
	}
	if uint64(len(x.data)) != x.size {
		return perr(syscall.EINVAL, "extended attribute %s: %d bytes written of %d", x.name, len(x.data), x.size)
	}
	return f.node.SetXattr(f.as(ctx), x.name, x.data, x.flags)
}

func (c *conn) xattrwalk(m, r *Msg) error {
	f, err := c.fid(m.Fid)
	if err != nil {
		return err
	}
	if m.Newfid != m.Fid {
		if err := c.newFid(m.Newfid); err != nil {
			return err
		}
	} else if f.opened() {
		return perr(syscall.EBUSY, "xattrwalk of open fid %d", m.Fid)
	}
	if _, err := f.stat(c.rctx); err != nil {
		return err
	}
	x := &xattrFid{}
	switch {
	case f.kind != volNode && m.Name != "":
		return syscall.ENODATA // the nodes of .cowfs have no extended attributes
	case f.kind != volNode:
	case m.Name == "":
		names, err := f.node.ListXattr(f.as(c.rctx))
		if err != nil {
			return err
		}
		for _, n := range names {
			x.data = append(append(x.data, n...), 0)
		}
	default:
		if x.data, err = f.node.GetXattr(f.as(c.rctx), m.Name); err != nil {
			return err
		}
	}
	nf := f.walker()
	nf.xattr = x
	if m.Newfid == m.Fid {
		f.clunk(c.rctx)
	}
	c.fids[m.Newfid] = nf
	r.Size = uint64(len(x.data))
	return nil
}

// xattrcreate turns the fid into an extended attribute to write, set when
// it is clunked; the engine checks now whether the user may set it.
func (c *conn) xattrcreate(m, r *Msg) error {
	f, err := c.fid(m.Fid)
	if err != nil {
		return err
	}
	switch {
	case f.opened():
		return syscall.EBADF
	case f.kind == viewNode:
		return control.ErrReadOnly
	case f.kind != volNode:
		return control.ErrAttr
	}
	if m.Size > xattrMaxValue {
		return syscall.E2BIG
	}
	if err := f.node.MayXattr(f.as(c.rctx), m.Name, true); err != nil {
		return err
	}
	flags := int(m.Flags) & (cowfs.XattrCreate | cowfs.XattrReplace)
	f.xattr = &xattrFid{create: true, name: m.Name, size: m.Size, flags: flags}
	return nil
}
