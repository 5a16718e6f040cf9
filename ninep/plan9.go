package ninep

import (
	"math"
	"os"
	"path"
	"syscall"
	"time"

	"9fans.net/go/plan9"

	"github.com/cowfs/cowfs"
)

// The 9P2000 requests that 9P2000.L replaces: Topen, Tcreate, Tstat,
// Twstat, and Tread of a directory (stat records). Stat records are
// encoded with 9fans.net/go/plan9's Dir.

// 9P2000 open mode bits.
const (
	oTrunc  = 0x10
	oRclose = 0x40
)

// openFlags maps a 9P2000 open mode to os flags; OEXEC reads.
func openFlags(mode uint8) int {
	fl := os.O_RDONLY
	switch mode & 3 {
	case plan9.OWRITE:
		fl = os.O_WRONLY
	case plan9.ORDWR:
		fl = os.O_RDWR
	}
	if mode&oTrunc != 0 {
		fl |= os.O_TRUNC
	}
	return fl
}

func (c *conn) open(m, r *Msg) error {
	f, err := c.fid(m.Fid)
	if err != nil {
		return err
	}
	if m.OMode&^(3|oTrunc|oRclose) != 0 {
		return perr(syscall.EINVAL, "bad open mode %#x", m.OMode)
	}
	if m.OMode&oRclose != 0 {
		if err := f.mayRemove(); err != nil {
			return err
		}
	}
	if m.OMode&3 == plan9.OEXEC {
		st, err := f.stat()
		if err != nil {
			return err
		}
		if !f.user.may(st, mayExec) || isDir(st) {
			return syscall.EACCES
		}
	}
	if err := c.openAs(f, openFlags(m.OMode), r); err != nil {
		return err
	}
	f.rclose = m.OMode&oRclose != 0
	return nil
}

// mayRemove checks, for ORCLOSE, that the user may remove f's file.
func (f *fid) mayRemove() error {
	if f.kind != volNode || f.path == "." {
		return syscall.EPERM
	}
	dir, err := f.vol.Lstat(path.Dir(f.path))
	if err != nil {
		return err
	}
	x, err := f.stat()
	if err != nil {
		return err
	}
	if !f.user.mayUnlink(dir.Stat(), x) {
		return syscall.EACCES
	}
	return nil
}

// create makes a file or directory with Plan 9's rules: the group is the
// directory's, and the permission bits are limited by the directory's.
func (c *conn) create(m, r *Msg) error {
	f, dir, err := c.fidStat(m.Fid)
	if err != nil {
		return err
	}
	if m.Perm&(plan9.DMSYMLINK|plan9.DMDEVICE|plan9.DMNAMEDPIPE|plan9.DMSOCKET|plan9.DMAUTH|plan9.DMMOUNT) != 0 {
		return perr(syscall.EINVAL, "9P2000 create makes files and directories only")
	}
	if m.Perm&plan9.DMDIR == 0 {
		mode := m.Perm & (^uint32(0o777) | dir.Mode&0o666) & 0o777
		if r.Qid, err = f.createFile(m.Name, openFlags(m.OMode&^oTrunc), mode, dir.GID); err != nil {
			return err
		}
		f.rclose = m.OMode&oRclose != 0
		r.Iounit = c.msize - ioHeader
		return nil
	}
	if f.opened() {
		return perr(syscall.EBADF, "fid already open")
	}
	if m.OMode&3 != plan9.OREAD || m.OMode&oTrunc != 0 {
		return syscall.EISDIR
	}
	_, p, err := f.makeIn(m.Name)
	if err != nil {
		return err
	}
	if err := f.vol.Mkdir(p, mkdirMode(dir, m.Perm&(^uint32(0o777)|dir.Mode&0o777)&0o777)); err != nil {
		return err
	}
	if r.Qid, err = f.made(p, dir.GID); err != nil {
		return err
	}
	f.path, f.isOpen, f.flags, f.dir = p, true, os.O_RDONLY, &dirList{}
	f.rclose = m.OMode&oRclose != 0
	r.Iounit = c.msize - ioHeader
	return nil
}

