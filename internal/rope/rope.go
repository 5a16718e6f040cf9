// Package rope keeps a file's content as a counted B-tree of extents.
//
// A rope is a btree.Ref[Extent]; its Len is the file size. An extent is one of:
//
//   - Data: N bytes at offset Off of a stored data blob (a fragment);
//   - Hole: N zero bytes, stored as nothing;
//   - Inline: a few bytes kept in the leaf node itself;
//   - Pending: bytes written but not yet stored as a blob. A rope holding
//     pending extents cannot be encoded; the file layer turns them into Data
//     or Inline extents first (Flush).
//
// Every operation works at any byte offset: a range clone is two splits and a
// join (O(log n)); a write, a hole punch, an insert or a collapse is a Replace.
package rope

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/cowfs/cowfs/internal/btree"
	"github.com/cowfs/cowfs/store"
)

// Kind says what an extent holds.
type Kind uint8

// Extent kinds.
const (
	Data Kind = iota + 1
	Hole
	Inline
	Pending
)

// InlineMax is the largest extent kept inline in a leaf; longer runs of
// written bytes become data blobs.
const InlineMax = 4096

// MaxSize is the largest file size (and end offset) a rope accepts.
const MaxSize = 1 << 62

// Extent is one run of a file's bytes. Extents are values and never change;
// Bytes of an Inline or Pending extent must not be modified once in a rope.
type Extent struct {
	Kind  Kind
	N     int64    // length in bytes
	Blob  store.ID // Data
	Off   int64    // Data: offset in Blob
	Bytes []byte   // Inline, Pending: exactly N bytes
}

// Rope is a file's content.
type Rope = btree.Ref[Extent]

// Tree performs rope operations; see New.
type Tree = btree.Tree[Extent]

// ErrPending: a rope with unflushed bytes cannot be encoded.
var ErrPending = errors.New("rope: pending bytes must be flushed before encoding")

// New returns the rope tree whose nodes load through load.
func New(load func(id store.ID) (*btree.Node[Extent], error)) *Tree {
	return &Tree{Ops: ops{}, Kind: btree.KindRope, Load: load}
}

type ops struct{}

func (ops) Size(e Extent) int64  { return e.N }
func (ops) Marked(e Extent) bool { return e.Kind == Pending }
func (ops) Key(Extent) string    { return "" }

func (ops) Split(e Extent, off int64) (Extent, Extent) {
	a, b := e, e
	a.N, b.N = off, e.N-off
	switch e.Kind {
	case Data:
		b.Off = e.Off + off
	case Inline, Pending:
		a.Bytes, b.Bytes = e.Bytes[:off:off], e.Bytes[off:]
	}
	return a, b
}

func (ops) Merge(a, b Extent) (Extent, bool) {
	if a.Kind != b.Kind {
		return a, false
	}
	switch a.Kind {
	case Hole:
		a.N += b.N
		return a, true
	case Data:
		if a.Blob == b.Blob && a.Off+a.N == b.Off {
			a.N += b.N
			return a, true
		}
	case Inline:
		if a.N+b.N <= InlineMax {
			a.Bytes = append(append(make([]byte, 0, a.N+b.N), a.Bytes...), b.Bytes...)
			a.N += b.N
			return a, true
		}
	}
	return a, false
}

func (ops) Children(e Extent, fn func(btree.Child) error) error {
	switch e.Kind {
	case Data:
		return fn(btree.Child{ID: e.Blob, Raw: true})
	case Pending:
		return ErrPending
	}
	return nil
}

func (ops) AppendItem(dst []byte, e Extent) ([]byte, error) {
	dst = append(dst, byte(e.Kind))
	switch e.Kind {
	case Data:
		dst = append(dst, e.Blob[:]...)
		dst = binary.AppendUvarint(dst, uint64(e.Off))
	case Inline:
		dst = binary.AppendUvarint(dst, uint64(e.N))
		return append(dst, e.Bytes...), nil
	case Pending:
		return nil, ErrPending
	}
	return binary.AppendUvarint(dst, uint64(e.N)), nil
}

func (ops) DecodeItem(src []byte) (Extent, int, error) {
	bad := func(what string) (Extent, int, error) {
		return Extent{}, 0, fmt.Errorf("%w: extent: %s", btree.ErrCorrupt, what)
	}
	if len(src) < 1 {
		return bad("truncated")
	}
	e := Extent{Kind: Kind(src[0])}
	p := src[1:]
	uvar := func() (int64, bool) {
		v, k := binary.Uvarint(p)
		if k <= 0 || v > MaxSize {
			return 0, false
		}
		p = p[k:]
		return int64(v), true
	}
	var ok bool
	switch e.Kind {
	case Data:
		if len(p) < store.IDSize {
			return bad("truncated blob id")
		}
		copy(e.Blob[:], p)
		p = p[store.IDSize:]
		if e.Off, ok = uvar(); !ok {
			return bad("bad offset")
		}
		if e.N, ok = uvar(); !ok || e.N == 0 || e.Off+e.N > math.MaxInt64/2 {
			return bad("bad length")
		}
	case Hole:
		if e.N, ok = uvar(); !ok || e.N == 0 {
			return bad("bad hole length")
		}
	case Inline:
		if e.N, ok = uvar(); !ok || e.N == 0 || e.N > InlineMax || e.N > int64(len(p)) {
			return bad("bad inline length")
		}
		e.Bytes, p = p[:e.N:e.N], p[e.N:]
	default:
		return bad(fmt.Sprintf("unknown kind %d", e.Kind))
	}
	return e, len(src) - len(p), nil
}

