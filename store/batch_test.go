package store_test

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/cowfs/cowfs/store"
)

// fakeState is the state CheckBatch is asked about: blob counts and roots.
type fakeState struct {
	refs  map[store.ID]int64
	roots map[string]store.ID
}

func (f *fakeState) blob(id store.ID) (int64, bool, error) {
	n, ok := f.refs[id]
	return n, ok, nil
}

func (f *fakeState) root(name string) (store.ID, error) { return f.roots[name], nil }

// TestCheckBatch checks every rule CheckBatch enforces, against a state of
// three blobs (x referenced once by root "r", y and z at count 0).
func TestCheckBatch(t *testing.T) {
	x, y, z := store.Sum([]byte("x")), store.Sum([]byte("y")), store.Sum([]byte("z"))
	missing := store.Sum([]byte("missing"))
	type refs = map[store.ID]int64
	type swaps = []store.RootSwap
	tests := []struct {
		name string
		b    store.Batch
		want error // nil: valid
	}{
		{"empty", store.Batch{}, nil},
		{"counts up and down", store.Batch{Refs: refs{x: -1, y: 2, z: 0}}, nil},
		{"count below zero", store.Batch{Refs: refs{x: -2}}, store.ErrInvalid},
		{"count of zero below zero", store.Batch{Refs: refs{y: -1}}, store.ErrInvalid},
		{"count overflowing", store.Batch{Refs: refs{x: math.MaxInt64}}, store.ErrInvalid},
		{"delta of MinInt64", store.Batch{Refs: refs{y: math.MinInt64}}, store.ErrInvalid},
		{"Refs of a missing blob", store.Batch{Refs: refs{y: 1, missing: 1}}, store.ErrNotFound},
		{"Refs of the zero ID", store.Batch{Refs: refs{{}: 1}}, store.ErrNotFound},
		{"delete at count 0", store.Batch{Delete: []store.ID{y, z}}, nil},
		{"delete after the last reference goes", store.Batch{Refs: refs{x: -1}, Delete: []store.ID{x}}, nil},
		{"delete a referenced blob", store.Batch{Delete: []store.ID{x}}, store.ErrInvalid},
		{"delete a blob the batch references", store.Batch{Refs: refs{y: 1}, Delete: []store.ID{y}}, store.ErrInvalid},
		{"delete twice", store.Batch{Delete: []store.ID{y, y}}, store.ErrInvalid},
		{"delete a missing blob", store.Batch{Delete: []store.ID{y, missing}}, store.ErrNotFound},
		{"swap a root", store.Batch{Roots: swaps{{Name: "r", Old: x, New: y}}}, nil},
		{"create and delete roots", store.Batch{Roots: swaps{{Name: "new", New: z}, {Name: "r", Old: x}}}, nil},
		{"assert absence", store.Batch{Roots: swaps{{Name: "none"}}}, nil},
		{"empty root name", store.Batch{Roots: swaps{{Name: "", New: y}}}, store.ErrInvalid},
		{"root name with a slash", store.Batch{Roots: swaps{{Name: "a/b", New: y}}}, store.ErrInvalid},
		{"root name with a NUL", store.Batch{Roots: swaps{{Name: "a\x00", New: y}}}, store.ErrInvalid},
		{"root name of 256 bytes", store.Batch{Roots: swaps{{Name: strings.Repeat("n", 256), New: y}}}, store.ErrInvalid},
		{"root swapped twice", store.Batch{Roots: swaps{{Name: "n", New: y}, {Name: "n", Old: y, New: z}}}, store.ErrInvalid},
		{"root to a missing blob", store.Batch{Roots: swaps{{Name: "n", New: missing}}}, store.ErrInvalid},
		{"root to a blob the batch deletes", store.Batch{Roots: swaps{{Name: "n", New: y}}, Delete: []store.ID{y}}, store.ErrInvalid},
		{"wrong Old", store.Batch{Roots: swaps{{Name: "r", Old: y, New: z}}}, store.ErrConflict},
		{"creating an existing root", store.Batch{Roots: swaps{{Name: "r", New: z}}}, store.ErrConflict},
		{"deleting an absent root", store.Batch{Roots: swaps{{Name: "none", Old: y}}}, store.ErrConflict},
		// A conflict is reported only for an otherwise valid batch.
		{"conflict and a bad name", store.Batch{Roots: swaps{{Name: "r", Old: y}, {Name: "a/b"}}}, store.ErrInvalid},
		{"conflict and a bad count", store.Batch{Refs: refs{y: -1}, Roots: swaps{{Name: "r", Old: y}}}, store.ErrInvalid},
	}
	for _, tc := range tests {
		st := &fakeState{
			refs:  map[store.ID]int64{x: 1, y: 0, z: 0},
			roots: map[string]store.ID{"r": x},
		}
		err := store.CheckBatch("fake", tc.b, st.blob, st.root)
		switch {
		case tc.want == nil && err != nil:
			t.Errorf("%s: want a valid batch, got %v", tc.name, err)
		case tc.want != nil && !errors.Is(err, tc.want):
			t.Errorf("%s: want an error wrapping %q, got %v", tc.name, tc.want, err)
		case err != nil && !strings.HasPrefix(err.Error(), "fake: "):
			t.Errorf("%s: error %q does not start with the backend's name", tc.name, err)
		}
	}
}

// TestCheckBatchLookupErrors: an error of the state's lookups (a damaged
// index, say) is returned as it is, wherever the batch needs the lookup.
func TestCheckBatchLookupErrors(t *testing.T) {
	x, bad := store.Sum([]byte("x")), store.Sum([]byte("bad"))
	errBroken := errors.New("index broken")
	blob := func(id store.ID) (int64, bool, error) {
		if id == bad {
			return 0, false, errBroken
		}
		return 0, true, nil
	}
	root := func(name string) (store.ID, error) {
		if name == "bad" {
			return store.ID{}, errBroken
		}
		return store.ID{}, nil
	}
	for name, b := range map[string]store.Batch{
		"Refs":        {Refs: map[store.ID]int64{x: 1, bad: 1}},
		"Delete":      {Delete: []store.ID{x, bad}},
		"root target": {Roots: []store.RootSwap{{Name: "r", New: bad}}},
		"root value":  {Roots: []store.RootSwap{{Name: "r", New: x}, {Name: "bad", New: x}}},
	} {
		if err := store.CheckBatch("fake", b, blob, root); err != errBroken {
			t.Errorf("%s: want the lookup's error as it is, got %v", name, err)
		}
	}
}
