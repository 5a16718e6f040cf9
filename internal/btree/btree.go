// Package btree is the one persistent copy-on-write B-tree shape of cowfs.
//
// A tree is a sequence of items. Every item has a size (its measure: bytes for
// file ropes, 1 for directory entries) and a key (the entry name for
// directories, "" for ropes). Each reference to a subtree carries the subtree's
// total size, its item count and its first key, so a position is found by
// size (ropes) or by key (directories) in O(log n).
//
// Nodes are immutable values. An update never changes a node: it builds new
// nodes along one path and shares every other subtree, so keeping an old Ref is
// a free snapshot and cloning a tree is copying a Ref. Split and Join are
// O(log n); every other update (write a range, insert or delete an entry) is a
// few splits and joins.
//
// Shape invariants (checked by Check):
//   - all leaves are at height 0 and a node at height h has children at h-1;
//   - every node but the root holds between Min and Max entries (items or
//     children); an internal root holds at least 2 children;
//   - each Ref's Len, Count and Key equal what its subtree holds;
//   - for ordered trees (directories), keys strictly increase.
//
// A node that came from the store is loaded on demand through Tree.Load; a
// node built in memory has no ID until Hash computes it. Nodes are encoded as
// blobs by Encode (see codec.go).
package btree

import (
	"errors"
	"fmt"
	"sync"

	"github.com/cowfs/cowfs/store"
)

// Ops describes the items of one kind of tree.
type Ops[I any] interface {
	// Size is the item's measure; it must be at least 1.
	Size(it I) int64
	// Key is the item's order key ("" in unordered trees).
	Key(it I) string
	// Split cuts an item at 0 < off < Size(it).
	Split(it I, off int64) (I, I)
	// Merge joins two adjacent items into one if they can be; ok reports whether.
	Merge(a, b I) (m I, ok bool)
	// AppendItem appends the encoding of it to dst. It may call Hash on
	// subtrees the item refers to (and fails if they cannot be hashed).
	AppendItem(dst []byte, it I) ([]byte, error)
	// DecodeItem decodes one item from the front of src and returns the number
	// of bytes it used. It must reject malformed input with an error.
	DecodeItem(src []byte) (it I, n int, err error)
	// Children calls fn for every blob the item refers to (see Child).
	Children(it I, fn func(Child) error) error
	// Marked reports whether the item is one that Tree.Marked finds quickly
	// (ropes mark their pending bytes). Marked items exist only in memory:
	// a stored node holds none.
	Marked(it I) bool
}

// Child is a blob a node refers to. Mem is the in-memory node when the child
// exists only in memory (or is loaded); it is nil for raw data blobs and for
// stored nodes that are not loaded.
type Child struct {
	ID  store.ID
	Raw bool    // a data blob (no children of its own), not a tree node
	Mem Encoder // nil unless an in-memory node
}

// Encoder is a node that can be turned into a blob (implemented by *Node).
type Encoder interface {
	// Hash returns the node's blob ID, computing it (and its children's) once.
	Hash() (store.ID, error)
	// Encode returns the node's blob bytes.
	Encode() ([]byte, error)
	// Children calls fn for every blob the node refers to.
	Children(fn func(Child) error) error
}

// Default fan-out bounds.
const (
	DefaultMax = 64
	minMax     = 8
)

// Tree binds item operations to a node loader. It holds no tree itself: trees
// are Refs, passed in and returned by its methods. A Tree is safe for
// concurrent use if Load is.
type Tree[I any] struct {
	Ops  Ops[I]
	Kind byte // blob kind tag written into encoded nodes
	// Max is the largest number of entries in a node (DefaultMax if 0).
	Max int
	// Load returns the stored node with the given ID, decoded (see Decode).
	Load func(id store.ID) (*Node[I], error)
}

// Ref points at a subtree and summarizes it. The zero Ref is the empty tree.
type Ref[I any] struct {
	ID    store.ID // blob ID; zero while the node exists only in memory
	Len   int64    // sum of item sizes
	Count int64    // number of items
	Key   string   // key of the first item
	H     uint8    // height of the node (0: leaf)
	Marks int64    // number of marked items (see Ops.Marked); 0 when stored
	n     *Node[I] // the node, if in memory
}

// Empty reports whether r is the empty tree.
func (r Ref[I]) Empty() bool { return r.Count == 0 }

