package cowfs

import (
	"context"
	"os"
	"syscall"
	"testing"

	"github.com/cowfs/cowfs/store/mem"
)

// TestFindInode: FindInode finds a node by number whether it is loaded or
// only stored (after a commit evicted it), also after a rename, a
// hard-linked file and an unlinked open one; Parent answers a directory's
// parent and name, and ENOENT where there is none.
func TestFindInode(t *testing.T) {
	f, err := Open(mem.New(), &Options{MaxInodes: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v, err := f.CreateVolume("main")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, d := range []string{"a", "a/b", "c"} {
		if err := v.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"a/b/f", "a/b/gone"} {
		if err := v.WriteFile(p, []byte(p), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := v.Link("a/b/f", "c/l"); err != nil {
		t.Fatal(err)
	}
	gone, err := v.OpenFile("a/b/gone", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer gone.Close()
	ino := func(p string) uint64 {
		t.Helper()
		fi, err := v.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Stat().Ino
	}
	b, fIno, goneIno := ino("a/b"), ino("a/b/f"), ino("a/b/gone")
	if err := v.Remove("a/b/gone"); err != nil {
		t.Fatal(err)
	}
	if err := v.Rename("a/b", "c/b2", 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err != nil { // evicts what nothing holds
		t.Fatal(err)
	}
	f.mu.Lock()
	loaded := loadedIno(v.root, b) != nil
	f.mu.Unlock()
	if loaded {
		t.Fatal("c/b2 is still loaded after the commit: the test would not search the stored tree")
	}

	x, fi, err := v.FindInode(ctx, b)
	if err != nil || fi.Name() != "b2" || !fi.IsDir() || x.Ino() != b {
		t.Fatalf("FindInode(a/b, now c/b2): %v, %v", fi, err)
	}
	defer x.Release()
	p, name, err := x.Parent(ctx)
	if err != nil || name != "b2" || p.Ino() != ino("c") {
		t.Fatalf("Parent of c/b2: %q, %v", name, err)
	}
	defer p.Release()
	up, name, err := p.Parent(ctx)
	if err != nil || name != "c" || up.Ino() != ino(".") {
		t.Fatalf("Parent of c: %q, %v", name, err)
	}
	defer up.Release()
	_, _, err = up.Parent(ctx)
	wantErrno(t, "Parent of the root", err, syscall.ENOENT)

	// Loaded now (x holds it): found at once, the same node.
	x2, _, err := v.FindInode(ctx, b)
	if err != nil || x2.Ino() != b {
		t.Fatalf("FindInode(c/b2) again: %v", err)
	}
	x2.Release()

	h, fi, err := v.FindInode(ctx, fIno)
	if err != nil || fi.Stat().Nlink != 2 {
		t.Fatalf("FindInode(hard-linked file): %v, %v", fi, err)
	}
	_, _, err = h.Parent(ctx)
	wantErrno(t, "Parent of a hard-linked file", err, syscall.ENOENT)
	h.Release()

	g, fi, err := v.FindInode(ctx, goneIno)
	if err != nil || fi.Stat().Nlink != 0 {
		t.Fatalf("FindInode(unlinked open file): %v, %v", fi, err)
	}
	_, _, err = g.Parent(ctx)
	wantErrno(t, "Parent of an unlinked file", err, syscall.ENOENT)
	g.Release()

	_, _, err = v.FindInode(ctx, 1<<39)
	wantErrno(t, "FindInode(a number nothing has)", err, syscall.ESTALE)
}
