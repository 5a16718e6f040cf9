package cowfs

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/cowfs/cowfs/internal/btree"
	"github.com/cowfs/cowfs/internal/dirtree"
	"github.com/cowfs/cowfs/internal/rope"
	"github.com/cowfs/cowfs/store"
	"github.com/cowfs/cowfs/store/mem"
	"pgregory.net/rapid"
)

const (
	kib = int64(1) << 10
	mib = int64(1) << 20
)

// tester is what the helpers below need of a *testing.T or a *rapid.T.
type tester interface {
	Helper()
	Fatalf(format string, args ...any)
}

func must(t tester, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%v", err)
	}
}

func wantUsage(t tester, v *Volume, p string, want Usage) {
	t.Helper()
	got, err := v.Usage(p)
	must(t, err)
	if got != want {
		t.Fatalf("%s Usage(%q) = %+v, want %+v", v.Name(), p, got, want)
	}
}

// gc finishes every deletion (FS.GC), so the store holds only what the
// roots reach.
func gc(t tester, f *FS) {
	t.Helper()
	_, err := f.GC(context.Background(), nil)
	must(t, err)
}

// storeData walks every blob the store's roots reach, once each, and
// returns the stored data bytes (data blobs' sizes plus the inline bytes in
// rope nodes) and the bytes of the rest (tree nodes). It fails unless the
// two add up to what the store holds, as they do once no deletion waits.
func storeData(t tester, f *FS) (data, nodes int64) {
	t.Helper()
	ctx := context.Background()
	roots, err := f.st.ListRoots(ctx)
	must(t, err)
	seen := map[store.ID]bool{}
	var visit func(ch btree.Child) error
	visit = func(ch btree.Child) error {
		if seen[ch.ID] {
			return nil
		}
		seen[ch.ID] = true
		info, err := f.st.Stat(ctx, ch.ID)
		if err != nil {
			return err
		}
		if ch.Raw {
			data += info.Size
			return nil
		}
		n, err := f.loadAny(ch.ID)
		if err != nil {
			return err
		}
		var inline int64
		if r, ok := n.(*btree.Node[rope.Extent]); ok {
			for _, e := range r.Items {
				if e.Kind == rope.Inline {
					inline += e.N
				}
			}
		}
		data += inline
		nodes += info.Size - inline
		return n.Children(visit)
	}
	for _, r := range roots {
		must(t, visit(btree.Child{ID: r.ID}))
	}
	u, err := f.st.Usage(ctx)
	must(t, err)
	if data+nodes != u.Bytes {
		t.Fatalf("the store holds %d bytes, its roots reach %d", u.Bytes, data+nodes)
	}
	return data, nodes
}

// reached returns the stored data bytes (as storeData counts them) that
// the file or tree p of v reaches, each blob once, following hard links to
// their files, and its logical size, summed over paths (a hard-linked file
// once). It walks with the Node API, independently of Usage.
func reached(t tester, v *Volume, p string) (data, logical int64) {
	t.Helper()
	n, err := v.Root()
	must(t, err)
	for _, name := range splitPath(p) {
		n, err = n.Lookup(name)
		must(t, err)
	}
	seen := map[store.ID]bool{}
	links := map[uint64]bool{}
	ctx := context.Background()
	var ropeData func(r rope.Rope) int64
	ropeData = func(r rope.Rope) int64 {
		id, err := btree.RefID(r)
		must(t, err)
		if r.Empty() || seen[id] {
			return 0
		}
		seen[id] = true
		node, err := v.f.ropes.NodeOf(r)
		must(t, err)
		var sum int64
		for _, k := range node.Kids {
			sum += ropeData(k)
		}
		for _, e := range node.Items {
			switch {
			case e.Kind == rope.Inline:
				sum += e.N
			case e.Kind == rope.Data && !seen[e.Blob]:
				seen[e.Blob] = true
				info, err := v.f.st.Stat(ctx, e.Blob)
				must(t, err)
				sum += info.Size
			}
		}
		return sum
	}
	var walk func(n *Node)
	walk = func(n *Node) {
		if n.IsDir() {
			for k, err := range n.Children() {
				must(t, err)
				walk(k)
			}
			return
		}
		if n.ent.Type() != dirtree.TypeReg || links[n.linkID] {
			return
		}
		if n.linkID != 0 {
			links[n.linkID] = true
		}
		logical += n.ent.Data.Len
		data += ropeData(n.ent.Data)
	}
	walk(n)
	return data, logical
}

