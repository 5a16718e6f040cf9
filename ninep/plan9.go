package ninep

import (
	"context"
	"math"
	"os"
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
		if err := f.mayRemove(c.rctx); err != nil {
			return err
		}
	}
	if m.OMode&3 == plan9.OEXEC {
		st, err := f.stat(c.rctx)
		if err != nil {
			return err
		}
		if isDir(st) {
			return syscall.EACCES
		}
		if err := f.may(c.rctx, cowfs.MayExec); err != nil {
			return err
		}
	}
	if err := c.openAs(f, openFlags(m.OMode), r); err != nil {
		return err
	}
	f.rclose = m.OMode&oRclose != 0
	return nil
}

// mayRemove checks, for ORCLOSE, that the user may change the directory
// holding f's file (the engine decides the rest at the removal).
func (f *fid) mayRemove(ctx context.Context) error {
	if f.kind != volNode || f.atRoot() {
		return syscall.EPERM
	}
	d, _, err := f.parent(ctx)
	if err != nil {
		return err
	}
	defer d.clunk(ctx)
	return mayChange(ctx, d)
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
	ctx := f.asGroup(c.rctx, dir.GID)
	if m.Perm&plan9.DMDIR == 0 {
		mode := m.Perm & (^uint32(0o777) | dir.Mode&0o666) & 0o777
		if r.Qid, err = f.createFile(ctx, m.Name, openFlags(m.OMode&^oTrunc), mode); err != nil {
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
	if err := f.makeIn(c.rctx, m.Name); err != nil {
		return err
	}
	n, err := f.node.Mkdir(ctx, m.Name, m.Perm&(^uint32(0o777)|dir.Mode&0o777)&0o777)
	if err != nil {
		return err
	}
	fi, err := n.Stat(ctx)
	if err != nil {
		n.Release()
		return err
	}
	f.setNode(f.vol, n)
	r.Qid = f.qidOf(f.mapped(fi.Stat()))
	f.isOpen, f.flags, f.dir = true, os.O_RDONLY, &dirList{}
	f.rclose = m.OMode&oRclose != 0
	r.Iounit = c.msize - ioHeader
	return nil
}

func (c *conn) stat(m, r *Msg) error {
	f, st, err := c.fidStat(m.Fid)
	if err != nil {
		return err
	}
	name, err := f.name(c.rctx)
	if err != nil {
		return err
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
		ents, err := f.list(c.rctx)
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
// Twstat that touches nothing syncs the file. It is all or nothing: the
// rename is done first (refused if the name is taken), then the rest in
// one engine call that checks all before it changes anything; if that
// fails, the rename is undone.
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
	st, err := f.stat(c.rctx)
	if err != nil {
		return err
	}
	if d.Type != ^uint16(0) || d.Dev != ^uint32(0) || d.Atime != ^uint32(0) ||
		d.Qid.Type != ^uint8(0) || d.Qid.Vers != ^uint32(0) || d.Qid.Path != ^uint64(0) || d.Muid != "" {
		return perr(syscall.EPERM, "wstat cannot change type, dev, qid, atime or muid")
	}
	var sa cowfs.SetAttr
	if d.Mode != ^plan9.Perm(0) {
		if (d.Mode&plan9.DMDIR != 0) != isDir(st) {
			return perr(syscall.EPERM, "wstat cannot change the directory bit")
		}
		if st.Mode&syscall.S_IFMT == syscall.S_IFLNK {
			return syscall.EOPNOTSUPP // a symlink's mode cannot change
		}
		// Plan 9 has no set-ID bits: they stay as they are.
		mode := uint32(d.Mode&0o777) | st.Mode&0o7000
		sa.Mode = &mode
	}
	if d.Gid != "" {
		gid, err := gidOf(d.Gid)
		if err != nil {
			return err
		}
		if gid != st.GID {
			sa.GID = &gid
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
		if d.Length > 1<<62 {
			return syscall.EFBIG
		}
		size := int64(d.Length)
		sa.Size = &size
	}
	if d.Mtime != ^uint32(0) {
		mt := time.Unix(int64(d.Mtime), 0)
		sa.Mtime = &mt
	}
	changes := sa.Mode != nil || sa.GID != nil || sa.Size != nil || sa.Mtime != nil
	renamed := false
	var dir *fid
	var oldName string
	if d.Name != "" {
		if f.atRoot() {
			return syscall.EBUSY
		}
		if dir, oldName, err = f.parent(c.rctx); err != nil {
			return err
		}
		defer dir.clunk(c.rctx)
		if d.Name != oldName {
			if err := c.move(dir, oldName, dir, d.Name, cowfs.RenameNoReplace); err != nil {
				return err
			}
			renamed = true
		}
	}
	if changes {
		if _, err := f.node.Setattr(f.as(c.rctx), sa); err != nil {
			if renamed {
				c.move(dir, d.Name, dir, oldName, cowfs.RenameNoReplace)
			}
			return err
		}
	}
	if !changes && d.Gid == "" && !renamed {
		if f.file != nil {
			return f.file.Sync()
		}
		return c.srv.FS.Commit()
	}
	return nil
}
