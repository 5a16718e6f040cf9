package cowfs

import (
	"sort"

	"github.com/cowfs/cowfs/internal/dirtree"
)

// touch marks x changed: its entry (and every ancestor's) must be written
// back at the next commit.
func (x *inode) touch() {
	x.v.dirty = true
	x.mark()
}

// mark flags x and its ancestors for writing back at the next commit of
// the volume.
func (x *inode) mark() {
	v := x.v
	for ; x != nil && !x.dirty; x = x.parent {
		x.dirty = true
		switch {
		case x.parent != nil:
			if x.parent.dirtyKids == nil {
				x.parent.dirtyKids = map[*inode]bool{}
			}
			x.parent.dirtyKids[x] = true
		case x.linkID != 0 || x.orphan != 0:
			v.dirtySide[x] = true
		}
	}
}

// stamp sets x's change time and, if mod, its modification time.
func (x *inode) stamp(mod bool) {
	now := x.v.f.now()
	x.ent.Ctime = now
	if mod {
		x.ent.Mtime = now
	}
	x.touch()
}

// syncTree writes dirty children's entries into x's directory tree, deepest
// first, so x.ent is complete.
func (x *inode) syncTree() error {
	// In name order, so the tree's shape (and its nodes' IDs) do not depend
	// on map iteration order.
	kids := make([]*inode, 0, len(x.dirtyKids))
	for k := range x.dirtyKids {
		kids = append(kids, k)
	}
	sort.Slice(kids, func(i, j int) bool { return kids[i].name < kids[j].name })
	for _, k := range kids {
		if err := k.syncTree(); err != nil {
			return err
		}
		if err := k.flush(true); err != nil {
			return err
		}
		d, err := dirtree.Put(x.v.f.dirs, x.ent.Dir, k.nameEntry())
		if err != nil {
			return err
		}
		x.ent.Dir = d
		k.dirty = false
	}
	x.dirtyKids = nil
	return nil
}

// nameEntry is x's entry under its name in its parent.
func (x *inode) nameEntry() dirtree.Entry {
	e := x.ent
	e.Name = x.name
	return e
}

// prepareLocked flushes buffered writes and writes every dirty entry back
// into the volume's tree, leaving v.meta ready to commit.
func (v *Volume) prepareLocked() error {
	if err := v.root.syncTree(); err != nil {
		return err
	}
	if err := v.syncSide(); err != nil {
		return err
	}
	v.meta.root = v.root.ent
	v.root.dirty = false
	return nil
}

// clearDirty records that v's changes, access times included, are committed.
func (v *Volume) clearDirty() { v.dirty, v.lazy = false, false }