// checkReached checks Usage(p) against reached: Logical is the sizes of
// p's files and Shared+Exclusive all the data p reaches.
func checkReached(t tester, v *Volume, p string) Usage {
	t.Helper()
	u, err := v.Usage(p)
	must(t, err)
	data, logical := reached(t, v, p)
	if u.Logical != logical || u.Shared+u.Exclusive != data {
		t.Fatalf("%s Usage(%q) = %+v; its files hold %d bytes, it reaches %d stored", v.Name(), p, u, logical, data)
	}
	return u
}

// removeAll removes p and everything below it (only what is below, for
// the root).
func removeAll(t tester, v *Volume, p string) {
	t.Helper()
	fi, err := v.Lstat(p)
	must(t, err)
	if fi.IsDir() {
		kids, err := v.ReadDir(p)
		must(t, err)
		for _, k := range kids {
			removeAll(t, v, strings.TrimPrefix(p+"/"+k.Name(), "/"))
		}
	}
	if len(splitPath(p)) > 0 {
		must(t, v.Remove(p))
	}
}

// checkFrees checks Usage(p) against its definition, and removes p: with
// every deletion finished before and after, removing p and committing
// makes the store's data drop by exactly Exclusive, Shared is the rest of
// what p reaches, and the store's total drops by Exclusive plus the tree
// nodes that go (those under p and the rewritten ones above it).
func checkFrees(t tester, f *FS, v *Volume, p string) Usage {
	t.Helper()
	gc(t, f)
	u := checkReached(t, v, p)
	data0, nodes0 := storeData(t, f)
	removeAll(t, v, p)
	gc(t, f)
	data1, nodes1 := storeData(t, f)
	if data0-data1 != u.Exclusive {
		t.Fatalf("Usage(%q) = %+v, but removing it freed %d data bytes (and %d of nodes)", p, u, data0-data1, nodes0-nodes1)
	}
	return u
}

// writeHalves writes n random bytes to p as two committed halves, so a
// blob boundary falls at n/2.
func writeHalves(t *testing.T, f *FS, v *Volume, p string, seed uint64, n int) {
	t.Helper()
	data := apiBytes(seed, n)
	noErr(t, v.WriteFile(p, data[:n/2], 0o644))
	noErr(t, f.Commit())
	fl, err := v.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	noErr(t, err)
	_, err = fl.Write(data[n/2:])
	noErr(t, err)
	noErr(t, fl.Close())
	noErr(t, f.Commit())
}

// TestUsageCopiedFile is the case du must get right: a directory e holding
// a 3 MiB file x and its copy y (a clone, or a range copy of the whole
// file). Removing e frees 3 MiB, removing either file frees nothing until
// the other is gone.
func TestUsageCopiedFile(t *testing.T) {
	for _, how := range []string{"clone", "copy range"} {
		t.Run(how, func(t *testing.T) {
			f, v := apiFS(t)
			noErr(t, v.Mkdir("e", 0o755))
			noErr(t, v.WriteFile("e/x", apiBytes(1, int(3*mib)), 0o644))
			if how == "clone" {
				noErr(t, v.Clone("e/x", "e/y"))
			} else {
				src, err := v.Open("e/x")
				noErr(t, err)
				dst, err := v.Create("e/y")
				noErr(t, err)
				n, err := CopyRange(src, 0, dst, 0, 3*mib)
				noErr(t, err)
				if n != 3*mib {
					t.Fatalf("copied %d bytes", n)
				}
				noErr(t, src.Close())
				noErr(t, dst.Close())
			}
			wantUsage(t, v, "e", Usage{Logical: 6 * mib, Exclusive: 3 * mib})
			wantUsage(t, v, "e/x", Usage{Logical: 3 * mib, Shared: 3 * mib})
			wantUsage(t, v, "e/y", Usage{Logical: 3 * mib, Shared: 3 * mib})
			wantUsage(t, v, "/", Usage{Logical: 6 * mib, Exclusive: 3 * mib})
			if data, _ := storeData(t, f); data != 3*mib {
				t.Fatalf("the store holds %d data bytes, want 3 MiB", data)
			}
			checkFrees(t, f, v, "e/y")
			wantUsage(t, v, "e/x", Usage{Logical: 3 * mib, Exclusive: 3 * mib})
			noErr(t, v.Clone("e/x", "e/y"))
			checkFrees(t, f, v, "e")
		})
	}
}