func (c *conn) stat(m, r *Msg) error {
	f, st, err := c.fidStat(m.Fid)
	if err != nil {
		return err
	}
	name := path.Base(f.describe())
	if f.kind == volNode && f.path == "." {
		name = "/"
		if f.snap != nil {
			name = f.snap.Name()
		}
	}
	r.Stat, err = c.dirOf(name, st).Bytes()
	return err
}

// plan9Time is t as 9P2000's stat has it: unsigned 32-bit seconds since
// 1970, which end in 2106. A time before 1970 is 0, one after the end is
// the last second (2106-02-07T06:28:15Z), as Plan 9 cannot say more.
func plan9Time(t time.Time) uint32 {
	return uint32(min(max(t.Unix(), 0), math.MaxUint32))
}

// dirOf describes a file as a 9P2000 directory entry, with user and group
// names from the machine's user database.
func (c *conn) dirOf(name string, st *cowfs.Stat) *plan9.Dir {
	u := &c.srv.users
	q := qidOf(st, true)
	d := &plan9.Dir{
		Qid:    plan9.Qid{Path: q.Path, Vers: q.Vers, Type: q.Type},
		Mode:   plan9.Perm(st.Mode & 0o777),
		Atime:  plan9Time(st.Atime),
		Mtime:  plan9Time(st.Mtime),
		Length: uint64(st.Size),
		Name:   name,
		Uid:    u.userName(st.UID),
		Gid:    u.groupName(st.GID),
		Muid:   u.userName(st.UID),
	}
	switch st.Mode & syscall.S_IFMT {
	case syscall.S_IFDIR:
		d.Mode |= plan9.DMDIR
		d.Length = 0
	case syscall.S_IFLNK:
		d.Mode |= plan9.DMSYMLINK
	case syscall.S_IFIFO:
		d.Mode |= plan9.DMNAMEDPIPE
	case syscall.S_IFSOCK:
		d.Mode |= plan9.DMSOCKET
	case syscall.S_IFCHR, syscall.S_IFBLK:
		d.Mode |= plan9.DMDEVICE
	}
	return d
}

// readStats answers a 9P2000 Tread of a directory: whole stat records, the
// offset being 0 (list anew) or where the previous read ended.
func (c *conn) readStats(f *fid, off uint64, n uint32) ([]byte, error) {
	d := f.dir
	if off == 0 {
		ents, err := f.list()
		if err != nil {
			return nil, err
		}
		d.ents, d.off, d.next = ents, 0, 0
	} else if off != d.off {
		return nil, perr(syscall.EINVAL, "bad offset %d in directory read (want %d)", off, d.off)
	}
	buf := c.scratch()[:0]
	for ; d.next < len(d.ents); d.next++ {
		e := d.ents[d.next]
		b, err := c.dirOf(e.name, e.st).Bytes()
		if err != nil {
			return nil, err
		}
		if uint32(len(buf)+len(b)) > n {
			if len(buf) == 0 {
				return nil, perr(syscall.EINVAL, "read count %d too small for a directory entry", n)
			}
			break
		}
		buf = append(buf, b...)
	}
	d.off += uint64(len(buf))
	return buf, nil
}

