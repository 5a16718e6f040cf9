package cowfs

import (
	"bytes"
	"context"
	"testing"

	"github.com/cowfs/cowfs/store/mem"
)

// TestBoundedRelease deletes a file of ~100 blobs with a budget of 8
// deletions per commit: each commit deletes at most 8 blobs of it, the rest
// wait as zombies (listed in the store, so they survive a reopen), the
// checker stays clean throughout, a zombie whose bytes are written again is
// resurrected, and in the end the store is empty.
func TestBoundedRelease(t *testing.T) {
	const budget = 8
	st := keepOpen{mem.New()}
	opt := &Options{ReleaseBudget: budget}
	f, _ := Open(st, opt)
	v, _ := f.CreateVolume("main")
	data := randBytes(7, 6<<20)
	if err := v.WriteFile("big", data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	full := storeUsage(t, st)
	if err := v.Remove("big"); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	after := storeUsage(t, st)
	// The new root directory leaf and volume node, and the zombie list's
	// node, are new; at most budget blobs went.
	if gone := full.Blobs - after.Blobs; gone > budget {
		t.Fatalf("one commit deleted %d blobs, budget %d", gone, budget)
	}
	if f.Zombies() == 0 {
		t.Fatal("no zombies left after deleting a file of ~100 blobs with a budget of 8")
	}
	mustCheck(t, f)

	// The list survives a reopen.
	waiting := f.Zombies()
	f, _ = Open(st, opt)
	if got := f.Zombies(); got != waiting {
		t.Fatalf("after reopen %d zombies, before %d", got, waiting)
	}
	v, _ = f.Volume("main")
	mustCheck(t, f)

	// Writing the same bytes again resurrects the data zombies: the file
	// reads back and nothing is double counted.
	if err := v.WriteFile("again", data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	mustCheck(t, f)
	if got, _ := v.ReadFile("again"); !bytes.Equal(got, data) {
		t.Fatal("resurrected data reads back wrong")
	}
	if err := v.Remove("again"); err != nil {
		t.Fatal(err)
	}

	// Later commits work through the list, a budget at a time.
	for i := 0; f.Zombies() > 0 || i == 0; i++ {
		before := storeUsage(t, st)
		if err := f.Commit(); err != nil {
			t.Fatal(err)
		}
		// Up to budget blobs, plus a replaced zombie-list node or two.
		if gone := before.Blobs - storeUsage(t, st).Blobs; gone > budget+3 {
			t.Fatalf("commit %d deleted %d blobs, budget %d", i, gone, budget)
		}
		mustCheck(t, f)
		if i > 200 {
			t.Fatalf("%d zombies still waiting after 200 commits", f.Zombies())
		}
	}
	if err := f.DeleteVolume("main"); err != nil {
		t.Fatal(err)
	}
	for f.Zombies() > 0 {
		if err := f.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	if u := storeUsage(t, st); u.Blobs != 0 || u.Bytes != 0 {
		t.Fatalf("store holds %+v after everything was deleted", u)
	}
}

// TestGC works through a long zombie list in one call.
func TestGC(t *testing.T) {
	st := mem.New()
	f, _ := Open(st, &Options{ReleaseBudget: 4})
	v, _ := f.CreateVolume("main")
	v.WriteFile("big", randBytes(8, 4<<20), 0o644)
	f.Commit()
	v.Remove("big")
	f.Commit()
	if f.Zombies() == 0 {
		t.Fatal("expected zombies before GC")
	}
	var calls int
	rep, err := f.GC(context.Background(), func(int64) { calls++ })
	if err != nil {
		t.Fatal(err)
	}
	if f.Zombies() != 0 || rep.Blobs <= 0 || calls != rep.Commits {
		t.Fatalf("after GC: %d zombies, report %+v, %d progress calls", f.Zombies(), rep, calls)
	}
	mustCheck(t, f)
}
