package cowfs

import (
	"github.com/cowfs/cowfs/internal/dirtree"
)

// inode is a loaded file, directory or other node of a volume. Its ent is
// authoritative; the copy in its parent's directory tree is stale while it
// is dirty and is refreshed by sync.
type inode struct {
	v      *Volume
	parent *inode // nil for the root, link-table and orphan inodes
	name   string
	ent    dirtree.Entry
	prefix uint64 // scope prefix of this entry's inode number

	kids      map[string]*inode // loaded children of a directory (not link names)
	dirtyKids map[*inode]bool
	dirty     bool

	linkID  uint64 // a hard-linked inode, kept in the link table
	orphan  uint64 // an unlinked open inode, kept in the orphan table
	opens   int
	pins    int  // Inode handles on it: it stays loaded
	removed bool // no name and no handle: gone

	wbuf    []byte // buffered sequential write at wbufOff
	wbufOff int64
	pending int64 // bytes in Pending extents of ent.Data

	flushing chan struct{} // non-nil while a flushOutside runs; closed at its end
}

// isDir reports whether x is a directory.
func (x *inode) isDir() bool { return x.ent.IsDir() }

// child returns the loaded inode for name in directory x, loading it from the
// tree if needed; nil if there is no such entry.
func (x *inode) child(name string) (*inode, error) {
	if k, ok := x.kids[name]; ok {
		return k, nil
	}
	e, ok, err := dirtree.Lookup(x.v.f.dirs, x.ent.Dir, name)
	if err != nil || !ok {
		return nil, err
	}
	return x.adopt(e)
}

// adopt makes a loaded inode of entry e found in directory x.
func (x *inode) adopt(e dirtree.Entry) (*inode, error) {
	v := x.v
	if e.Link != 0 {
		return v.linkInode(e.Link)
	}
	k := &inode{v: v, parent: x, name: e.Name, ent: e, prefix: x.prefix}
	if e.Scope != 0 {
		p, err := v.scopePrefix(x.prefix, e.Scope)
		if err != nil {
			return nil, err
		}
		k.prefix = p
	}
	if x.kids == nil {
		x.kids = map[string]*inode{}
	}
	x.kids[e.Name] = k
	v.loaded++
	return k, nil
}
