package cowfs

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"syscall"

	"github.com/cowfs/cowfs/internal/btree"
	"github.com/cowfs/cowfs/internal/dirtree"
	"github.com/cowfs/cowfs/internal/rope"
	"github.com/cowfs/cowfs/store"
)

// Usage is what a file or a directory tree holds (see Volume.Usage). Shared
// and Exclusive count stored data: data blobs (file data and large
// attribute values), each whole and once, and the bytes small files keep
// inline in their tree nodes. Holes store nothing.
type Usage struct {
	// Logical is the apparent size: the sizes of the regular files summed
	// over their paths, a hard-linked file once.
	Logical int64
	// Shared counts stored data the path references that something outside
	// it also references: another path of the volume, a snapshot, another
	// volume, a view, a zombie.
	Shared int64
	// Exclusive counts stored data that removing the path would free, once
	// committed and the deletion finished.
	Exclusive int64
}

// Usage reports, like du, the logical size of the file or directory tree p
// and the stored data it references, split into what removing p would free
// (Exclusive) and what would stay because something outside p references it
// too (Shared). A final symlink is followed.
//
// Stored data is the data blobs (each at its full size, also where p uses
// only part of one; the blobs of extended attribute values longer than
// dirtree.XattrInlineMax are data blobs too) and the inline bytes of small
// files, which live in their file's rope nodes. Each blob counts once, in one class, however many
// files and paths under p refer to it: a directory holding a file and its
// clone stores the data once, exclusively. Tree nodes are not counted
// (directory, rope and volume nodes, beyond the inline bytes), nor is p's
// own entry in its parent: so the store holds somewhat more than
// Shared+Exclusive, and removing p frees some node bytes besides Exclusive.
//
// With the lazy counts (docs/design.md), a blob is exclusive when all its
// references come from tree nodes that removing p frees: every node on the
// way from the volume node down to p's entry must have count 1 (one more
// reference keeps the old node, and all below it, alive), and below p a
// blob is freed when its count equals the references from freed nodes,
// taken in topological order, so a subtree reached twice within p counts
// once. A hard-linked file's data goes only with its last name: it is p's
// when all its names are under p. Blobs a zombie still points to (a
// released node whose deletion waits for a later commit; FS.GC finishes
// them) are Shared until then, and a file removed while open keeps its data
// until closed.
//
// Usage commits first, so the counts describe the current state, and holds
// the FS lock while it walks the committed trees: it reads each tree node
// under p once and looks up the count of each distinct blob once (one
// store.Stat), plus the nodes on the way to p and to hard-linked files.
// A count lower than the references found is reported as corruption.
func (v *Volume) Usage(p string) (Usage, error) {
	f := v.f
	f.mu.Lock()
	defer f.mu.Unlock()
	const op = "usage"
	if err := f.check(op); err != nil {
		return Usage{}, err
	}
	if v.closed {
		return Usage{}, errorf(op, p, syscall.EBADF, errors.New("volume closed"))
	}
	if err := f.commitLocked(nil); err != nil {
		return Usage{}, wrapIO(op, p, err)
	}
	x, err := v.lookup(op, p, true)
	if err != nil {
		return Usage{}, err
	}
	w := &usageWalk{v: v, path: map[store.ID]int64{}, blobs: map[store.ID]*usageBlob{}, names: map[uint64]int64{}}
	if err := w.run(x); err != nil {
		return Usage{}, wrapIO(op, p, err)
	}
	return w.u, nil
}

// usageWalk computes a Usage over committed trees. The caller holds f.mu.
type usageWalk struct {
	v       *Volume
	u       Usage
	volOnly bool                    // the volume node's count is 1
	path    map[store.ID]int64      // counts of nodes above p and in the link table
	blobs   map[store.ID]*usageBlob // every blob under p, once
	order   []*usageBlob            // the blobs, each after all it points to
	names   map[uint64]int64        // hard-link names under p, by link id
}

// usageBlob is one blob under p.
type usageBlob struct {
	id    store.ID
	refs  int64        // committed count
	data  int64        // stored data: a data blob's size, a rope node's inline bytes
	kids  []*usageBlob // one per pointer the blob holds
	freed int64        // pointers to it from blobs that removing p frees
	// logical is, for a directory node, the logical size of the files below
	// it (link names excluded).
	logical int64
}