// Node returns the in-memory node, or nil if r only names a stored blob.
func (r Ref[I]) Node() *Node[I] { return r.n }

// Stored returns a Ref to a stored node known only by its ID and summary.
func Stored[I any](id store.ID, h uint8, length, count int64, key string) Ref[I] {
	return Ref[I]{ID: id, Len: length, Count: count, Key: key, H: h}
}

// Node is an immutable tree node: a leaf holding items or an internal node
// holding child Refs.
type Node[I any] struct {
	H     uint8
	Items []I      // leaf
	Kids  []Ref[I] // internal
	t     *Tree[I]

	once sync.Once
	id   store.ID
	err  error
}

// IsLeaf reports whether n is a leaf.
func (n *Node[I]) IsLeaf() bool { return n.H == 0 }

func (n *Node[I]) entries() int {
	if n.H == 0 {
		return len(n.Items)
	}
	return len(n.Kids)
}

// ErrCorrupt reports a malformed node or a violated invariant. Every
// decoder of cowfs's metadata wraps it (package cowfs exports it as
// cowfs.ErrCorrupt).
var ErrCorrupt = errors.New("corrupt metadata")

func (t *Tree[I]) max() int {
	if t.Max < minMax {
		if t.Max == 0 {
			return DefaultMax
		}
		return minMax
	}
	return t.Max
}

// Min is the fewest entries a non-root node may hold.
func (t *Tree[I]) Min() int { return t.max() / 4 }

// node returns the node r points at, loading it if needed.
func (t *Tree[I]) node(r Ref[I]) (*Node[I], error) {
	if r.n != nil {
		return r.n, nil
	}
	if r.ID.IsZero() {
		return nil, fmt.Errorf("%w: reference to nothing", ErrCorrupt)
	}
	n, err := t.Load(r.ID)
	if err != nil {
		return nil, err
	}
	if n.H != r.H {
		return nil, fmt.Errorf("%w: node %s has height %d, its parent says %d", ErrCorrupt, r.ID.Short(), n.H, r.H)
	}
	return n, nil
}

// NodeOf returns the node r points at, loading it if needed.
func (t *Tree[I]) NodeOf(r Ref[I]) (*Node[I], error) { return t.node(r) }

// leaf makes a Ref to a new leaf holding items (which it takes over).
func (t *Tree[I]) leaf(items []I) Ref[I] {
	if len(items) == 0 {
		return Ref[I]{}
	}
	r := Ref[I]{Count: int64(len(items)), Key: t.Ops.Key(items[0])}
	for _, it := range items {
		r.Len += t.Ops.Size(it)
		if t.Ops.Marked(it) {
			r.Marks++
		}
	}
	r.n = &Node[I]{Items: items, t: t}
	return r
}

// internal makes a Ref to a new internal node of height h holding kids.
func (t *Tree[I]) internal(h uint8, kids []Ref[I]) Ref[I] {
	r := Ref[I]{H: h, Key: kids[0].Key}
	for _, k := range kids {
		r.Len += k.Len
		r.Count += k.Count
		r.Marks += k.Marks
	}
	r.n = &Node[I]{H: h, Kids: kids, t: t}
	return r
}

// sub makes a tree of kids, which must be valid non-root subtrees of height
// h-1: the kid itself if there is one, an internal node otherwise.
func (t *Tree[I]) sub(h uint8, kids []Ref[I]) Ref[I] {
	switch len(kids) {
	case 0:
		return Ref[I]{}
	case 1:
		return kids[0]
	}
	return t.internal(h, append([]Ref[I](nil), kids...))
}

// packItems builds a leaf of items, or two leaves under a new parent when
// there are too many for one (at most 2*Max).
func (t *Tree[I]) packItems(items []I) Ref[I] {
	if len(items) <= t.max() {
		return t.leaf(items)
	}
	half := len(items) / 2
	l := t.leaf(append([]I(nil), items[:half]...))
	r := t.leaf(append([]I(nil), items[half:]...))
	return t.internal(1, []Ref[I]{l, r})
}

// packKids is packItems for internal nodes of height h.
func (t *Tree[I]) packKids(h uint8, kids []Ref[I]) Ref[I] {
	if len(kids) <= t.max() {
		return t.internal(h, kids)
	}
	half := len(kids) / 2
	l := t.internal(h, append([]Ref[I](nil), kids[:half]...))
	r := t.internal(h, append([]Ref[I](nil), kids[half:]...))
	return t.internal(h+1, []Ref[I]{l, r})
}

