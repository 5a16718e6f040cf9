package rope

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/cowfs/cowfs/internal/btree"
	"github.com/cowfs/cowfs/store"
	"pgregory.net/rapid"
)

type blobMap map[store.ID][]byte

func (m blobMap) Blob(id store.ID) ([]byte, error) {
	b, ok := m[id]
	if !ok {
		return nil, fmt.Errorf("blob %s: %w", id.Short(), store.ErrNotFound)
	}
	return b, nil
}

func newTestTree() (*Tree, map[store.ID][]byte) {
	nodes := map[store.ID][]byte{}
	var t *Tree
	t = New(func(id store.ID) (*btree.Node[Extent], error) {
		data, ok := nodes[id]
		if !ok {
			return nil, store.ErrNotFound
		}
		return t.Decode(id, data)
	})
	t.Max = 8
	return t, nodes
}

func readAll(t *testing.T, tr *Tree, r Rope, src Source) []byte {
	t.Helper()
	p := make([]byte, r.Len+10)
	n, err := ReadAt(tr, r, src, p, 0)
	if err != nil {
		t.Fatal(err)
	}
	if int64(n) != r.Len {
		t.Fatalf("read %d bytes of %d", n, r.Len)
	}
	return p[:n]
}

// TestRopeOps checks every rope operation at random byte offsets against a
// byte slice, with extents of all four kinds.
func TestRopeOps(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		tr, _ := newTestTree()
		blobs := blobMap{}
		var r Rope
		var m []byte
		for step := 0; step < 80; step++ {
			var err error
			off := rapid.Int64Range(0, int64(len(m))+50).Draw(rt, "off")
			n := rapid.Int64Range(0, 200).Draw(rt, "n")
			grow := func(end int64) {
				if end > int64(len(m)) {
					m = append(m, make([]byte, end-int64(len(m)))...)
				}
			}
			switch op := rapid.IntRange(0, 6).Draw(rt, "op"); op {
			case 0, 1: // write as pending, inline or a slice of a data blob
				data := rapid.SliceOfN(rapid.Byte(), 1, 200).Draw(rt, "data")
				var e Extent
				switch rapid.IntRange(0, 2).Draw(rt, "kind") {
				case 0:
					e = Extent{Kind: Pending, N: int64(len(data)), Bytes: data}
				case 1:
					e = Extent{Kind: Inline, N: int64(len(data)), Bytes: data}
				case 2:
					blob := append(append([]byte("prefix"), data...), "suffix"...)
					id := store.Sum(blob)
					blobs[id] = blob
					e = Extent{Kind: Data, N: int64(len(data)), Blob: id, Off: 6}
				}
				r, err = Put(tr, r, off, e.N, Of(tr, e))
				grow(off + e.N)
				copy(m[off:], data)
			case 2: // truncate
				r, err = Truncate(tr, r, off)
				grow(off)
				m = m[:off]
			case 3: // punch a hole inside the file
				end := min(off+n, r.Len)
				if off < end {
					r, err = Put(tr, r, off, end-off, HoleOf(tr, end-off))
					clear(m[off:end])
				}
			case 4: // insert range
				if off <= r.Len {
					r, err = Put(tr, r, off, 0, HoleOf(tr, n))
					m = append(m[:off], append(make([]byte, n), m[off:]...)...)
				}
			case 5: // collapse range
				if off+n <= r.Len {
					r, err = Put(tr, r, off, n, Rope{})
					m = append(m[:off], m[off+n:]...)
				}
			case 6: // copy a range of the file onto itself (may overlap)
				soff := rapid.Int64Range(0, int64(len(m))).Draw(rt, "soff")
				n = min(n, int64(len(m))-soff)
				var piece Rope
				if piece, err = tr.Slice(r, soff, soff+n); err == nil {
					r, err = Put(tr, r, off, n, piece)
				}
				src := append([]byte(nil), m[soff:soff+n]...)
				grow(off + n)
				copy(m[off:], src)
			}
			if err != nil {
				t.Fatal(err)
			}
			if errs := tr.Check(r, false); len(errs) > 0 {
				t.Fatal(errors.Join(errs...))
			}
			// Marked finds exactly the pending extents a full scan finds.
			var scan, marked []int64
			it := tr.Seek(r, 0)
			for e, start, ok := it.Next(); ok; e, start, ok = it.Next() {
				if e.Kind == Pending {
					scan = append(scan, start, e.N)
				}
			}
			if err := tr.Marked(r, func(e Extent, start int64) error { marked = append(marked, start, e.N); return nil }); err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(scan) != fmt.Sprint(marked) {
				t.Fatalf("pending extents by scan %v, by Marked %v", scan, marked)
			}
			if got := readAll(t, tr, r, blobs); !bytes.Equal(got, m) {
				t.Fatalf("step %d: rope and model differ (len %d vs %d)", step, len(got), len(m))
			}
			// SEEK_DATA / SEEK_HOLE agree with the extents: bytes in data may be
			// zero, but a hole never holds anything else.
			if r.Len > 0 {
				at := rapid.Int64Range(0, r.Len-1).Draw(rt, "seek")
				unit := rapid.SampledFrom([]int64{1, 3, 4096}).Draw(rt, "unit")
				h, err := SeekHole(tr, r, at, unit)
				if err != nil || h < at || h > r.Len {
					t.Fatalf("SeekHole(%d) = %d, %v", at, h, err)
				}
				for i := h; i < min(r.Len, (h/unit+1)*unit); i++ {
					if m[i] != 0 {
						t.Fatalf("SeekHole(%d, unit %d) = %d, whose block holds %d at %d", at, unit, h, m[i], i)
					}
				}
				d, err := SeekData(tr, r, at, unit)
				if err != nil {
					t.Fatal(err)
				}
				for i := at; d >= 0 && i < d; i++ {
					if m[i] != 0 {
						t.Fatalf("SeekData(%d) = %d skips byte %d = %d", at, d, i, m[i])
					}
				}
				if d == -1 {
					for i := at; i < r.Len; i++ {
						if m[i] != 0 {
							t.Fatalf("SeekData(%d) found none but byte %d = %d", at, i, m[i])
						}
					}
				}
			}
		}
	})
}

