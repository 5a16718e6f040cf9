package btree

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"

	"github.com/cowfs/cowfs/store"
	"pgregory.net/rapid"
)

// run is a test item: n copies of byte b. Runs of the same byte merge.
type run struct {
	b byte
	n int64
}

type runOps struct{}

func (runOps) Size(r run) int64                      { return r.n }
func (runOps) Key(run) string                        { return "" }
func (runOps) Split(r run, off int64) (run, run)     { return run{r.b, off}, run{r.b, r.n - off} }
func (runOps) Children(run, func(Child) error) error { return nil }
func (runOps) Marked(run) bool                       { return false }
func (runOps) Merge(a, b run) (run, bool) {
	if a.b == b.b {
		return run{a.b, a.n + b.n}, true
	}
	return a, false
}
func (runOps) AppendItem(dst []byte, r run) ([]byte, error) {
	return binary.AppendUvarint(append(dst, r.b), uint64(r.n)), nil
}
func (runOps) DecodeItem(src []byte) (run, int, error) {
	if len(src) < 2 {
		return run{}, 0, ErrCorrupt
	}
	n, k := binary.Uvarint(src[1:])
	if k <= 0 || n == 0 || n > 1<<40 {
		return run{}, 0, ErrCorrupt
	}
	return run{src[0], int64(n)}, 1 + k, nil
}

// key is a test item for ordered trees.
type key string

type keyOps struct{}

func (keyOps) Size(key) int64                        { return 1 }
func (keyOps) Key(k key) string                      { return string(k) }
func (keyOps) Split(k key, _ int64) (key, key)       { return k, k }
func (keyOps) Merge(a, _ key) (key, bool)            { return a, false }
func (keyOps) Children(key, func(Child) error) error { return nil }
func (keyOps) Marked(key) bool                       { return false }
func (keyOps) AppendItem(dst []byte, k key) ([]byte, error) {
	return append(binary.AppendUvarint(dst, uint64(len(k))), k...), nil
}
func (keyOps) DecodeItem(src []byte) (key, int, error) {
	n, k := binary.Uvarint(src)
	if k <= 0 || n > uint64(len(src)-k) {
		return "", 0, ErrCorrupt
	}
	return key(src[k : k+int(n)]), k + int(n), nil
}

// blobs is a minimal stand-in for the store: encoded nodes by ID.
type blobs struct {
	mu sync.Mutex
	m  map[store.ID][]byte
}

func newTree[I any](ops Ops[I], max int) (*Tree[I], *blobs) {
	bs := &blobs{m: map[store.ID][]byte{}}
	t := &Tree[I]{Ops: ops, Kind: 7, Max: max}
	t.Load = func(id store.ID) (*Node[I], error) {
		bs.mu.Lock()
		data, ok := bs.m[id]
		bs.mu.Unlock()
		if !ok {
			return nil, fmt.Errorf("blob %s: %w", id.Short(), store.ErrNotFound)
		}
		return t.Decode(id, data)
	}
	return t, bs
}

// persist stores every in-memory node of r and returns a Ref that knows only
// the root's ID, so later reads load nodes through Decode.
func persist[I any](t *Tree[I], bs *blobs, r Ref[I]) (Ref[I], error) {
	if r.Empty() {
		return r, nil
	}
	var put func(e Encoder) error
	put = func(e Encoder) error {
		data, err := e.Encode()
		if err != nil {
			return err
		}
		bs.mu.Lock()
		bs.m[store.Sum(data)] = data
		bs.mu.Unlock()
		return e.Children(func(c Child) error {
			if c.Mem != nil {
				return put(c.Mem)
			}
			return nil
		})
	}
	if r.n != nil {
		if err := put(r.n); err != nil {
			return r, err
		}
	}
	id, err := RefID(r)
	if err != nil {
		return r, err
	}
	return Stored[I](id, r.H, r.Len, r.Count, r.Key), nil
}

