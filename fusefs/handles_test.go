package fusefs

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestRenameOpen renames an open file, an open directory and the
// directory above a file open in a subdirectory (which moves to another
// parent, as a shell's working directory would): the old descriptors and
// the new paths reach the same nodes, for reads, writes, fstat, fchmod and
// lookups relative to the open directory.
func TestRenameOpen(t *testing.T) {
	m := mountMem(t)
	at := func(p string) string { return filepath.Join(m.dir, p) }
	for _, d := range []string{"a", "a/sub", "b"} {
		if err := os.Mkdir(at(d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"a/sub/f", "top"} {
		if err := os.WriteFile(at(p), []byte("start "+p), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.OpenFile(at("a/sub/f"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	top, err := os.OpenFile(at("top"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer top.Close()
	dir, err := os.Open(at("a/sub"))
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()

	// The open file moves to another directory; the open directory moves
	// to another parent, taking its open file along; and the directory
	// that held it is renamed too.
	for _, r := range [][2]string{{"top", "a/top2"}, {"a/sub", "b/sub2"}, {"a", "z"}} {
		if err := os.Rename(at(r[0]), at(r[1])); err != nil {
			t.Fatal(err)
		}
	}
	same := func(what string, fd *os.File, p string) {
		t.Helper()
		var a, b syscall.Stat_t
		if err := syscall.Fstat(int(fd.Fd()), &a); err != nil {
			t.Fatalf("%s: fstat: %v", what, err)
		}
		if err := syscall.Lstat(at(p), &b); err != nil {
			t.Fatalf("%s: stat %s: %v", what, p, err)
		}
		if a.Ino != b.Ino || a.Mode != b.Mode || a.Size != b.Size || a.Nlink != b.Nlink {
			t.Errorf("%s: fstat ino %d mode %o size %d nlink %d, stat %s ino %d mode %o size %d nlink %d",
				what, a.Ino, a.Mode, a.Size, a.Nlink, p, b.Ino, b.Mode, b.Size, b.Nlink)
		}
	}
	for _, c := range []struct {
		fd         *os.File
		path, rest string // where it is now; its first content past "OLDNEW"
	}{{f, "b/sub2/f", "a/sub/f"}, {top, "z/top2", "top"}} {
		// A write through the old descriptor shows at the new path, and
		// one at the new path through the old descriptor.
		if _, err := c.fd.WriteAt([]byte("OLD"), 0); err != nil {
			t.Fatalf("%s: write through the old descriptor: %v", c.path, err)
		}
		b, err := os.ReadFile(at(c.path))
		if err != nil || !bytes.HasPrefix(b, []byte("OLD")) {
			t.Errorf("%s: %q, %v; want the old descriptor's write", c.path, b, err)
		}
		g, err := os.OpenFile(at(c.path), os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := g.WriteAt([]byte("NEW"), 3); err != nil {
			t.Fatal(err)
		}
		g.Close()
		buf := make([]byte, 6)
		if _, err := c.fd.ReadAt(buf, 0); err != nil || string(buf) != "OLDNEW" {
			t.Errorf("%s: old descriptor reads %q, %v; want OLDNEW", c.path, buf, err)
		}
		if err := c.fd.Chmod(0o600); err != nil {
			t.Fatalf("%s: fchmod: %v", c.path, err)
		}
		if fi, err := os.Lstat(at(c.path)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s after fchmod of the old descriptor: %v, %v; want mode 0600", c.path, fi.Mode(), err)
		}
		same(c.path, c.fd, c.path)
		toolCheckContent(t, m, c.path, []byte("OLDNEW"+c.rest))
	}

	// The open directory: fchmod, fstat, and lookups and creation
	// relative to it (as a process whose working directory it is).
	if err := dir.Chmod(0o700); err != nil {
		t.Fatalf("fchmod of the open directory: %v", err)
	}
	if fi, err := os.Lstat(at("b/sub2")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("b/sub2 after fchmod of the open directory: %v, %v; want 0700", fi.Mode(), err)
	}
	same("open directory", dir, "b/sub2")
	fd, err := unix.Openat(int(dir.Fd()), "f", unix.O_RDONLY, 0)
	if err != nil {
		t.Fatalf("openat(dir, f): %v", err)
	}
	rel := os.NewFile(uintptr(fd), "f")
	same("openat(dir, f)", rel, "b/sub2/f")
	rel.Close()
	fd, err = unix.Openat(int(dir.Fd()), "new", unix.O_RDWR|unix.O_CREAT|unix.O_EXCL, 0o644)
	if err != nil {
		t.Fatalf("openat(dir, new, O_CREAT): %v", err)
	}
	unix.Close(fd)
	if _, err := os.Lstat(at("b/sub2/new")); err != nil {
		t.Errorf("a file made relative to the open directory: %v", err)
	}
	names, err := dir.Readdirnames(-1)
	if err != nil || len(names) != 2 {
		t.Errorf("listing the open directory: %v, %v; want f and new", names, err)
	}
}

// TestUnlinkedOpen: a file removed while open stays readable, writable,
// fstat-able (with no links) and changeable through its descriptor.
func TestUnlinkedOpen(t *testing.T) {
	m := mountMem(t)
	p := filepath.Join(m.dir, "u")
	if err := os.WriteFile(p, []byte("kept"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var before syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &before); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(p); !os.IsNotExist(err) {
		t.Fatalf("lstat after unlink: %v, want ENOENT", err)
	}
	if _, err := f.WriteAt([]byte(" and more"), 4); err != nil {
		t.Fatalf("write after unlink: %v", err)
	}
	buf := make([]byte, 13)
	if k, err := f.ReadAt(buf, 0); err != nil || string(buf[:k]) != "kept and more" {
		t.Errorf("read after unlink: %q, %v", buf[:k], err)
	}
	if err := f.Chmod(0o600); err != nil {
		t.Errorf("fchmod after unlink: %v", err)
	}
	if err := f.Truncate(8); err != nil {
		t.Errorf("ftruncate after unlink: %v", err)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatalf("fstat after unlink: %v", err)
	}
	if st.Nlink != 0 || st.Ino != before.Ino || st.Size != 8 || st.Mode&0o777 != 0o600 {
		t.Errorf("fstat after unlink: nlink %d ino %d size %d mode %o; want nlink 0 ino %d size 8 mode 600",
			st.Nlink, st.Ino, st.Size, st.Mode&0o777, before.Ino)
	}
}
