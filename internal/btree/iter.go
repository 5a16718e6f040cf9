package btree

import "fmt"

// Iter walks a tree's items in order from a starting position.
type Iter[I any] struct {
	t     *Tree[I]
	stack []frame[I]
	pos   int64 // start of the next item
	err   error
}

type frame[I any] struct {
	n *Node[I]
	i int
}

// Seek returns an iterator whose first item is the one containing pos (or the
// first item after pos if pos is at an item boundary).
func (t *Tree[I]) Seek(r Ref[I], pos int64) *Iter[I] {
	it := &Iter[I]{t: t}
	if r.Empty() || pos >= r.Len {
		return it
	}
	if pos < 0 {
		pos = 0
	}
	var base int64
	for {
		n, err := t.node(r)
		if err != nil {
			it.err = err
			return it
		}
		if n.H == 0 {
			for i, x := range n.Items {
				size := t.Ops.Size(x)
				if pos < base+size {
					it.stack = append(it.stack, frame[I]{n, i})
					it.pos = base
					return it
				}
				base += size
			}
			it.err = fmt.Errorf("%w: leaf sizes disagree with its reference", ErrCorrupt)
			return it
		}
		found := false
		for i, k := range n.Kids {
			if pos < base+k.Len {
				it.stack = append(it.stack, frame[I]{n, i})
				r, found = k, true
				break
			}
			base += k.Len
		}
		if !found {
			it.err = fmt.Errorf("%w: child sizes disagree with their reference", ErrCorrupt)
			return it
		}
	}
}

// Next returns the next item and the position where it starts; ok is false at
// the end or on error (see Err).
func (it *Iter[I]) Next() (item I, start int64, ok bool) {
	for len(it.stack) > 0 {
		top := &it.stack[len(it.stack)-1]
		if top.n.H == 0 {
			if top.i < len(top.n.Items) {
				item, start = top.n.Items[top.i], it.pos
				top.i++
				it.pos += it.t.Ops.Size(item)
				return item, start, true
			}
			it.stack = it.stack[:len(it.stack)-1]
			it.advance()
			continue
		}
		if top.i >= len(top.n.Kids) {
			it.stack = it.stack[:len(it.stack)-1]
			it.advance()
			continue
		}
		n, err := it.t.node(top.n.Kids[top.i])
		if err != nil {
			it.err, it.stack = err, nil
			return item, 0, false
		}
		it.stack = append(it.stack, frame[I]{n, 0})
	}
	return item, 0, false
}

// advance moves the new top frame past the child just finished.
func (it *Iter[I]) advance() {
	if len(it.stack) > 0 {
		it.stack[len(it.stack)-1].i++
	}
}

// Err returns the error that stopped the iteration, if any.
func (it *Iter[I]) Err() error { return it.err }

// Find locates key in an ordered tree: pos is the number of items with a
// smaller key, and item is the item with exactly that key if found.
func (t *Tree[I]) Find(r Ref[I], key string) (pos int64, item I, found bool, err error) {
	for !r.Empty() {
		n, err := t.node(r)
		if err != nil {
			return 0, item, false, err
		}
		if n.H == 0 {
			lo, hi := 0, len(n.Items)
			for lo < hi {
				m := (lo + hi) / 2
				if t.Ops.Key(n.Items[m]) < key {
					lo = m + 1
				} else {
					hi = m
				}
			}
			for _, x := range n.Items[:lo] {
				pos += t.Ops.Size(x)
			}
			if lo < len(n.Items) && t.Ops.Key(n.Items[lo]) == key {
				return pos, n.Items[lo], true, nil
			}
			return pos, item, false, nil
		}
		// The last child whose first key is <= key holds key if anything does.
		i := 0
		for i+1 < len(n.Kids) && n.Kids[i+1].Key <= key {
			i++
		}
		for _, k := range n.Kids[:i] {
			pos += k.Len
		}
		r = n.Kids[i]
	}
	return pos, item, false, nil
}

// Walk calls fn for every node of r, parents before children, with the
// position where the node's first item lies. It stops at the first error.
// Nodes are loaded as needed.
func (t *Tree[I]) Walk(r Ref[I], fn func(ref Ref[I], n *Node[I], pos int64) error) error {
	if r.Empty() {
		return nil
	}
	n, err := t.node(r)
	if err != nil {
		return err
	}
	return t.walk(r, n, 0, fn)
}

func (t *Tree[I]) walk(r Ref[I], n *Node[I], pos int64, fn func(Ref[I], *Node[I], int64) error) error {
	if err := fn(r, n, pos); err != nil {
		return err
	}
	for _, k := range n.Kids {
		kn, err := t.node(k)
		if err != nil {
			return err
		}
		if err := t.walk(k, kn, pos, fn); err != nil {
			return err
		}
		pos += k.Len
	}
	return nil
}
