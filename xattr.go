package cowfs

import (
	"errors"
	"syscall"

	"github.com/cowfs/cowfs/acl"
	"github.com/cowfs/cowfs/internal/dirtree"
)

// Xattr flags for SetXattr.
const (
	XattrCreate  = 1 // fail with EEXIST if the attribute exists
	XattrReplace = 2 // fail with ENODATA if it does not
	// XattrClearSGID, with acl.AccessXattr, also clears the set-group-ID
	// bit: the caller is neither in the file's group nor privileged (the
	// kernel's FUSE_SETXATTR_ACL_KILL_SGID).
	XattrClearSGID = 1 << 8
)

// SetXattr sets an extended attribute, with Linux's limits and errors: a
// name of 1 to 255 bytes (ERANGE), a value of at most 64 KiB (E2BIG), and
// at most 64 KiB of names in a file's list of attributes, each with a NUL
// (ENOSPC when a new one would not fit: what listxattr(2) can return). The
// POSIX ACL attributes acl.AccessXattr and acl.DefaultXattr follow Linux's
// rules (package acl): the value must be a valid ACL, an access ACL sets
// the permission bits and is stored only when the mode cannot express it,
// and only a directory has a default ACL. A value longer than
// dirtree.XattrInlineMax is kept in a blob of its own (see docs/design.md).
func (v *Volume) SetXattr(p, name string, value []byte, flags int) error {
	if err := xattrName("setxattr", p, name); err != nil {
		return err
	}
	if len(value) > dirtree.MaxXattrValue {
		return errorf("setxattr", p, syscall.E2BIG, errors.New("attribute values are limited to 64 KiB"))
	}
	return v.xattrPath("setxattr", p, func(x *inode) error {
		return v.setXattrAt(RootCred, "setxattr", p, x, name, value, flags)
	})
}

// xattrPath runs change on the inode p names (a final symlink is not
// followed) and updates its change time if change succeeds.
func (v *Volume) xattrPath(op, p string, change func(*inode) error) error {
	return v.atPath(op, p, false, func(x *inode) error {
		if err := change(x); err != nil {
			return wrapIO(op, p, err)
		}
		x.stamp(false)
		return nil
	})
}

// setXattrAt is SetXattr of x for c (Cred.xattrAccess); the caller updates
// the change time.
func (v *Volume) setXattrAt(c Cred, op, p string, x *inode, name string, value []byte, flags int) error {
	if err := xattrName(op, p, name); err != nil {
		return err
	}
	if len(value) > dirtree.MaxXattrValue {
		return errorf(op, p, syscall.E2BIG, errors.New("attribute values are limited to 64 KiB"))
	}
	if err := c.xattrAccess(op, p, &x.ent, name, true); err != nil {
		return err
	}
	if name == acl.AccessXattr || name == acl.DefaultXattr {
		a, err := acl.Decode(value)
		if err != nil {
			return errorf(op, p, errnoOf(err), err)
		}
		clear := flags&XattrClearSGID != 0 || (c.Check && !c.root() && !c.inGroup(x.ent.GID))
		return setACLEntry(&x.ent, name, a, clear, p)
	}
	_, exists := x.ent.Xattr(name)
	if exists && flags&XattrCreate != 0 {
		return errorf(op, p, syscall.EEXIST, nil)
	}
	if !exists && flags&XattrReplace != 0 {
		return errorf(op, p, syscall.ENODATA, nil)
	}
	if err := listRoom(&x.ent, name, p); err != nil {
		return err
	}
	if x.ent.KeepInline(name, len(value)) {
		x.ent.PutXattr(dirtree.Inline(name, value), false)
		return nil
	}
	id, err := v.f.st.Put(v.f.ioCtx(), value)
	if err != nil {
		return wrapIO(op, p, err)
	}
	v.f.fresh[id] = true
	x.ent.PutXattr(dirtree.Xattr{Name: name, Blob: id, Size: len(value)}, false)
	return nil
}

