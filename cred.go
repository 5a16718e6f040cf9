package cowfs

import (
	"context"
	"errors"
	"slices"
	"strings"
	"syscall"

	"github.com/cowfs/cowfs/acl"
	"github.com/cowfs/cowfs/internal/dirtree"
)

// Cred is who asks for an operation: the identity a frontend serves. It
// travels in the operation's context (WithCred); the handle API (Inode)
// and the File methods that change a file read it from there.
//
// With Check, the engine decides as Linux does for a process with these
// IDs: it refuses what the permission bits and ACLs refuse (EACCES, EPERM),
// strips set-group-ID bits the caller's groups do not allow, and clears
// set-ID bits when a non-root caller writes. Without Check the caller
// vouches for all of that (the FUSE mount: the kernel, with
// default_permissions, checks permission and applies those rules before a
// request reaches the mount, and knows groups the request does not carry);
// the engine then applies only the rules that need no group membership:
// a new entry belongs to UID and to GID or its set-group-ID directory's
// group, a new directory inherits set-group-ID, and Umask applies unless a
// default ACL decides.
type Cred struct {
	UID    uint32   // the caller's (file system) user ID; 0 is root
	GID    uint32   // its (file system) group ID: the group of what it creates
	Groups []uint32 // its supplementary groups
	Umask  uint32   // its file mode creation mask
	Check  bool     // the engine checks permissions (see above)
	// KillSetID asks the engine to clear set-ID bits on this call's write,
	// truncation or change of owner as Linux does for a caller without
	// CAP_FSETID, even unchecked: the FUSE mount sets it when the kernel
	// leaves that to the file system (FUSE_HANDLE_KILLPRIV_V2) and says so
	// for the request.
	KillSetID bool
	// InGroup, if not nil, answers whether the caller is in a group that
	// is neither GID nor in Groups: for a caller whose supplementary
	// groups are costly to learn and seldom needed (the FUSE mount's,
	// read from /proc only when a set-ID rule asks).
	InGroup func(gid uint32) bool
}

// RootCred is the identity of a call whose context carries none: root,
// unchecked, with no umask. The path API (Volume's methods) runs as it.
var RootCred = Cred{}

type credKey struct{}

// WithCred returns a context carrying c.
func WithCred(ctx context.Context, c Cred) context.Context {
	return context.WithValue(ctx, credKey{}, c)
}

// CredFrom returns the identity ctx carries, RootCred if none.
func CredFrom(ctx context.Context) Cred {
	if c, ok := ctx.Value(credKey{}).(Cred); ok {
		return c
	}
	return RootCred
}

// Access bits, as in a mode's rwx triplets (and acl's Read, Write, Execute).
const (
	MayRead  = 4
	MayWrite = 2
	MayExec  = 1
)

func (c *Cred) root() bool { return c.UID == 0 }

// inGroup reports whether c is in group gid. An unchecked caller counts as
// a member of every group: the kernel has made the decisions that needed it.
func (c *Cred) inGroup(gid uint32) bool { return !c.Check || c.member(gid) }

// member reports whether c's groups include gid.
func (c *Cred) member(gid uint32) bool {
	return c.GID == gid || slices.Contains(c.Groups, gid) || c.InGroup != nil && c.InGroup(gid)
}

// permits reports whether c has every access bit of want on entry e: by its
// access ACL, if it has one beyond the mode (as Linux decides, package acl),
// else by its mode. Root may do anything but execute a file with no x bit.
func (c *Cred) permits(e *dirtree.Entry, want uint32) bool {
	if c.root() {
		return want&MayExec == 0 || e.IsDir() || e.Mode&0o111 != 0
	}
	if a := accessACL(e); a != nil {
		return a.Permits(e.UID, e.GID, c.UID, c.inGroup, want)
	}
	var bits uint32
	switch {
	case e.UID == c.UID:
		bits = e.Mode >> 6
	case c.inGroup(e.GID):
		bits = e.Mode >> 3
	default:
		bits = e.Mode
	}
	return bits&7&want == want
}

// Permits reports whether c has every access bit of want on a node st
// describes, by its ACL or mode, as the engine decides for its own nodes
// (an unchecked caller always may): for nodes a frontend makes up itself.
func (c Cred) Permits(st *Stat, want uint32) bool {
	if !c.Check {
		return true
	}
	if st.ACL != nil && !c.root() {
		return st.ACL.Permits(st.UID, st.GID, c.UID, c.inGroup, want)
	}
	return c.permits(&dirtree.Entry{Mode: st.Mode, UID: st.UID, GID: st.GID}, want)
}

