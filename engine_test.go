package cowfs

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cowfs/cowfs/store"
	"github.com/cowfs/cowfs/store/mem"
)

// keepOpen is a store whose Close does nothing, so a test can abandon an FS
// and open the same store again ("reopen").
type keepOpen struct{ store.Store }

func (keepOpen) Close() error { return nil }

func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func mustCheck(t *testing.T, f *FS) {
	t.Helper()
	rep, err := f.Check(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Err(); err != nil {
		t.Fatal(err)
	}
}

func ino(t *testing.T, v *Volume, p string) uint64 {
	t.Helper()
	fi, err := v.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Stat().Ino
}

func storeUsage(t *testing.T, st store.Store) store.Usage {
	t.Helper()
	u, err := st.Usage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestInodeScopes: numbers stay unique after O(1) directory clones (also of
// trees that contain earlier clones) and stable across rename (also into and
// out of cloned subtrees) and reopen.
func TestInodeScopes(t *testing.T) {
	st := keepOpen{mem.New()}
	f, _ := Open(st, nil)
	v, err := f.CreateVolume("main")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"a/b/c", "a/d"} {
		if err := v.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"a/f", "a/b/g", "a/b/c/h", "a/d/i"} {
		if err := v.WriteFile(p, []byte(p), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Clones of clones: a -> a2 (contains nothing cloned), a2/b -> a2/b2, a2 -> a3.
	for _, c := range [][2]string{{"a", "a2"}, {"a2/b", "a2/b2"}, {"a2", "a3"}, {"a3", "a3/nested"}} {
		if err := v.Clone(c[0], c[1]); err != nil {
			t.Fatal(err)
		}
	}
	all := func() map[string]uint64 {
		m := map[string]uint64{}
		var walk func(p string)
		walk = func(p string) {
			m[p] = ino(t, v, p)
			infos, _ := v.ReadDir(p)
			for _, fi := range infos {
				c := strings.TrimSuffix(p, "/") + "/" + fi.Name()
				if fi.IsDir() {
					walk(c)
				} else {
					m[c] = ino(t, v, c)
				}
			}
		}
		walk("/")
		return m
	}
	before := all()
	seen := map[uint64]string{}
	for p, n := range before {
		if q, dup := seen[n]; dup {
			t.Fatalf("%s and %s share inode %#x", p, q, n)
		}
		seen[n] = p
	}
	if len(before) < 40 {
		t.Fatalf("only %d entries reachable; the clones did not happen", len(before))
	}
	// Moves between scopes keep every number in the moved subtree.
	moves := [][2]string{{"a3/b2", "b2moved"}, {"a/b", "a3/nested/bmoved"}, {"a3/nested/bmoved", "a/b"}}
	for _, m := range moves {
		if err := v.Rename(m[0], m[1], 0); err != nil {
			t.Fatal(err)
		}
	}
	after := all()
	rename := func(p string) string {
		for _, m := range moves {
			if p == "/"+m[0] || len(p) > len(m[0])+1 && p[:len(m[0])+2] == "/"+m[0]+"/" {
				p = "/" + m[1] + p[len(m[0])+1:]
			}
		}
		return p
	}
	for p, n := range before {
		if got, ok := after[rename(p)]; !ok || got != n {
			t.Fatalf("%s (now %s) had inode %#x, now %#x (present %v)", p, rename(p), n, got, ok)
		}
	}
	mustCheck(t, f)
	// Reopen: the same numbers.
	f2, _ := Open(st, nil)
	v, err = f2.Volume("main")
	if err != nil {
		t.Fatal(err)
	}
	for p, n := range after {
		if got := ino(t, v, p); got != n {
			t.Fatalf("after reopen %s has inode %#x, had %#x", p, got, n)
		}
	}
}

// TestCloneCostsO1 clones a directory of 2,000 files and a 1,000-extent file
// and counts the blobs the commit writes: a handful, whatever the size.
func TestCloneCostsO1(t *testing.T) {
	st := mem.New()
	f, _ := Open(st, nil)
	v, _ := f.CreateVolume("main")
	v.Mkdir("big", 0o755)
	for i := 0; i < 2000; i++ {
		v.WriteFile("big/"+string(rune('a'+i%26))+string(rune('a'+i/26%26))+string(rune('a'+i/676)), randBytes(uint64(i), 100), 0o644)
	}
	src := randBytes(1, 4<<20)
	if err := v.WriteFile("src", src, 0o644); err != nil {
		t.Fatal(err)
	}
	s, _ := v.Open("src")
	d, _ := v.Create("frag")
	for i, p := range rand.New(rand.NewPCG(2, 2)).Perm(1000) {
		if _, err := CopyRange(s, int64(p)*4096, d, int64(i)*4096, 4096); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	d.Close()
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	fi, _ := v.Stat("frag")
	if fi.Stat().Extents < 900 {
		t.Fatalf("fragmented file has %d extents, want ~1000", fi.Stat().Extents)
	}
	base := storeUsage(t, st)
	if err := v.Clone("big", "big2"); err != nil {
		t.Fatal(err)
	}
	if err := v.Clone("frag", "frag2"); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	after := storeUsage(t, st)
	// The root directory's leaf, and the volume node, replace their old
	// versions; nothing else is written.
	if grew := after.Blobs - base.Blobs; grew > 2 {
		t.Fatalf("cloning wrote %d new blobs, want at most 2", grew)
	}
	got, _ := v.ReadFile("frag2")
	want, _ := v.ReadFile("frag")
	if !bytes.Equal(got, want) {
		t.Fatal("clone differs from its source")
	}
	mustCheck(t, f)
}

// TestDedup writes the same 40 MiB through plain writes to two files: the
// second costs only tree nodes.
func TestDedup(t *testing.T) {
	st := mem.New()
	f, _ := Open(st, &Options{FlushBytes: 8 << 20})
	v, _ := f.CreateVolume("main")
	data := randBytes(3, 40<<20)
	write := func(p string, chunk int) {
		w, err := v.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; off < len(data); off += chunk {
			if _, err := w.Write(data[off:min(off+chunk, len(data))]); err != nil {
				t.Fatal(err)
			}
		}
		w.Close()
		if err := f.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	write("one", 1<<20)
	first := storeUsage(t, st)
	write("two", 100_000) // other write sizes, so other flush points
	second := storeUsage(t, st)
	if grew := second.Bytes - first.Bytes; grew > int64(len(data))/100 {
		t.Fatalf("second copy grew the store by %d bytes (of %d)", grew, len(data))
	}
	got, _ := v.ReadFile("two")
	if !bytes.Equal(got, data) {
		t.Fatal("second copy reads back wrong")
	}
	mustCheck(t, f)
}

// TestDropRootKeepsUncommittedData: deleting a snapshot while another volume
// has flushed but uncommitted data must not delete that data.
func TestDropRootKeepsUncommittedData(t *testing.T) {
	st := mem.New()
	f, _ := Open(st, &Options{FlushBytes: 1 << 20})
	a, _ := f.CreateVolume("a")
	b, _ := f.CreateVolume("b")
	if err := b.Snapshot("s"); err != nil {
		t.Fatal(err)
	}
	data := randBytes(4, 3<<20)
	if err := a.WriteFile("x", data, 0o644); err != nil { // flushed to blobs, not committed
		t.Fatal(err)
	}
	if err := b.DeleteSnapshot("s"); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	got, err := a.ReadFile("x")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("data written before the drop is lost: %v", err)
	}
	mustCheck(t, f)
}

// TestEverythingFreed: after deleting all volumes the store is empty.
func TestEverythingFreed(t *testing.T) {
	st := mem.New()
	f, _ := Open(st, nil)
	v, _ := f.CreateVolume("main")
	v.MkdirAll("a/b", 0o755)
	v.WriteFile("a/b/f", randBytes(5, 3<<20), 0o644)
	v.Link("a/b/f", "a/l")
	v.Clone("a", "c")
	v.Snapshot("s")
	f.CloneVolume("main", "other")
	w, _ := v.OpenFile("a/b/f", 2, 0)
	v.Remove("a/b/f")
	f.Commit()
	w.Close()
	for _, n := range []string{"main", "other"} {
		if err := f.DeleteVolume(n); err != nil {
			t.Fatal(err)
		}
	}
	if u := storeUsage(t, st); u.Blobs != 0 || u.Bytes != 0 {
		t.Fatalf("store holds %+v after everything was deleted", u)
	}
}

// TestBackgroundCommit: with CommitInterval set, written data reaches the
// store without Sync, and a second FS on the same store sees it.
func TestBackgroundCommit(t *testing.T) {
	st := keepOpen{mem.New()}
	f, _ := Open(st, &Options{CommitInterval: 20 * time.Millisecond})
	defer f.Close()
	v, _ := f.CreateVolume("main")
	if err := v.WriteFile("x", []byte("durable without sync"), 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		f2, err := Open(st, nil)
		if err != nil {
			t.Fatal(err)
		}
		v2, err := f2.Volume("main")
		if err == nil {
			if got, err := v2.ReadFile("x"); err == nil && string(got) == "durable without sync" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no background commit within 5 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// loadedInodes counts the inodes a volume holds in memory.
func loadedInodes(v *Volume) int {
	var count func(x *inode) int
	count = func(x *inode) int {
		n := 1
		for _, k := range x.kids {
			n += count(k)
		}
		return n
	}
	return count(v.root) + len(v.links)
}

// TestInodeEviction: after touching 3,000 files with MaxInodes 100, a commit
// leaves only what is in use loaded; files still read back, an open file's
// inode stays, and inode numbers do not change across eviction.
func TestInodeEviction(t *testing.T) {
	st := mem.New()
	f, _ := Open(st, &Options{MaxInodes: 100})
	v, _ := f.CreateVolume("main")
	v.Mkdir("d", 0o755)
	for i := 0; i < 3000; i++ {
		if err := v.WriteFile("d/f"+strconv.Itoa(i), []byte(strconv.Itoa(i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	v.Link("d/f1", "d/link")
	held, _ := v.OpenFile("d/f7", os.O_RDWR, 0)
	held.WriteAt([]byte("77"), 0)
	inoBefore := ino(t, v, "d/f9")
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	if n := loadedInodes(v); n > 10 {
		t.Fatalf("%d inodes still loaded after a commit with MaxInodes 100", n)
	}
	if got := ino(t, v, "d/f9"); got != inoBefore {
		t.Fatalf("inode number changed across eviction: %#x, was %#x", got, inoBefore)
	}
	for _, i := range []int{0, 9, 2999} {
		if got, err := v.ReadFile("d/f" + strconv.Itoa(i)); err != nil || string(got) != strconv.Itoa(i) {
			t.Fatalf("d/f%d after eviction: %q, %v", i, got, err)
		}
	}
	if got, _ := v.ReadFile("d/link"); string(got) != "1" {
		t.Fatalf("hard link after eviction: %q", got)
	}
	held.WriteAt([]byte("7"), 2)
	held.Close()
	if got, _ := v.ReadFile("d/f7"); string(got) != "777" {
		t.Fatalf("file written through a handle held across eviction: %q", got)
	}
	mustCheck(t, f)
}
