package control

import (
	"errors"
	"io"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cowfs/cowfs"
	"github.com/cowfs/cowfs/ctl"
	"github.com/cowfs/cowfs/store/mem"
)

// newVolume returns volume main of a fresh in-memory FS holding file f
// ("content", mode 04750, owner 7:8).
func newVolume(t *testing.T) (*cowfs.FS, *cowfs.Volume) {
	t.Helper()
	fsys, err := cowfs.Open(mem.New(), nil)
	must(t, err)
	t.Cleanup(func() { fsys.Close() })
	vol, err := fsys.CreateVolume("main")
	must(t, err)
	must(t, vol.WriteFile("f", []byte("content"), 0o644))
	must(t, vol.Chmod("f", 0o4750))
	must(t, vol.Lchown("f", 7, 8))
	return fsys, vol
}

// must fails the test on an error of setting it up.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestFixedNodes checks the shape of .cowfs: its entries by name, their
// paths, modes and numbers (distinct, from FirstIno, below AllocBase), and
// that Lookup finds exactly them.
func TestFixedNodes(t *testing.T) {
	want := []struct {
		n    Node
		name string
		path string
		mode uint32
	}{
		{Root, ".cowfs", ".cowfs", syscall.S_IFDIR | 0o555},
		{Ctl, "ctl", ".cowfs/ctl", syscall.S_IFREG | 0o600},
		{Snapshots, "snapshots", ".cowfs/snapshots", syscall.S_IFDIR | 0o555},
		{Files, "files", ".cowfs/files", syscall.S_IFDIR | 0o555},
	}
	seen := map[uint64]bool{}
	for _, w := range want {
		n := w.n
		if n.Name() != w.name || n.Path() != w.path || n.Mode() != w.mode {
			t.Errorf("node %d: %q %q %o; want %q %q %o", n, n.Name(), n.Path(), n.Mode(), w.name, w.path, w.mode)
		}
		if ino := n.Ino(); ino < FirstIno || ino >= AllocBase || seen[ino] {
			t.Errorf("%s: number %#x repeated or outside [FirstIno, AllocBase)", n.Path(), ino)
		}
		seen[n.Ino()] = true
		if parent := n.Parent(); (n == Root) != (parent == 0) || (n != Root && parent != Root) {
			t.Errorf("%s: parent %d", n.Path(), parent)
		}
	}
	var names []string
	for _, n := range Entries {
		names = append(names, n.Name())
		if got, ok := Lookup(n.Name()); !ok || got != n {
			t.Errorf("Lookup(%q) = %d, %v", n.Name(), got, ok)
		}
	}
	if strings.Join(names, " ") != "ctl files snapshots" {
		t.Errorf("Entries: %v, want ctl files snapshots", names)
	}
	for _, name := range []string{"", ".", "..", ".cowfs", "CTL", "ctl/", "snapshot"} {
		if n, ok := Lookup(name); ok {
			t.Errorf("Lookup(%q) found %d", name, n)
		}
	}
	if !Reserved(true, ".cowfs") || Reserved(false, ".cowfs") || Reserved(true, ".cowfs2") || Reserved(true, "ctl") {
		t.Error("Reserved: only .cowfs at the served root is the control directory")
	}
}

// TestStat checks the attributes of the fixed nodes: ctl the given
// owner's, 0600, one link; the directories root's, 0555; no size; the
// served root's times, which follow it.
func TestStat(t *testing.T) {
	_, vol := newVolume(t)
	ns := New(vol, NewNumbers(), 1000, 100)
	check := func() {
		t.Helper()
		root, err := vol.Lstat(".")
		must(t, err)
		r := root.Stat()
		for _, n := range []Node{Root, Ctl, Snapshots, Files} {
			st, err := ns.Stat(n)
			if err != nil {
				t.Fatal(err)
			}
			uid, gid, nlink := uint32(0), uint32(0), uint32(2)
			if n == Ctl {
				uid, gid, nlink = 1000, 100, 1
			}
			if st.Ino != n.Ino() || st.Mode != n.Mode() || st.UID != uid || st.GID != gid || st.Nlink != nlink ||
				st.Size != 0 || st.Blocks != 0 || st.ACL != nil {
				t.Errorf("%s: %+v", n.Path(), st)
			}
			if !st.Mtime.Equal(r.Mtime) || !st.Ctime.Equal(r.Ctime) || !st.Atime.Equal(r.Atime) || !st.Btime.Equal(r.Btime) {
				t.Errorf("%s: times %v %v %v %v, the root's %v %v %v %v", n.Path(), st.Atime, st.Mtime, st.Ctime, st.Btime, r.Atime, r.Mtime, r.Ctime, r.Btime)
			}
		}
	}
	check()
	must(t, vol.Chtimes(".", time.Unix(1e9, 1), time.Unix(2e9, 2)))
	check()
}