// TestUsageSnapshot: a snapshot shares everything until the volume
// changes; what changed since is the volume's or the snapshot's own, and
// deleting the snapshot gives its share back.
func TestUsageSnapshot(t *testing.T) {
	f, v := apiFS(t)
	writeHalves(t, f, v, "a", 1, int(mib))
	noErr(t, v.MkdirAll("d/sub", 0o755))
	noErr(t, v.WriteFile("d/sub/small", apiBytes(2, 100), 0o644))
	noErr(t, v.WriteFile("d/b", apiBytes(3, 200_000), 0o644))
	all := Usage{Logical: mib + 100 + 200_000, Exclusive: mib + 100 + 200_000}
	wantUsage(t, v, "", all)

	noErr(t, v.Snapshot("s"))
	s, err := v.OpenSnapshot("s")
	noErr(t, err)
	for _, vol := range []*Volume{v, s} {
		wantUsage(t, vol, "", Usage{Logical: all.Logical, Shared: all.Exclusive})
		wantUsage(t, vol, "a", Usage{Logical: mib, Shared: mib})
		wantUsage(t, vol, "d", Usage{Logical: 200_100, Shared: 200_100})
		wantUsage(t, vol, "d/sub/small", Usage{Logical: 100, Shared: 100})
	}

	// Overwrite a's second half and add a file: the new data is the
	// volume's own, the old half the snapshot's.
	fl, err := v.OpenFile("a", os.O_WRONLY, 0)
	noErr(t, err)
	_, err = fl.WriteAt(apiBytes(4, int(mib/2)), mib/2)
	noErr(t, err)
	noErr(t, fl.Close())
	noErr(t, v.WriteFile("d/new", apiBytes(5, 50_000), 0o644))
	half := Usage{Logical: mib, Shared: mib / 2, Exclusive: mib / 2}
	wantUsage(t, v, "a", half)
	wantUsage(t, s, "a", half)
	wantUsage(t, v, "d", Usage{Logical: 250_100, Shared: 200_100, Exclusive: 50_000})
	wantUsage(t, s, "d", Usage{Logical: 200_100, Shared: 200_100})
	wantUsage(t, v, "d/new", Usage{Logical: 50_000, Exclusive: 50_000})
	checkReached(t, s, "")

	noErr(t, v.DeleteSnapshot("s"))
	wantUsage(t, v, "a", Usage{Logical: mib, Exclusive: mib})
	wantUsage(t, v, "d", Usage{Logical: 250_100, Exclusive: 250_100})
	checkFrees(t, f, v, "a")
	checkFrees(t, f, v, "")
}

