package cowfs

import (
	"context"
	"errors"
	"os"
	"syscall"

	"github.com/cowfs/cowfs/internal/dirtree"
	"github.com/cowfs/cowfs/internal/rope"
)

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
	return CopyRangeContext(context.Background(), src, soff, dst, doff, n)
}

// CopyRangeContext is CopyRange running with ctx: when ctx is done while it
// waits for the FS lock or for the store, it returns an error of Errno
// EINTR, having copied nothing.
func CopyRangeContext(ctx context.Context, src *File, soff int64, dst *File, doff int64, n int64) (int64, error) {
	const op = "copy range"
	if src.v.f != dst.v.f {
		return 0, errorf(op, dst.name, syscall.EXDEV, nil)
	}
	f := src.v.f
	if err := f.lockFor(ctx, op, dst.name); err != nil {
		return 0, err
	}
	defer f.unlockOp()
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
