package ninep

import (
	"context"
	"path"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cowfs/cowfs"
	"github.com/cowfs/cowfs/acl"
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
	s, err := sf.StatFS(context.Background())
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
	if err := f.open(flags); err != nil {
		return err
	}
	q, err := f.qid()
	if err != nil {
		f.close()
		return err
	}
	r.Qid, r.Iounit = q, c.msize-ioHeader
	return nil
}

func (c *conn) lcreate(m, r *Msg) error {
	f, dir, err := c.fidStat(m.Fid)
	if err != nil {
		return err
	}
	if r.Qid, err = f.createFile(m.Name, lopenFlags(m.Flags), m.Mode, f.user.newGid(dir, m.Gid)); err != nil {
		return err
	}
	r.Iounit = c.msize - ioHeader
	return nil
}

func (c *conn) symlink(m, r *Msg) error {
	return c.makeEntry(m.Fid, m.Name, m.Gid, r, func(f *fid, dir *cowfs.Stat, p string) error {
		return f.vol.Symlink(m.Target, p)
	})
}

func (c *conn) mknod(m, r *Msg) error {
	return c.makeEntry(m.Dfid, m.Name, m.Gid, r, func(f *fid, dir *cowfs.Stat, p string) error {
		switch m.Mode & syscall.S_IFMT {
		case syscall.S_IFCHR, syscall.S_IFBLK:
			if !f.user.root() {
				return syscall.EPERM
			}
		case syscall.S_IFIFO, syscall.S_IFSOCK:
		case syscall.S_IFREG, 0:
			return perr(syscall.EINVAL, "mknod of a regular file: use Tlcreate")
		default:
			return syscall.EINVAL
		}
		mode := f.user.createMode(f.user.newGid(dir, m.Gid), m.Mode&(syscall.S_IFMT|0o7777))
		return f.vol.Mknod(p, mode, unix.Mkdev(m.Major, m.Minor))
	})
}

func (c *conn) mkdir(m, r *Msg) error {
	return c.makeEntry(m.Dfid, m.Name, m.Gid, r, func(f *fid, dir *cowfs.Stat, p string) error {
		return f.vol.Mkdir(p, mkdirMode(dir, m.Mode))
	})
}

// makeEntry makes entry name of directory fid dfid with mk, gives it to
// the attaching user with the group newGid picks for gid, and returns its
// qid in r.
func (c *conn) makeEntry(dfid uint32, name string, gid uint32, r *Msg, mk func(f *fid, dir *cowfs.Stat, p string) error) error {
	f, err := c.fid(dfid)
	if err != nil {
		return err
	}
	dir, p, err := f.makeIn(name)
	if err != nil {
		return err
	}
	if err := mk(f, dir, p); err != nil {
		return err
	}
	r.Qid, err = f.made(p, f.user.newGid(dir, gid))
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
	r.Target, err = f.vol.Readlink(f.path)
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
	_, p, err := d.makeIn(m.Name)
	if err != nil {
		return err
	}
	return d.vol.Link(f.path, p)
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
	case f.kind != volNode, f.path == "." && f.snap != nil:
		return control.ErrMove
	case f.path == ".":
		return syscall.EBUSY
	}
	p := f.walker()
	p.path = path.Dir(f.path)
	return c.move(p, path.Base(f.path), d, m.Name)
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
	return c.move(od, m.Name, nd, m.NewName)
}