// wstat changes what a Twstat asks: the name (a rename within the
// directory), the permission bits, the group, the length and the
// modification time. Fields at their "don't touch" values are kept; a
// Twstat that touches nothing syncs the file.
func (c *conn) wstat(m, r *Msg) error {
	f, err := c.fid(m.Fid)
	if err != nil {
		return err
	}
	d, err := plan9.UnmarshalDir(m.Stat)
	if err != nil {
		return perr(syscall.EINVAL, "bad stat in Twstat: %v", err)
	}
	if f.kind != volNode {
		return syscall.EPERM
	}
	st, err := f.stat()
	if err != nil {
		return err
	}
	u, v := f.user, f.vol
	if d.Type != ^uint16(0) || d.Dev != ^uint32(0) || d.Atime != ^uint32(0) ||
		d.Qid.Type != ^uint8(0) || d.Qid.Vers != ^uint32(0) || d.Qid.Path != ^uint64(0) || d.Muid != "" {
		return perr(syscall.EPERM, "wstat cannot change type, dev, qid, atime or muid")
	}
	if d.Mode != ^plan9.Perm(0) {
		if (d.Mode&plan9.DMDIR != 0) != isDir(st) {
			return perr(syscall.EPERM, "wstat cannot change the directory bit")
		}
		if !u.owns(st) {
			return syscall.EPERM
		}
		if st.Mode&syscall.S_IFMT == syscall.S_IFLNK {
			return syscall.EOPNOTSUPP // a symlink's mode cannot change
		}
	}
	gid := uint32(NoUname)
	if d.Gid != "" {
		if gid, err = gidOf(d.Gid); err != nil {
			return err
		}
		if gid != st.GID && !(u.root() || (u.uid == st.UID && u.inGroup(gid))) {
			return syscall.EPERM
		}
	}
	if d.Uid != "" {
		uid, err := uidOf(d.Uid)
		if err != nil {
			return err
		}
		if uid != st.UID {
			return perr(syscall.EPERM, "wstat cannot change the owner")
		}
	}
	if d.Length != ^uint64(0) {
		if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
			return syscall.EINVAL
		}
		if !u.may(st, mayWrite) {
			return syscall.EACCES
		}
		if d.Length > 1<<62 {
			return syscall.EFBIG
		}
	}
	if d.Mtime != ^uint32(0) && !u.owns(st) {
		return syscall.EPERM
	}
	rename := d.Name != "" && d.Name != path.Base(f.path)
	if rename {
		if f.path == "." {
			return syscall.EBUSY
		}
		if err := validName(d.Name); err != nil {
			return err
		}
		dir := f.walker()
		dir.path = path.Dir(f.path)
		dst, to, err := dir.makeIn(d.Name)
		if err != nil {
			return err
		}
		if !u.mayUnlink(dst, st) {
			return syscall.EACCES // the sticky bit
		}
		// Twstat is all or nothing: an existing target fails it before
		// anything changes.
		if _, err := v.Lstat(to); err == nil {
			return syscall.EEXIST
		}
	}
	// Everything is checked: make the changes.
	if d.Mode != ^plan9.Perm(0) {
		newGid := st.GID
		if gid != NoUname {
			newGid = gid
		}
		if err := v.Chmod(f.path, u.chmodMode(newGid, uint32(d.Mode&0o777)|st.Mode&0o7000)); err != nil {
			return err
		}
	}
	if gid != NoUname && gid != st.GID {
		if err := v.Lchown(f.path, -1, int(gid)); err != nil {
			return err
		}
	}
	if d.Length != ^uint64(0) {
		if err := v.Truncate(f.path, int64(d.Length)); err != nil {
			return err
		}
	}
	if d.Mtime != ^uint32(0) {
		mt := time.Unix(int64(d.Mtime), 0)
		if err := v.SetTimes(f.path, nil, &mt); err != nil {
			return err
		}
	}
	if rename {
		to := path.Join(path.Dir(f.path), d.Name)
		if err := v.Rename(f.path, to, cowfs.RenameNoReplace); err != nil {
			return err
		}
		c.renamed(v, f.path, to)
	}
	if d.Mode == ^plan9.Perm(0) && gid == NoUname && d.Length == ^uint64(0) && d.Mtime == ^uint32(0) && !rename {
		if f.file != nil {
			return f.file.Sync()
		}
		return c.srv.FS.Commit()
	}
	return nil
}
