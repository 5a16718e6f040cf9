package btree

import "fmt"

// Check verifies r's shape invariants (see the package documentation) and
// returns every violation found, each naming where it is. ordered asks for
// strictly increasing keys. Nodes are loaded as needed; a load error is
// reported and its subtree skipped.
func (t *Tree[I]) Check(r Ref[I], ordered bool) []error {
	var errs []error
	if r.Empty() {
		if r.Len != 0 || !r.ID.IsZero() || r.n != nil {
			errs = append(errs, fmt.Errorf("empty reference with contents (len %d)", r.Len))
		}
		return errs
	}
	var lastKey *string
	t.check(r, true, ordered, &lastKey, &errs)
	return errs
}

func (t *Tree[I]) check(r Ref[I], root, ordered bool, lastKey **string, errs *[]error) {
	where := fmt.Sprintf("node %s (height %d)", r.ID.Short(), r.H)
	if r.ID.IsZero() {
		where = fmt.Sprintf("in-memory node (height %d)", r.H)
	}
	bad := func(format string, args ...any) {
		*errs = append(*errs, fmt.Errorf(where+": "+format, args...))
	}
	n, err := t.node(r)
	if err != nil {
		bad("%v", err)
		return
	}
	e := n.entries()
	switch {
	case e == 0:
		bad("no entries")
		return
	case e > t.max():
		bad("%d entries, more than %d", e, t.max())
	case !root && e < t.Min():
		bad("%d entries, fewer than %d", e, t.Min())
	case root && n.H > 0 && e < 2:
		bad("internal root with a single child")
	}
	var length, count, marks int64
	var first string
	if n.H == 0 {
		for i, it := range n.Items {
			size := t.Ops.Size(it)
			if size < 1 {
				bad("item %d has size %d", i, size)
			}
			length += size
			if t.Ops.Marked(it) {
				marks++
			}
			key := t.Ops.Key(it)
			if i == 0 {
				first = key
			}
			if ordered {
				if *lastKey != nil && key <= **lastKey {
					bad("key %q follows %q", key, **lastKey)
				}
				*lastKey = &key
			}
		}
		count = int64(len(n.Items))
	} else {
		for i, k := range n.Kids {
			if k.H != n.H-1 {
				bad("child %d at height %d", i, k.H)
				continue
			}
			t.check(k, false, ordered, lastKey, errs)
			length += k.Len
			count += k.Count
			marks += k.Marks
		}
		first = n.Kids[0].Key
	}
	if marks != r.Marks {
		bad("holds %d marked items, its reference says %d", marks, r.Marks)
	}
	if length != r.Len || count != r.Count {
		bad("holds %d units in %d items, its reference says %d in %d", length, count, r.Len, r.Count)
	}
	if first != r.Key && !root { // a root kept outside its tree has no key
		bad("first key %q, its reference says %q", first, r.Key)
	}
}
