package cowfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"

	"github.com/cowfs/cowfs/store"
	"github.com/cowfs/cowfs/store/mem"
)

// walkKeepOpen is a store whose Close does nothing, so a test can open the
// same store again after closing an FS.
type walkKeepOpen struct{ store.Store }

func (walkKeepOpen) Close() error { return nil }

// nodeAt descends from root along a slash-separated path.
func nodeAt(t *testing.T, root *Node, p string) *Node {
	t.Helper()
	n := root
	for _, name := range splitPath(p) {
		var err error
		if n, err = n.Lookup(name); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// nodeBytes reads a file node whole.
func nodeBytes(n *Node) ([]byte, error) {
	b := make([]byte, n.Info().Size())
	k, err := n.ReadAt(b, 0)
	if err == io.EOF && k == len(b) {
		err = nil
	}
	return b[:k], err
}

// sameInfo compares what a Node says with what the volume says.
func sameInfo(t *testing.T, p string, got, want *FileInfo) {
	t.Helper()
	g, w := got.Stat(), want.Stat()
	if got.Name() != want.Name() || got.Mode() != want.Mode() || got.Size() != want.Size() ||
		!got.ModTime().Equal(want.ModTime()) || g.Ino != w.Ino || g.Nlink != w.Nlink || g.Target != w.Target {
		t.Fatalf("%s: node says %s %v %d ino %x nlink %d, volume says %s %v %d ino %x nlink %d", p,
			got.Name(), got.Mode(), got.Size(), g.Ino, g.Nlink, want.Name(), want.Mode(), want.Size(), w.Ino, w.Nlink)
	}
}

// compareWalk walks n's subtree and checks it against v.ReadDir, v.Lstat
// and v.ReadFile; it returns the number of nodes visited.
func compareWalk(t *testing.T, v *Volume, n *Node) int {
	t.Helper()
	fi, err := v.Lstat(n.Path())
	noErr(t, err)
	sameInfo(t, n.Path(), n.Info(), fi)
	count := 1
	switch {
	case n.IsDir():
		want, err := v.ReadDir(n.Path())
		noErr(t, err)
		i := 0
		for k, err := range n.Children() {
			noErr(t, err)
			if i >= len(want) {
				t.Fatalf("%s: more children than ReadDir lists", n.Path())
			}
			sameInfo(t, k.Path(), k.Info(), want[i])
			count += compareWalk(t, v, k)
			i++
		}
		if i != len(want) {
			t.Fatalf("%s: %d children, ReadDir lists %d", n.Path(), i, len(want))
		}
	case fi.Mode().IsRegular():
		want, err := v.ReadFile(n.Path())
		noErr(t, err)
		got, err := nodeBytes(n)
		noErr(t, err)
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: node reads %d bytes that differ from the volume's %d", n.Path(), len(got), len(want))
		}
		// Extents tile the file exactly and hold what it reads.
		var at int64
		for e, err := range n.Extents() {
			noErr(t, err)
			if e.Offset != at || e.Length <= 0 {
				t.Fatalf("%s: extent %+v after offset %d", n.Path(), e, at)
			}
			switch e.Kind {
			case ExtentHole:
				if !bytes.Equal(want[at:at+e.Length], make([]byte, e.Length)) {
					t.Fatalf("%s: hole %+v holds data", n.Path(), e)
				}
			case ExtentData:
				b, err := v.f.Blob(e.Blob)
				noErr(t, err)
				if !bytes.Equal(b[e.BlobOffset:e.BlobOffset+e.Length], want[at:at+e.Length]) {
					t.Fatalf("%s: extent %+v differs from the file", n.Path(), e)
				}
			}
			at += e.Length
		}
		if at != int64(len(want)) {
			t.Fatalf("%s: extents cover %d of %d bytes", n.Path(), at, len(want))
		}
	}
	return count
}

// extentKinds lists the kinds of a file's extents, in order, with runs of
// one kind (data cut into several chunks) listed once.
func extentKinds(t *testing.T, n *Node) []string {
	t.Helper()
	var kinds []string
	for e, err := range n.Extents() {
		noErr(t, err)
		kinds = append(kinds, e.Kind.String())
	}
	return slices.Compact(kinds)
}

func TestWalk(t *testing.T) {
	f, v := apiFS(t)
	files, all := iofsTree(t, v)
	noErr(t, v.Clone("a", "a-clone")) // a new inode-number scope
	noErr(t, f.Commit())
	noErr(t, v.WriteFile("a-clone/b/uncommitted", []byte("not committed yet"), 0o600))

	root, err := v.Root()
	noErr(t, err)
	if root.Name() != "." || root.Path() != "." || !root.IsDir() {
		t.Fatalf("root: %q %q %v", root.Name(), root.Path(), root.IsDir())
	}
	if n := compareWalk(t, v, root); n != len(all)+1+7+1 {
		t.Fatalf("walked %d nodes, want %d", n, len(all)+1+7+1)
	}
	if k := nodeAt(t, root, "a-clone/b/c/deep.txt").Info().Stat().Ino; k == nodeAt(t, root, "a/b/c/deep.txt").Info().Stat().Ino {
		t.Fatalf("a clone's node has its source's inode number %x", k)
	}

	// Extents: a small file is inline, holes are holes, 1 MiB is data blobs.
	for _, c := range []struct {
		p    string
		want []string
	}{
		{"a/b/small", []string{"inline"}},
		{"a/empty", nil},
		{"sparse", []string{"data", "hole", "data", "hole"}},
	} {
		if got := extentKinds(t, nodeAt(t, root, c.p)); !slices.Equal(got, c.want) {
			t.Fatalf("%s: extents %v, want %v", c.p, got, c.want)
		}
	}
	var blobs []store.ID
	for e, err := range nodeAt(t, root, "big").Extents() {
		noErr(t, err)
		if e.Kind != ExtentData || e.Blob.IsZero() || e.BlobOffset != 0 || slices.Contains(blobs, e.Blob) {
			t.Fatalf("big: extent %+v", e)
		}
		blobs = append(blobs, e.Blob)
	}
	if len(blobs) < 4 { // chunks are at most 256 KiB
		t.Fatalf("big: %d extents", len(blobs))
	}

	// A hard link's names are one inode; a symlink is not followed.
	h, d := nodeAt(t, root, "a/hard"), nodeAt(t, root, "a/b/c/deep.txt")
	if h.Info().Stat().Ino != d.Info().Stat().Ino || h.Info().Stat().Nlink != 2 {
		t.Fatalf("hard link: ino %x nlink %d, other name ino %x", h.Info().Stat().Ino, h.Info().Stat().Nlink, d.Info().Stat().Ino)
	}
	l := nodeAt(t, root, "link")
	if l.Info().Stat().Target != "a/b/small" || l.IsDir() || len(extentKinds(t, l)) != 0 {
		t.Fatalf("symlink node: %+v", l.Info().Stat())
	}
	if got, err := nodeBytes(nodeAt(t, root, "a/hard")); err != nil || !bytes.Equal(got, files["a/b/c/deep.txt"]) {
		t.Fatalf("read through a hard link: %q, %v", got, err)
	}

	// Errors.
	for _, c := range []struct {
		n     *Node
		name  string
		errno syscall.Errno
	}{
		{root, "nope", syscall.ENOENT},
		{root, "..", syscall.EINVAL},
		{root, "a/b", syscall.EINVAL},
		{root, "", syscall.EINVAL},
		{nodeAt(t, root, "big"), "x", syscall.ENOTDIR},
	} {
		if _, err := c.n.Lookup(c.name); Errno(err) != c.errno {
			t.Fatalf("Lookup(%q) in %s: %v, want %v", c.name, c.n.Path(), err, c.errno)
		}
	}
	if _, err := root.ReadAt(make([]byte, 1), 0); Errno(err) != syscall.EISDIR {
		t.Fatalf("ReadAt of a directory: %v", err)
	}
	if _, err := nodeAt(t, root, "big").ReadAt(make([]byte, 1), -1); Errno(err) != syscall.EINVAL {
		t.Fatalf("ReadAt at -1: %v", err)
	}
	for _, err := range root.Extents() {
		if Errno(err) != syscall.EISDIR {
			t.Fatalf("Extents of a directory: %v", err)
		}
	}
	for _, err := range nodeAt(t, root, "big").Children() {
		if Errno(err) != syscall.ENOTDIR {
			t.Fatalf("Children of a file: %v", err)
		}
	}
	if n, err := nodeAt(t, root, "big").ReadAt(make([]byte, 10), 1<<20-4); n != 4 || err != io.EOF {
		t.Fatalf("ReadAt at the end: %d, %v", n, err)
	}
}

// TestWalkIsSnapshot: a Node keeps showing the tree it was taken from.
func TestWalkIsSnapshot(t *testing.T) {
	f, v := apiFS(t)
	files, _ := iofsTree(t, v)
	noErr(t, f.Commit())
	root, err := v.Root()
	noErr(t, err)
	big := nodeAt(t, root, "big")
	noErr(t, v.Snapshot("before"))
	snap, err := v.OpenSnapshot("before")
	noErr(t, err)
	sroot, err := snap.Root()
	noErr(t, err)

	// Change the volume, without committing.
	noErr(t, v.WriteFile("big", apiBytes(9, 300000), 0o644))
	noErr(t, v.Remove("a/b/c/deep.txt"))
	noErr(t, v.Remove("a/hard"))
	noErr(t, v.WriteFile("new", []byte("new"), 0o644))
	noErr(t, v.Mkdir("a/b/c/sub", 0o755))

	for _, r := range []*Node{root, sroot} {
		for p, want := range files {
			got, err := nodeBytes(nodeAt(t, r, p))
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("%s after the change: %d bytes, %v", p, len(got), err)
			}
		}
		if _, err := r.Lookup("new"); Errno(err) != syscall.ENOENT {
			t.Fatalf("a file created after the node was taken: %v", err)
		}
		var names []string
		for k, err := range nodeAt(t, r, "a/b/c").Children() {
			noErr(t, err)
			names = append(names, k.Name())
		}
		if !slices.Equal(names, []string{"deep.txt"}) {
			t.Fatalf("a/b/c lists %q", names)
		}
	}
	now, err := v.Root()
	noErr(t, err)
	if got, err := nodeBytes(nodeAt(t, now, "big")); err != nil || !bytes.Equal(got, apiBytes(9, 300000)) {
		t.Fatalf("a new root reads the new data: %v", err)
	}

	// Committed, the old data is still held by the snapshot...
	noErr(t, f.Commit())
	if got, err := nodeBytes(big); err != nil || !bytes.Equal(got, files["big"]) {
		t.Fatalf("after commit, with a snapshot: %d bytes, %v", len(got), err)
	}
	// ...and without it, it is released: ESTALE, never other bytes.
	noErr(t, v.DeleteSnapshot("before"))
	if got, err := nodeBytes(big); err == nil {
		if !bytes.Equal(got, files["big"]) {
			t.Fatal("a released node read other bytes")
		}
	} else if Errno(err) != syscall.ESTALE || !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("reading released data: %v", err)
	}
}

