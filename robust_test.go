package cowfs

import (
	"context"
	"errors"
	"os"
	"syscall"
	"testing"

	"github.com/cowfs/cowfs/acl"
	"github.com/cowfs/cowfs/internal/dirtree"
	"github.com/cowfs/cowfs/store"
	"github.com/cowfs/cowfs/store/mem"
)

// FuzzPaths throws arbitrary paths at every path-taking method of a populated
// volume: each call returns a *Error or nothing, never panics, and the
// checker stays clean.
func FuzzPaths(f *testing.F) {
	for _, s := range []string{"", "/", ".", "..", "a", "a/", "a/./b/../b", "//a//b", "l/x", "loop", "a\x00b",
		"f/..", "f/.", "a/b/c/d/e", string(make([]byte, 300)), "../../../a", "a/b/f"} {
		f.Add(s, "a/new")
	}
	// A fresh volume per input: a clone of the root into itself is O(1) but
	// doubles what the checker walks, so shared state would grow without bound.
	f.Fuzz(func(t *testing.T, p, q string) {
		v, fsys := fuzzVolume()
		fuzzPathOps(t, v, fsys, p, q)
		fuzzPathOps(t, v, fsys, q, p)
	})
}

func fuzzVolume() (*Volume, *FS) {
	fsys, _ := Open(mem.New(), nil)
	v, _ := fsys.CreateVolume("main")
	v.MkdirAll("a/b", 0o755)
	v.WriteFile("a/b/f", []byte("hello"), 0o644)
	v.WriteFile("f", []byte("x"), 0o644)
	v.Symlink("a/b", "l")
	v.Symlink("loop", "loop")
	return v, fsys
}

// fuzzPathOps applies every path-taking method to p and q.
func fuzzPathOps(t *testing.T, v *Volume, fsys *FS, p, q string) {
	isErr := func(err error) {
		var e *Error
		if err != nil && !errors.As(err, &e) {
			t.Fatalf("error of type %T: %v", err, err)
		}
	}
	_, err := v.Stat(p)
	isErr(err)
	_, err = v.Lstat(p)
	isErr(err)
	_, err = v.ReadDir(p)
	isErr(err)
	_, err = v.Readlink(p)
	isErr(err)
	isErr(v.Mkdir(p, 0o755))
	isErr(v.Symlink(q, p))
	isErr(v.SetXattr(p, "user.x", []byte(q), 0))
	if fh, err := v.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644); err == nil {
		fh.WriteAt([]byte(q), int64(len(p)))
		fh.Close()
	} else {
		isErr(err)
	}
	isErr(v.Clone(p, q))
	isErr(v.Link(p, q+"2"))
	isErr(v.Rename(p, q, RenameExchange))
	isErr(v.Rename(q, p, 0))
	isErr(v.Remove(q))
	isErr(v.Remove(q + "2"))
	for _, r := range []string{p, q, ""} {
		_, err = v.Usage(r)
		isErr(err)
	}
	rep, err := fsys.Check(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Err(); err != nil {
		t.Fatal(err)
	}
}

