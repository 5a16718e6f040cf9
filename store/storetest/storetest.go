// Package storetest is the conformance suite every store.Store backend must
// pass. A backend's test calls TestAll (or TestBlobs, TestRoots, TestCommit)
// with a constructor that returns a fresh, empty store for each call:
//
//	func TestConformance(t *testing.T) {
//		storetest.TestAll(t, func(t *testing.T) store.Store { return mem.New() })
//	}
//
// The suite closes every store it opens when the (sub)test ends; a Close that
// returns store.ErrClosed there is not an error. Run it under -race.
package storetest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cowfs/cowfs/store"
)

// TestAll runs TestBlobs, TestRoots and TestCommit as subtests.
func TestAll(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Run("Blobs", func(t *testing.T) { TestBlobs(t, newStore) })
	t.Run("Roots", func(t *testing.T) { TestRoots(t, newStore) })
	t.Run("Commit", func(t *testing.T) { TestCommit(t, newStore) })
}

// open returns a fresh store from newStore and closes it when t ends.
func open(t *testing.T, newStore func(t *testing.T) store.Store) store.Store {
	t.Helper()
	s := newStore(t)
	if s == nil {
		t.Fatal("newStore returned nil, want a store")
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, store.ErrClosed) {
			t.Errorf("Close at end of test: want nil, got %v", err)
		}
	})
	return s
}

// data returns n pseudo-random bytes determined by seed and n.
func data(seed uint64, n int) []byte {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	binary.LittleEndian.PutUint64(key[8:], uint64(n))
	b := make([]byte, n)
	rand.NewChaCha8(key).Read(b)
	return b
}

// put stores b and checks the returned ID.
func put(t *testing.T, s store.Store, b []byte) store.ID {
	t.Helper()
	id, err := s.Put(t.Context(), b)
	if err != nil {
		t.Fatalf("Put(%d bytes): want nil error, got %v", len(b), err)
	}
	if want := store.Sum(b); id != want {
		t.Fatalf("Put(%d bytes): want ID %s (store.Sum), got %s", len(b), want.Short(), id.Short())
	}
	return id
}

// commit applies b and fails the test if that fails.
func commit(t *testing.T, s store.Store, b store.Batch) {
	t.Helper()
	if err := s.Commit(t.Context(), b); err != nil {
		t.Fatalf("Commit(%s): want nil error, got %v", describe(b), err)
	}
}

// describe formats a batch for messages.
func describe(b store.Batch) string {
	var buf bytes.Buffer
	buf.WriteString("{Refs:[")
	for id, d := range b.Refs {
		fmt.Fprintf(&buf, " %s:%+d", id.Short(), d)
	}
	buf.WriteString(" ] Roots:[")
	for _, sw := range b.Roots {
		fmt.Fprintf(&buf, " %q:%s->%s", sw.Name, sw.Old.Short(), sw.New.Short())
	}
	buf.WriteString(" ] Delete:[")
	for _, id := range b.Delete {
		fmt.Fprintf(&buf, " %s", id.Short())
	}
	buf.WriteString(" ]}")
	return buf.String()
}

// wantErr checks that err wraps target.
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: want error wrapping %q, got %v", what, target, err)
	}
}