// run fills w.u for inode x.
func (w *usageWalk) run(x *inode) error {
	v := w.v
	n, err := w.pathCount(v.committed)
	if err != nil {
		return err
	}
	w.volOnly = n == 1
	e, linked, only, err := w.locate(x)
	if err != nil {
		return err
	}
	if linked {
		// A name of a hard-linked file: its data goes with its last name.
		only = only && e.Nlink == 1
	}
	tops, logical, err := w.content(e)
	if err != nil {
		return err
	}
	w.u.Logical = logical
	if only {
		for _, top := range tops {
			top.freed++ // the pointers from p's entry go with it
		}
	}
	// Hard-linked files named under p count once each, and are p's when all
	// their names are. (Names are counted per distinct directory node; a
	// node holding link names is never shared within a volume, since a
	// directory clone links its copies to new inodes.)
	for _, id := range slices.Sorted(maps.Keys(w.names)) {
		le, only, err := w.find(v.meta.links, linkKey(id), w.volOnly)
		if err != nil {
			return fmt.Errorf("link %d: %w", id, err)
		}
		if w.names[id] > int64(le.Nlink) {
			return corrupt("link %d has %d names under the path but nlink %d", id, w.names[id], le.Nlink)
		}
		tops, logical, err := w.content(le)
		if err != nil {
			return err
		}
		w.u.Logical = addSat(w.u.Logical, logical)
		if only && w.names[id] == int64(le.Nlink) {
			for _, top := range tops {
				top.freed++
			}
		}
	}
	// Parents before children: a blob is freed when every pointer to it
	// comes from freed blobs (or from p's entry), and then so are the
	// pointers it holds.
	for i := len(w.order) - 1; i >= 0; i-- {
		b := w.order[i]
		switch {
		case b.refs < 1:
			return corrupt("blob %s is referenced but has count %d", b.id.Short(), b.refs)
		case b.freed > b.refs:
			return corrupt("blob %s has count %d but %d references from nodes under the path", b.id.Short(), b.refs, b.freed)
		}
		if b.freed < b.refs {
			w.u.Shared += b.data
			continue
		}
		w.u.Exclusive += b.data
		for _, k := range b.kids {
			k.freed++
		}
	}
	return nil
}

// pathCount returns the committed count of a node above p or in the link
// table.
func (w *usageWalk) pathCount(id store.ID) (int64, error) {
	if n, ok := w.path[id]; ok {
		return n, nil
	}
	info, err := w.v.f.st.Stat(w.v.f.ioCtx(), id)
	if err != nil {
		return 0, fmt.Errorf("node %s: %w", id.Short(), err)
	}
	w.path[id] = info.Refs
	return info.Refs, nil
}

// locate finds the committed entry of x by descending from the volume node
// along x's names, or in the link table for a hard-linked file (linked),
// and reports whether the volume node and every tree node on the way has
// count 1.
func (w *usageWalk) locate(x *inode) (e dirtree.Entry, linked, only bool, err error) {
	v := w.v
	if x.linkID != 0 {
		e, only, err = w.find(v.meta.links, linkKey(x.linkID), w.volOnly)
		return e, true, only, err
	}
	var names []string
	for y := x; y != v.root; y = y.parent {
		if y == nil {
			return e, false, false, errorf("usage", "", syscall.ENOENT, errors.New("file has no name"))
		}
		names = append(names, y.name)
	}
	e, only = v.meta.root, w.volOnly
	for i := len(names) - 1; i >= 0; i-- {
		if e, only, err = w.find(e.Dir, names[i], only); err != nil {
			return e, false, false, err
		}
		if e.Link != 0 {
			e, only, err = w.find(v.meta.links, linkKey(e.Link), w.volOnly)
			return e, true, only, err
		}
	}
	return e, false, only, nil
}

// find descends directory tree d to the entry called name; only reports
// whether it and every node on the way has count 1.
func (w *usageWalk) find(d dirtree.Dir, name string, only bool) (dirtree.Entry, bool, error) {
	t := w.v.f.dirs
	for r := d; !r.Empty(); {
		id, err := btree.RefID(r)
		if err != nil {
			return dirtree.Entry{}, false, err
		}
		c, err := w.pathCount(id)
		if err != nil {
			return dirtree.Entry{}, false, err
		}
		only = only && c == 1
		n, err := t.NodeOf(r)
		if err != nil {
			return dirtree.Entry{}, false, err
		}
		if n.IsLeaf() {
			i := sort.Search(len(n.Items), func(i int) bool { return n.Items[i].Name >= name })
			if i < len(n.Items) && n.Items[i].Name == name {
				return n.Items[i], only, nil
			}
			break
		}
		i := 0
		for i+1 < len(n.Kids) && n.Kids[i+1].Key <= name {
			i++
		}
		r = n.Kids[i]
	}
	return dirtree.Entry{}, false, corrupt("entry %q missing from its committed directory", name)
}