// move renames entry oldName of directory od to newName of directory nd,
// replacing what is there, with rename(2)'s permission checks.
func (c *conn) move(od *fid, oldName string, nd *fid, newName string) error {
	if od.kind != volNode || nd.kind != volNode || od.vol != nd.vol {
		return control.ErrMove
	}
	if err := validName(oldName); err != nil {
		return err
	}
	from := path.Join(od.path, oldName)
	if control.Reserved(od.servedRoot(), oldName) || control.Reserved(nd.servedRoot(), newName) {
		if err := mayChange(od, nd); err != nil {
			return err
		}
		return control.ErrRemove
	}
	_, to, err := nd.makeIn(newName)
	if err != nil {
		return err
	}
	ofi, err := od.vol.Lstat(od.path)
	if err != nil {
		return err
	}
	x, err := od.vol.Lstat(from)
	if err != nil {
		return err
	}
	if !od.user.mayUnlink(ofi.Stat(), x.Stat()) {
		return syscall.EACCES
	}
	if t, err := nd.vol.Lstat(to); err == nil {
		nfi, err := nd.vol.Lstat(nd.path)
		if err != nil {
			return err
		}
		if !nd.user.mayUnlink(nfi.Stat(), t.Stat()) {
			return syscall.EACCES
		}
	}
	// Moving a directory to another parent rewrites its "..".
	if x.IsDir() && od.path != nd.path && !od.user.may(x.Stat(), mayWrite) {
		return syscall.EACCES
	}
	if err := od.vol.Rename(from, to, 0); err != nil {
		return err
	}
	c.renamed(od.vol, from, to)
	return nil
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
		return d.unlinkControl(m.Name)
	}
	if control.Reserved(d.servedRoot(), m.Name) {
		if err := mayChange(d); err != nil {
			return err
		}
		return control.ErrRemove
	}
	fi, err := d.vol.Lstat(path.Join(d.path, m.Name))
	if err != nil {
		return err
	}
	if fi.IsDir() != (m.Flags&atRemoveDir != 0) {
		if fi.IsDir() {
			return syscall.EISDIR
		}
		return syscall.ENOTDIR
	}
	return d.unlink(d.path, m.Name)
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

