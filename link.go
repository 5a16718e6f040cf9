package cowfs

import (
	"errors"
	"syscall"

	"github.com/cowfs/cowfs/internal/dirtree"
)

// Link gives the file at oldp a second name newp (a hard link).
func (v *Volume) Link(oldp, newp string) error {
	v.f.mu.Lock()
	defer v.f.mu.Unlock()
	const op = "link"
	if err := v.writable(op, newp); err != nil {
		return err
	}
	rs, err := v.resolve(op, oldp, false)
	if err != nil {
		return err
	}
	if rs.x == nil {
		return errorf(op, oldp, syscall.ENOENT, nil)
	}
	if rs.x.isDir() {
		return errorf(op, oldp, syscall.EPERM, errors.New("directories cannot be hard-linked"))
	}
	rd, err := v.resolve(op, newp, false)
	if err != nil {
		return err
	}
	return v.linkAt(RootCred, op, newp, rs.x, rd)
}

// linkAt gives x the name rd.name in rd.dir, for c (Cred.mayHardlink;
// write and search permission on rd.dir).
func (v *Volume) linkAt(c Cred, op, p string, x *inode, rd resolved) error {
	if x.isDir() {
		return errorf(op, p, syscall.EPERM, errors.New("directories cannot be hard-linked"))
	}
	if rd.x != nil || rd.name == "" {
		return errorf(op, p, syscall.EEXIST, nil)
	}
	if err := c.mayHardlink(op, p, &x.ent); err != nil {
		return err
	}
	if err := c.may(op, p, &rd.dir.ent, MayWrite|MayExec); err != nil {
		return err
	}
	if x.removed || (x.linkID == 0 && x.parent == nil) {
		return errorf(op, p, syscall.ENOENT, errors.New("the file was removed"))
	}
	if rd.dir.removed || (rd.dir.parent == nil && rd.dir != v.root) {
		return errorf(op, p, syscall.ENOENT, errors.New("directory was removed"))
	}
	if x.linkID != 0 && x.ent.Nlink >= dirtree.MaxNlink {
		return errorf(op, p, syscall.EMLINK, nil)
	}
	if x.linkID == 0 {
		if err := v.makeLinked(x.parent, x.name, x); err != nil {
			return wrapIO(op, p, err)
		}
	}
	stub := dirtree.Entry{Name: rd.name, Mode: x.ent.Type(), Link: x.linkID, Links: 1, Local: x.ent.Local}
	d, err := dirtree.Put(v.f.dirs, rd.dir.ent.Dir, stub)
	if err != nil {
		return wrapIO(op, p, err)
	}
	rd.dir.ent.Dir = d
	v.addLinks(rd.dir, 1)
	rd.dir.stamp(true)
	x.ent.Nlink++
	x.stamp(false)
	return nil
}

// makeLinked moves x into the link table, leaving a link name in its place.
// x stays the same object, so open handles keep working.
func (v *Volume) makeLinked(dir *inode, name string, x *inode) error {
	id := v.meta.nextLink
	v.meta.nextLink++
	stub := dirtree.Entry{Name: name, Mode: x.ent.Type(), Link: id, Links: 1, Local: x.ent.Local}
	d, err := dirtree.Put(v.f.dirs, dir.ent.Dir, stub)
	if err != nil {
		return err
	}
	dir.ent.Dir = d
	delete(dir.kids, name)
	delete(dir.dirtyKids, x)
	v.addLinks(dir, 1)
	x.ent.Local = x.ino()
	x.ent.Scope = 0
	x.ent.Nlink = 1
	x.linkID = id
	x.parent = nil
	x.dirty = false
	v.links[id] = x
	x.touch()
	return nil
}

// addLinks adjusts the hard-link-name counts of dir and its ancestors.
func (v *Volume) addLinks(dir *inode, delta int64) {
	for x := dir; x != nil; x = x.parent {
		x.ent.Links = uint64(int64(x.ent.Links) + delta)
		x.touch()
	}
}
