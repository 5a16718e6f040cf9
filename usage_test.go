package cowfs

import (
	"fmt"
	"os"
	"syscall"
	"testing"
)

const (
	kib = int64(1) << 10
	mib = int64(1) << 20
)

func wantUsage(t *testing.T, v *Volume, p string, want Usage) {
	t.Helper()
	got, err := v.Usage(p)
	noErr(t, err)
	if got != want {
		t.Fatalf("%s Usage(%q) = %+v, want %+v", v.Name(), p, got, want)
	}
}

// storedBytes sums the data and inline extents under n with Node.Extents,
// counting each hard-linked inode once.
func storedBytes(t *testing.T, n *Node, links map[uint64]bool) int64 {
	t.Helper()
	var sum int64
	if n.IsDir() {
		for k, err := range n.Children() {
			noErr(t, err)
			sum += storedBytes(t, k, links)
		}
		return sum
	}
	if n.linkID != 0 {
		if links[n.linkID] {
			return 0
		}
		links[n.linkID] = true
	}
	for e, err := range n.Extents() {
		noErr(t, err)
		if e.Kind != ExtentHole {
			sum += e.Length
		}
	}
	return sum
}

func TestUsage(t *testing.T) {
	f, v := apiFS(t)

	// "a": 1 MiB of data blobs with a blob boundary at 512 KiB, since each
	// half was committed on its own (a committed run is cut at its end).
	noErr(t, v.WriteFile("a", apiBytes(10, int(512*kib)), 0o644))
	noErr(t, f.Commit())
	fl, err := v.OpenFile("a", os.O_WRONLY|os.O_APPEND, 0)
	noErr(t, err)
	_, err = fl.Write(apiBytes(11, int(512*kib)))
	noErr(t, err)
	noErr(t, fl.Close())
	wantUsage(t, v, "a", Usage{Logical: mib, Exclusive: mib})

	// Inline bytes, a sparse file, and holes between inline bytes.
	noErr(t, v.WriteFile("small", apiBytes(12, 100), 0o644))
	wantUsage(t, v, "small", Usage{Logical: 100, Exclusive: 100})
	fl, err = v.Create("sparse")
	noErr(t, err)
	noErr(t, fl.Truncate(10*mib))
	noErr(t, fl.Close())
	wantUsage(t, v, "sparse", Usage{Logical: 10 * mib})
	fl, err = v.Create("holey")
	noErr(t, err)
	_, err = fl.WriteAt(apiBytes(13, 100), 0)
	noErr(t, err)
	_, err = fl.WriteAt(apiBytes(14, 100), 5*mib)
	noErr(t, err)
	noErr(t, fl.Close())
	wantUsage(t, v, "holey", Usage{Logical: 5*mib + 100, Exclusive: 200})
	wantUsage(t, v, "", Usage{Logical: mib + 100 + 10*mib + 5*mib + 100, Exclusive: mib + 300})

	// A clone shares everything with its source.
	noErr(t, v.Clone("a", "b"))
	wantUsage(t, v, "a", Usage{Logical: mib, Shared: mib})
	wantUsage(t, v, "b", Usage{Logical: mib, Shared: mib})

	// Overwrite the second half of the clone: each keeps half shared.
	fl, err = v.OpenFile("b", os.O_WRONLY, 0)
	noErr(t, err)
	_, err = fl.WriteAt(apiBytes(15, int(512*kib)), 512*kib)
	noErr(t, err)
	noErr(t, fl.Close())
	half := Usage{Logical: mib, Shared: 512 * kib, Exclusive: 512 * kib}
	wantUsage(t, v, "a", half)
	wantUsage(t, v, "b", half)
	root := Usage{Logical: 2*mib + 100 + 10*mib + 5*mib + 100, Shared: mib, Exclusive: mib + 300}
	wantUsage(t, v, "/", root)

	// A snapshot shares everything; deleting it gives it back.
	noErr(t, v.Snapshot("s"))
	s, err := v.OpenSnapshot("s")
	noErr(t, err)
	for _, vol := range []*Volume{v, s} {
		wantUsage(t, vol, "a", Usage{Logical: mib, Shared: mib})
		wantUsage(t, vol, "small", Usage{Logical: 100, Shared: 100})
		wantUsage(t, vol, ".", Usage{Logical: root.Logical, Shared: root.Shared + root.Exclusive})
	}
	noErr(t, v.DeleteSnapshot("s"))
	wantUsage(t, v, "a", half)
	wantUsage(t, v, "", root)

	// A punched hole stores nothing; what it dropped becomes b's alone.
	fl, err = v.OpenFile("a", os.O_RDWR, 0)
	noErr(t, err)
	noErr(t, fl.Fallocate(FallocPunchHole|FallocKeepSize, 0, 512*kib))
	noErr(t, fl.Close())
	wantUsage(t, v, "a", Usage{Logical: mib, Exclusive: 512 * kib})
	wantUsage(t, v, "b", Usage{Logical: mib, Exclusive: mib})

	// A hard-linked file counts once; a final symlink is followed.
	noErr(t, v.Mkdir("d", 0o755))
	noErr(t, v.Link("small", "d/small2"))
	wantUsage(t, v, "d/small2", Usage{Logical: 100, Exclusive: 100})
	noErr(t, v.Link("small", "small3"))
	wantUsage(t, v, "", Usage{Logical: 2*mib + 100 + 10*mib + 5*mib + 100, Exclusive: mib + 512*kib + 300})
	noErr(t, v.Symlink("b", "lb"))
	wantUsage(t, v, "lb", Usage{Logical: mib, Exclusive: mib})
	wantUsage(t, v, "d", Usage{Logical: 100, Exclusive: 100})

	if _, err := v.Usage("nope"); Errno(err) != syscall.ENOENT {
		t.Fatalf("Usage of nothing: %v", err)
	}
}