// TestUsageClonesAcrossDirectories: a file cloned into another directory
// is shared from either side and exclusive to their common parent; so is a
// directory clone, also once one side changes, and a subtree reached twice
// within a path counts once.
func TestUsageClonesAcrossDirectories(t *testing.T) {
	f, v := apiFS(t)
	noErr(t, v.MkdirAll("d/a", 0o755))
	noErr(t, v.Mkdir("d/b", 0o755))
	noErr(t, v.WriteFile("d/a/f", apiBytes(1, 200_000), 0o644))
	noErr(t, v.WriteFile("d/a/g", apiBytes(2, 100_000), 0o644))
	noErr(t, v.Clone("d/a/f", "d/b/f"))
	wantUsage(t, v, "d/a", Usage{Logical: 300_000, Shared: 200_000, Exclusive: 100_000})
	wantUsage(t, v, "d/b", Usage{Logical: 200_000, Shared: 200_000})
	wantUsage(t, v, "d", Usage{Logical: 500_000, Exclusive: 300_000})
	wantUsage(t, v, "", Usage{Logical: 500_000, Exclusive: 300_000})

	// A directory clone shares a's whole tree.
	noErr(t, v.Clone("d/a", "d/c"))
	wantUsage(t, v, "d/a", Usage{Logical: 300_000, Shared: 300_000})
	wantUsage(t, v, "d/c", Usage{Logical: 300_000, Shared: 300_000})
	wantUsage(t, v, "d", Usage{Logical: 800_000, Exclusive: 300_000})

	// Changing the clone gives it a tree of its own; the files stay shared.
	noErr(t, v.WriteFile("d/c/new", apiBytes(3, 10_000), 0o644))
	wantUsage(t, v, "d/a", Usage{Logical: 300_000, Shared: 300_000})
	wantUsage(t, v, "d/c", Usage{Logical: 310_000, Shared: 300_000, Exclusive: 10_000})
	wantUsage(t, v, "d", Usage{Logical: 810_000, Exclusive: 310_000})

	// Many directory nodes, cloned inside one parent: the subtree is
	// reached twice within p, its nodes are counted once per pointer to its
	// top.
	noErr(t, v.MkdirAll("p/t/sub", 0o755))
	var logical int64
	for i := range 300 {
		data := apiBytes(uint64(100+i), 5000+i)
		logical += int64(len(data))
		noErr(t, v.WriteFile(fmt.Sprintf("p/t/sub/f%03d", i), data, 0o644))
	}
	noErr(t, v.Clone("p/t", "p/t2"))
	noErr(t, v.Clone("p/t2/sub", "p/t2/sub2"))
	wantUsage(t, v, "p/t", Usage{Logical: logical, Shared: logical})
	wantUsage(t, v, "p/t2", Usage{Logical: 2 * logical, Shared: logical})
	wantUsage(t, v, "p", Usage{Logical: 3 * logical, Exclusive: logical})
	checkFrees(t, f, v, "p/t2/sub")
	checkFrees(t, f, v, "p/t")
	wantUsage(t, v, "p", Usage{Logical: logical, Exclusive: logical})
	checkFrees(t, f, v, "d/a")
	wantUsage(t, v, "d/b", Usage{Logical: 200_000, Shared: 200_000})
	checkFrees(t, f, v, "d")
}

// TestUsagePartialCopy: a range copy shares part of a file; a file that
// refers to part of a blob counts the whole blob, which is what removing it
// frees.
func TestUsagePartialCopy(t *testing.T) {
	f, v := apiFS(t)
	writeHalves(t, f, v, "a", 1, int(mib))
	copyRange := func(src string, soff int64, dst string, doff, n int64) {
		t.Helper()
		s, err := v.Open(src)
		noErr(t, err)
		d, err := v.OpenFile(dst, os.O_RDWR|os.O_CREATE, 0o644)
		noErr(t, err)
		_, err = CopyRange(s, soff, d, doff, n)
		noErr(t, err)
		noErr(t, s.Close())
		noErr(t, d.Close())
	}
	copyRange("a", mib/2, "b", 0, mib/2)
	wantUsage(t, v, "a", Usage{Logical: mib, Shared: mib / 2, Exclusive: mib / 2})
	wantUsage(t, v, "b", Usage{Logical: mib / 2, Shared: mib / 2})
	wantUsage(t, v, "", Usage{Logical: mib + mib/2, Exclusive: mib})

	// 50 KB from inside the first half, at an offset no blob starts at.
	copyRange("a", 100_001, "c", 0, 50_000)
	noErr(t, f.Commit())
	r, err := v.Root()
	noErr(t, err)
	var blobs int64
	seen := map[store.ID]bool{}
	for e, err := range nodeAt(t, r, "c").Extents() {
		noErr(t, err)
		if e.Kind == ExtentData && !seen[e.Blob] {
			seen[e.Blob] = true
			info, err := f.st.Stat(context.Background(), e.Blob)
			noErr(t, err)
			blobs += info.Size
		}
	}
	if blobs <= 50_000 {
		t.Fatalf("c refers to %d bytes of blobs; the test wants a part of a blob", blobs)
	}
	wantUsage(t, v, "c", Usage{Logical: 50_000, Shared: blobs})
	wantUsage(t, v, "a", Usage{Logical: mib, Shared: mib/2 + blobs, Exclusive: mib/2 - blobs})

	// Once a is rewritten, c's blobs are its own, whole.
	noErr(t, v.WriteFile("a", apiBytes(2, 1000), 0o644))
	wantUsage(t, v, "c", Usage{Logical: 50_000, Exclusive: blobs})
	checkFrees(t, f, v, "c")
	checkFrees(t, f, v, "b")
	checkFrees(t, f, v, "a")
}