// Join returns the tree holding a's items followed by b's. Adjacent leaf items
// at the seam are merged when Ops.Merge allows. Cost O(|height(a)-height(b)|+1).
func (t *Tree[I]) Join(a, b Ref[I]) (Ref[I], error) {
	if a.Empty() {
		return b, nil
	}
	if b.Empty() {
		return a, nil
	}
	switch {
	case a.H == b.H:
		an, err := t.node(a)
		if err != nil {
			return Ref[I]{}, err
		}
		bn, err := t.node(b)
		if err != nil {
			return Ref[I]{}, err
		}
		if a.H == 0 {
			items := make([]I, 0, len(an.Items)+len(bn.Items))
			items = append(items, an.Items...)
			rest := bn.Items
			if m, ok := t.Ops.Merge(items[len(items)-1], rest[0]); ok {
				items[len(items)-1] = m
				rest = rest[1:]
			}
			return t.packItems(append(items, rest...)), nil
		}
		kids := make([]Ref[I], 0, len(an.Kids)+len(bn.Kids))
		kids = append(append(kids, an.Kids...), bn.Kids...)
		return t.packKids(a.H, kids), nil
	case a.H > b.H:
		an, err := t.node(a)
		if err != nil {
			return Ref[I]{}, err
		}
		last := an.Kids[len(an.Kids)-1]
		j, err := t.Join(last, b)
		if err != nil {
			return Ref[I]{}, err
		}
		kids := append([]Ref[I](nil), an.Kids[:len(an.Kids)-1]...)
		if j.H == last.H {
			kids = append(kids, j)
		} else {
			kids = append(kids, j.n.Kids...) // j is new: two kids at last.H
		}
		return t.packKids(a.H, kids), nil
	default:
		bn, err := t.node(b)
		if err != nil {
			return Ref[I]{}, err
		}
		first := bn.Kids[0]
		j, err := t.Join(a, first)
		if err != nil {
			return Ref[I]{}, err
		}
		var kids []Ref[I]
		if j.H == first.H {
			kids = append(kids, j)
		} else {
			kids = append(kids, j.n.Kids...)
		}
		kids = append(kids, bn.Kids[1:]...)
		return t.packKids(b.H, kids), nil
	}
}

// Concat joins trees in order.
func (t *Tree[I]) Concat(trees ...Ref[I]) (Ref[I], error) {
	var acc Ref[I]
	for _, r := range trees {
		var err error
		if acc, err = t.Join(acc, r); err != nil {
			return Ref[I]{}, err
		}
	}
	return acc, nil
}

// Split cuts r at position pos (in size units): left holds what lies before
// pos, right the rest. An item straddling pos is split with Ops.Split. O(log n).
func (t *Tree[I]) Split(r Ref[I], pos int64) (left, right Ref[I], err error) {
	if pos <= 0 {
		return Ref[I]{}, r, nil
	}
	if pos >= r.Len {
		return r, Ref[I]{}, nil
	}
	n, err := t.node(r)
	if err != nil {
		return Ref[I]{}, Ref[I]{}, err
	}
	if n.H == 0 {
		var start int64
		for i, it := range n.Items {
			size := t.Ops.Size(it)
			if pos < start+size {
				l := append([]I(nil), n.Items[:i]...)
				rr := make([]I, 0, len(n.Items)-i)
				if pos == start {
					rr = append(rr, n.Items[i:]...)
				} else {
					a, b := t.Ops.Split(it, pos-start)
					l = append(l, a)
					rr = append(append(rr, b), n.Items[i+1:]...)
				}
				return t.leaf(l), t.leaf(rr), nil
			}
			start += size
		}
		return Ref[I]{}, Ref[I]{}, fmt.Errorf("%w: leaf sizes disagree with its reference", ErrCorrupt)
	}
	var start int64
	for i, k := range n.Kids {
		if pos < start+k.Len {
			if pos == start {
				return t.sub(n.H, n.Kids[:i]), t.sub(n.H, n.Kids[i:]), nil
			}
			ll, rr, err := t.Split(k, pos-start)
			if err != nil {
				return Ref[I]{}, Ref[I]{}, err
			}
			if left, err = t.Join(t.sub(n.H, n.Kids[:i]), ll); err != nil {
				return Ref[I]{}, Ref[I]{}, err
			}
			if right, err = t.Join(rr, t.sub(n.H, n.Kids[i+1:])); err != nil {
				return Ref[I]{}, Ref[I]{}, err
			}
			return left, right, nil
		}
		start += k.Len
	}
	return Ref[I]{}, Ref[I]{}, fmt.Errorf("%w: child sizes disagree with their reference", ErrCorrupt)
}

