package cowfs

import (
	"errors"
	"strings"
	"syscall"

	"github.com/cowfs/cowfs/internal/dirtree"
)

// create makes a new entry named r.name in r.dir for c: c needs write and
// search permission on r.dir; the entry gets its owner and group as
// Cred.newEntry says, and the permission bits and ACLs that r.dir's
// default ACL or c's umask give it.
func (v *Volume) create(op, p string, r resolved, e dirtree.Entry, c Cred) (*inode, error) {
	if r.x != nil {
		return nil, errorf(op, p, syscall.EEXIST, nil)
	}
	if r.name == "" {
		return nil, errorf(op, p, syscall.EEXIST, nil)
	}
	if r.dir.removed || (r.dir.parent == nil && r.dir != v.root) {
		return nil, errorf(op, p, syscall.ENOENT, errors.New("directory was removed"))
	}
	if err := c.may(op, p, &r.dir.ent, MayWrite|MayExec); err != nil {
		return nil, err
	}
	c.newEntry(&r.dir.ent, &e)
	if err := inherit(op, p, &r.dir.ent, &e, c.Umask); err != nil {
		return nil, err
	}
	local, err := v.newLocal()
	if err != nil {
		return nil, err
	}
	now := v.f.now()
	e.Name, e.Local = r.name, local
	e.Atime, e.Mtime, e.Ctime, e.Btime = now, now, now, now
	d, err := dirtree.Put(v.f.dirs, r.dir.ent.Dir, e)
	if err != nil {
		return nil, wrapIO(op, p, err)
	}
	r.dir.ent.Dir = d
	if e.IsDir() {
		r.dir.ent.Subdirs++
	}
	r.dir.stamp(true)
	return r.dir.adopt(e)
}

// Mkdir creates a directory with permission bits perm (see CreateOption
// and Umask for how its directory's default ACL and a umask apply).
func (v *Volume) Mkdir(p string, perm uint32, opts ...CreateOption) error {
	v.f.mu.Lock()
	defer v.f.mu.Unlock()
	if err := v.writable("mkdir", p); err != nil {
		return err
	}
	r, err := v.resolve("mkdir", p, false)
	if err != nil {
		return err
	}
	_, err = v.create("mkdir", p, r, dirtree.Entry{Mode: dirtree.TypeDir | perm&0o7777}, optsCred(opts))
	return err
}

// MkdirAll creates a directory and any missing parents.
func (v *Volume) MkdirAll(p string, perm uint32) error {
	parts := splitPath(p)
	for i := range parts {
		sub := strings.Join(parts[:i+1], "/")
		err := v.Mkdir(sub, perm)
		if err != nil && !errors.Is(err, syscall.EEXIST) {
			return err
		}
		if err != nil {
			if fi, serr := v.Stat(sub); serr != nil || !fi.IsDir() {
				return errorf("mkdir", sub, syscall.ENOTDIR, nil)
			}
		}
	}
	return nil
}

// Symlink creates p as a symbolic link to target.
func (v *Volume) Symlink(target, p string) error {
	v.f.mu.Lock()
	defer v.f.mu.Unlock()
	if err := v.writable("symlink", p); err != nil {
		return err
	}
	if target == "" || len(target) > dirtree.MaxTarget || strings.IndexByte(target, 0) >= 0 {
		return errorf("symlink", p, syscall.EINVAL, errors.New("bad target"))
	}
	r, err := v.resolve("symlink", p, false)
	if err != nil {
		return err
	}
	_, err = v.create("symlink", p, r, dirtree.Entry{Mode: dirtree.TypeLink | 0o777, Target: target}, RootCred)
	return err
}

// Readlink returns a symlink's target.
func (v *Volume) Readlink(p string) (string, error) {
	v.f.mu.Lock()
	defer v.f.mu.Unlock()
	x, err := v.lookup("readlink", p, false)
	if err != nil {
		return "", err
	}
	if x.ent.Type() != dirtree.TypeLink {
		return "", errorf("readlink", p, syscall.EINVAL, errors.New("not a symlink"))
	}
	return x.ent.Target, nil
}

// Mknod creates a fifo, socket or device node; mode holds the type bits
// and the permission bits (see Mkdir for the options).
func (v *Volume) Mknod(p string, mode uint32, dev uint64, opts ...CreateOption) error {
	v.f.mu.Lock()
	defer v.f.mu.Unlock()
	if err := v.writable("mknod", p); err != nil {
		return err
	}
	switch mode & dirtree.TypeMask {
	case dirtree.TypeFifo, dirtree.TypeSock, dirtree.TypeChar, dirtree.TypeBlk:
	case 0, dirtree.TypeReg:
		mode = dirtree.TypeReg | mode&0o7777
		dev = 0
	default:
		return errorf("mknod", p, syscall.EINVAL, errors.New("unsupported file type"))
	}
	r, err := v.resolve("mknod", p, false)
	if err != nil {
		return err
	}
	_, err = v.create("mknod", p, r, dirtree.Entry{Mode: mode, Rdev: dev}, optsCred(opts))
	return err
}