func flatten(t *testing.T, tr *Tree[run], r Ref[run]) []byte {
	t.Helper()
	var out []byte
	it := tr.Seek(r, 0)
	for x, start, ok := it.Next(); ok; x, start, ok = it.Next() {
		if start != int64(len(out)) {
			t.Fatalf("item starts at %d, expected %d", start, len(out))
		}
		out = append(out, bytes.Repeat([]byte{x.b}, int(x.n))...)
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func checkTree[I any](t *testing.T, tr *Tree[I], r Ref[I], ordered bool) {
	t.Helper()
	if errs := tr.Check(r, ordered); len(errs) > 0 {
		t.Fatalf("invariants violated: %v", errors.Join(errs...))
	}
}

func mkRuns(tr *Tree[run], data []byte) Ref[run] {
	var items []run
	for _, b := range data {
		if len(items) > 0 && items[len(items)-1].b == b {
			items[len(items)-1].n++
		} else {
			items = append(items, run{b, 1})
		}
	}
	return tr.FromItems(items)
}

// TestRopeModel applies random splits, joins, replaces, clones and
// persist/reload cycles to several trees and compares them with byte slices.
func TestRopeModel(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		tr, bs := newTree[run](runOps{}, rapid.SampledFrom([]int{8, 9, 16, 64}).Draw(rt, "max"))
		refs := []Ref[run]{{}}
		model := [][]byte{nil}
		genBytes := rapid.SliceOfN(rapid.ByteRange('a', 'c'), 0, 300)
		for step := 0; step < 60; step++ {
			i := rapid.IntRange(0, len(refs)-1).Draw(rt, "i")
			r, m := refs[i], model[i]
			var err error
			switch op := rapid.IntRange(0, 5).Draw(rt, "op"); op {
			case 0: // replace a range with new bytes
				from := rapid.IntRange(0, len(m)).Draw(rt, "from")
				to := rapid.IntRange(from, len(m)).Draw(rt, "to")
				data := genBytes.Draw(rt, "data")
				r, err = tr.Replace(r, int64(from), int64(to), mkRuns(tr, data))
				m = append(append(append([]byte(nil), m[:from]...), data...), m[to:]...)
			case 1: // copy a range of another tree into this one at an offset
				j := rapid.IntRange(0, len(refs)-1).Draw(rt, "j")
				from := rapid.IntRange(0, len(model[j])).Draw(rt, "sfrom")
				to := rapid.IntRange(from, len(model[j])).Draw(rt, "sto")
				at := rapid.IntRange(0, len(m)).Draw(rt, "at")
				var piece Ref[run]
				if piece, err = tr.Slice(refs[j], int64(from), int64(to)); err == nil {
					r, err = tr.Replace(r, int64(at), int64(at), piece)
				}
				m = append(append(append([]byte(nil), m[:at]...), model[j][from:to]...), m[at:]...)
			case 2: // clone into a new tree
				refs, model = append(refs, r), append(model, m)
			case 3: // split and rejoin the other way round
				at := rapid.IntRange(0, len(m)).Draw(rt, "at")
				var a, b Ref[run]
				if a, b, err = tr.Split(r, int64(at)); err == nil {
					checkTree(t, tr, a, false)
					checkTree(t, tr, b, false)
					r, err = tr.Join(b, a)
				}
				m = append(append([]byte(nil), m[at:]...), m[:at]...)
			case 4: // persist and continue from the stored form
				r, err = persist(tr, bs, r)
			case 5: // delete a range
				from := rapid.IntRange(0, len(m)).Draw(rt, "from")
				to := rapid.IntRange(from, len(m)).Draw(rt, "to")
				r, err = tr.Replace(r, int64(from), int64(to), Ref[run]{})
				m = append(append([]byte(nil), m[:from]...), m[to:]...)
			}
			if err != nil {
				t.Fatal(err)
			}
			refs[i], model[i] = r, m
			checkTree(t, tr, r, false)
			if got := flatten(t, tr, r); !bytes.Equal(got, m) {
				t.Fatalf("step %d: tree holds %q, model %q", step, got, m)
			}
			if r.Len != int64(len(m)) {
				t.Fatalf("Len %d, model %d", r.Len, len(m))
			}
		}
		// Every tree still matches after all the sharing.
		for i := range refs {
			if got := flatten(t, tr, refs[i]); !bytes.Equal(got, model[i]) {
				t.Fatalf("tree %d changed under sharing", i)
			}
		}
	})
}