// TestVolumeNodeGarbage: a volume node cut short is an error, and one with
// flipped bytes is an error or a volume, never a panic.
func TestVolumeNodeGarbage(t *testing.T) {
	st := mem.New()
	f, _ := Open(keepOpen{st}, nil)
	v, _ := f.CreateVolume("main")
	v.MkdirAll("a/b", 0o755)
	v.Link("a", "x") // fails (directory): fine, the volume still has content
	v.WriteFile("a/b/f", []byte("data"), 0o644)
	v.Link("a/b/f", "a/g")
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	id, err := st.GetRoot(context.Background(), volRoot("main"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := st.Get(context.Background(), id)
	for cut := 0; cut < len(b); cut++ {
		if _, err := f.decodeVolume(b[:cut]); err == nil {
			t.Fatalf("volume node cut to %d of %d bytes decoded without error", cut, len(b))
		}
	}
	for i := range b {
		m := append([]byte(nil), b...)
		m[i] ^= 0xa5
		f.decodeVolume(m)
	}
}

// TestCorruptStoreReadsFail: a store that returns wrong bytes for a data blob
// makes reads of that file fail with EIO, and the checker name the blob.
func TestCorruptStoreReadsFail(t *testing.T) {
	st := &corrupting{Store: mem.New()}
	f, _ := Open(st, &Options{CacheBytes: 1}) // nothing stays cached
	v, _ := f.CreateVolume("main")
	data := randBytes(9, 200<<10)
	v.WriteFile("big", data, 0o644)
	v.WriteFile("other", []byte("fine"), 0o644)
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	var victim store.ID
	st.List(context.Background(), func(b store.BlobInfo) error {
		if b.Size > 10<<10 {
			victim = b.ID
		}
		return nil
	})
	st.bad = victim
	if _, err := v.ReadFile("big"); Errno(err) != 5 { // EIO
		t.Fatalf("reading a file with a corrupt blob: %v, want EIO", err)
	}
	if got, err := v.ReadFile("other"); err != nil || string(got) != "fine" {
		t.Fatalf("an unaffected file: %q, %v", got, err)
	}
	rep, err := f.Check(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range rep.Problems {
		found = found || p.Blob == victim
	}
	if !found {
		t.Fatalf("checker did not name the corrupt blob: %v", rep.Err())
	}
}

// corrupting is a store whose Get verifies bytes, as durable backends must,
// and reports ErrCorrupt for one blob whose bytes it pretends went bad.
type corrupting struct {
	store.Store
	bad store.ID
}

func (c *corrupting) Get(ctx context.Context, id store.ID) ([]byte, error) {
	b, err := c.Store.Get(ctx, id)
	if err == nil && id == c.bad {
		b = append([]byte{}, b...)
		b[0] ^= 1
	}
	if err == nil && store.Sum(b) != id {
		return nil, store.ErrCorrupt
	}
	return b, err
}

// TestRepairLeaked: blobs stored but never committed (as a crash leaves them)
// are reported as leaked and Repair deletes exactly those.
func TestRepairLeaked(t *testing.T) {
	st := mem.New()
	f, _ := Open(st, nil)
	v, _ := f.CreateVolume("main")
	v.WriteFile("keep", randBytes(11, 100<<10), 0o644)
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var leaked []store.ID
	for i := 0; i < 3; i++ {
		id, err := st.Put(ctx, randBytes(uint64(20+i), 1000))
		if err != nil {
			t.Fatal(err)
		}
		leaked = append(leaked, id)
	}
	rep, err := f.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Leaked) != 3 || len(rep.Problems) != 3 {
		t.Fatalf("want 3 leaked blobs reported, got leaked %d, problems: %v", len(rep.Leaked), rep.Err())
	}
	n, err := f.Repair(ctx, rep)
	if err != nil || n != 3 {
		t.Fatalf("Repair deleted %d, %v; want 3", n, err)
	}
	for _, id := range leaked {
		if _, err := st.Stat(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("leaked blob %s still there: %v", id.Short(), err)
		}
	}
	mustCheck(t, f)
	if got, err := v.ReadFile("keep"); err != nil || len(got) != 100<<10 {
		t.Fatalf("repair hurt a live file: %v", err)
	}
}

// TestErrCorrupt: corrupt metadata in a store fails the operation that
// meets it with EIO, as an error that errors.Is matches with ErrCorrupt.
// Each case stores well-formed blobs (their bytes match their IDs, so the
// store has nothing to report) holding metadata that is not: a root bound
// to bytes that are not a volume node, a directory node cut short, a hard
// link name whose inode is missing, a default ACL that does not parse, a
// view root with a malformed name.
func TestErrCorrupt(t *testing.T) {
	ctx := context.Background()
	// bind stores b and binds root name to it.
	bind := func(t *testing.T, st store.Store, name string, b []byte) {
		t.Helper()
		id, err := st.Put(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Commit(ctx, store.Batch{Roots: []store.RootSwap{{Name: name, New: id}}}); err != nil {
			t.Fatal(err)
		}
	}
	// broken makes volume "main" (a directory d with a file f, hard-linked
	// as g), then binds "v:broken" to a copy of its volume node changed by
	// edit, and returns that volume from a new FS on the store.
	broken := func(t *testing.T, edit func(f *FS, m *volMeta)) *Volume {
		t.Helper()
		st := mem.New()
		f, err := Open(keepOpen{st}, nil)
		if err != nil {
			t.Fatal(err)
		}
		v, _ := f.CreateVolume("main")
		if err := errors.Join(v.Mkdir("d", 0o755), v.WriteFile("d/f", []byte("data"), 0o644), v.Link("d/f", "g"), f.Commit()); err != nil {
			t.Fatal(err)
		}
		id, err := st.GetRoot(ctx, volRoot("main"))
		if err != nil {
			t.Fatal(err)
		}
		m, err := f.loadVolume(id)
		if err != nil {
			t.Fatal(err)
		}
		edit(f, &m)
		b, err := (&volumeNode{f: f, m: m}).Encode()
		if err != nil {
			t.Fatal(err)
		}
		bind(t, st, volRoot("broken"), b)
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		g, err := Open(st, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { g.Close() })
		bv, err := g.Volume("broken")
		if err != nil {
			t.Fatal(err)
		}
		return bv
	}
	want := func(t *testing.T, what string, err error) {
		t.Helper()
		if !errors.Is(err, ErrCorrupt) || Errno(err) != syscall.EIO {
			t.Fatalf("%s: %v (errno %d), want EIO wrapping ErrCorrupt", what, err, Errno(err))
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("%s: %T is not a *cowfs.Error", what, err)
		}
	}

	t.Run("not a volume node", func(t *testing.T) {
		st := mem.New()
		bind(t, st, volRoot("broken"), []byte("not a node"))
		f, err := Open(st, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		_, err = f.Volume("broken")
		want(t, "opening the volume", err)
	})
	t.Run("directory node cut short", func(t *testing.T) {
		v := broken(t, func(f *FS, m *volMeta) {
			b, err := f.st.Get(ctx, m.root.Dir.ID)
			if err != nil {
				t.Fatal(err)
			}
			if m.root.Dir.ID, err = f.st.Put(ctx, b[:len(b)-1]); err != nil {
				t.Fatal(err)
			}
		})
		_, err := v.Stat("d/f")
		want(t, "stat below the directory", err)
		_, err = v.ReadDir("/")
		want(t, "listing the directory", err)
	})
	t.Run("link name without its inode", func(t *testing.T) {
		v := broken(t, func(f *FS, m *volMeta) { m.links = dirtree.Dir{} })
		if _, err := v.Stat("d"); err != nil {
			t.Fatalf("stat of an intact directory: %v", err)
		}
		_, err := v.Stat("g")
		want(t, "stat of the link", err)
		_, err = v.ReadFile("d/f")
		want(t, "reading the link's other name", err)
	})
	t.Run("default ACL that does not parse", func(t *testing.T) {
		v := broken(t, func(f *FS, m *volMeta) {
			m.root.PutXattr(dirtree.Inline(acl.DefaultXattr, []byte{1, 2, 3}), false)
		})
		want(t, "creating a file under the ACL", v.WriteFile("new", nil, 0o644))
	})
	t.Run("view root with a malformed name", func(t *testing.T) {
		st := mem.New()
		f, err := Open(keepOpen{st}, nil)
		if err != nil {
			t.Fatal(err)
		}
		v, _ := f.CreateVolume("main")
		if err := errors.Join(v.WriteFile("f", []byte("data"), 0o644), f.Close()); err != nil {
			t.Fatal(err)
		}
		id, err := st.GetRoot(ctx, volRoot("main"))
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Commit(ctx, store.Batch{Roots: []store.RootSwap{{Name: viewRootPrefix + "x", New: id}}}); err != nil {
			t.Fatal(err)
		}
		_, err = Open(st, nil)
		want(t, "opening the store", err)
	})
}
