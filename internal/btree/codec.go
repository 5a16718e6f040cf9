package btree

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/cowfs/cowfs/store"
)

// Node blob layout (all integers unsigned varints unless noted):
//
//	magic 'C' 'W', format version (1 byte), kind (1 byte), height (1 byte)
//	leaf:     item count, then each item as Ops.AppendItem wrote it
//	internal: child count, then per child: ID (32 bytes), Len, Count,
//	          key length, key bytes
//
// The first five bytes are the header every cowfs node blob shares; Kind
// tells which decoder reads the rest.
const (
	magic0, magic1 = 'C', 'W'
	// FormatVersion is the node format this code writes and reads.
	FormatVersion = 1
	// HeaderSize is the length of the common node header.
	HeaderSize = 5
	// MaxHeight bounds the height of a decoded node.
	MaxHeight = 40
)

// PutHeader appends a node header of the given kind and height.
func PutHeader(dst []byte, kind byte, h uint8) []byte {
	return append(dst, magic0, magic1, FormatVersion, kind, h)
}

// ParseHeader checks a node header and returns its kind and height.
func ParseHeader(data []byte) (kind byte, h uint8, err error) {
	if len(data) < HeaderSize || data[0] != magic0 || data[1] != magic1 {
		return 0, 0, fmt.Errorf("%w: not a node blob", ErrCorrupt)
	}
	if data[2] != FormatVersion {
		return 0, 0, fmt.Errorf("%w: node format version %d, this cowfs reads %d", ErrCorrupt, data[2], FormatVersion)
	}
	if data[4] > MaxHeight {
		return 0, 0, fmt.Errorf("%w: node height %d", ErrCorrupt, data[4])
	}
	return data[3], data[4], nil
}

// Hash returns the node's blob ID, hashing in-memory children first. The
// result is computed once.
func (n *Node[I]) Hash() (store.ID, error) {
	n.once.Do(func() {
		var b []byte
		b, n.err = n.Encode()
		if n.err == nil {
			n.id = store.Sum(b)
		}
	})
	return n.id, n.err
}

// RefID returns r's blob ID, hashing its node if it exists only in memory.
func RefID[I any](r Ref[I]) (store.ID, error) {
	if !r.ID.IsZero() || r.n == nil {
		return r.ID, nil
	}
	return r.n.Hash()
}

// Encode returns the node's blob bytes.
func (n *Node[I]) Encode() ([]byte, error) {
	b := PutHeader(make([]byte, 0, 64+48*n.entries()), n.t.Kind, n.H)
	b = binary.AppendUvarint(b, uint64(n.entries()))
	if n.H == 0 {
		var err error
		for _, it := range n.Items {
			if b, err = n.t.Ops.AppendItem(b, it); err != nil {
				return nil, err
			}
		}
		return b, nil
	}
	for _, k := range n.Kids {
		id, err := RefID(k)
		if err != nil {
			return nil, err
		}
		b = append(b, id[:]...)
		b = binary.AppendUvarint(b, uint64(k.Len))
		b = binary.AppendUvarint(b, uint64(k.Count))
		b = binary.AppendUvarint(b, uint64(len(k.Key)))
		b = append(b, k.Key...)
	}
	return b, nil
}

// Children calls fn for every blob the node refers to.
func (n *Node[I]) Children(fn func(Child) error) error {
	if n.H == 0 {
		for _, it := range n.Items {
			if err := n.t.Ops.Children(it, fn); err != nil {
				return err
			}
		}
		return nil
	}
	for _, k := range n.Kids {
		c, err := RefChild(k)
		if err != nil {
			return err
		}
		if err := fn(c); err != nil {
			return err
		}
	}
	return nil
}

// RefChild describes r as a Child of whatever refers to it.
func RefChild[I any](r Ref[I]) (Child, error) {
	id, err := RefID(r)
	if err != nil {
		return Child{}, err
	}
	c := Child{ID: id}
	if r.n != nil {
		c.Mem = r.n
	}
	return c, nil
}