// may fails with EACCES unless c has the access want on e (or is unchecked).
func (c *Cred) may(op, p string, e *dirtree.Entry, want uint32) error {
	if !c.Check || c.permits(e, want) {
		return nil
	}
	return errorf(op, p, syscall.EACCES, nil)
}

// owns reports whether c may change e's mode, times and ACLs: its owner or
// root (unchecked: always).
func (c *Cred) owns(e *dirtree.Entry) bool { return !c.Check || c.root() || e.UID == c.UID }

// mustOwn fails with EPERM unless c owns e.
func (c *Cred) mustOwn(op, p string, e *dirtree.Entry) error {
	if c.owns(e) {
		return nil
	}
	return errorf(op, p, syscall.EPERM, errors.New("not the owner"))
}

// dropsSetID reports whether a chmod of regular file e to mode only
// clears set-ID bits that a write by c would clear (killPriv), and c may
// write e: Linux's client sends such a chmod, as the writer, before a
// write (its file_remove_privs, which the kernel lets through
// unchecked), and the write would clear them anyway.
func (c *Cred) dropsSetID(e *dirtree.Entry, mode uint32) bool {
	if !c.Check || e.Type() != dirtree.TypeReg || !c.permits(e, MayWrite) {
		return false
	}
	after := *e
	c.killPriv(&after)
	return mode&0o7777 == after.Mode&0o7777 && after.Mode != e.Mode
}

// mayDelete fails unless c may remove or rename away the entry x of
// directory dir: it needs write and search permission on dir (EACCES) and,
// in a sticky directory, to own x or dir (EPERM).
func (c *Cred) mayDelete(op, p string, dir, x *dirtree.Entry) error {
	if err := c.may(op, p, dir, MayWrite|MayExec); err != nil {
		return err
	}
	if c.Check && dir.Mode&syscall.S_ISVTX != 0 && !c.root() && x.UID != c.UID && dir.UID != c.UID {
		return errorf(op, p, syscall.EPERM, errors.New("sticky directory"))
	}
	return nil
}

// mayHardlink fails with EPERM where Linux's protected_hardlinks (on by
// default) refuses a link to x: unless c owns it, x must be a regular file
// that is not set-user-ID, not set-group-ID with group execute, and that c
// may read and write.
func (c *Cred) mayHardlink(op, p string, x *dirtree.Entry) error {
	if !c.Check || c.root() || x.UID == c.UID {
		return nil
	}
	const sgidExec = syscall.S_ISGID | syscall.S_IXGRP
	if x.Type() != dirtree.TypeReg || x.Mode&syscall.S_ISUID != 0 || x.Mode&sgidExec == sgidExec ||
		!c.permits(x, MayRead|MayWrite) {
		return errorf(op, p, syscall.EPERM, errors.New("protected hard link"))
	}
	return nil
}

// newEntry sets the owner, group and set-group-ID bit of e, a new entry of
// directory dir that c makes, as Linux's inode_init_owner does: c's
// user, and the directory's group if it is set-group-ID (a new directory
// then is set-group-ID too), else c's group. A new non-directory that is
// set-group-ID with group execute, in a group c is not in, loses the bit
// unless c is root (mode_strip_sgid).
func (c *Cred) newEntry(dir, e *dirtree.Entry) {
	e.UID, e.GID = c.UID, c.GID
	if dir.Mode&syscall.S_ISGID != 0 {
		e.GID = dir.GID
		if e.IsDir() {
			e.Mode |= syscall.S_ISGID
		}
	}
	const sgidExec = syscall.S_ISGID | syscall.S_IXGRP
	if e.Type() != dirtree.TypeLink && !e.IsDir() && e.Mode&sgidExec == sgidExec && !c.root() && !c.inGroup(e.GID) {
		e.Mode &^= syscall.S_ISGID
	}
}

// chmodBits is what a chmod by c to mode sets on e: mode without the
// set-group-ID bit unless c is root or in e's group, as Linux's
// setattr_prepare decides (for directories too).
func (c *Cred) chmodBits(e *dirtree.Entry, mode uint32) uint32 {
	if !c.root() && !c.inGroup(e.GID) {
		mode &^= syscall.S_ISGID
	}
	return mode & 0o7777
}