// TestPendingCannotEncode: a rope with unflushed bytes refuses to become a blob.
func TestPendingCannotEncode(t *testing.T) {
	tr, _ := newTestTree()
	r := Of(tr, Extent{Kind: Pending, N: 3, Bytes: []byte("abc")})
	if _, err := btree.RefID(r); !errors.Is(err, ErrPending) {
		t.Fatalf("hashing a pending rope: %v, want ErrPending", err)
	}
}

// TestBounds: offsets past MaxSize are refused, not wrapped.
func TestBounds(t *testing.T) {
	tr, _ := newTestTree()
	one := Of(tr, Extent{Kind: Inline, N: 1, Bytes: []byte("x")})
	for _, c := range []struct{ off, n int64 }{{-1, 1}, {MaxSize, 1}, {1 << 62, 1 << 62}, {0, -5}} {
		if _, err := Put(tr, Rope{}, c.off, c.n, one); err == nil {
			t.Errorf("Put(%d, %d) accepted", c.off, c.n)
		}
	}
	if _, err := Truncate(tr, Rope{}, MaxSize+1); err == nil {
		t.Error("Truncate past MaxSize accepted")
	}
}

// TestBlobs: Blobs lists the data blobs of the extents overlapping a
// range, in order, each once for consecutive extents, and stops when told.
func TestBlobs(t *testing.T) {
	tr, _ := newTestTree()
	b := func(i byte) store.ID { return store.Sum([]byte{i}) }
	r := Of(tr,
		Extent{Kind: Data, Blob: b(1), N: 100},
		Extent{Kind: Hole, N: 50},
		Extent{Kind: Data, Blob: b(2), N: 100},
		Extent{Kind: Data, Blob: b(2), Off: 100, N: 100},
		Extent{Kind: Inline, N: 10, Bytes: make([]byte, 10)},
		Extent{Kind: Data, Blob: b(3), N: 100},
	)
	list := func(off, n int64, most int) []store.ID {
		var got []store.ID
		if err := Blobs(tr, r, off, n, func(id store.ID) bool {
			got = append(got, id)
			return len(got) < most
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	for _, c := range []struct {
		off, n int64
		most   int
		want   []store.ID
	}{
		{0, r.Len, 10, []store.ID{b(1), b(2), b(3)}},
		{100, 50, 10, nil},               // the hole only
		{120, 100, 10, []store.ID{b(2)}}, // hole, then b(2)
		{99, 2, 10, []store.ID{b(1)}},
		{349, 500, 10, []store.ID{b(2), b(3)}},
		{0, r.Len, 2, []store.ID{b(1), b(2)}},
		{r.Len, 10, 10, nil},
		{0, 0, 10, nil},
	} {
		if got := list(c.off, c.n, c.most); fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("Blobs(%d, %d): %v, want %v", c.off, c.n, got, c.want)
		}
	}
}
