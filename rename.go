package cowfs

import (
	"errors"
	"syscall"

	"github.com/cowfs/cowfs/internal/dirtree"
)

// Rename flags, as renameat2(2).
const (
	RenameNoReplace = 1 // fail with EEXIST if the new name exists
	RenameExchange  = 2 // swap the two names atomically; both must exist
)

// Rename moves oldp to newp, replacing newp unless flags say otherwise.
func (v *Volume) Rename(oldp, newp string, flags int) error {
	v.f.mu.Lock()
	defer v.f.mu.Unlock()
	const op = "rename"
	if err := v.writable(op, oldp); err != nil {
		return err
	}
	if dotLast(oldp) || dotLast(newp) {
		return errorf(op, oldp, syscall.EINVAL, errors.New(`cannot rename "." or ".."`))
	}
	rs, err := v.resolve(op, oldp, false)
	if err != nil {
		return err
	}
	rd, err := v.resolve(op, newp, false)
	if err != nil {
		return err
	}
	return v.renameAt(RootCred, op, oldp, newp, rs, rd, flags)
}

// renameAt moves rs.x to rd (see Rename) for c: c may delete rs.x from its
// directory and rd.x, if any, from its own, or else create in rd.dir, and
// may write a directory that changes parent (its ".." changes), as Linux's
// vfs_rename decides.
func (v *Volume) renameAt(c Cred, op, oldp, newp string, rs, rd resolved, flags int) error {
	if flags&^(RenameNoReplace|RenameExchange) != 0 || flags == RenameNoReplace|RenameExchange {
		return errorf(op, oldp, syscall.EINVAL, errors.New("bad flags"))
	}
	if rs.x == nil {
		return errorf(op, oldp, syscall.ENOENT, nil)
	}
	if rs.x == v.root || rd.x == v.root || rs.name == "" || rd.name == "" {
		return errorf(op, oldp, syscall.EBUSY, errors.New("cannot rename the root"))
	}
	if !rd.dir.isDir() {
		return errorf(op, newp, syscall.ENOTDIR, nil)
	}
	if flags&RenameExchange != 0 && rd.x == nil {
		return errorf(op, newp, syscall.ENOENT, nil)
	}
	if flags&RenameNoReplace != 0 && rd.x != nil {
		return errorf(op, newp, syscall.EEXIST, nil)
	}
	if rs.x == rd.x {
		return nil // two names of one file: nothing to do
	}
	if rs.x.isDir() && isWithin(rd.dir, rs.x) {
		return errorf(op, newp, syscall.EINVAL, errors.New("cannot move a directory into itself"))
	}
	if err := c.mayDelete(op, oldp, &rs.dir.ent, &rs.x.ent); err != nil {
		return err
	}
	if rd.x != nil {
		if err := c.mayDelete(op, newp, &rd.dir.ent, &rd.x.ent); err != nil {
			return err
		}
	} else if err := c.may(op, newp, &rd.dir.ent, MayWrite|MayExec); err != nil {
		return err
	}
	if rs.dir != rd.dir {
		if rs.x.isDir() {
			if err := c.may(op, oldp, &rs.x.ent, MayWrite); err != nil {
				return err
			}
		}
		if flags&RenameExchange != 0 && rd.x.isDir() {
			if err := c.may(op, newp, &rd.x.ent, MayWrite); err != nil {
				return err
			}
		}
	}
	if flags&RenameExchange != 0 {
		if rd.x.isDir() && isWithin(rs.dir, rd.x) {
			return errorf(op, oldp, syscall.EINVAL, errors.New("cannot move a directory into itself"))
		}
		a, err := v.detach(rs.dir, rs.name, rs.x)
		if err != nil {
			return wrapIO(op, oldp, err)
		}
		b, err := v.detach(rd.dir, rd.name, rd.x)
		if err != nil {
			return wrapIO(op, newp, err)
		}
		if err := v.attach(rd.dir, rd.name, rs.x, a); err != nil {
			return wrapIO(op, newp, err)
		}
		return wrapIO(op, oldp, v.attach(rs.dir, rs.name, rd.x, b))
	}
	if rd.x != nil {
		switch {
		case rs.x.isDir() && !rd.x.isDir():
			return errorf(op, newp, syscall.ENOTDIR, nil)
		case !rs.x.isDir() && rd.x.isDir():
			return errorf(op, newp, syscall.EISDIR, nil)
		case rd.x.isDir() && rd.x.ent.Dir.Count > 0:
			return errorf(op, newp, syscall.ENOTEMPTY, nil)
		}
		if err := v.unlinkName(rd.dir, rd.name, rd.x); err != nil {
			return wrapIO(op, newp, err)
		}
	}
	e, err := v.detach(rs.dir, rs.name, rs.x)
	if err != nil {
		return wrapIO(op, oldp, err)
	}
	return wrapIO(op, newp, v.attach(rd.dir, rd.name, rs.x, e))
}

// isWithin reports whether d is x or lies below x.
func isWithin(d, x *inode) bool {
	for ; d != nil; d = d.parent {
		if d == x {
			return true
		}
	}
	return false
}

// detach takes name (naming x) out of dir without dropping a link, and
// returns the entry it had there (a link name's stub, or x's entry).
func (v *Volume) detach(dir *inode, name string, x *inode) (dirtree.Entry, error) {
	e := x.nameEntry()
	if x.linkID != 0 {
		stub, ok, err := dirtree.Lookup(v.f.dirs, dir.ent.Dir, name)
		if err != nil {
			return e, err
		}
		if !ok {
			return e, corrupt("link name %q vanished", name)
		}
		e = stub
	}
	d, err := dirtree.Delete(v.f.dirs, dir.ent.Dir, name)
	if err != nil {
		return e, err
	}
	dir.ent.Dir = d
	if x.parent == dir {
		delete(dir.kids, name)
		delete(dir.dirtyKids, x)
	}
	if x.isDir() && x.linkID == 0 {
		dir.ent.Subdirs--
	}
	if e.Links > 0 {
		v.addLinks(dir, -int64(e.Links))
	}
	dir.stamp(true)
	return e, nil
}

// attach puts x (whose entry in its old place was e) into dir as name,
// keeping its inode numbers.
func (v *Volume) attach(dir *inode, name string, x *inode, e dirtree.Entry) error {
	e.Name = name
	if x.linkID == 0 {
		if x.prefix != dir.prefix {
			// Keep x's numbers: a fresh marker mapped to the prefix it has.
			marker := v.meta.nextScope
			v.meta.nextScope++
			e.Scope = marker
			if err := v.setScope(scopeKey(dir.prefix, marker), x.prefix); err != nil {
				return err
			}
		} else if e.Scope != 0 {
			// Back in a scope of its own prefix: the marker is not needed.
			e.Scope = 0
		}
		now := v.f.now()
		e.Ctime = now
		x.ent = e
		x.parent, x.name = dir, name
		if dir.kids == nil {
			dir.kids = map[string]*inode{}
		}
		dir.kids[name] = x
	}
	d, err := dirtree.Put(v.f.dirs, dir.ent.Dir, e)
	if err != nil {
		return err
	}
	dir.ent.Dir = d
	if x.isDir() && x.linkID == 0 {
		dir.ent.Subdirs++
	}
	if e.Links > 0 {
		v.addLinks(dir, int64(e.Links))
	}
	dir.stamp(true)
	if x.linkID == 0 {
		x.dirty = false
		x.touch()
	} else {
		x.stamp(false)
	}
	return nil
}
