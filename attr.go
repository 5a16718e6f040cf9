package cowfs

import (
	"errors"
	"path"
	"syscall"
	"time"

	"github.com/cowfs/cowfs/internal/dirtree"
)

// Stat returns information about the file p names, following symlinks.
func (v *Volume) Stat(p string) (*FileInfo, error) { return v.stat("stat", p, true) }

// Lstat is Stat without following a final symlink.
func (v *Volume) Lstat(p string) (*FileInfo, error) { return v.stat("lstat", p, false) }

// stat is Stat (follow) or Lstat, reporting errors under op.
func (v *Volume) stat(op, p string, follow bool) (*FileInfo, error) {
	v.f.mu.Lock()
	defer v.f.mu.Unlock()
	x, err := v.lookup(op, p, follow)
	if err != nil {
		return nil, err
	}
	if err := x.flushBuf(); err != nil {
		return nil, wrapIO(op, p, err)
	}
	return x.info(path.Base("/" + p)), nil
}

// Chmod changes the permission bits.
func (v *Volume) Chmod(p string, mode uint32) error {
	return v.setattrPath("chmod", p, true, SetAttr{Mode: &mode})
}

// Chown changes the owner and group; -1 leaves one unchanged.
func (v *Volume) Chown(p string, uid, gid int) error { return v.chown("chown", p, true, uid, gid) }

// Lchown is Chown without following a final symlink.
func (v *Volume) Lchown(p string, uid, gid int) error { return v.chown("lchown", p, false, uid, gid) }

// chown is Chown (follow) or Lchown, reporting errors under op.
func (v *Volume) chown(op, p string, follow bool, uid, gid int) error {
	return v.setattrPath(op, p, follow, chownAttr(uid, gid))
}

// chownAttr is the SetAttr of a chown to uid and gid (-1: unchanged).
func chownAttr(uid, gid int) SetAttr {
	var a SetAttr
	if uid >= 0 {
		u := uint32(uid)
		a.UID = &u
	}
	if gid >= 0 {
		g := uint32(gid)
		a.GID = &g
	}
	return a
}

// Chtimes sets the access and modification times; a zero time leaves one
// unchanged, as with os.Chtimes (so the instant 0001-01-01T00:00:00Z
// itself, the zero time.Time, can only be set with SetTimes). Times are
// kept to the nanosecond, from MinTime to MaxTime.
func (v *Volume) Chtimes(p string, atime, mtime time.Time) error {
	return v.setattrPath("chtimes", p, true, SetAttr{Atime: omitZero(atime), Mtime: omitZero(mtime)})
}

// Lchtimes is Chtimes without following a final symlink.
func (v *Volume) Lchtimes(p string, atime, mtime time.Time) error {
	return v.setattrPath("lchtimes", p, false, SetAttr{Atime: omitZero(atime), Mtime: omitZero(mtime)})
}

// SetTimes sets the access and modification times of p, not following a
// final symlink, as utimensat(2) with AT_SYMLINK_NOFOLLOW: a nil time is
// left unchanged (UTIME_OMIT), and every other one is set, the zero
// time.Time too.
func (v *Volume) SetTimes(p string, atime, mtime *time.Time) error {
	return v.setattrPath("utimes", p, false, SetAttr{Atime: atime, Mtime: mtime})
}

// omitZero is nil for the zero time (Chtimes' "unchanged"), else &t.
func omitZero(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// Truncate changes a file's size.
func (v *Volume) Truncate(p string, size int64) error {
	return v.setattrPath("truncate", p, true, SetAttr{Size: &size})
}

// setattrPath applies a to the inode p names, as root.
func (v *Volume) setattrPath(op, p string, follow bool, a SetAttr) error {
	return v.atPath(op, p, follow, func(x *inode) error {
		return v.setattrAt(RootCred, op, p, x, a, false)
	})
}

// SetAttr is a change of a file's attributes, as setattr(2)-like calls
// make it: each field that is not nil is set.
type SetAttr struct {
	Mode  *uint32 // permission, set-ID and sticky bits (chmod)
	UID   *uint32 // owner (chown)
	GID   *uint32 // group (chown, chgrp)
	Size  *int64  // size of a regular file (truncate)
	Atime *time.Time
	Mtime *time.Time
	// TimesNow says that the times are the current time, as utimensat(2)
	// with UTIME_NOW or no times asks: then anyone who may write the file
	// may set them, where other times need its owner.
	TimesNow bool
}

// setattrAt applies a to x for c, as Linux's setattr_prepare and
// notify_change decide, checking everything before changing anything: a
// size needs write permission (unless openForWrite: through a file open
// for writing) and clears set-ID bits as a write does; an owner or group
// as Cred.mayChown says, clearing set-ID bits of a non-directory; a mode
// needs the owner and loses set-group-ID as Cred.chmodBits says; times as
// SetAttr.TimesNow says. It updates the change time (and, with a size,
// the modification time).
func (v *Volume) setattrAt(c Cred, op, p string, x *inode, a SetAttr, openForWrite bool) error {
	e := &x.ent
	if a.Size != nil {
		switch {
		case x.isDir():
			return errorf(op, p, syscall.EISDIR, nil)
		case e.Type() != dirtree.TypeReg:
			return errorf(op, p, syscall.EINVAL, nil)
		case *a.Size < 0:
			return errorf(op, p, syscall.EINVAL, errors.New("negative size"))
		}
		if !openForWrite {
			if err := c.may(op, p, e, MayWrite); err != nil {
				return err
			}
		}
	}
	if a.UID != nil || a.GID != nil {
		uid, gid := -1, -1
		if a.UID != nil {
			uid = int(*a.UID)
		}
		if a.GID != nil {
			gid = int(*a.GID)
		}
		if err := c.mayChown(op, p, e, uid, gid); err != nil {
			return err
		}
	}
	if a.Mode != nil && !c.dropsSetID(e, *a.Mode) {
		if err := c.mustOwn(op, p, e); err != nil {
			return err
		}
	}
	if a.Atime != nil || a.Mtime != nil {
		if a.TimesNow {
			if !c.owns(e) && !c.permits(e, MayWrite) {
				return errorf(op, p, syscall.EACCES, nil)
			}
		} else if err := c.mustOwn(op, p, e); err != nil {
			return err
		}
	}
	if a.UID != nil || a.GID != nil {
		c.chownKillPriv(e)
		if a.UID != nil {
			e.UID = *a.UID
		}
		if a.GID != nil {
			e.GID = *a.GID
		}
	}
	if a.Mode != nil {
		bits := c.chmodBits(e, *a.Mode)
		e.Mode = e.Mode&dirtree.TypeMask | bits
		chmodACL(e, bits)
	}
	if a.Size != nil {
		if err := x.truncate(*a.Size); err != nil {
			return wrapIO(op, p, err)
		}
		c.killPriv(e)
	}
	if a.Atime != nil {
		e.Atime = fromTime(*a.Atime)
	}
	if a.Mtime != nil {
		e.Mtime = fromTime(*a.Mtime)
	}
	x.stamp(a.Size != nil)
	return nil
}

// atPath runs change on the inode p names in a writable volume, under the
// FS lock.
func (v *Volume) atPath(op, p string, follow bool, change func(*inode) error) error {
	v.f.mu.Lock()
	defer v.f.mu.Unlock()
	if err := v.writable(op, p); err != nil {
		return err
	}
	x, err := v.lookup(op, p, follow)
	if err != nil {
		return err
	}
	return change(x)
}