// TestUsageHardLinks: a hard-linked file counts once, and its data goes
// only with its last name; a cloned directory's links are copies that
// share the data.
func TestUsageHardLinks(t *testing.T) {
	f, v := apiFS(t)
	noErr(t, v.WriteFile("small", apiBytes(1, 100), 0o644)) // inline
	noErr(t, v.WriteFile("big", apiBytes(2, 200_000), 0o644))
	noErr(t, v.Mkdir("d", 0o755))
	noErr(t, v.Link("small", "d/small2"))
	noErr(t, v.Link("small", "small3"))
	noErr(t, v.Link("big", "d/big2"))
	wantUsage(t, v, "small", Usage{Logical: 100, Shared: 100})
	wantUsage(t, v, "d/small2", Usage{Logical: 100, Shared: 100})
	wantUsage(t, v, "d", Usage{Logical: 200_100, Shared: 200_100})
	wantUsage(t, v, "", Usage{Logical: 200_100, Exclusive: 200_100})

	// The last names of both are in d.
	noErr(t, v.Remove("small"))
	noErr(t, v.Remove("small3"))
	wantUsage(t, v, "d/small2", Usage{Logical: 100, Exclusive: 100})
	wantUsage(t, v, "d", Usage{Logical: 200_100, Shared: 200_000, Exclusive: 100})
	noErr(t, v.Remove("big"))
	wantUsage(t, v, "d", Usage{Logical: 200_100, Exclusive: 200_100})
	noErr(t, v.Link("d/big2", "d/big3"))
	wantUsage(t, v, "d", Usage{Logical: 200_100, Exclusive: 200_100})
	wantUsage(t, v, "d/big3", Usage{Logical: 200_000, Shared: 200_000})

	// A clone of d links its copies to each other, sharing the data.
	noErr(t, v.Clone("d", "e"))
	wantUsage(t, v, "d", Usage{Logical: 200_100, Shared: 200_100})
	wantUsage(t, v, "e", Usage{Logical: 200_100, Shared: 200_100})
	wantUsage(t, v, "", Usage{Logical: 400_200, Exclusive: 200_100})
	checkFrees(t, f, v, "e/big3")
	checkFrees(t, f, v, "d")
	wantUsage(t, v, "e", Usage{Logical: 200_100, Exclusive: 200_100})
	checkFrees(t, f, v, "e")
}

// TestUsageHolesSymlinksAndSmallFiles: holes store nothing, a final
// symlink is followed, inline bytes count once per node that holds them,
// and a rewritten file's old blobs are gone.
func TestUsageHolesSymlinksAndSmallFiles(t *testing.T) {
	f, v := apiFS(t)
	fl, err := v.Create("sparse")
	noErr(t, err)
	noErr(t, fl.Truncate(10*mib))
	noErr(t, fl.Close())
	wantUsage(t, v, "sparse", Usage{Logical: 10 * mib})
	fl, err = v.Create("holey")
	noErr(t, err)
	_, err = fl.WriteAt(apiBytes(1, 100), 0)
	noErr(t, err)
	_, err = fl.WriteAt(apiBytes(2, 100), 5*mib)
	noErr(t, err)
	noErr(t, fl.Close())
	wantUsage(t, v, "holey", Usage{Logical: 5*mib + 100, Exclusive: 200})
	noErr(t, v.Symlink("holey", "l"))
	wantUsage(t, v, "l", Usage{Logical: 5*mib + 100, Exclusive: 200})
	noErr(t, v.Mknod("fifo", dirtree.TypeFifo|0o644, 0))
	wantUsage(t, v, "fifo", Usage{})

	// Two files of the same small content share the node holding it.
	noErr(t, v.WriteFile("s1", apiBytes(3, 1000), 0o644))
	noErr(t, v.WriteFile("s2", apiBytes(3, 1000), 0o644))
	wantUsage(t, v, "s1", Usage{Logical: 1000, Shared: 1000})
	wantUsage(t, v, "", Usage{Logical: 15*mib + 2100, Exclusive: 1200})

	// Punching a hole into a clone: what the hole dropped is the other's.
	writeHalves(t, f, v, "a", 4, int(mib))
	noErr(t, v.Clone("a", "b"))
	fl, err = v.OpenFile("a", os.O_RDWR, 0)
	noErr(t, err)
	noErr(t, fl.Fallocate(FallocPunchHole|FallocKeepSize, 0, mib/2))
	noErr(t, fl.Close())
	wantUsage(t, v, "a", Usage{Logical: mib, Shared: mib / 2})
	wantUsage(t, v, "b", Usage{Logical: mib, Shared: mib / 2, Exclusive: mib / 2})
	checkFrees(t, f, v, "b")
	checkFrees(t, f, v, "")

	if _, err := v.Usage("nope"); Errno(err) != syscall.ENOENT {
		t.Fatalf("Usage of nothing: %v", err)
	}
}