// TestUsageDirectoryClone: a cloned tree is shared down to its files, also
// once the clone's directory itself changes; new files are exclusive.
func TestUsageDirectoryClone(t *testing.T) {
	_, v := apiFS(t)
	noErr(t, v.MkdirAll("d/sub", 0o755))
	var logical int64
	for i := range 300 { // several directory nodes
		data := apiBytes(uint64(100+i), 5000+i)
		logical += int64(len(data))
		noErr(t, v.WriteFile(fmt.Sprintf("d/sub/f%03d", i), data, 0o644))
	}
	wantUsage(t, v, "d", Usage{Logical: logical, Exclusive: logical})
	noErr(t, v.Clone("d", "e"))
	wantUsage(t, v, "d", Usage{Logical: logical, Shared: logical})
	wantUsage(t, v, "e/sub", Usage{Logical: logical, Shared: logical})
	noErr(t, v.WriteFile("e/sub/new", apiBytes(99, 10000), 0o644))
	noErr(t, v.Remove("e/sub/f000"))
	first := int64(5000)
	wantUsage(t, v, "e", Usage{Logical: logical - first + 10000, Shared: logical - first, Exclusive: 10000})
	wantUsage(t, v, "d", Usage{Logical: logical, Shared: logical - first, Exclusive: first})
	wantUsage(t, v, "e/sub/new", Usage{Logical: 10000, Exclusive: 10000})
	wantUsage(t, v, "e/sub/f001", Usage{Logical: 5001, Shared: 5001})

	// Shared+Exclusive is what the extents store.
	noErr(t, v.Link("d/sub/f005", "e/linked"))
	for _, p := range []string{"", "d", "e"} {
		u, err := v.Usage(p)
		noErr(t, err)
		r, err := v.Root()
		noErr(t, err)
		n := r
		if p != "" {
			n = nodeAt(t, r, p)
		}
		if got := storedBytes(t, n, map[uint64]bool{}); u.Shared+u.Exclusive != got {
			t.Fatalf("Usage(%q) = %+v: %d bytes stored, the extents hold %d", p, u, u.Shared+u.Exclusive, got)
		}
	}
}