// setattr changes what Tsetattr's valid mask names, checking permission as
// Linux does: mode and explicit times need the owner, a new owner needs
// root, a new group the owner in that group, a size write permission or
// a fid open for writing, times set to now the owner or write permission.
func (c *conn) setattr(m, r *Msg) error {
	f, st, err := c.fidStat(m.Fid)
	if err != nil {
		return err
	}
	if f.kind != volNode {
		return f.setattrControl(uint32(m.Attr.Valid))
	}
	a, valid, u := &m.Attr, uint32(m.Attr.Valid), f.user
	writable := u.may(st, mayWrite) || (f.file != nil && f.flags&syscall.O_ACCMODE != syscall.O_RDONLY)
	// Linux's client clears a file's set-ID bits after a write by someone
	// else with a mode change; that much anyone who may write may do.
	dropsSetID := a.Mode&0o7777 == st.Mode&0o7777&^(syscall.S_ISUID|syscall.S_ISGID) && writable
	symlink := st.Mode&syscall.S_IFMT == syscall.S_IFLNK
	switch {
	case symlink && valid&attrMode != 0:
		return syscall.EOPNOTSUPP // a symlink's mode cannot change
	case symlink && valid&setattrSize != 0:
		return syscall.EINVAL
	case valid&attrMode != 0 && !u.owns(st) && !dropsSetID,
		valid&attrUID != 0 && a.UID != st.UID && !u.root(),
		valid&attrGID != 0 && a.GID != st.GID && !(u.root() || (u.uid == st.UID && u.inGroup(a.GID))),
		valid&(setattrAtSet|setattrMtSet) != 0 && !u.owns(st),
		valid&(setattrAtime|setattrMtime) != 0 && !u.owns(st) && !writable:
		return syscall.EPERM
	case valid&setattrSize != 0 && !writable:
		return syscall.EACCES
	case valid&setattrSize != 0 && isDir(st):
		return syscall.EISDIR
	case valid&setattrSize != 0 && a.Size > 1<<62:
		return syscall.EFBIG
	}
	do := func(onFile func(*cowfs.File) error, onPath func() error) error {
		if f.file != nil {
			return onFile(f.file)
		}
		return onPath()
	}
	if valid&(attrUID|attrGID) != 0 {
		uid, gid := -1, -1
		if valid&attrUID != 0 {
			uid = int(a.UID)
		}
		if valid&attrGID != 0 {
			gid = int(a.GID)
		}
		if err := do(func(x *cowfs.File) error { return x.Chown(uid, gid) },
			func() error { return f.vol.Lchown(f.path, uid, gid) }); err != nil {
			return err
		}
	}
	if valid&attrMode != 0 {
		gid := st.GID
		if valid&attrGID != 0 {
			gid = a.GID
		}
		mode := u.chmodMode(gid, a.Mode&0o7777)
		if err := do(func(x *cowfs.File) error { return x.Chmod(mode) },
			func() error { return f.vol.Chmod(f.path, mode) }); err != nil {
			return err
		}
	}
	if valid&setattrSize != 0 {
		if err := do(func(x *cowfs.File) error { return x.Truncate(int64(a.Size)) },
			func() error { return f.vol.Truncate(f.path, int64(a.Size)) }); err != nil {
			return err
		}
	}
	if valid&(setattrAtime|setattrMtime) != 0 {
		var at, mt *time.Time // nil: leave as is
		now := time.Now()
		for _, c := range []struct {
			set, given uint32
			ts         Timespec
			t          **time.Time
		}{{setattrAtime, setattrAtSet, a.Atime, &at}, {setattrMtime, setattrMtSet, a.Mtime, &mt}} {
			if valid&c.set == 0 {
				continue
			}
			t := now
			if valid&c.given != 0 {
				if t, err = timeOf(c.ts); err != nil {
					return err
				}
			}
			*c.t = &t
		}
		if err := do(func(x *cowfs.File) error { return x.SetTimes(at, mt) },
			func() error { return f.vol.SetTimes(f.path, at, mt) }); err != nil {
			return err
		}
	}
	return nil
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
		if err := f.relist(); err != nil {
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
func (f *fid) relist() error {
	ents, err := f.list()
	if err != nil {
		return err
	}
	self, err := f.stat()
	if err != nil {
		return err
	}
	parent := self
	if up := f.walker(); !f.servedRoot() {
		if _, err := up.step(".."); err == nil {
			if st, err := up.stat(); err == nil {
				parent = st
			}
		}
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
func (x *xattrFid) commit(f *fid) error {
	if !x.create {
		return nil
	}
	if x.size == 0 {
		return f.vol.RemoveXattr(f.path, x.name)
	}
	if uint64(len(x.data)) != x.size {
		return perr(syscall.EINVAL, "extended attribute %s: %d bytes written of %d", x.name, len(x.data), x.size)
	}
	return f.vol.SetXattr(f.path, x.name, x.data, x.flags)
}

// xattrAccess checks the user's right to read or change extended
// attribute name of a file with st, as Linux does: "user." names follow
// the file's read and write bits; "trusted." ones are root's, and so is
// changing "security." ones; the rest (system.: ACLs) are readable by all
// and changeable by the owner, except that a default ACL on a file that is
// not a directory is refused before ownership counts (the engine answers
// EACCES, or nothing to remove).
func xattrAccess(u *cred, st *cowfs.Stat, name string, write bool) error {
	switch {
	case write && name == acl.DefaultXattr && st.Mode&syscall.S_IFMT != syscall.S_IFDIR:
	case strings.HasPrefix(name, "user."):
		want := uint32(mayRead)
		if write {
			want = mayWrite
		}
		if !u.may(st, want) {
			return syscall.EACCES
		}
	case strings.HasPrefix(name, "trusted."), write && strings.HasPrefix(name, "security."):
		if !u.root() {
			return syscall.EPERM
		}
	case write && !u.owns(st):
		return syscall.EPERM
	}
	return nil
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
	st, err := f.stat()
	if err != nil {
		return err
	}
	x := &xattrFid{}
	switch {
	case f.kind != volNode && m.Name != "":
		return syscall.ENODATA // the nodes of .cowfs have no extended attributes
	case f.kind != volNode:
	case m.Name == "":
		names, err := f.vol.ListXattr(f.path)
		if err != nil {
			return err
		}
		for _, n := range names {
			if strings.HasPrefix(n, "trusted.") && !f.user.root() {
				continue // hidden from others, as on Linux
			}
			x.data = append(append(x.data, n...), 0)
		}
	default:
		if err := xattrAccess(f.user, st, m.Name, false); err != nil {
			return err
		}
		if x.data, err = f.vol.GetXattr(f.path, m.Name); err != nil {
			return err
		}
	}
	nf := f.walker()
	nf.xattr = x
	c.fids[m.Newfid] = nf
	r.Size = uint64(len(x.data))
	return nil
}

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
	st, err := f.stat()
	if err != nil {
		return err
	}
	if err := xattrAccess(f.user, st, m.Name, true); err != nil {
		return err
	}
	flags := int(m.Flags) & (cowfs.XattrCreate | cowfs.XattrReplace)
	if m.Name == acl.AccessXattr && !f.user.root() && !f.user.inGroup(st.GID) {
		flags |= cowfs.XattrClearSGID // as Linux, for an owner outside the file's group
	}
	f.xattr = &xattrFid{create: true, name: m.Name, size: m.Size, flags: flags}
	return nil
}