// content walks what entry e points to, as its pointers count it (see
// dirtree's Children): the tree of its content and the blobs of its
// out-of-line attribute values, which are stored data like a file's. It
// returns the blobs e points to and e's logical size.
func (w *usageWalk) content(e dirtree.Entry) ([]*usageBlob, int64, error) {
	var tops []*usageBlob
	var top *usageBlob
	var err error
	switch {
	case !e.Data.Empty():
		top, err = w.rope(e.Data)
	case !e.Dir.Empty():
		top, err = w.dir(e.Dir)
	}
	if err != nil {
		return nil, 0, err
	}
	if top != nil {
		tops = append(tops, top)
	}
	for _, x := range e.Xattrs {
		if x.Blob.IsZero() {
			continue
		}
		b, err := w.dataBlob(x.Blob)
		if err != nil {
			return nil, 0, err
		}
		tops = append(tops, b)
	}
	switch {
	case e.Link != 0:
		return tops, 0, nil
	case e.Type() == dirtree.TypeReg:
		return tops, e.Data.Len, nil
	case e.IsDir() && top != nil:
		return tops, top.logical, nil
	}
	return tops, 0, nil
}

// dataBlob returns the walk's record of data blob id, placing a new one in
// the order.
func (w *usageWalk) dataBlob(id store.ID) (*usageBlob, error) {
	b, info, isNew, err := w.blob(id)
	if err != nil {
		return nil, err
	}
	if isNew {
		b.data = info.Size
		w.order = append(w.order, b)
	}
	return b, nil
}

// blob returns the walk's record of blob id, and whether it is new (then
// the caller fills it and appends it to the order once it has visited
// everything the blob points to).
func (w *usageWalk) blob(id store.ID) (*usageBlob, store.BlobInfo, bool, error) {
	if b, ok := w.blobs[id]; ok {
		return b, store.BlobInfo{}, false, nil
	}
	info, err := w.v.f.st.Stat(w.v.f.ioCtx(), id)
	if err != nil {
		return nil, info, false, fmt.Errorf("blob %s: %w", id.Short(), err)
	}
	b := &usageBlob{id: id, refs: info.Refs}
	w.blobs[id] = b
	return b, info, true, nil
}

// dir visits directory tree node r and everything below it.
func (w *usageWalk) dir(r dirtree.Dir) (*usageBlob, error) {
	id, err := btree.RefID(r)
	if err != nil {
		return nil, err
	}
	b, _, isNew, err := w.blob(id)
	if err != nil || !isNew {
		return b, err
	}
	n, err := w.v.f.dirs.NodeOf(r)
	if err != nil {
		return nil, err
	}
	for _, k := range n.Kids {
		kb, err := w.dir(k)
		if err != nil {
			return nil, err
		}
		b.kids = append(b.kids, kb)
		b.logical = addSat(b.logical, kb.logical)
	}
	for _, e := range n.Items {
		if e.Link != 0 {
			w.names[e.Link]++
		}
		kbs, logical, err := w.content(e)
		if err != nil {
			return nil, err
		}
		b.kids = append(b.kids, kbs...)
		b.logical = addSat(b.logical, logical)
	}
	w.order = append(w.order, b)
	return b, nil
}

// rope visits rope node r and everything below it.
func (w *usageWalk) rope(r rope.Rope) (*usageBlob, error) {
	id, err := btree.RefID(r)
	if err != nil {
		return nil, err
	}
	b, _, isNew, err := w.blob(id)
	if err != nil || !isNew {
		return b, err
	}
	n, err := w.v.f.ropes.NodeOf(r)
	if err != nil {
		return nil, err
	}
	for _, k := range n.Kids {
		kb, err := w.rope(k)
		if err != nil {
			return nil, err
		}
		b.kids = append(b.kids, kb)
	}
	for _, e := range n.Items {
		switch e.Kind {
		case rope.Data:
			db, err := w.dataBlob(e.Blob)
			if err != nil {
				return nil, err
			}
			b.kids = append(b.kids, db)
		case rope.Inline:
			b.data += e.N
		case rope.Pending:
			return nil, rope.ErrPending
		}
	}
	w.order = append(w.order, b)
	return b, nil
}

// addSat adds two sizes, stopping at the largest int64: nested directory
// clones can name more bytes than that.
func addSat(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}