// Decode parses a node blob of this tree's kind. It never panics on bad
// input: anything malformed is an error wrapping ErrCorrupt. id, if not zero,
// is recorded as the node's ID (the caller verified the bytes against it).
func (t *Tree[I]) Decode(id store.ID, data []byte) (*Node[I], error) {
	kind, h, err := ParseHeader(data)
	if err != nil {
		return nil, err
	}
	if kind != t.Kind {
		return nil, fmt.Errorf("%w: node kind %d where kind %d was expected", ErrCorrupt, kind, t.Kind)
	}
	p := data[HeaderSize:]
	count, k := binary.Uvarint(p)
	if k <= 0 || count == 0 || count > uint64(len(p)) {
		return nil, fmt.Errorf("%w: bad entry count", ErrCorrupt)
	}
	p = p[k:]
	n := &Node[I]{H: h, t: t}
	if h == 0 {
		n.Items = make([]I, 0, count)
		for i := uint64(0); i < count; i++ {
			it, used, err := t.Ops.DecodeItem(p)
			if err != nil {
				return nil, err
			}
			if used <= 0 || used > len(p) {
				return nil, fmt.Errorf("%w: item decoder misbehaved", ErrCorrupt)
			}
			if t.Ops.Size(it) < 1 {
				return nil, fmt.Errorf("%w: empty item", ErrCorrupt)
			}
			n.Items = append(n.Items, it)
			p = p[used:]
		}
	} else {
		n.Kids = make([]Ref[I], 0, count)
		for i := uint64(0); i < count; i++ {
			if len(p) < store.IDSize {
				return nil, fmt.Errorf("%w: truncated child", ErrCorrupt)
			}
			var r Ref[I]
			copy(r.ID[:], p)
			p = p[store.IDSize:]
			var vals [3]uint64
			for j := range vals {
				v, k := binary.Uvarint(p)
				if k <= 0 {
					return nil, fmt.Errorf("%w: truncated child", ErrCorrupt)
				}
				vals[j], p = v, p[k:]
			}
			if vals[0] > math.MaxInt64 || vals[1] == 0 || vals[1] > math.MaxInt64 || vals[2] > uint64(len(p)) {
				return nil, fmt.Errorf("%w: bad child summary", ErrCorrupt)
			}
			r.Len, r.Count, r.H = int64(vals[0]), int64(vals[1]), h-1
			r.Key, p = string(p[:vals[2]]), p[vals[2]:]
			if r.ID.IsZero() {
				return nil, fmt.Errorf("%w: zero child id", ErrCorrupt)
			}
			n.Kids = append(n.Kids, r)
		}
	}
	if len(p) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(p))
	}
	if !id.IsZero() {
		n.once.Do(func() { n.id = id })
	}
	return n, nil
}

// AppendRoot appends a tree root reference (as kept outside the tree, for
// example in a directory entry): ID, height, Len, Count. The root's key is not
// kept. An in-memory root is hashed.
func AppendRoot[I any](dst []byte, r Ref[I]) ([]byte, error) {
	if r.Empty() {
		return append(dst, 0), nil
	}
	id, err := RefID(r)
	if err != nil {
		return nil, err
	}
	dst = append(dst, 1)
	dst = append(dst, id[:]...)
	dst = append(dst, r.H)
	dst = binary.AppendUvarint(dst, uint64(r.Len))
	return binary.AppendUvarint(dst, uint64(r.Count)), nil
}

// DecodeRoot reads what AppendRoot wrote and returns the bytes used.
func DecodeRoot[I any](src []byte) (Ref[I], int, error) {
	var r Ref[I]
	if len(src) < 1 {
		return r, 0, fmt.Errorf("%w: truncated root", ErrCorrupt)
	}
	if src[0] == 0 {
		return r, 1, nil
	}
	if src[0] != 1 || len(src) < 2+store.IDSize {
		return r, 0, fmt.Errorf("%w: bad root", ErrCorrupt)
	}
	copy(r.ID[:], src[1:])
	r.H = src[1+store.IDSize]
	used := 2 + store.IDSize
	l, k := binary.Uvarint(src[used:])
	if k <= 0 || l > math.MaxInt64 {
		return r, 0, fmt.Errorf("%w: bad root length", ErrCorrupt)
	}
	used += k
	c, k := binary.Uvarint(src[used:])
	if k <= 0 || c == 0 || c > math.MaxInt64 || r.H > MaxHeight || r.ID.IsZero() {
		return r, 0, fmt.Errorf("%w: bad root count", ErrCorrupt)
	}
	r.Len, r.Count = int64(l), int64(c)
	return r, used + k, nil
}