// checkBytes checks that got equals want.
func checkBytes(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if bytes.Equal(got, want) {
		return
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	t.Errorf("%s: want %d bytes, got %d bytes, first difference at offset %d", what, len(want), len(got), i)
}

// checkStat checks the size and count Stat reports for id.
func checkStat(t *testing.T, s store.Store, id store.ID, size, refs int64) {
	t.Helper()
	info, err := s.Stat(t.Context(), id)
	want := store.BlobInfo{ID: id, Size: size, Refs: refs}
	if err != nil || info != want {
		t.Errorf("Stat(%s): want {Size:%d Refs:%d}, nil error; got {ID:%s Size:%d Refs:%d}, %v",
			id.Short(), size, refs, info.ID.Short(), info.Size, info.Refs, err)
	}
}

// checkUsage checks what Usage reports.
func checkUsage(t *testing.T, s store.Store, want store.Usage) {
	t.Helper()
	got, err := s.Usage(t.Context())
	if err != nil || got != want {
		t.Errorf("Usage: want %+v, nil error; got %+v, %v", want, got, err)
	}
}

// state is everything observable about a store.
type state struct {
	blobs map[store.ID]store.BlobInfo
	roots []store.Root
	usage store.Usage
}

// snapshot reads the whole observable state of s.
func snapshot(t *testing.T, s store.Store) state {
	t.Helper()
	st := state{blobs: make(map[store.ID]store.BlobInfo)}
	err := s.List(t.Context(), func(info store.BlobInfo) error {
		if _, dup := st.blobs[info.ID]; dup {
			return fmt.Errorf("list visited blob %s twice, want once", info.ID.Short())
		}
		st.blobs[info.ID] = info
		return nil
	})
	if err != nil {
		t.Fatalf("List: want nil error, got %v", err)
	}
	if st.roots, err = s.ListRoots(t.Context()); err != nil {
		t.Fatalf("ListRoots: want nil error, got %v", err)
	}
	if st.usage, err = s.Usage(t.Context()); err != nil {
		t.Fatalf("Usage: want nil error, got %v", err)
	}
	return st
}

// checkUnchanged checks that the observable state of s is still before.
func checkUnchanged(t *testing.T, what string, s store.Store, before state) {
	t.Helper()
	after := snapshot(t, s)
	if after.usage != before.usage {
		t.Errorf("%s changed Usage: want %+v, got %+v", what, before.usage, after.usage)
	}
	if !slices.Equal(after.roots, before.roots) {
		t.Errorf("%s changed the roots: want %v, got %v", what, rootsString(before.roots), rootsString(after.roots))
	}
	for id, b := range before.blobs {
		if a, ok := after.blobs[id]; !ok {
			t.Errorf("%s removed blob %s: want it kept with Refs %d", what, id.Short(), b.Refs)
		} else if a != b {
			t.Errorf("%s changed blob %s: want Size %d Refs %d, got Size %d Refs %d", what, id.Short(), b.Size, b.Refs, a.Size, a.Refs)
		}
	}
	for id := range after.blobs {
		if _, ok := before.blobs[id]; !ok {
			t.Errorf("%s added blob %s: want no new blobs", what, id.Short())
		}
	}
}

// rootsString formats roots for messages.
func rootsString(roots []store.Root) string {
	var buf bytes.Buffer
	buf.WriteByte('[')
	for i, r := range roots {
		if i > 0 {
			buf.WriteByte(' ')
		}
		fmt.Fprintf(&buf, "%q:%s", r.Name, r.ID.Short())
	}
	buf.WriteByte(']')
	return buf.String()
}

// checkRoot checks that root name is bound to want.
func checkRoot(t *testing.T, s store.Store, name string, want store.ID) {
	t.Helper()
	got, err := s.GetRoot(t.Context(), name)
	if err != nil || got != want {
		t.Errorf("GetRoot(%q): want %s, nil error; got %s, %v", name, want.Short(), got.Short(), err)
	}
}

// checkNoRoot checks that root name does not exist.
func checkNoRoot(t *testing.T, s store.Store, name string) {
	t.Helper()
	id, err := s.GetRoot(t.Context(), name)
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetRoot(%q) of an absent root: want error wrapping %q, got %s, %v", name, store.ErrNotFound, id.Short(), err)
	}
}

// failCommit commits b, which must fail with an error wrapping target and
// change nothing.
func failCommit(t *testing.T, s store.Store, what string, b store.Batch, target error) {
	t.Helper()
	before := snapshot(t, s)
	err := s.Commit(t.Context(), b)
	wantErr(t, fmt.Sprintf("Commit of %s %s", what, describe(b)), err, target)
	checkUnchanged(t, fmt.Sprintf("failed Commit of %s", what), s, before)
}