// TestSnapshotNumbers checks the snapshots of a namespace and the numbers
// of their files: stable for one snapshot, distinct from the volume's and
// from another snapshot's, new for a snapshot made again under its name;
// two namespaces sharing Numbers (a 9P server of two volumes) never share
// one.
func TestSnapshotNumbers(t *testing.T) {
	fsys, vol := newVolume(t)
	other, err := fsys.CreateVolume("other")
	must(t, err)
	must(t, other.WriteFile("f", nil, 0o644))
	nums := NewNumbers()
	ns, ns2 := New(vol, nums, 0, 0), New(other, nums, 0, 0)
	for _, name := range []string{"b", "a"} {
		must(t, vol.Snapshot(name))
	}
	must(t, other.Snapshot("a"))
	fi, err := vol.Lstat("f")
	must(t, err)
	live := fi.Stat().Ino

	seen := map[uint64]string{}
	number := func(ns *Namespace, snap string) uint64 {
		t.Helper()
		s, err := ns.Snapshot(snap)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := s.Volume().Lstat("f")
		must(t, err)
		ino := s.Mapped(fi.Stat()).Ino
		if again := s.Ino(fi.Stat().Ino); again != ino {
			t.Errorf("%s: Ino %d, Mapped %d", snap, again, ino)
		}
		if ino <= AllocBase || ino == live {
			t.Errorf("snapshot %s: f numbered %#x", snap, ino)
		}
		return ino
	}
	a := number(ns, "a")
	if number(ns, "a") != a {
		t.Error("the same snapshot's file changed number")
	}
	for what, ino := range map[string]uint64{"main@a": a, "main@b": number(ns, "b"), "other@a": number(ns2, "a")} {
		if prev, ok := seen[ino]; ok {
			t.Errorf("%s and %s share number %#x", prev, what, ino)
		}
		seen[ino] = what
	}

	list, err := ns.Snapshots()
	must(t, err)
	if len(list) != 2 || list[0].Name() != "a" || list[1].Name() != "b" {
		t.Fatalf("Snapshots: %v", list)
	}
	root, err := list[0].Root()
	must(t, err)
	if root.Ino <= AllocBase || root.Mode&syscall.S_IFMT != syscall.S_IFDIR {
		t.Errorf("snapshot root: %+v", root)
	}

	// Made again under its name, a snapshot is another one.
	must(t, vol.DeleteSnapshot("a"))
	if _, err := ns.Snapshot("a"); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("deleted snapshot: %v, want ENOENT", err)
	}
	must(t, vol.Snapshot("a"))
	if again := number(ns, "a"); again == a {
		t.Error("a snapshot made again under its name kept its files' numbers")
	}

	must(t, vol.DeleteSnapshot("b"))
	if gone := ns.Forget(); len(gone) != 1 || gone[0] != "b" {
		t.Errorf("Forget after deleting b: %v", gone)
	}
	if gone := ns.Forget(); len(gone) != 0 {
		t.Errorf("Forget again: %v", gone)
	}
}

