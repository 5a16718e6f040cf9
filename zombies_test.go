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

// TestUnreadableZombieList: a corrupt zombie list does not keep the FS from
// opening; commits go on (deleting without a budget), and the checker names
// the corrupt blob.
func TestUnreadableZombieList(t *testing.T) {
	st := &corrupting{Store: mem.New()}
	f, _ := Open(st, &Options{ReleaseBudget: 2})
	v, _ := f.CreateVolume("main")
	v.WriteFile("big", randBytes(12, 3<<20), 0o644)
	f.Commit()
	v.Remove("big")
	f.Commit()
	if f.Zombies() == 0 {
		t.Fatal("expected zombies")
	}
	root, err := st.GetRoot(context.Background(), zombieRoot)
	if err != nil {
		t.Fatal(err)
	}
	st.bad = root
	f2, err := Open(st, &Options{ReleaseBudget: 2})
	if err != nil {
		t.Fatalf("Open with a corrupt zombie list: %v", err)
	}
	v2, err := f2.Volume("main")
	if err != nil {
		t.Fatal(err)
	}
	data := randBytes(13, 1<<20)
	if err := v2.WriteFile("new", data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := v2.Remove("new"); err != nil { // more than the budget goes at once
		t.Fatal(err)
	}
	if err := f2.Commit(); err != nil {
		t.Fatalf("commit with a corrupt zombie list: %v", err)
	}
	rep, err := f2.Check(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	named := false
	for _, p := range rep.Problems {
		named = named || p.Blob == root
	}
	if !named {
		t.Fatalf("the checker did not name the corrupt zombie list %s: %v", root.Short(), rep.Err())
	}
}
