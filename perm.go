package cowfs

import (
	"errors"
	"syscall"

	"github.com/cowfs/cowfs/acl"
	"github.com/cowfs/cowfs/internal/dirtree"
)

// POSIX ACLs live in the entry's extended attributes acl.AccessXattr and
// acl.DefaultXattr, in their xattr form, and the engine applies Linux's
// rules (package acl) whichever frontend asks: setting an access ACL sets
// the permission bits and stores only what the mode cannot say, chmod
// rewrites a stored ACL's mask, and an entry created in a directory with a
// default ACL inherits it.

// A CreateOption adjusts how a call that makes an entry (OpenFile with
// O_CREATE, Mkdir, Mknod) sets it up.
type CreateOption func(*createOpts)

type createOpts struct {
	umask uint32
}

// Umask applies the creating process's file mode creation mask to the new
// entry's permission bits, unless its directory has a default ACL, which
// decides them instead, as on Linux. Without it the bits are used as given
// (still cut down by a default ACL).
func Umask(mask uint32) CreateOption {
	return func(o *createOpts) { o.umask = mask & 0o777 }
}

// optsCred is the identity a path-API call that creates runs as: RootCred
// with the umask opts give.
func optsCred(opts []CreateOption) Cred {
	var o createOpts
	for _, f := range opts {
		f(&o)
	}
	c := RootCred
	c.Umask = o.umask
	return c
}

// inherit sets up the permission bits and ACLs of the new entry e of
// directory dir: dir's default ACL, if it has one, cuts the bits down and
// becomes e's access ACL (and, for a directory, its default ACL too);
// otherwise umask applies. Symlinks keep their bits.
func inherit(op, p string, dir *dirtree.Entry, e *dirtree.Entry, umask uint32) error {
	if e.Type() == dirtree.TypeLink {
		return nil
	}
	x, ok := dir.Xattr(acl.DefaultXattr)
	if !ok {
		e.Mode &^= umask & 0o777
		return nil
	}
	raw := x.Value // an ACL is always inline (dirtree.AlwaysInline)
	def, err := acl.Parse(raw)
	if err != nil || def == nil {
		return errorf(op, p, syscall.EIO, corrupt("the directory's default ACL: %v", err))
	}
	access, perm := acl.Inherit(def, e.Mode)
	e.Mode = e.Mode&^0o777 | perm
	if access != nil {
		e.SetXattr(acl.AccessXattr, access.Encode())
	}
	if e.IsDir() {
		e.SetXattr(acl.DefaultXattr, raw)
	}
	return nil
}

// setACLEntry stores the decoded ACL a (nil removes it) as the attribute
// name of e.
func setACLEntry(e *dirtree.Entry, name string, a acl.ACL, clearSGID bool, p string) error {
	if e.Type() == dirtree.TypeLink {
		return errorf("setxattr", p, syscall.EOPNOTSUPP, errors.New("symlinks have no ACLs"))
	}
	if name == acl.DefaultXattr && !e.IsDir() {
		if a == nil {
			return nil
		}
		return errorf("setxattr", p, syscall.EACCES, errors.New("only directories have default ACLs"))
	}
	if a == nil {
		e.SetXattr(name, nil)
		return nil
	}
	if err := a.Valid(); err != nil {
		return errorf("setxattr", p, errnoOf(err), err)
	}
	if name == acl.DefaultXattr {
		return setXattrBounded(e, name, a.Encode(), p)
	}
	old := *e
	e.Mode = e.Mode&^0o777 | a.Mode()
	if clearSGID {
		e.Mode &^= syscall.S_ISGID
	}
	if a.Equiv() {
		e.SetXattr(name, nil)
		return nil
	}
	if err := setXattrBounded(e, name, a.Encode(), p); err != nil {
		*e = old
		return err
	}
	return nil
}

// setXattrBounded sets an attribute inline unless it is new and the list
// of the entry's attribute names would outgrow dirtree.MaxXattrList.
func setXattrBounded(e *dirtree.Entry, name string, value []byte, p string) error {
	if err := listRoom(e, name, p); err != nil {
		return err
	}
	e.SetXattr(name, value)
	return nil
}

// listRoom fails with ENOSPC if adding attribute name to e would take the
// list of its attribute names past dirtree.MaxXattrList, which is as much
// as listxattr(2) returns; replacing an attribute always has room.
func listRoom(e *dirtree.Entry, name, p string) error {
	if _, ok := e.Xattr(name); ok || e.XattrListSize()+len(name)+1 <= dirtree.MaxXattrList {
		return nil
	}
	return errorf("setxattr", p, syscall.ENOSPC, errors.New("the names of one file's attributes are limited to 64 KiB"))
}

// chmodACL rewrites the stored access ACL of e, if any, for the permission
// bits of mode, as chmod(2) does.
func chmodACL(e *dirtree.Entry, mode uint32) {
	x, ok := e.Xattr(acl.AccessXattr)
	if !ok {
		return
	}
	a, err := acl.Parse(x.Value)
	if err != nil || a == nil {
		return // checked when stored; a corrupt one is left for fsck
	}
	e.SetXattr(acl.AccessXattr, a.Chmod(mode).Encode())
}

// accessACL returns e's stored access ACL, nil if the mode says it all.
func accessACL(e *dirtree.Entry) acl.ACL {
	x, ok := e.Xattr(acl.AccessXattr)
	if !ok {
		return nil
	}
	a, err := acl.Parse(x.Value)
	if err != nil {
		return nil
	}
	return a
}

// errnoOf returns the errno err wraps, or EINVAL.
func errnoOf(err error) syscall.Errno {
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	return syscall.EINVAL
}