// TestOrderedModel inserts and deletes keys through Find/Replace and checks
// order, lookups and the shape after each step.
func TestOrderedModel(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		tr, bs := newTree[key](keyOps{}, 8)
		var r Ref[key]
		model := map[string]bool{}
		for step := 0; step < 150; step++ {
			k := rapid.StringMatching(`[a-e]{1,3}`).Draw(rt, "k")
			pos, _, found, err := tr.Find(r, k)
			if err != nil {
				t.Fatal(err)
			}
			if found != model[k] {
				t.Fatalf("Find(%q) found=%v, model %v", k, found, model[k])
			}
			if rapid.Bool().Draw(rt, "insert") {
				end := pos
				if found {
					end++
				}
				r, err = tr.Replace(r, pos, end, tr.FromItems([]key{key(k)}))
				model[k] = true
			} else if found {
				r, err = tr.Replace(r, pos, pos+1, Ref[key]{})
				delete(model, k)
			}
			if err != nil {
				t.Fatal(err)
			}
			if rapid.IntRange(0, 9).Draw(rt, "persist") == 0 {
				if r, err = persist(tr, bs, r); err != nil {
					t.Fatal(err)
				}
			}
			checkTree(t, tr, r, true)
			var want []string
			for k := range model {
				want = append(want, k)
			}
			sort.Strings(want)
			var got []string
			it := tr.Seek(r, 0)
			for x, _, ok := it.Next(); ok; x, _, ok = it.Next() {
				got = append(got, string(x))
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("tree %v, model %v", got, want)
			}
		}
	})
}

// TestDecodeRejectsGarbage feeds truncated and mutated node blobs to Decode:
// every result is either a clean error or a node, never a panic.
func TestDecodeRejectsGarbage(t *testing.T) {
	tr, bs := newTree[run](runOps{}, 8)
	data := make([]byte, 5000)
	for i := range data {
		data[i] = byte('a' + i/7%3)
	}
	if _, err := persist(tr, bs, mkRuns(tr, data)); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, blob := range bs.m {
		for cut := 0; cut < len(blob); cut++ {
			if _, err := tr.Decode(store.ID{}, blob[:cut]); err == nil {
				t.Fatalf("truncated node (%d of %d bytes) decoded without error", cut, len(blob))
			}
		}
		for i := range blob {
			mut := append([]byte(nil), blob...)
			mut[i] ^= 0xff
			tr.Decode(store.ID{}, mut) // must not panic
			n++
		}
	}
	if n == 0 {
		t.Fatal("no blobs were persisted")
	}
}

// TestSplitJoinCost checks that a split and a join touch O(log n) nodes: a
// 1,000,000-item tree split in the middle creates only a few dozen nodes.
func TestSplitJoinCost(t *testing.T) {
	tr, _ := newTree[run](runOps{}, 64)
	items := make([]run, 1_000_000)
	for i := range items {
		items[i] = run{byte(i % 2), 4096}
	}
	r := tr.FromItems(items)
	a, b, err := tr.Split(r, r.Len/2+7)
	if err != nil {
		t.Fatal(err)
	}
	j, err := tr.Join(b, a)
	if err != nil {
		t.Fatal(err)
	}
	checkTree(t, tr, j, false)
	// Count nodes reachable from j that are not nodes of r.
	old := map[*Node[run]]bool{}
	tr.Walk(r, func(_ Ref[run], n *Node[run], _ int64) error { old[n] = true; return nil })
	fresh := 0
	tr.Walk(j, func(_ Ref[run], n *Node[run], _ int64) error {
		if !old[n] {
			fresh++
		}
		return nil
	})
	if fresh > 40 {
		t.Fatalf("split+join of a 10^6-item tree built %d new nodes, want O(log n) (<= 40)", fresh)
	}
	t.Logf("split+join built %d new nodes", fresh)
}
