package cowfs

import (
	"path"
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
	return v.setattr("chmod", p, true, chmodInode(mode))
}

// chmodInode is the change Chmod makes: the permission bits, and the
// stored access ACL's entries that show them.
func chmodInode(mode uint32) func(*inode) error {
	return func(x *inode) error {
		x.ent.Mode = x.ent.Mode&dirtree.TypeMask | mode&0o7777
		chmodACL(&x.ent, mode)
		return nil
	}
}

// Chown changes the owner and group; -1 leaves one unchanged.
func (v *Volume) Chown(p string, uid, gid int) error { return v.chown("chown", p, true, uid, gid) }

// Lchown is Chown without following a final symlink.
func (v *Volume) Lchown(p string, uid, gid int) error { return v.chown("lchown", p, false, uid, gid) }

// chown is Chown (follow) or Lchown, reporting errors under op.
func (v *Volume) chown(op, p string, follow bool, uid, gid int) error {
	return v.setattr(op, p, follow, chownInode(uid, gid))
}

// chownInode is the change Chown makes; a negative uid or gid is left.
func chownInode(uid, gid int) func(*inode) error {
	return func(x *inode) error {
		if uid >= 0 {
			x.ent.UID = uint32(uid)
		}
		if gid >= 0 {
			x.ent.GID = uint32(gid)
		}
		return nil
	}
}

// Chtimes sets the access and modification times; a zero time leaves one
// unchanged, as with os.Chtimes (so the instant 0001-01-01T00:00:00Z
// itself, the zero time.Time, can only be set with SetTimes). Times are
// kept to the nanosecond, from MinTime to MaxTime.
func (v *Volume) Chtimes(p string, atime, mtime time.Time) error {
	return v.setattr("chtimes", p, true, timesInode(omitZero(atime), omitZero(mtime)))
}

// Lchtimes is Chtimes without following a final symlink.
func (v *Volume) Lchtimes(p string, atime, mtime time.Time) error {
	return v.setattr("lchtimes", p, false, timesInode(omitZero(atime), omitZero(mtime)))
}

// SetTimes sets the access and modification times of p, not following a
// final symlink, as utimensat(2) with AT_SYMLINK_NOFOLLOW: a nil time is
// left unchanged (UTIME_OMIT), and every other one is set, the zero
// time.Time too.
func (v *Volume) SetTimes(p string, atime, mtime *time.Time) error {
	return v.setattr("utimes", p, false, timesInode(atime, mtime))
}

// omitZero is nil for the zero time (Chtimes' "unchanged"), else &t.
func omitZero(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// timesInode is the change SetTimes makes; a nil time is left.
func timesInode(atime, mtime *time.Time) func(*inode) error {
	return func(x *inode) error {
		if atime != nil {
			x.ent.Atime = fromTime(*atime)
		}
		if mtime != nil {
			x.ent.Mtime = fromTime(*mtime)
		}
		return nil
	}
}

// Truncate changes a file's size.
func (v *Volume) Truncate(p string, size int64) error {
	return v.setattr("truncate", p, true, func(x *inode) error { return x.truncate(size) })
}

// setattr applies change to the inode p names and updates its ctime.
func (v *Volume) setattr(op, p string, follow bool, change func(*inode) error) error {
	v.f.mu.Lock()
	defer v.f.mu.Unlock()
	if err := v.writable(op, p); err != nil {
		return err
	}
	x, err := v.lookup(op, p, follow)
	if err != nil {
		return err
	}
	if err := change(x); err != nil {
		return wrapIO(op, p, err)
	}
	x.stamp(false)
	return nil
}