// xattrName fails with ERANGE, as Linux does before anything else, for an
// attribute name that is empty or longer than 255 bytes.
func xattrName(op, p, name string) error {
	if name == "" || len(name) > dirtree.MaxXattrName {
		return errorf(op, p, syscall.ERANGE, errors.New("attribute names are 1 to 255 bytes"))
	}
	return nil
}

// GetXattr returns an extended attribute (ENODATA if absent; ERANGE for a
// name no attribute can have).
func (v *Volume) GetXattr(p, name string) ([]byte, error) {
	v.f.mu.Lock()
	defer v.f.mu.Unlock()
	if err := xattrName("getxattr", p, name); err != nil {
		return nil, err
	}
	x, err := v.lookup("getxattr", p, false)
	if err != nil {
		return nil, err
	}
	return v.getXattrAt(RootCred, "getxattr", p, x, name)
}

// getXattrAt is GetXattr of x for c.
func (v *Volume) getXattrAt(c Cred, op, p string, x *inode, name string) ([]byte, error) {
	if err := xattrName(op, p, name); err != nil {
		return nil, err
	}
	if x.ent.Type() == dirtree.TypeLink && (name == acl.AccessXattr || name == acl.DefaultXattr) {
		return nil, errorf(op, p, syscall.EOPNOTSUPP, errors.New("symlinks have no ACLs"))
	}
	if err := c.xattrAccess(op, p, &x.ent, name, false); err != nil {
		return nil, err
	}
	a, ok := x.ent.Xattr(name)
	if !ok {
		return nil, errorf(op, p, syscall.ENODATA, nil)
	}
	val, err := v.f.xattrValue(a)
	if err != nil {
		return nil, wrapIO(op, p, err)
	}
	return append([]byte{}, val...), nil
}

// xattrValue returns the value of attribute a, reading its blob if it has
// one (through the data cache). The caller holds f.mu, so no commit
// deletes the blob meanwhile.
func (f *FS) xattrValue(a dirtree.Xattr) ([]byte, error) {
	if a.Blob.IsZero() {
		return a.Value, nil
	}
	b, err := f.blob(f.ioCtx(), a.Blob)
	if err != nil {
		return nil, err
	}
	if len(b) != a.Size {
		return nil, corrupt("attribute %s: blob %s holds %d bytes, its entry says %d", a.Name, a.Blob.Short(), len(b), a.Size)
	}
	return b, nil
}

// ListXattr returns the names of a file's extended attributes, sorted.
func (v *Volume) ListXattr(p string) ([]string, error) {
	v.f.mu.Lock()
	defer v.f.mu.Unlock()
	x, err := v.lookup("listxattr", p, false)
	if err != nil {
		return nil, err
	}
	return x.xattrNames(), nil
}

// xattrNames lists x's attribute names, sorted.
func (x *inode) xattrNames() []string {
	var names []string
	for _, a := range x.ent.Xattrs {
		names = append(names, a.Name)
	}
	return names
}

// RemoveXattr removes an extended attribute (ENODATA if absent, ERANGE
// for a name no attribute can have; removing an ACL that is not there
// succeeds, as on ext4, and leaves the mode).
func (v *Volume) RemoveXattr(p, name string) error {
	if err := xattrName("removexattr", p, name); err != nil {
		return err
	}
	return v.xattrPath("removexattr", p, func(x *inode) error {
		return removeXattrAt(RootCred, "removexattr", p, x, name)
	})
}

// removeXattrAt is RemoveXattr of x for c; the caller updates the change
// time.
func removeXattrAt(c Cred, op, p string, x *inode, name string) error {
	if err := xattrName(op, p, name); err != nil {
		return err
	}
	if err := c.xattrAccess(op, p, &x.ent, name, true); err != nil {
		return err
	}
	if name == acl.AccessXattr || name == acl.DefaultXattr {
		return setACLEntry(&x.ent, name, nil, false, p)
	}
	if !x.ent.SetXattr(name, nil) {
		return errorf(op, p, syscall.ENODATA, nil)
	}
	return nil
}
