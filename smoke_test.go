package cowfs

import (
	"bytes"
	"context"
	"crypto/rand"
	"testing"

	"github.com/cowfs/cowfs/store"
	"github.com/cowfs/cowfs/store/mem"
)

func TestSmoke(t *testing.T) {
	st := mem.New()
	f, err := Open(st, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := f.CreateVolume("main")
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 3<<20)
	rand.Read(data)
	if err := v.MkdirAll("a/b", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := v.WriteFile("a/b/f", data, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := v.ReadFile("a/b/f")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back: %v", err)
	}
	if err := v.Clone("a", "c"); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	got, err = v.ReadFile("c/b/f")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("clone read: %v", err)
	}
	fa, _ := v.Stat("a/b/f")
	fc, _ := v.Stat("c/b/f")
	if fa.Stat().Ino == fc.Stat().Ino {
		t.Fatalf("same ino %x", fa.Stat().Ino)
	}
	t.Logf("ino a %x c %x", fa.Stat().Ino, fc.Stat().Ino)
	if err := v.Snapshot("s1"); err != nil {
		t.Fatal(err)
	}
	if err := v.Remove("a/b/f"); err != nil {
		t.Fatal(err)
	}
	if err := v.Remove("c/b/f"); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	u, _ := st.Usage(context.Background())
	t.Logf("after removes (snapshot holds data): %+v", u)
	if err := v.DeleteSnapshot("s1"); err != nil {
		t.Fatal(err)
	}
	u, _ = st.Usage(context.Background())
	t.Logf("after snapshot delete: %+v", u)
	if err := f.DeleteVolume("main"); err != nil {
		t.Fatal(err)
	}
	u, _ = st.Usage(context.Background())
	if u.Blobs != 0 {
		t.Fatalf("store not empty: %+v", u)
	}
}

func TestSmokeCheck(t *testing.T) {
	st := mem.New()
	f, _ := Open(st, nil)
	v, _ := f.CreateVolume("main")
	data := make([]byte, 1<<20)
	rand.Read(data)
	v.MkdirAll("a/b", 0o755)
	v.WriteFile("a/b/f", data, 0o644)
	v.WriteFile("a/g", []byte("small"), 0o644)
	if err := v.Link("a/g", "a/b/g2"); err != nil {
		t.Fatal(err)
	}
	if err := v.Clone("a", "c"); err != nil {
		t.Fatal(err)
	}
	if err := v.Rename("c/b", "b2", 0); err != nil {
		t.Fatal(err)
	}
	v.Snapshot("s")
	rep, err := f.Check(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Err(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", *rep)
	// Corrupt a count: the checker must say so.
	var some store.ID
	st.List(context.Background(), func(b store.BlobInfo) error { some = b.ID; return nil })
	st.Commit(context.Background(), store.Batch{Refs: map[store.ID]int64{some: 1}})
	rep, _ = f.Check(context.Background())
	if len(rep.Problems) != 1 {
		t.Fatalf("want 1 problem, got %v", rep.Err())
	}
	t.Log(rep.Err())
}