// Slice returns the part of r in [from, to). It descends while the range
// lies inside one child, so a short slice copies only the nodes at its ends.
func (t *Tree[I]) Slice(r Ref[I], from, to int64) (Ref[I], error) {
	from, to = max(from, 0), min(to, r.Len)
	if from >= to {
		return Ref[I]{}, nil
	}
	for r.H > 0 && (from > 0 || to < r.Len) {
		n, err := t.node(r)
		if err != nil {
			return Ref[I]{}, err
		}
		i, start := childAt(n.Kids, from)
		if i < 0 || to > start+n.Kids[i].Len {
			break
		}
		r, from, to = n.Kids[i], from-start, to-start
	}
	_, rest, err := t.Split(r, from)
	if err != nil {
		return Ref[I]{}, err
	}
	mid, _, err := t.Split(rest, to-from)
	return mid, err
}

// childAt returns the index of the child holding position pos and the
// position where that child starts (-1 if pos is past the end).
func childAt[I any](kids []Ref[I], pos int64) (int, int64) {
	var start int64
	for i, k := range kids {
		if pos < start+k.Len {
			return i, start
		}
		start += k.Len
	}
	return -1, start
}

// Replace returns r with [from, to) replaced by with. When the range lies
// inside one leaf (or one child, recursively) and with is at most a leaf,
// it copies one node per level (path copying); otherwise, and to repair a
// node that over- or underflows, it falls back to Split and Join.
func (t *Tree[I]) Replace(r Ref[I], from, to int64, with Ref[I]) (Ref[I], error) {
	if from < 0 || to < from || to > r.Len {
		return Ref[I]{}, fmt.Errorf("btree: replace [%d, %d) of a tree of %d", from, to, r.Len)
	}
	if !r.Empty() && with.H == 0 {
		if out, ok, err := t.replaceIn(r, from, to, with); err != nil || ok {
			return out, err
		}
	}
	return t.replaceBySplit(r, from, to, with)
}

func (t *Tree[I]) replaceBySplit(r Ref[I], from, to int64, with Ref[I]) (Ref[I], error) {
	left, rest, err := t.Split(r, from)
	if err != nil {
		return Ref[I]{}, err
	}
	_, right, err := t.Split(rest, to-from)
	if err != nil {
		return Ref[I]{}, err
	}
	return t.Concat(left, with, right)
}

// replaceIn is the path-copying Replace; ok is false if it does not apply.
func (t *Tree[I]) replaceIn(r Ref[I], from, to int64, with Ref[I]) (out Ref[I], ok bool, err error) {
	n, err := t.node(r)
	if err != nil {
		return Ref[I]{}, false, err
	}
	if n.H == 0 {
		return t.spliceLeaf(n, from, to, with)
	}
	// The child holding the range; an empty range at a boundary goes left.
	i, start := childAt(n.Kids, from)
	if i > 0 && from == to && from == start {
		i--
		start -= n.Kids[i].Len
	}
	if i < 0 {
		i = len(n.Kids) - 1
		start -= n.Kids[i].Len
	}
	kid := n.Kids[i]
	if to > start+kid.Len {
		return Ref[I]{}, false, nil
	}
	nk, ok, err := t.replaceIn(kid, from-start, to-start, with)
	if err != nil || !ok {
		return Ref[I]{}, ok, err
	}
	kids := make([]Ref[I], 0, len(n.Kids)+1)
	kids = append(kids, n.Kids[:i]...)
	switch {
	case !nk.Empty() && nk.H == kid.H && t.entries(nk) >= t.Min():
		kids = append(kids, nk)
	case nk.H == kid.H+1 && nk.n != nil:
		kids = append(kids, nk.n.Kids...) // the child split in two
	default:
		// Underflow: let Join merge the child with its neighbours.
		out, err := t.Concat(t.sub(n.H, n.Kids[:i]), nk, t.sub(n.H, n.Kids[i+1:]))
		return out, err == nil, err
	}
	kids = append(kids, n.Kids[i+1:]...)
	return t.packKids(n.H, kids), true, nil
}

