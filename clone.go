package cowfs

import (
	"context"
	"errors"
	"os"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/cowfs/cowfs/internal/dirtree"
	"github.com/cowfs/cowfs/internal/rope"
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
	if flags&^(RenameNoReplace|RenameExchange) != 0 || flags == RenameNoReplace|RenameExchange {
		return errorf(op, oldp, syscall.EINVAL, errors.New("bad flags"))
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

func scopeKey(prefix, marker uint64) string {
	var b [16]byte
	for i := 0; i < 8; i++ {
		b[7-i] = byte(prefix >> (8 * i))
		b[15-i] = byte(marker >> (8 * i))
	}
	return string(b[:])
}

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
	x := rs.x
	if x.isDir() {
		return errorf(op, oldp, syscall.EPERM, errors.New("directories cannot be hard-linked"))
	}
	rd, err := v.resolve(op, newp, false)
	if err != nil {
		return err
	}
	if rd.x != nil || rd.name == "" {
		return errorf(op, newp, syscall.EEXIST, nil)
	}
	if x.linkID != 0 && x.ent.Nlink >= dirtree.MaxNlink {
		return errorf(op, newp, syscall.EMLINK, nil)
	}
	if x.linkID == 0 {
		if err := v.makeLinked(rs.dir, rs.name, x); err != nil {
			return wrapIO(op, oldp, err)
		}
	}
	stub := dirtree.Entry{Name: rd.name, Mode: x.ent.Type(), Link: x.linkID, Links: 1, Local: x.ent.Local}
	d, err := dirtree.Put(v.f.dirs, rd.dir.ent.Dir, stub)
	if err != nil {
		return wrapIO(op, newp, err)
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

// Clone makes dst an O(1) copy of the file, symlink or whole directory tree
// at src (a final symlink is cloned, not followed). The copy shares all data
// and nodes with src until either is changed. It keeps src's mode, owner,
// xattrs and times, except that its change and birth times are now. Hard
// links inside a cloned directory become links among the copies.
func (v *Volume) Clone(src, dst string) error {
	v.f.mu.Lock()
	defer v.f.mu.Unlock()
	const op = "clone"
	if err := v.writable(op, dst); err != nil {
		return err
	}
	x, err := v.lookup(op, src, false)
	if err != nil {
		return err
	}
	rd, err := v.resolve(op, dst, false)
	if err != nil {
		return err
	}
	if rd.x != nil || rd.name == "" {
		return errorf(op, dst, syscall.EEXIST, nil)
	}
	if err := x.syncTree(); err != nil {
		return wrapIO(op, src, err)
	}
	if err := x.flush(true); err != nil {
		return wrapIO(op, src, err)
	}
	e := x.ent
	e.Name, e.Link, e.Nlink, e.Scope = rd.name, 0, 0, 0
	now := v.f.now()
	e.Ctime, e.Btime = now, now
	if e.IsDir() {
		// A new scope: every inode number below gets a new prefix.
		e.Scope = v.meta.nextScope
		v.meta.nextScope++
		if e.Links > 0 {
			if err := v.syncSide(); err != nil {
				return wrapIO(op, src, err)
			}
			if e.Dir, err = v.cloneLinks(e.Dir, map[uint64]uint64{}); err != nil {
				return wrapIO(op, src, err)
			}
		}
	} else {
		e.Links = 0
		if e.Local, err = v.newLocal(); err != nil {
			return err
		}
	}
	d, err := dirtree.Put(v.f.dirs, rd.dir.ent.Dir, e)
	if err != nil {
		return wrapIO(op, dst, err)
	}
	rd.dir.ent.Dir = d
	if e.IsDir() {
		rd.dir.ent.Subdirs++
	}
	if e.Links > 0 {
		v.addLinks(rd.dir, int64(e.Links))
	}
	rd.dir.stamp(true)
	return nil
}

// cloneLinks rewrites the link names in a cloned directory tree so that they
// name new link-table inodes (copies of the originals, shared data), visiting
// only subtrees that hold link names. remap maps old link ids to new.
func (v *Volume) cloneLinks(d dirtree.Dir, remap map[uint64]uint64) (dirtree.Dir, error) {
	t := v.f.dirs
	var changed []dirtree.Entry
	it := t.Seek(d, 0)
	for e, _, ok := it.Next(); ok; e, _, ok = it.Next() {
		if e.Links == 0 {
			continue
		}
		switch {
		case e.Link != 0:
			nid, ok := remap[e.Link]
			if !ok {
				orig, found, err := dirtree.Lookup(t, v.meta.links, linkKey(e.Link))
				if err != nil {
					return d, err
				}
				if !found {
					return d, corrupt("link %d has a name but no inode", e.Link)
				}
				local, err := v.newLocal()
				if err != nil {
					return d, err
				}
				nid = v.meta.nextLink
				v.meta.nextLink++
				remap[e.Link] = nid
				orig.Name, orig.Local, orig.Nlink = linkKey(nid), local, 0
				if v.meta.links, err = dirtree.Put(t, v.meta.links, orig); err != nil {
					return d, err
				}
			}
			e.Link = nid
			// Count the name on the new inode.
			ne, _, err := dirtree.Lookup(t, v.meta.links, linkKey(nid))
			if err != nil {
				return d, err
			}
			ne.Nlink++
			if v.meta.links, err = dirtree.Put(t, v.meta.links, ne); err != nil {
				return d, err
			}
			changed = append(changed, e)
		case e.IsDir():
			sub, err := v.cloneLinks(e.Dir, remap)
			if err != nil {
				return d, err
			}
			e.Dir = sub
			changed = append(changed, e)
		}
	}
	if err := it.Err(); err != nil {
		return d, err
	}
	for _, e := range changed {
		var err error
		if d, err = dirtree.Put(t, d, e); err != nil {
			return d, err
		}
	}
	return d, nil
}

// CopyRange copies n bytes at soff of src to doff of dst by sharing them
// (no data is copied), in O(log n) at any byte offsets. Ranges of one file
// may overlap: the result is as if the source range were read first. It
// copies less than n only when the source ends first, and returns how much
// it copied.
func CopyRange(src *File, soff int64, dst *File, doff int64, n int64) (int64, error) {
	if src.v.f != dst.v.f {
		return 0, errorf("copy range", dst.name, syscall.EXDEV, nil)
	}
	f := src.v.f
	f.mu.Lock()
	defer f.mu.Unlock()
	const op = "copy range"
	if err := src.use(op, false); err != nil {
		return 0, err
	}
	if err := dst.use(op, true); err != nil {
		return 0, err
	}
	if dst.flag&os.O_APPEND != 0 {
		return 0, errorf(op, dst.name, syscall.EBADF, errors.New("destination opened with O_APPEND"))
	}
	if dst.v.readOnly {
		return 0, errorf(op, dst.name, syscall.EROFS, nil)
	}
	s, d := src.x, dst.x
	if s.isDir() || d.isDir() {
		return 0, errorf(op, dst.name, syscall.EISDIR, nil)
	}
	if s.ent.Type() != dirtree.TypeReg || d.ent.Type() != dirtree.TypeReg {
		return 0, errorf(op, dst.name, syscall.EINVAL, nil)
	}
	if soff < 0 || doff < 0 || n < 0 {
		return 0, errorf(op, dst.name, syscall.EINVAL, nil)
	}
	if err := s.flush(true); err != nil {
		return 0, wrapIO(op, src.name, err)
	}
	if soff >= s.ent.Data.Len || n == 0 {
		return 0, nil
	}
	n = min(n, s.ent.Data.Len-soff)
	if doff > rope.MaxSize || n > rope.MaxSize-doff {
		return 0, errorf(op, dst.name, syscall.EFBIG, nil)
	}
	if err := d.flushBuf(); err != nil {
		return 0, wrapIO(op, dst.name, err)
	}
	t := f.ropes
	piece, err := t.Slice(s.ent.Data, soff, soff+n)
	if err != nil {
		return 0, wrapIO(op, src.name, err)
	}
	r, err := rope.Put(t, d.ent.Data, doff, n, piece)
	if err != nil {
		return 0, wrapIO(op, dst.name, err)
	}
	d.ent.Data = r
	d.recountPending()
	d.stamp(true)
	return n, nil
}

// SnapshotInfo describes a snapshot.
type SnapshotInfo struct {
	Name    string
	Created time.Time
}

// Snapshot makes a read-only O(1) snapshot of the volume as it is now
// (committing first).
func (v *Volume) Snapshot(name string) error {
	v.f.mu.Lock()
	defer v.f.mu.Unlock()
	if v.readOnly {
		return errorf("snapshot", name, syscall.EROFS, nil)
	}
	if !validName(name) {
		return errorf("snapshot", name, syscall.EINVAL, errors.New("names are 1-100 of [A-Za-z0-9._-]"))
	}
	return v.f.linkRootLocked("snapshot", v.rootName, snapRoot(v.name, name), name)
}

// Snapshots lists the volume's snapshots, sorted by name.
func (v *Volume) Snapshots() ([]SnapshotInfo, error) {
	v.f.mu.Lock()
	defer v.f.mu.Unlock()
	roots, err := v.f.st.ListRoots(context.Background())
	if err != nil {
		return nil, wrapIO("list snapshots", v.name, err)
	}
	var out []SnapshotInfo
	for _, r := range roots {
		if name, ok := strings.CutPrefix(r.Name, snapPrefix(v.name)); ok {
			m, err := v.f.loadVolume(r.ID)
			if err != nil {
				return nil, wrapIO("list snapshots", v.name, err)
			}
			out = append(out, SnapshotInfo{Name: name, Created: time.Unix(0, m.created)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// OpenSnapshot opens a snapshot of the volume, read-only.
func (v *Volume) OpenSnapshot(name string) (*Volume, error) {
	v.f.mu.Lock()
	defer v.f.mu.Unlock()
	return v.f.openLocked(snapRoot(v.name, name), v.name+"@"+name, true)
}

// DeleteSnapshot deletes a snapshot, releasing space only it held. It fails
// with EBUSY while files of the snapshot are open.
func (v *Volume) DeleteSnapshot(name string) error {
	v.f.mu.Lock()
	defer v.f.mu.Unlock()
	return v.f.dropRootLocked("delete snapshot", name, snapRoot(v.name, name))
}