// TestUsageOutsideHolders: a view, another volume and a zombie (a released
// node whose deletion waits for a later commit) keep blobs shared.
func TestUsageOutsideHolders(t *testing.T) {
	st := mem.New()
	f, err := Open(st, &Options{ReleaseBudget: 1})
	noErr(t, err)
	t.Cleanup(func() { f.Close() })
	v, err := f.CreateVolume("main")
	noErr(t, err)
	writeHalves(t, f, v, "a", 1, int(mib))
	gc(t, f) // the first half's old rope node may wait as a zombie
	wantUsage(t, v, "a", Usage{Logical: mib, Exclusive: mib})

	// A view of the second half holds it.
	fl, err := v.Open("a")
	noErr(t, err)
	view, err := fl.ReadDeferred(mib/2, mib/2)
	noErr(t, err)
	noErr(t, fl.Close())
	wantUsage(t, v, "a", Usage{Logical: mib, Shared: mib / 2, Exclusive: mib / 2})
	view.Release()
	noErr(t, f.Commit())
	gc(t, f)
	wantUsage(t, v, "a", Usage{Logical: mib, Exclusive: mib})

	// Another volume cloned from this one shares its trees.
	noErr(t, f.CloneVolume("main", "other"))
	wantUsage(t, v, "a", Usage{Logical: mib, Shared: mib})
	noErr(t, f.DeleteVolume("other"))
	gc(t, f)
	wantUsage(t, v, "a", Usage{Logical: mib, Exclusive: mib})

	// A snapshot shares a's first half; deleting it with a budget of one
	// deletion per commit leaves its old nodes as zombies for a while,
	// whose pointers still hold the first half.
	noErr(t, v.Snapshot("s"))
	fl, err = v.OpenFile("a", os.O_WRONLY, 0)
	noErr(t, err)
	_, err = fl.WriteAt(apiBytes(2, int(mib/2)), mib/2)
	noErr(t, err)
	noErr(t, fl.Close())
	noErr(t, f.Commit())
	gc(t, f)
	wantUsage(t, v, "a", Usage{Logical: mib, Shared: mib / 2, Exclusive: mib / 2})
	noErr(t, v.DeleteSnapshot("s"))
	u, err := v.Usage("a")
	noErr(t, err)
	if f.Zombies() == 0 || u != (Usage{Logical: mib, Shared: mib / 2, Exclusive: mib / 2}) {
		t.Fatalf("with %d zombies waiting, Usage = %+v", f.Zombies(), u)
	}
	gc(t, f)
	wantUsage(t, v, "a", Usage{Logical: mib, Exclusive: mib})
	checkFrees(t, f, v, "a")
}

// TestUsageCorrupt: a count below the references Usage finds, or a missing
// blob, is an error, not a panic or a wrong answer.
func TestUsageCorrupt(t *testing.T) {
	f, v := apiFS(t)
	noErr(t, v.Mkdir("e", 0o755))
	noErr(t, v.WriteFile("e/x", apiBytes(1, 300_000), 0o644))
	noErr(t, v.Clone("e/x", "e/y"))
	wantUsage(t, v, "e", Usage{Logical: 600_000, Exclusive: 300_000})
	r, err := v.Root()
	noErr(t, err)
	x := nodeAt(t, r, "e/x")
	rootID, err := btree.RefID(x.ent.Data)
	noErr(t, err)
	var blob store.ID
	for e, err := range x.Extents() {
		noErr(t, err)
		blob = e.Blob
	}
	ctx := context.Background()

	// x's rope is referenced twice, from e's node; say once.
	noErr(t, f.st.Commit(ctx, store.Batch{Refs: map[store.ID]int64{rootID: -1}}))
	if _, err := v.Usage("e"); Errno(err) != syscall.EIO || !strings.Contains(err.Error(), "count") {
		t.Fatalf("Usage with a count too low: %v", err)
	}
	noErr(t, f.st.Commit(ctx, store.Batch{Refs: map[store.ID]int64{rootID: 1}}))
	wantUsage(t, v, "e", Usage{Logical: 600_000, Exclusive: 300_000})

	// A data blob is gone.
	noErr(t, f.st.Commit(ctx, store.Batch{Refs: map[store.ID]int64{blob: -1}, Delete: []store.ID{blob}}))
	if _, err := v.Usage("e/x"); Errno(err) != syscall.EIO {
		t.Fatalf("Usage with a blob missing: %v", err)
	}
}

