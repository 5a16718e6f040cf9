package cowfs

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"syscall"

	"github.com/cowfs/cowfs/internal/btree"
	"github.com/cowfs/cowfs/internal/dirtree"
	"github.com/cowfs/cowfs/internal/rope"
	"github.com/cowfs/cowfs/store"
)

// Usage is what a file or a directory tree holds (see Volume.Usage).
// Shared+Exclusive is the stored bytes it references: the lengths of its
// data and inline extents. Holes store nothing.
type Usage struct {
	// Logical is the sum of the sizes of the regular files.
	Logical int64
	// Shared counts stored bytes that something else also references: another
	// file, a clone, a snapshot, or a second reference from the same tree.
	Shared int64
	// Exclusive counts stored bytes that only this path references: removing
	// it (and committing) would release them.
	Exclusive int64
}

// Usage reports the logical size and the stored bytes of the file or
// directory tree p (summed over the tree), like du, split into bytes shared
// with anything else and bytes only p holds. A final symlink is followed; a
// hard-linked file inside the tree counts once.
//
// An extent's bytes are exclusive when its data blob and every tree node on
// the way to it from the volume node (directory nodes along p and below it,
// the file's rope nodes; the volume node itself excluded) have a committed
// reference count of 1; otherwise they are shared. Inline bytes are
// exclusive when their rope node and the nodes above it are. Usage commits
// first, so the counts are those of the current state, and holds the FS lock
// while it walks: it costs one store.Stat per node and data blob under p.
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
	w := &usageWalk{v: v, refs: map[store.ID]int64{}, seen: map[uint64]bool{}}
	e, shared, err := w.locate(x)
	if err == nil {
		err = w.entry(e, shared)
	}
	if err != nil {
		return Usage{}, wrapIO(op, p, err)
	}
	return w.u, nil
}

// usageWalk sums a Usage over committed trees. The caller holds f.mu.
type usageWalk struct {
	v    *Volume
	u    Usage
	refs map[store.ID]int64 // committed counts looked up so far
	seen map[uint64]bool    // hard-linked inodes counted already
}

// count returns a blob's committed reference count.
func (w *usageWalk) count(id store.ID) (int64, error) {
	if n, ok := w.refs[id]; ok {
		return n, nil
	}
	info, err := w.v.f.st.Stat(context.Background(), id)
	if err != nil {
		return 0, fmt.Errorf("blob %s: %w", id.Short(), err)
	}
	w.refs[id] = info.Refs
	return info.Refs, nil
}

// sharedRef reports whether a tree node's committed count is not 1.
func sharedRef[I any](w *usageWalk, r btree.Ref[I]) (bool, error) {
	id, err := btree.RefID(r)
	if err != nil {
		return false, err
	}
	n, err := w.count(id)
	return n != 1, err
}

// locate finds the committed entry of x by descending from the volume node
// along x's names, and reports whether a node on the way is shared.
func (w *usageWalk) locate(x *inode) (dirtree.Entry, bool, error) {
	v := w.v
	if x.linkID != 0 {
		return w.linked(x.linkID)
	}
	var names []string
	for y := x; y != v.root; y = y.parent {
		if y == nil {
			return dirtree.Entry{}, false, errorf("usage", "", syscall.ENOENT, errors.New("file has no name"))
		}
		names = append(names, y.name)
	}
	e, shared := v.meta.root, false
	for i := len(names) - 1; i >= 0; i-- {
		var err error
		if e, shared, err = w.find(e.Dir, names[i], shared); err != nil {
			return e, shared, err
		}
		if e.Link != 0 {
			return w.linked(e.Link)
		}
	}
	return e, shared, nil
}

// linked finds hard-linked inode id in the link table and marks it counted.
func (w *usageWalk) linked(id uint64) (dirtree.Entry, bool, error) {
	w.seen[id] = true
	return w.find(w.v.meta.links, linkKey(id), false)
}

// find descends directory tree d to the entry called name.
func (w *usageWalk) find(d dirtree.Dir, name string, shared bool) (dirtree.Entry, bool, error) {
	t := w.v.f.dirs
	for r := d; !r.Empty(); {
		s, err := sharedRef(w, r)
		if err != nil {
			return dirtree.Entry{}, false, err
		}
		shared = shared || s
		n, err := t.NodeOf(r)
		if err != nil {
			return dirtree.Entry{}, false, err
		}
		if n.IsLeaf() {
			i := sort.Search(len(n.Items), func(i int) bool { return n.Items[i].Name >= name })
			if i < len(n.Items) && n.Items[i].Name == name {
				return n.Items[i], shared, nil
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

// entry adds what entry e holds; shared says whether a node above it is.
func (w *usageWalk) entry(e dirtree.Entry, shared bool) error {
	switch {
	case e.Type() == dirtree.TypeReg:
		w.u.Logical += e.Data.Len
		return w.rope(e.Data, shared)
	case e.IsDir():
		return w.dir(e.Dir, shared)
	}
	return nil
}

// dir adds every entry of directory tree r.
func (w *usageWalk) dir(r dirtree.Dir, shared bool) error {
	if r.Empty() {
		return nil
	}
	s, err := sharedRef(w, r)
	if err != nil {
		return err
	}
	shared = shared || s
	n, err := w.v.f.dirs.NodeOf(r)
	if err != nil {
		return err
	}
	for _, k := range n.Kids {
		if err := w.dir(k, shared); err != nil {
			return err
		}
	}
	for _, e := range n.Items {
		if e.Link != 0 {
			if w.seen[e.Link] {
				continue
			}
			le, lshared, err := w.linked(e.Link)
			if err == nil {
				err = w.entry(le, lshared)
			}
			if err != nil {
				return err
			}
			continue
		}
		if err := w.entry(e, shared); err != nil {
			return err
		}
	}
	return nil
}

// rope adds the stored bytes of rope r.
func (w *usageWalk) rope(r rope.Rope, shared bool) error {
	if r.Empty() {
		return nil
	}
	s, err := sharedRef(w, r)
	if err != nil {
		return err
	}
	shared = shared || s
	n, err := w.v.f.ropes.NodeOf(r)
	if err != nil {
		return err
	}
	for _, k := range n.Kids {
		if err := w.rope(k, shared); err != nil {
			return err
		}
	}
	for _, e := range n.Items {
		excl := !shared
		switch e.Kind {
		case rope.Hole:
			continue
		case rope.Data:
			c, err := w.count(e.Blob)
			if err != nil {
				return err
			}
			excl = excl && c == 1
		}
		if excl {
			w.u.Exclusive += e.N
		} else {
			w.u.Shared += e.N
		}
	}
	return nil
}
