package cowfs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/cowfs/cowfs/store"
	"github.com/cowfs/cowfs/store/mem"
)

// newViewFS returns an FS on a fresh in-memory store with a volume and a
// committed file "f" of size bytes of seeded random data.
func newViewFS(t *testing.T, size int) (*FS, *mem.Store, *Volume, []byte) {
	t.Helper()
	st := mem.New()
	f, err := Open(st, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	v, err := f.CreateVolume("v")
	if err != nil {
		t.Fatal(err)
	}
	data := randBytes(uint64(size), size)
	if err := v.WriteFile("f", data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	return f, st, v, data
}

func readView(t *testing.T, w *View) []byte {
	t.Helper()
	b := make([]byte, w.Len())
	if n, err := w.ReadAt(b, 0); err != nil || int64(n) != w.Len() {
		t.Fatalf("read view: %d, %v", n, err)
	}
	return b
}

// TestViewIsolationAndWriteBack: a view keeps the bytes of its time through
// later writes and commits; writing it back writes only its detached pages
// and makes the file equal to a plain copy.
func TestViewIsolationAndWriteBack(t *testing.T) {
	f, _, v, data := newViewFS(t, 1<<20+123)
	fl, err := v.OpenFile("f", 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fl.Close()
	w, err := fl.ReadDeferred(1000, 300000)
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(data[1000:301000])
	// The file changes and is committed; the view does not.
	if _, err := fl.WriteAt(bytes.Repeat([]byte("x"), 200000), 50000); err != nil {
		t.Fatal(err)
	}
	if err := fl.Truncate(100); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	mustCheck(t, f)
	if got := readView(t, w); !bytes.Equal(got, want) {
		t.Fatal("the view shows later writes to the file")
	}
	// Writes into the view detach exactly the pages they touch.
	if _, err := w.WriteAt([]byte("hello"), PageSize*3-2); err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteAt([]byte("!"), 250000); err != nil {
		t.Fatal(err)
	}
	copy(want[PageSize*3-2:], "hello")
	want[250000] = '!'
	if got, wantPages := w.Detached(), []int64{2, 3, 250000 / PageSize}; !slices.Equal(got, wantPages) {
		t.Fatalf("detached pages %v, want %v", got, wantPages)
	}
	if got := readView(t, w); !bytes.Equal(got, want) {
		t.Fatal("the view does not show its own writes")
	}
	// Write back into another file at an unaligned offset.
	dst, err := v.Create("g")
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if _, err := dst.Write([]byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	written, err := w.WriteTo(dst, 7)
	if err != nil {
		t.Fatal(err)
	}
	if written != 3*PageSize {
		t.Errorf("wrote %d bytes, want the 3 detached pages (%d)", written, 3*PageSize)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	got, err := v.ReadFile("g")
	if err != nil {
		t.Fatal(err)
	}
	if wantG := append([]byte("0123456"), want...); !bytes.Equal(got, wantG) {
		t.Fatalf("g after write-back: %d bytes, want %d, equal prefix %v", len(got), len(wantG), bytes.HasPrefix(got, wantG[:7]))
	}
	mustCheck(t, f)
	w.Release()
	if _, err := w.ReadAt(make([]byte, 1), 0); err == nil {
		t.Error("a released view still reads")
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	mustCheck(t, f)
}

// TestViewHoldsItsData: the view's data outlives the file it came from until
// the view is released; then its space comes back.
func TestViewHoldsItsData(t *testing.T) {
	f, st, v, data := newViewFS(t, 2<<20)
	fl, err := v.Open("f")
	if err != nil {
		t.Fatal(err)
	}
	w, err := fl.ReadDeferred(0, 1<<40) // clamped to the file
	if err != nil {
		t.Fatal(err)
	}
	fl.Close()
	if w.Len() != int64(len(data)) {
		t.Fatalf("view of %d bytes, want %d", w.Len(), len(data))
	}
	if err := v.Remove("f"); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	mustCheck(t, f)
	roots, _ := st.ListRoots(context.Background())
	if !slices.ContainsFunc(roots, func(r store.Root) bool { return strings.HasPrefix(r.Name, viewRootPrefix) }) {
		t.Errorf("no view root among %v", roots)
	}
	if got := readView(t, w); !bytes.Equal(got, data) {
		t.Fatal("the view lost data when its file was removed")
	}
	w.Release()
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	mustCheck(t, f)
	u, _ := st.Usage(context.Background())
	if u.Bytes > 64<<10 {
		t.Errorf("the store holds %d bytes after the view was released", u.Bytes)
	}
}

// TestViewRootsOfDeadProcess: views a process left unreleased are released
// when the store is opened again.
func TestViewRootsOfDeadProcess(t *testing.T) {
	st := mem.New()
	f, err := Open(st, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := f.CreateVolume("v")
	v.WriteFile("f", bytes.Repeat([]byte("abc"), 100000), 0o644)
	fl, _ := v.Open("f")
	if _, err := fl.ReadDeferred(0, 1000); err != nil {
		t.Fatal(err)
	}
	fl.Close()
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	// Reopen the store without closing the FS: as if the process died.
	f2, err := Open(st, nil)
	if err != nil {
		t.Fatal(err)
	}
	roots, _ := st.ListRoots(context.Background())
	for _, r := range roots {
		if strings.HasPrefix(r.Name, viewRootPrefix) {
			t.Errorf("view root %s survives a reopen", r.Name)
		}
	}
	mustCheck(t, f2)
}

// TestViewReread: rereading over a view drops its detached pages and shows
// the file as it is now.
func TestViewReread(t *testing.T) {
	f, _, v, data := newViewFS(t, 100000)
	fl, _ := v.OpenFile("f", 2, 0)
	defer fl.Close()
	w, err := fl.ReadDeferred(10, 5000)
	if err != nil {
		t.Fatal(err)
	}
	w.WriteAt([]byte("private"), 0)
	fl.WriteAt([]byte("NEW"), 20)
	if err := w.Reread(fl, 10); err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(data[10:5010])
	copy(want[10:], "NEW")
	if got := readView(t, w); !bytes.Equal(got, want) || len(w.Detached()) != 0 {
		t.Fatalf("reread view: equal %v, detached %v", bytes.Equal(got, want), w.Detached())
	}
	if _, err := w.ReadAt(make([]byte, 10), w.Len()); !errors.Is(err, io.EOF) {
		t.Errorf("read at the end: %v, want EOF", err)
	}
	w.Release()
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	mustCheck(t, f)
}

// TestViewCopyRange shares part of a view's snapshot into a file: the
// snapshot's bytes, not the view's own writes, and short at the view's end.
func TestViewCopyRange(t *testing.T) {
	f, _, v, data := newViewFS(t, 50000)
	fl, _ := v.OpenFile("f", 2, 0)
	defer fl.Close()
	w, err := fl.ReadDeferred(100, 40000)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Release()
	w.WriteAt([]byte("mine"), 10)
	fl.WriteAt([]byte("later"), 110)
	dst, _ := v.Create("g")
	defer dst.Close()
	n, err := w.CopyRange(5, dst, 3, 1<<20)
	if err != nil || n != 40000-5 {
		t.Fatalf("copy range: %d, %v", n, err)
	}
	got, _ := v.ReadFile("g")
	if want := append(make([]byte, 3), data[105:40100]...); !bytes.Equal(got, want) {
		t.Fatalf("g: %d bytes, want %d", len(got), len(want))
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	mustCheck(t, f)
}

// TestViewRereadSameSnapshot rereads a committed view onto the same bytes:
// the new view root is the old one's blob, and the commit that swaps them
// must count it once (it once counted its children twice, because it
// released the old root before it materialized the new).
func TestViewRereadSameSnapshot(t *testing.T) {
	f, _, v, _ := newViewFS(t, 12288)
	fl, err := v.OpenFile("f", 2, 0) // O_RDWR
	if err != nil {
		t.Fatal(err)
	}
	defer fl.Close()
	w, err := fl.ReadDeferred(0, 4096)
	if err != nil {
		t.Fatal(err)
	}
	mustCheck(t, f) // commits: the view's snapshot is a root now
	if err := w.Reread(fl, 0); err != nil {
		t.Fatal(err)
	}
	mustCheck(t, f)
	w.Release()
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	mustCheck(t, f)
}