// TestUsageFreesModel builds random trees from writes, overwrites, clones
// of files and directories, range copies, hard links, holes, snapshots, a
// volume clone and views, then checks Usage of random paths against what
// removing them frees (checkFrees), and of a snapshot's root against what
// it reaches.
func TestUsageFreesModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		opt := &Options{FlushBytes: 64 << 10}
		if rapid.Bool().Draw(t, "smallBudget") {
			opt.ReleaseBudget = 2
		}
		f, err := Open(mem.New(), opt)
		must(t, err)
		defer f.Close()
		v, err := f.CreateVolume("main")
		must(t, err)
		m := &usageMdl{f: f, v: v}
		for range rapid.IntRange(1, 60).Draw(t, "steps") {
			m.step(t)
		}
		snaps, err := v.Snapshots()
		must(t, err)
		if len(snaps) > 0 {
			s, err := v.OpenSnapshot(snaps[0].Name)
			must(t, err)
			checkReached(t, s, "")
		}
		for range rapid.IntRange(1, 3).Draw(t, "checks") {
			dirs, files := m.tree(t)
			p := rapid.SampledFrom(append(slices.Clone(dirs), files...)).Draw(t, "remove")
			checkFrees(t, f, v, p)
		}
		for _, view := range m.views {
			view.Release()
		}
	})
}

// usageMdl drives TestUsageFreesModel.
type usageMdl struct {
	f     *FS
	v     *Volume
	views []*View
	snaps int
}

// tree lists the directories (the root as "") and regular files of the
// volume.
func (m *usageMdl) tree(t *rapid.T) (dirs, files []string) {
	var walk func(p string)
	walk = func(p string) {
		dirs = append(dirs, p)
		kids, err := m.v.ReadDir(p)
		must(t, err)
		for _, k := range kids {
			q := strings.TrimPrefix(p+"/"+k.Name(), "/")
			switch {
			case k.IsDir():
				walk(q)
			case k.Mode().IsRegular():
				files = append(files, q)
			}
		}
	}
	walk("")
	return dirs, files
}

// newPath draws a path under an existing directory that does not exist.
func (m *usageMdl) newPath(t *rapid.T, dirs []string, names ...string) (string, bool) {
	p := strings.TrimPrefix(rapid.SampledFrom(dirs).Draw(t, "dir")+"/"+rapid.SampledFrom(names).Draw(t, "name"), "/")
	_, err := m.v.Lstat(p)
	return p, Errno(err) == syscall.ENOENT
}