// TestWalkLazy: a lookup in a big directory loads a path of nodes, not the
// directory.
func TestWalkLazy(t *testing.T) {
	st := walkKeepOpen{mem.New()}
	f, err := Open(st, nil)
	noErr(t, err)
	v, err := f.CreateVolume("main")
	noErr(t, err)
	noErr(t, v.Mkdir("big", 0o755))
	const entries = 10000
	for i := range entries {
		noErr(t, v.WriteFile(fmt.Sprintf("big/f%05d", i), fmt.Appendf(nil, "content of %d", i), 0o644))
	}
	noErr(t, f.Close())

	f, err = Open(st, nil)
	noErr(t, err)
	defer f.Close()
	v, err = f.Volume("main")
	noErr(t, err)
	loads := func() int64 { n, _ := f.CacheStats(); return n.Misses }
	root, err := v.Root()
	noErr(t, err)
	before := loads()
	dir, err := root.Lookup("big")
	noErr(t, err)
	n, err := dir.Lookup("f04321")
	noErr(t, err)
	got, err := nodeBytes(n)
	if err != nil || string(got) != "content of 4321" {
		t.Fatalf("read %q, %v", got, err)
	}
	lookup := loads() - before
	if lookup > 6 {
		t.Fatalf("a lookup and a read loaded %d nodes", lookup)
	}

	before = loads()
	i := 0
	for k, err := range dir.Children() {
		noErr(t, err)
		if want := fmt.Sprintf("f%05d", i); k.Name() != want {
			t.Fatalf("child %d is %q, want %q", i, k.Name(), want)
		}
		if i++; i == 3 {
			break
		}
	}
	if first := loads() - before; first > 4 {
		t.Fatalf("three children loaded %d nodes", first)
	}

	before = loads()
	i = 0
	for _, err := range dir.Children() {
		noErr(t, err)
		i++
	}
	all := loads() - before
	if i != entries || all < entries/64 {
		t.Fatalf("%d children, %d nodes loaded for all of them", i, all)
	}
	t.Logf("lookup and read: %d nodes; all %d entries: %d nodes", lookup, entries, all)
}