// HoleOf returns a rope of n zero bytes.
func HoleOf(t *Tree, n int64) Rope {
	if n <= 0 {
		return Rope{}
	}
	return t.FromItems([]Extent{{Kind: Hole, N: n}})
}

// Of returns a rope of the given extents.
func Of(t *Tree, exts ...Extent) Rope {
	var items []Extent
	for _, e := range exts {
		if e.N > 0 {
			items = append(items, e)
		}
	}
	return t.FromItems(items)
}

// Source supplies the bytes of data blobs.
type Source interface {
	// Blob returns the whole verified blob; the caller does not modify it.
	Blob(id store.ID) ([]byte, error)
}

// ReadAt copies the bytes of r at off into p and returns how many it copied:
// fewer than len(p) only at the end of the rope.
func ReadAt(t *Tree, r Rope, src Source, p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("rope: negative offset %d", off)
	}
	if off >= r.Len || len(p) == 0 {
		return 0, nil
	}
	if int64(len(p)) > r.Len-off {
		p = p[:r.Len-off]
	}
	done := 0
	it := t.Seek(r, off)
	for done < len(p) {
		e, start, ok := it.Next()
		if !ok {
			if err := it.Err(); err != nil {
				return done, err
			}
			return done, fmt.Errorf("%w: rope ends before its length", btree.ErrCorrupt)
		}
		skip := off + int64(done) - start // bytes of e before the read position
		want := min(e.N-skip, int64(len(p)-done))
		dst := p[done : done+int(want)]
		switch e.Kind {
		case Hole:
			clear(dst)
		case Inline, Pending:
			copy(dst, e.Bytes[skip:skip+want])
		case Data:
			b, err := src.Blob(e.Blob)
			if err != nil {
				return done, err
			}
			lo := e.Off + skip
			if lo+want > int64(len(b)) {
				return done, fmt.Errorf("%w: extent reaches past the end of blob %s", btree.ErrCorrupt, e.Blob.Short())
			}
			copy(dst, b[lo:lo+want])
		}
		done += int(want)
	}
	return done, nil
}

// Blobs calls fn with the data blob of each extent of r that overlaps
// [off, off+n), in order (a blob once for consecutive extents of it),
// until fn returns false.
func Blobs(t *Tree, r Rope, off, n int64, fn func(id store.ID) bool) error {
	if off < 0 || n <= 0 || off >= r.Len {
		return nil
	}
	end := min(off+n, r.Len)
	it := t.Seek(r, off)
	var last store.ID
	for {
		e, start, ok := it.Next()
		if !ok {
			return it.Err()
		}
		if start >= end {
			return nil
		}
		if e.Kind == Data && e.Blob != last {
			last = e.Blob
			if !fn(e.Blob) {
				return nil
			}
		}
	}
}

// Put returns r with with's bytes placed at off, replacing n bytes there
// (n may exceed what r holds past off). A gap between r's end and off
// becomes a hole.
func Put(t *Tree, r Rope, off, n int64, with Rope) (Rope, error) {
	if off < 0 || n < 0 || off > MaxSize || n > MaxSize-off || with.Len > MaxSize-off {
		return r, fmt.Errorf("rope: range %d+%d outside 0..%d", off, n, int64(MaxSize))
	}
	if off > r.Len {
		var err error
		if r, err = t.Join(r, HoleOf(t, off-r.Len)); err != nil {
			return r, err
		}
	}
	end := min(off+n, r.Len)
	return t.Replace(r, off, end, with)
}

// Truncate returns r cut or extended (with a hole) to size.
func Truncate(t *Tree, r Rope, size int64) (Rope, error) {
	switch {
	case size < 0 || size > MaxSize:
		return r, fmt.Errorf("rope: size %d outside 0..%d", size, int64(MaxSize))
	case size < r.Len:
		left, _, err := t.Split(r, size)
		return left, err
	case size > r.Len:
		return t.Join(r, HoleOf(t, size-r.Len))
	}
	return r, nil
}

// Data and holes are reported in whole units: the rope is cut into units
// [k*unit, (k+1)*unit), the last one ending at r.Len, and a unit is a hole
// only if every byte of it is, as file systems that allocate in blocks
// report them. A data unit may hold hole bytes (they read as zeros).

// SeekData returns the first offset >= off in a data unit (off itself if
// its unit holds data), or -1 if there is none before the end.
func SeekData(t *Tree, r Rope, off, unit int64) (int64, error) {
	first := off / unit * unit
	it := t.Seek(r, first)
	for e, start, ok := it.Next(); ok; e, start, ok = it.Next() {
		if e.Kind != Hole {
			return max(off, max(start, first)/unit*unit), nil
		}
	}
	return -1, it.Err()
}

// SeekHole returns the first offset >= off in a hole unit (off itself if
// its unit is a hole), or r.Len (the implicit hole at the end) if there is
// none; off must be < r.Len.
func SeekHole(t *Tree, r Rope, off, unit int64) (int64, error) {
	first := off / unit * unit
	it := t.Seek(r, first)
	run := int64(-1) // start of the run of hole extents being scanned, from first on
	for e, start, ok := it.Next(); ok; e, start, ok = it.Next() {
		if e.Kind != Hole {
			run = -1
			continue
		}
		if run < 0 {
			run = max(start, first)
		}
		end := start + e.N
		u := (run + unit - 1) / unit * unit // the first unit that starts in the run
		if u+unit <= end || end == r.Len && u < end {
			return max(off, u), nil
		}
	}
	return r.Len, it.Err()
}