// TestViews checks files/: ServeView through ctl's snapshot-file, the
// names, a view's attributes, read-only opens, and release at removal or
// at the last close.
func TestViews(t *testing.T) {
	fsys, vol := newVolume(t)
	nums := NewNumbers()
	ns := New(vol, nums, 0, 0)
	srv := &ctl.Server{FS: fsys, Vol: vol, ServeView: ns.ServeView}
	taken, err := vol.Lstat("f")
	must(t, err)
	for i, want := range []string{".cowfs/files/1\n", ".cowfs/files/2\n"} {
		if reply, err := srv.Exec("snapshot-file f"); err != nil || reply != want {
			t.Fatalf("snapshot-file %d: %q, %v; want %q", i, reply, err, want)
		}
	}
	must(t, vol.WriteFile("f", []byte("changed later"), 0o644))
	for _, name := range []string{"0", "01", "3", "x", "", "-1", "1 "} {
		if _, ok := ns.View(name); ok {
			t.Errorf("View(%q) found a view", name)
		}
	}
	views := ns.Views()
	if len(views) != 2 || views[0].Name() != "1" || views[1].Name() != "2" {
		t.Fatalf("Views: %v", views)
	}
	sv, ok := ns.View("1")
	if !ok || sv != views[0] {
		t.Fatal("View(1) is not the first view")
	}
	st := sv.Stat()
	if st.Mode != syscall.S_IFREG|0o4550 || st.UID != 7 || st.GID != 8 || st.Size != 7 || st.Blocks != 8 || st.Nlink != 1 ||
		st.Ino <= AllocBase || st.Ino == views[1].Stat().Ino || !st.Mtime.Equal(taken.Stat().Mtime) || !st.Ctime.Equal(taken.Stat().Ctime) {
		t.Errorf("view stat: %+v", st)
	}

	for _, flags := range []int{syscall.O_WRONLY, syscall.O_RDWR, syscall.O_RDONLY | syscall.O_TRUNC} {
		if err := sv.Open(flags); !errors.Is(err, syscall.EROFS) {
			t.Errorf("Open(%#x): %v, want EROFS", flags, err)
		}
	}
	must(t, sv.Open(syscall.O_RDONLY))
	if err := ns.RemoveView("1"); err != nil {
		t.Fatal(err)
	}
	if _, ok := ns.View("1"); ok || len(ns.Views()) != 1 {
		t.Error("a removed view is still served")
	}
	buf := make([]byte, 20)
	if n, err := sv.ReadAt(buf, 0); !errors.Is(err, io.EOF) || string(buf[:n]) != "content" {
		t.Errorf("read of a removed view still open: %q, %v", buf[:n], err)
	}
	if err := sv.Open(syscall.O_RDONLY); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("Open of a removed view: %v, want ENOENT", err)
	}
	sv.Close()
	if _, err := sv.ReadAt(buf, 0); !errors.Is(err, syscall.EBADF) {
		t.Errorf("read after the last close of a removed view: %v, want EBADF (released)", err)
	}
	if err := ns.RemoveView("1"); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("removing a view twice: %v, want ENOENT", err)
	}

	// Removed while closed: released at once.
	second := views[1]
	must(t, ns.RemoveView("2"))
	if _, err := second.ReadAt(buf, 0); !errors.Is(err, syscall.EBADF) {
		t.Errorf("read of a view removed while closed: %v, want EBADF (released)", err)
	}
	// Names are never handed out again.
	if reply, err := srv.Exec("snapshot-file f"); err != nil || reply != ".cowfs/files/3\n" {
		t.Errorf("snapshot-file after removals: %q, %v", reply, err)
	}
}

// TestHandle checks an open of the control file: a write runs one line
// (its newline dropped), reads return the reply in pieces and then
// nothing; a failed command fails the write with its error and reads
// return the error text.
func TestHandle(t *testing.T) {
	var lines []string
	h := NewHandle(func(line string) (string, error) {
		lines = append(lines, line)
		if line == "bad" {
			return "", &cowfs.Error{Op: "ctl", Errno: syscall.EINVAL, Err: errors.New("unknown command")}
		}
		return "reply of " + line + "\n", nil
	})
	if n, err := h.Write([]byte("clone a b\n")); n != 10 || err != nil {
		t.Fatalf("Write: %d, %v", n, err)
	}
	buf := make([]byte, 5)
	var got []byte
	for {
		n := h.Read(buf)
		if n == 0 {
			break
		}
		got = append(got, buf[:n]...)
	}
	if string(got) != "reply of clone a b\n" {
		t.Errorf("reply %q", got)
	}
	n, err := h.Write([]byte("bad"))
	if n != 0 || cowfs.Errno(err) != syscall.EINVAL {
		t.Errorf("failed command: %d, %v; want 0 and EINVAL", n, err)
	}
	buf = make([]byte, 100)
	if n := h.Read(buf); string(buf[:n]) != err.Error()+"\n" {
		t.Errorf("error text %q, want %q", buf[:n], err.Error()+"\n")
	}
	if strings.Join(lines, "|") != "clone a b|bad" {
		t.Errorf("lines run: %q", lines)
	}
}