// TestWalkConcurrent walks and reads while the volume changes and commits:
// every read gives the bytes written or ESTALE.
func TestWalkConcurrent(t *testing.T) {
	f, v := apiFS(t)
	content := func(i, gen int) []byte { return apiBytes(uint64(i*1000+gen), 5000+i*100) }
	noErr(t, v.Mkdir("d", 0o755))
	for i := range 20 {
		noErr(t, v.WriteFile(fmt.Sprintf("d/%02d", i), content(i, 0), 0o644))
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	defer func() { close(stop); wg.Wait() }()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for gen := 1; ; gen++ {
			select {
			case <-stop:
				return
			default:
			}
			for i := range 20 {
				// One WriteAt replaces the whole content atomically.
				fl, err := v.OpenFile(fmt.Sprintf("d/%02d", i), os.O_WRONLY, 0)
				if err == nil {
					_, err = fl.WriteAt(content(i, gen%4), 0)
					fl.Close()
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
			if err := f.Commit(); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	stale, reads := 0, 0
	for range 30 {
		root, err := v.Root()
		noErr(t, err)
		d, err := root.Lookup("d")
		noErr(t, err)
		for k, err := range d.Children() {
			if Errno(err) == syscall.ESTALE {
				stale++
				break
			}
			noErr(t, err)
			i, err := strconv.Atoi(k.Name())
			noErr(t, err)
			got, err := nodeBytes(k)
			reads++
			if Errno(err) == syscall.ESTALE {
				stale++
				continue
			}
			noErr(t, err)
			ok := false
			for gen := range 4 {
				ok = ok || bytes.Equal(got, content(i, gen))
			}
			if !ok {
				t.Fatalf("%s: read %d bytes that were never written", k.Path(), len(got))
			}
		}
	}
	t.Logf("%d reads, %d of released nodes (ESTALE)", reads, stale)
}
