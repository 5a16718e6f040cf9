package cowfs

import (
	"encoding/binary"

	"github.com/cowfs/cowfs/internal/dirtree"
)

// sideKey names an entry of the link or orphan table.
type sideKey struct {
	orphans bool
	key     string
}

// syncSide writes changed link-table and orphan inodes into their tables.
func (v *Volume) syncSide() error {
	for _, k := range v.dropKeys {
		table := v.sideTable(k.orphans)
		d, err := dirtree.Delete(v.f.dirs, *table, k.key)
		if err != nil {
			return err
		}
		*table = d
	}
	v.dropKeys = nil
	for x := range v.dirtySide {
		if x.removed {
			continue
		}
		if err := x.syncTree(); err != nil {
			return err
		}
		if err := x.flush(true); err != nil {
			return err
		}
		e := x.ent
		table := v.sideTable(x.orphan != 0)
		e.Name = linkKey(x.linkID)
		if x.orphan != 0 {
			e.Name = linkKey(x.orphan)
		}
		d, err := dirtree.Put(v.f.dirs, *table, e)
		if err != nil {
			return err
		}
		*table = d
		x.dirty = false
	}
	clear(v.dirtySide)
	return nil
}

// sideTable returns the orphan table or the link table.
func (v *Volume) sideTable(orphans bool) *dirtree.Dir {
	if orphans {
		return &v.meta.orphans
	}
	return &v.meta.links
}

// dropSide schedules x's side-table entry for deletion and forgets x.
func (v *Volume) dropSide(x *inode) {
	if x.orphan != 0 {
		v.dropKeys = append(v.dropKeys, sideKey{true, linkKey(x.orphan)})
	} else if x.linkID != 0 {
		v.dropKeys = append(v.dropKeys, sideKey{false, linkKey(x.linkID)})
	}
	delete(v.dirtySide, x)
	v.dirty = true
}

// linkKey is the side-table key of a link or orphan serial number.
func linkKey(id uint64) string { return string(binary.BigEndian.AppendUint64(nil, id)) }

// linkInode returns the loaded hard-linked inode id.
func (v *Volume) linkInode(id uint64) (*inode, error) {
	if x, ok := v.links[id]; ok {
		return x, nil
	}
	e, ok, err := dirtree.Lookup(v.f.dirs, v.meta.links, linkKey(id))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, corrupt("link %d has a name but no inode", id)
	}
	x := &inode{v: v, ent: e, linkID: id}
	v.loaded++
	v.links[id] = x
	return x, nil
}

// orphanize keeps an unlinked but open inode in the orphan table until it
// is closed, so its data survives commits.
func (v *Volume) orphanize(x *inode) error {
	if x.linkID != 0 {
		// dropName removed its link-table entry; the orphan table holds it now.
		x.ent.Local = x.ino() // keep the number it was seen with
		x.linkID = 0
		x.prefix = 0
	} else {
		x.ent.Local = x.ino()
		x.prefix = 0
	}
	x.parent = nil
	x.orphan = v.meta.nextLink
	v.meta.nextLink++
	v.orphans[x] = true
	x.dirty = false
	x.touch()
	return nil
}

// closeInode drops one open handle of x, releasing an orphan's data.
func (v *Volume) closeInode(x *inode) {
	x.opens--
	v.opens--
	if x.opens == 0 && x.orphan != 0 {
		delete(v.orphans, x)
		v.dropSide(x)
		x.removed = true
	}
}