// mayChown fails with EPERM unless c may give e owner uid and group gid
// (negative: unchanged), as Linux's chown_ok and chgrp_ok: root may; the
// owner may "change" the owner to itself and the group to one of its own;
// no one else may, even to what the file has.
func (c *Cred) mayChown(op, p string, e *dirtree.Entry, uid, gid int) error {
	if !c.Check || c.root() {
		return nil
	}
	if uid >= 0 && (e.UID != c.UID || uint32(uid) != e.UID) {
		return errorf(op, p, syscall.EPERM, errors.New("only root gives files away"))
	}
	if gid >= 0 && (e.UID != c.UID || uint32(gid) != e.GID && !c.inGroup(uint32(gid))) {
		return errorf(op, p, syscall.EPERM, errors.New("not the owner, or not in that group"))
	}
	return nil
}

// killPriv clears the set-ID bits of regular file e that a write or
// truncation by c clears, as Linux's file_remove_privs: for a checked
// caller other than root, or one that asks (KillSetID), set-user-ID, and
// set-group-ID if the file is group executable or c is not in its group.
// An unchecked caller's kernel has done it already unless it asks.
func (c *Cred) killPriv(e *dirtree.Entry) bool {
	if !c.KillSetID && (!c.Check || c.root()) || e.Type() != dirtree.TypeReg {
		return false
	}
	old := e.Mode
	e.Mode &^= syscall.S_ISUID
	if e.Mode&syscall.S_ISGID != 0 && (e.Mode&syscall.S_IXGRP != 0 || !c.member(e.GID)) {
		e.Mode &^= syscall.S_ISGID
	}
	return e.Mode != old
}

// chownKillPriv clears what a change of owner or group of e clears, as
// Linux's chown_common and setattr_should_drop_sgid do: on a
// non-directory, set-user-ID, and set-group-ID if the file is group
// executable or (unless c is root) c is not in its group. It looks at e
// before the change. An unchecked caller's kernel has sent that change
// itself, unless it asks (KillSetID).
func (c *Cred) chownKillPriv(e *dirtree.Entry) {
	if !c.Check && !c.KillSetID || e.IsDir() {
		return
	}
	e.Mode &^= syscall.S_ISUID
	if e.Mode&syscall.S_ISGID != 0 && (e.Mode&syscall.S_IXGRP != 0 || !c.root() && !c.member(e.GID)) {
		e.Mode &^= syscall.S_ISGID
	}
}

// xattrAccess fails unless c may read (or, with write, change) extended
// attribute name of e, as Linux's xattr_permission: "trusted." needs root;
// "security." and "system." need nothing (but root to set "security.");
// "user." exists only on regular files and directories, and on a sticky
// directory only its owner may change them; otherwise read or write
// permission. The ACL attributes are decided by their own rules
// (ownership, checked by the caller).
func (c *Cred) xattrAccess(op, p string, e *dirtree.Entry, name string, write bool) error {
	if !c.Check {
		return nil
	}
	if name == acl.AccessXattr || name == acl.DefaultXattr {
		if write {
			return c.mustOwn(op, p, e)
		}
		return nil
	}
	switch {
	case strings.HasPrefix(name, "security."), strings.HasPrefix(name, "system."):
		// No check by the VFS; Linux's capability module lets only
		// CAP_SYS_ADMIN set "security." attributes.
		if write && strings.HasPrefix(name, "security.") && !c.root() {
			return errorf(op, p, syscall.EPERM, nil)
		}
		return nil
	case strings.HasPrefix(name, "trusted."):
		if c.root() {
			return nil
		}
		if write {
			return errorf(op, p, syscall.EPERM, nil)
		}
		return errorf(op, p, syscall.ENODATA, nil)
	case strings.HasPrefix(name, "user."):
		if e.Type() != dirtree.TypeReg && !e.IsDir() {
			if write {
				return errorf(op, p, syscall.EPERM, nil)
			}
			return errorf(op, p, syscall.ENODATA, nil)
		}
		if write && e.IsDir() && e.Mode&syscall.S_ISVTX != 0 && !c.owns(e) {
			return errorf(op, p, syscall.EPERM, nil)
		}
	}
	want := uint32(MayRead)
	if write {
		want = MayWrite
	}
	return c.may(op, p, e, want)
}