func (m *usageMdl) step(t *rapid.T) {
	v := m.v
	dirs, files := m.tree(t)
	file := func() (string, bool) {
		if len(files) == 0 {
			return "", false
		}
		return rapid.SampledFrom(files).Draw(t, "file"), true
	}
	data := func(label string) []byte {
		seed := rapid.Uint64Range(0, 3).Draw(t, label+"Seed") // few seeds: equal data dedups
		sizes := [][2]int{{0, 200}, {1000, 5000}, {20_000, 300_000}}
		r := rapid.SampledFrom(sizes).Draw(t, label+"Sizes")
		return apiBytes(seed, rapid.IntRange(r[0], r[1]).Draw(t, label+"Size"))
	}
	open := func(p string, flag int) *File {
		fl, err := v.OpenFile(p, flag, 0o644)
		must(t, err)
		return fl
	}
	// Mostly writes, clones and copies, so trees grow and share.
	actions := []int{0, 0, 0, 0, 0, 1, 1, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 5, 5, 6, 7, 8, 9, 10, 11, 12}
	switch rapid.SampledFrom(actions).Draw(t, "action") {
	case 0: // write a whole file
		if p, ok := m.newPath(t, dirs, "f", "g", "h"); ok || slices.Contains(files, p) {
			must(t, v.WriteFile(p, data("write"), 0o644))
		}
	case 1: // overwrite a range
		if p, ok := file(); ok {
			fl := open(p, os.O_RDWR)
			fi, err := fl.Stat()
			must(t, err)
			_, err = fl.WriteAt(data("overwrite"), rapid.Int64Range(0, fi.Size()).Draw(t, "off"))
			must(t, err)
			must(t, fl.Close())
		}
	case 2:
		if p, ok := m.newPath(t, dirs, "d", "e"); ok && strings.Count(p, "/") < 3 {
			must(t, v.Mkdir(p, 0o755))
		}
	case 3: // clone a file or a directory
		srcs := append(slices.Clone(dirs[1:]), files...)
		if len(srcs) == 0 || len(srcs) > 150 {
			break
		}
		src := rapid.SampledFrom(srcs).Draw(t, "cloneSrc")
		if dst, ok := m.newPath(t, dirs, "c1", "c2"); ok {
			must(t, v.Clone(src, dst))
		}
	case 4: // range copy
		src, ok := file()
		if !ok {
			break
		}
		dst := rapid.SampledFrom(files).Draw(t, "copyDst")
		if p, ok := m.newPath(t, dirs, "f", "g", "h"); ok && rapid.Bool().Draw(t, "newDst") {
			dst = p
		}
		s, d := open(src, os.O_RDONLY), open(dst, os.O_RDWR|os.O_CREATE)
		fi, err := s.Stat()
		must(t, err)
		soff := rapid.Int64Range(0, fi.Size()).Draw(t, "soff")
		_, err = CopyRange(s, soff, d, rapid.Int64Range(0, 400_000).Draw(t, "doff"), rapid.Int64Range(0, 400_000).Draw(t, "n"))
		must(t, err)
		must(t, s.Close())
		must(t, d.Close())
	case 5:
		if src, ok := file(); ok {
			if dst, ok := m.newPath(t, dirs, "l1", "l2"); ok {
				must(t, v.Link(src, dst))
			}
		}
	case 6:
		if p, ok := file(); ok {
			must(t, v.Remove(p))
		}
	case 7: // punch a hole
		if p, ok := file(); ok {
			fl := open(p, os.O_RDWR)
			must(t, fl.Fallocate(FallocPunchHole|FallocKeepSize, rapid.Int64Range(0, 300_000).Draw(t, "off"), rapid.Int64Range(1, 300_000).Draw(t, "n")))
			must(t, fl.Close())
		}
	case 8:
		if p, ok := file(); ok {
			must(t, v.Truncate(p, rapid.Int64Range(0, 400_000).Draw(t, "size")))
		}
	case 9:
		must(t, m.f.Commit())
	case 10: // take or delete a snapshot
		snaps, err := v.Snapshots()
		must(t, err)
		if len(snaps) > 0 && rapid.Bool().Draw(t, "deleteSnapshot") {
			must(t, v.DeleteSnapshot(rapid.SampledFrom(snaps).Draw(t, "snapshot").Name))
		} else {
			m.snaps++
			must(t, v.Snapshot(fmt.Sprintf("s%d", m.snaps)))
		}
	case 11: // clone the volume, or delete the clone
		if err := m.f.DeleteVolume("other"); Errno(err) == syscall.ENOENT {
			must(t, m.f.CloneVolume("main", "other"))
		} else {
			must(t, err)
		}
	case 12: // take a view of a range, or release one
		if len(m.views) > 0 && rapid.Bool().Draw(t, "release") {
			i := rapid.IntRange(0, len(m.views)-1).Draw(t, "view")
			m.views[i].Release()
			m.views = slices.Delete(m.views, i, i+1)
		} else if p, ok := file(); ok {
			fl := open(p, os.O_RDONLY)
			view, err := fl.ReadDeferred(rapid.Int64Range(0, 300_000).Draw(t, "off"), rapid.Int64Range(0, 300_000).Draw(t, "n"))
			must(t, err)
			must(t, fl.Close())
			m.views = append(m.views, view)
		}
	}
}