// Remove removes a file, or an empty directory.
func (v *Volume) Remove(p string) error {
	v.f.mu.Lock()
	defer v.f.mu.Unlock()
	if err := v.writable("remove", p); err != nil {
		return err
	}
	if dotLast(p) {
		return errorf("remove", p, syscall.EINVAL, errors.New(`cannot remove "." or ".."`))
	}
	r, err := v.resolve("remove", p, false)
	if err != nil {
		return err
	}
	return v.removeAt(RootCred, "remove", p, r, removeAny)
}

// What removeAt removes.
const (
	removeAny  = iota // a file or an empty directory (remove(3))
	removeFile        // anything but a directory (unlink(2): EISDIR)
	removeDir         // an empty directory only (rmdir(2): ENOTDIR)
)

// removeAt removes r.x, named r.name in r.dir, for c (Cred.mayDelete).
func (v *Volume) removeAt(c Cred, op, p string, r resolved, kind int) error {
	if r.x == nil {
		return errorf(op, p, syscall.ENOENT, nil)
	}
	if r.x == v.root {
		return errorf(op, p, syscall.EBUSY, errors.New("the root"))
	}
	if err := c.mayDelete(op, p, &r.dir.ent, &r.x.ent); err != nil {
		return err
	}
	switch {
	case kind == removeFile && r.x.isDir():
		return errorf(op, p, syscall.EISDIR, nil)
	case kind == removeDir && !r.x.isDir():
		return errorf(op, p, syscall.ENOTDIR, nil)
	case r.x.isDir() && r.x.ent.Dir.Count > 0:
		return errorf(op, p, syscall.ENOTEMPTY, nil)
	}
	return wrapIO(op, p, v.unlinkName(r.dir, r.name, r.x))
}

// unlinkName removes name (naming x) from dir.
func (v *Volume) unlinkName(dir *inode, name string, x *inode) error {
	d, err := dirtree.Delete(v.f.dirs, dir.ent.Dir, name)
	if err != nil {
		return err
	}
	dir.ent.Dir = d
	delete(dir.kids, name)
	delete(dir.dirtyKids, name2inode(dir, x))
	if x.isDir() {
		dir.ent.Subdirs--
	}
	if x.linkID != 0 {
		v.addLinks(dir, -1)
	} else if x.ent.Links > 0 {
		v.addLinks(dir, -int64(x.ent.Links))
	}
	dir.stamp(true)
	return v.dropName(x)
}

// name2inode returns x if it is dir's own child inode (not a shared link inode).
func name2inode(dir, x *inode) *inode {
	if x.parent == dir {
		return x
	}
	return nil
}

// dropName handles x losing one of its names.
func (v *Volume) dropName(x *inode) error {
	if x.linkID != 0 {
		x.ent.Nlink--
		x.stamp(false)
		if x.ent.Nlink > 0 {
			return nil
		}
		delete(v.links, x.linkID)
		v.dropSide(x)
		if x.opens > 0 {
			return v.orphanize(x)
		}
		x.removed = true
		return nil
	}
	x.parent = nil
	if x.opens > 0 {
		return v.orphanize(x)
	}
	x.removed = true
	return nil
}

// ReadDir lists a directory, sorted by name, and updates its access time
// as Options.Atime says.
func (v *Volume) ReadDir(p string) ([]*FileInfo, error) {
	v.f.mu.Lock()
	defer v.f.mu.Unlock()
	x, err := v.lookup("readdir", p, true)
	if err != nil {
		return nil, err
	}
	if !x.isDir() {
		return nil, errorf("readdir", p, syscall.ENOTDIR, nil)
	}
	list, err := x.list(0, -1)
	if err != nil {
		return nil, wrapIO("readdir", p, err)
	}
	x.accessed()
	return list, nil
}

// list returns up to n entries of directory x from position pos (n < 0: all).
func (x *inode) list(pos int64, n int) ([]*FileInfo, error) {
	if err := x.syncTree(); err != nil {
		return nil, err
	}
	var out []*FileInfo
	it := x.v.f.dirs.Seek(x.ent.Dir, pos)
	for e, _, ok := it.Next(); ok && n != 0; e, _, ok = it.Next() {
		fi, err := x.entryInfo(e)
		if err != nil {
			return nil, err
		}
		out = append(out, fi)
		n--
	}
	return out, it.Err()
}

// entryInfo describes entry e of directory x without loading it as an inode
// unless it is loaded already.
func (x *inode) entryInfo(e dirtree.Entry) (*FileInfo, error) {
	if k, ok := x.kids[e.Name]; ok {
		if err := k.flushBuf(); err != nil {
			return nil, err
		}
		return k.info(e.Name), nil
	}
	if e.Link != 0 {
		k, err := x.v.linkInode(e.Link)
		if err != nil {
			return nil, err
		}
		if err := k.flushBuf(); err != nil {
			return nil, err
		}
		return k.info(e.Name), nil
	}
	tmp := inode{v: x.v, parent: x, ent: e, prefix: x.prefix}
	if e.Scope != 0 {
		p, err := x.v.scopePrefix(x.prefix, e.Scope)
		if err != nil {
			return nil, err
		}
		tmp.prefix = p
	}
	return tmp.info(e.Name), nil
}