// entries returns the number of entries of r's root node.
func (t *Tree[I]) entries(r Ref[I]) int {
	n, err := t.node(r)
	if err != nil {
		return 0
	}
	return n.entries()
}

// spliceLeaf replaces [from, to) of leaf n by the items of with (a leaf or
// empty), merging items at both seams.
func (t *Tree[I]) spliceLeaf(n *Node[I], from, to int64, with Ref[I]) (Ref[I], bool, error) {
	var mid []I
	if !with.Empty() {
		wn, err := t.node(with)
		if err != nil {
			return Ref[I]{}, false, err
		}
		mid = wn.Items
	}
	items := make([]I, 0, len(n.Items)+len(mid)+2)
	var pos int64
	i := 0
	for ; i < len(n.Items); i++ { // items wholly before from
		size := t.Ops.Size(n.Items[i])
		if pos+size > from {
			break
		}
		items = append(items, n.Items[i])
		pos += size
	}
	var tail []I
	for ; i < len(n.Items); i++ {
		it := n.Items[i]
		size := t.Ops.Size(it)
		if pos < from { // straddles from: keep its head
			head, _ := t.Ops.Split(it, from-pos)
			items = append(items, head)
		}
		if pos+size > to { // straddles or follows to: keep its tail
			if pos < to {
				_, it = t.Ops.Split(it, to-pos)
			}
			tail = append(tail, it)
			tail = append(tail, n.Items[i+1:]...)
			break
		}
		pos += size
	}
	items = t.appendMerged(items, mid)
	items = t.appendMerged(items, tail)
	switch {
	case len(items) == 0:
		return Ref[I]{}, true, nil
	case len(items) <= 2*t.max():
		return t.packItems(items), true, nil
	}
	return Ref[I]{}, false, nil
}

// appendMerged appends more to items, merging the two items at the seam.
func (t *Tree[I]) appendMerged(items, more []I) []I {
	if len(items) > 0 && len(more) > 0 {
		if m, ok := t.Ops.Merge(items[len(items)-1], more[0]); ok {
			items[len(items)-1] = m
			more = more[1:]
		}
	}
	return append(items, more...)
}

// FromItems builds a balanced tree holding items (which it takes over).
func (t *Tree[I]) FromItems(items []I) Ref[I] {
	if len(items) == 0 {
		return Ref[I]{}
	}
	max := t.max()
	var level []Ref[I]
	for _, part := range chunks(len(items), max) {
		level = append(level, t.leaf(items[part[0]:part[1]:part[1]]))
	}
	for h := uint8(1); len(level) > 1; h++ {
		var up []Ref[I]
		for _, part := range chunks(len(level), max) {
			up = append(up, t.internal(h, append([]Ref[I](nil), level[part[0]:part[1]]...)))
		}
		level = up
	}
	return level[0]
}

// Marked calls fn for every marked item of r in order, with its position,
// visiting only subtrees that hold marked items: O(k log n) for k of them.
func (t *Tree[I]) Marked(r Ref[I], fn func(it I, start int64) error) error {
	return t.marked(r, 0, fn)
}

func (t *Tree[I]) marked(r Ref[I], pos int64, fn func(I, int64) error) error {
	if r.Marks == 0 {
		return nil
	}
	n, err := t.node(r)
	if err != nil {
		return err
	}
	for _, it := range n.Items {
		if t.Ops.Marked(it) {
			if err := fn(it, pos); err != nil {
				return err
			}
		}
		pos += t.Ops.Size(it)
	}
	for _, k := range n.Kids {
		if err := t.marked(k, pos, fn); err != nil {
			return err
		}
		pos += k.Len
	}
	return nil
}

// chunks cuts n entries into the fewest runs of at most max, as even as
// possible (so every run holds at least max/2 when there is more than one).
func chunks(n, max int) [][2]int {
	k := (n + max - 1) / max
	var out [][2]int
	for i := 0; i < k; i++ {
		out = append(out, [2]int{i * n / k, (i + 1) * n / k})
	}
	return out
}
