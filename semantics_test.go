package cowfs

// Focused, deterministic tests of POSIX-like semantics that random
// operation sequences (model_test.go) reach rarely or not at all.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cowfs/cowfs/internal/rope"
	"github.com/cowfs/cowfs/store/mem"
)

// semSetup returns an FS on a mem store (which survives reopening through
// semReopen) and a fresh volume "main".
func semSetup(t *testing.T) (*mem.Store, *FS, *Volume) {
	t.Helper()
	st := mem.New()
	f, err := Open(mdlStore{Store: st}, nil)
	if err != nil {
		t.Fatalf("Open: expected success, got %v", err)
	}
	v, err := f.CreateVolume("main")
	if err != nil {
		t.Fatalf("CreateVolume: expected success, got %v", err)
	}
	return st, f, v
}

// semReopen commits, abandons f and opens the store again.
func semReopen(t *testing.T, st *mem.Store, f *FS) (*FS, *Volume) {
	t.Helper()
	semOK(t, "Commit before reopen", f.Commit())
	f2, err := Open(mdlStore{Store: st}, nil)
	if err != nil {
		t.Fatalf("Open (reopen): expected success, got %v", err)
	}
	v, err := f2.Volume("main")
	semOK(t, "Volume(main) after reopen", err)
	return f2, v
}

func semOK(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: expected success, got %v", what, err)
	}
}

// semErr checks that err is a *cowfs.Error with errno want that matches
// want and its io/fs sentinel (see mdlCheckErr).
func semErr(t *testing.T, what string, err error, want syscall.Errno) {
	t.Helper()
	if e := mdlCheckErr(what, err, want); e != nil {
		t.Fatal(e)
	}
}

func semCheck(t *testing.T, f *FS) {
	t.Helper()
	rep, err := f.Check(context.Background())
	if err != nil {
		t.Fatalf("Check: expected success, got %v", err)
	}
	if err := rep.Err(); err != nil {
		t.Fatalf("Check: expected no problems, got %v", err)
	}
}

func semWrite(t *testing.T, v *Volume, p string, data []byte) {
	t.Helper()
	semOK(t, fmt.Sprintf("WriteFile(%q, %d bytes)", p, len(data)), v.WriteFile(p, data, 0o644))
}

func semRead(t *testing.T, v *Volume, p string, want []byte) {
	t.Helper()
	got, err := v.ReadFile(p)
	if err != nil {
		t.Fatalf("ReadFile(%q): expected %d bytes, got error %v", p, len(want), err)
	}
	if d := mdlDiff(got, want); d != "" {
		t.Fatalf("ReadFile(%q): %s", p, d)
	}
}

func semStat(t *testing.T, v *Volume, p string) *Stat {
	t.Helper()
	fi, err := v.Lstat(p)
	if err != nil {
		t.Fatalf("Lstat(%q): expected success, got %v", p, err)
	}
	return fi.Stat()
}

func semNlink(t *testing.T, v *Volume, p string, want uint32) {
	t.Helper()
	if got := semStat(t, v, p).Nlink; got != want {
		t.Fatalf("Lstat(%q).Nlink: expected %d, got %d", p, want, got)
	}
}

func semUsage(t *testing.T, st *mem.Store) int64 {
	t.Helper()
	u, err := st.Usage(context.Background())
	semOK(t, "Usage", err)
	return u.Bytes
}

func TestSemOpenExclTrunc(t *testing.T) {
	_, f, v := semSetup(t)
	f1, err := v.OpenFile("x", os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640)
	semOK(t, "OpenFile(x, O_CREATE|O_EXCL) of a new name", err)
	semOK(t, "Close", f1.Close())
	if m := semStat(t, v, "x").Mode; m != syscall.S_IFREG|0o640 {
		t.Fatalf("mode of a file created with perm 0640: expected %#o, got %#o", syscall.S_IFREG|0o640, m)
	}
	_, err = v.OpenFile("x", os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	semErr(t, "OpenFile(x, O_CREATE|O_EXCL) of an existing file", err, syscall.EEXIST)
	semOK(t, "Symlink", v.Symlink("nowhere", "dangling"))
	_, err = v.OpenFile("dangling", os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	semErr(t, "OpenFile(dangling symlink, O_CREATE|O_EXCL)", err, syscall.EEXIST)
	if _, err := v.Lstat("nowhere"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("O_EXCL through a dangling symlink must not create its target: Lstat(nowhere): expected ENOENT, got %v", err)
	}
	// Without O_EXCL, O_CREATE through a dangling symlink creates the target.
	f2, err := v.OpenFile("dangling", os.O_RDWR|os.O_CREATE, 0o644)
	semOK(t, "OpenFile(dangling symlink, O_CREATE)", err)
	semOK(t, "Close", f2.Close())
	if st := semStat(t, v, "nowhere"); st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		t.Fatalf("O_CREATE through a dangling symlink: expected a regular file at its target, got mode %#o", st.Mode)
	}

	// O_TRUNC empties the file, also as seen through a hard link.
	semWrite(t, v, "t", []byte("hello world"))
	semOK(t, "Link", v.Link("t", "t2"))
	ro, err := v.OpenFile("t", os.O_RDONLY, 0)
	semOK(t, "OpenFile(t, O_RDONLY)", err)
	semRead(t, v, "t2", []byte("hello world"))
	w, err := v.OpenFile("t", os.O_WRONLY|os.O_TRUNC, 0)
	semOK(t, "OpenFile(t, O_WRONLY|O_TRUNC)", err)
	semRead(t, v, "t2", nil)
	if fi, err := ro.Stat(); err != nil || fi.Size() != 0 {
		t.Fatalf("Stat of a handle opened before O_TRUNC: expected size 0, got (%v, %v)", fi, err)
	}
	if _, err := w.Write([]byte("abc")); err != nil {
		t.Fatalf("Write after O_TRUNC: expected success, got %v", err)
	}
	semOK(t, "Close", w.Close())
	semRead(t, v, "t", []byte("abc"))
	semOK(t, "Close", ro.Close())

	// Create truncates; O_APPEND writes at the end whatever the offset.
	c, err := v.Create("t")
	semOK(t, "Create(t)", err)
	c.Write([]byte("0123456789"))
	c.Close()
	a, err := v.OpenFile("t", os.O_RDWR|os.O_APPEND, 0)
	semOK(t, "OpenFile(O_APPEND)", err)
	if _, err := a.Seek(2, io.SeekStart); err != nil {
		t.Fatalf("Seek on an O_APPEND file: expected success, got %v", err)
	}
	a.Write([]byte("AB"))
	if pos, _ := a.Seek(0, io.SeekCurrent); pos != 12 {
		t.Fatalf("offset after an O_APPEND write: expected 12 (the end), got %d", pos)
	}
	_, err = a.WriteAt([]byte("x"), 0)
	semErr(t, "WriteAt on an O_APPEND file", err, syscall.EINVAL)
	a.Close()
	semRead(t, v, "t", []byte("0123456789AB"))
	semCheck(t, f)
}

// TestSemOffsets: WriteAt and ReadAt leave the file offset alone (pwrite,
// pread); a write-only file can seek.
func TestSemOffsets(t *testing.T) {
	_, f, v := semSetup(t)
	w, err := v.OpenFile("f", os.O_RDWR|os.O_CREATE, 0o644)
	semOK(t, "OpenFile", err)
	w.Write([]byte("0123456789"))
	if pos, _ := w.Seek(0, io.SeekCurrent); pos != 10 {
		t.Fatalf("offset after writing 10 bytes: expected 10, got %d", pos)
	}
	w.WriteAt([]byte("abc"), 2)
	if pos, _ := w.Seek(0, io.SeekCurrent); pos != 10 {
		t.Fatalf("offset after WriteAt: expected 10 (unchanged), got %d", pos)
	}
	w.ReadAt(make([]byte, 4), 0)
	if pos, _ := w.Seek(0, io.SeekCurrent); pos != 10 {
		t.Fatalf("offset after ReadAt: expected 10 (unchanged), got %d", pos)
	}
	w.Write([]byte("Z"))
	w.Close()
	semRead(t, v, "f", []byte("01abc56789Z"))

	wo, err := v.OpenFile("f", os.O_WRONLY, 0)
	semOK(t, "OpenFile(O_WRONLY)", err)
	pos, err := wo.Seek(3, io.SeekStart)
	if err != nil || pos != 3 {
		t.Fatalf("Seek(3) on a write-only file: expected (3, nil), got (%d, %v)", pos, err)
	}
	if pos, err := wo.Seek(-1, io.SeekEnd); err != nil || pos != 10 {
		t.Fatalf("Seek(-1, SeekEnd) on a write-only file of 11 bytes: expected (10, nil), got (%d, %v)", pos, err)
	}
	wo.Write([]byte("!"))
	_, err = wo.Read(make([]byte, 1))
	semErr(t, "Read of a write-only file", err, syscall.EBADF)
	_, err = wo.Seek(-20, io.SeekCurrent)
	semErr(t, "Seek to a negative offset", err, syscall.EINVAL)
	wo.Close()
	semRead(t, v, "f", []byte("01abc56789!"))
	semCheck(t, f)
}

func TestSemErrnos(t *testing.T) {
	_, f, v := semSetup(t)
	semOK(t, "MkdirAll", v.MkdirAll("d/sub", 0o755))
	semWrite(t, v, "file", []byte("x"))
	semWrite(t, v, "d/sub/g", []byte("y"))
	semOK(t, "Mkdir(empty)", v.Mkdir("empty", 0o755))

	for _, c := range []struct {
		what string
		err  error
		want syscall.Errno
	}{
		// ENOENT
		{"Stat(missing)", func() error { _, err := v.Stat("missing"); return err }(), syscall.ENOENT},
		{"Open(missing)", func() error { _, err := v.Open("missing"); return err }(), syscall.ENOENT},
		{"Open(missing/x)", func() error { _, err := v.Open("missing/x"); return err }(), syscall.ENOENT},
		{"Create(missing/x)", func() error { _, err := v.Create("missing/x"); return err }(), syscall.ENOENT},
		{"Mkdir(missing/x)", v.Mkdir("missing/x", 0o755), syscall.ENOENT},
		{"Remove(missing)", v.Remove("missing"), syscall.ENOENT},
		{"Rename(missing, x)", v.Rename("missing", "x", 0), syscall.ENOENT},
		{"Rename(file, missing/x)", v.Rename("file", "missing/x", 0), syscall.ENOENT},
		{"Rename(file, nothere, EXCHANGE)", v.Rename("file", "nothere", RenameExchange), syscall.ENOENT},
		{"Link(missing, x)", v.Link("missing", "x"), syscall.ENOENT},
		{"Clone(missing, x)", v.Clone("missing", "x"), syscall.ENOENT},
		{"Truncate(missing)", v.Truncate("missing", 0), syscall.ENOENT},
		{"ReadDir(missing)", func() error { _, err := v.ReadDir("missing"); return err }(), syscall.ENOENT},
		// ENOTDIR
		{"Stat(file/x)", func() error { _, err := v.Stat("file/x"); return err }(), syscall.ENOTDIR},
		{"Create(file/x)", func() error { _, err := v.Create("file/x"); return err }(), syscall.ENOTDIR},
		{"Mkdir(file/x)", v.Mkdir("file/x", 0o755), syscall.ENOTDIR},
		{"ReadDir(file)", func() error { _, err := v.ReadDir("file"); return err }(), syscall.ENOTDIR},
		{"Rename(empty, file)", v.Rename("empty", "file", 0), syscall.ENOTDIR},
		{"Stat(file/..)", func() error { _, err := v.Stat("file/.."); return err }(), syscall.ENOTDIR},
		{"Stat(file/.)", func() error { _, err := v.Stat("file/."); return err }(), syscall.ENOTDIR},
		{"Mkdir(file/../x)", v.Mkdir("file/../x", 0o755), syscall.ENOTDIR},
		// EISDIR
		{"OpenFile(d, O_RDWR)", func() error { _, err := v.OpenFile("d", os.O_RDWR, 0); return err }(), syscall.EISDIR},
		{"OpenFile(d, O_WRONLY)", func() error { _, err := v.OpenFile("d", os.O_WRONLY, 0); return err }(), syscall.EISDIR},
		{"OpenFile(d, O_RDONLY|O_CREATE)", func() error { _, err := v.OpenFile("d", os.O_RDONLY|os.O_CREATE, 0o644); return err }(), syscall.EISDIR},
		{"Truncate(d)", v.Truncate("d", 0), syscall.EISDIR},
		{"Rename(file, empty)", v.Rename("file", "empty", 0), syscall.EISDIR},
		{"ReadFile(d)", func() error { _, err := v.ReadFile("d"); return err }(), syscall.EISDIR},
		// EEXIST
		{"Mkdir(d)", v.Mkdir("d", 0o755), syscall.EEXIST},
		{"Mkdir(file)", v.Mkdir("file", 0o755), syscall.EEXIST},
		{"Symlink(x, file)", v.Symlink("x", "file"), syscall.EEXIST},
		{"Link(file, d)", v.Link("file", "d"), syscall.EEXIST},
		{"Clone(file, d)", v.Clone("file", "d"), syscall.EEXIST},
		{"Rename(file, d/sub/g, NOREPLACE)", v.Rename("file", "d/sub/g", RenameNoReplace), syscall.EEXIST},
		// ENOTEMPTY
		{"Remove(d)", v.Remove("d"), syscall.ENOTEMPTY},
		{"Remove(d/sub)", v.Remove("d/sub"), syscall.ENOTEMPTY},
		{"Rename(empty, d)", v.Rename("empty", "d", 0), syscall.ENOTEMPTY},
		// EPERM, EINVAL, EBUSY
		{"Link(d, x)", v.Link("d", "x"), syscall.EPERM},
		{"Rename(file, x, NOREPLACE|EXCHANGE)", v.Rename("file", "x", RenameNoReplace|RenameExchange), syscall.EINVAL},
		{"Readlink(file)", func() error { _, err := v.Readlink("file"); return err }(), syscall.EINVAL},
		{"Remove(/)", v.Remove("/"), syscall.EBUSY},
		{"Rename(/, x)", v.Rename("/", "x", 0), syscall.EBUSY},
	} {
		semErr(t, c.what, c.err, c.want)
	}
	// Nothing above changed anything.
	semRead(t, v, "file", []byte("x"))
	semRead(t, v, "d/sub/g", []byte("y"))
	for _, p := range []string{"x", "nothere", "missing"} {
		if _, err := v.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Lstat(%q) after failed operations: expected ENOENT, got %v", p, err)
		}
	}
	semNlink(t, v, "d", 3)
	semNlink(t, v, "/", 4)

	// Reading an opened directory, and listing an opened file.
	df, err := v.Open("d")
	semOK(t, "Open(d)", err)
	_, err = df.Read(make([]byte, 1))
	semErr(t, "Read of a directory", err, syscall.EISDIR)
	df.Close()
	ff, err := v.Open("file")
	semOK(t, "Open(file)", err)
	_, err = ff.ReadDir(-1)
	semErr(t, "File.ReadDir of a regular file", err, syscall.ENOTDIR)
	ff.Close()
	semErr(t, "Close of a closed file", ff.Close(), syscall.EBADF)
	_, err = ff.Read(make([]byte, 1))
	semErr(t, "Read of a closed file", err, syscall.EBADF)
	semCheck(t, f)
}

// TestSemRenameIntoItself: a directory cannot move below itself.
func TestSemRenameIntoItself(t *testing.T) {
	_, f, v := semSetup(t)
	semOK(t, "MkdirAll", v.MkdirAll("a/b/c", 0o755))
	semWrite(t, v, "a/b/c/f", []byte("f"))
	semErr(t, "Rename(a, a/x)", v.Rename("a", "a/x", 0), syscall.EINVAL)
	semErr(t, "Rename(a, a/b/c/x)", v.Rename("a", "a/b/c/x", 0), syscall.EINVAL)
	semErr(t, "Rename(a/b, a/b/c/x, NOREPLACE)", v.Rename("a/b", "a/b/c/x", RenameNoReplace), syscall.EINVAL)
	semErr(t, "Rename(a, a/b/c, EXCHANGE)", v.Rename("a", "a/b/c", RenameExchange), syscall.EINVAL)
	semErr(t, "Rename(a/b/c, a, EXCHANGE)", v.Rename("a/b/c", "a", RenameExchange), syscall.EINVAL)
	semOK(t, "Mkdir(a/b/c/empty)", v.Mkdir("a/b/c/empty", 0o755))
	semErr(t, "Rename(a/b, a/b/c/empty) over an empty directory below it", v.Rename("a/b", "a/b/c/empty", 0), syscall.EINVAL)
	// Renaming a name onto itself does nothing.
	semOK(t, "Rename(a, a)", v.Rename("a", "a", 0))
	semOK(t, "Rename(a, a, EXCHANGE)", v.Rename("a", "a", RenameExchange))
	semRead(t, v, "a/b/c/f", []byte("f"))
	// The tree is unchanged, and moving a directory up and sideways works.
	semOK(t, "Rename(a/b/c, c)", v.Rename("a/b/c", "c", 0))
	semOK(t, "Rename(a, c/a)", v.Rename("a", "c/a", 0))
	semRead(t, v, "c/f", []byte("f"))
	semNlink(t, v, "c", 4) // a and empty
	semNlink(t, v, "/", 3)
	semCheck(t, f)
}

func TestSemSymlinks(t *testing.T) {
	st, f, v := semSetup(t)
	semOK(t, "MkdirAll", v.MkdirAll("dir/sub", 0o755))
	semWrite(t, v, "dir/sub/file", []byte("content"))
	links := [][2]string{
		{"dir/sub/file", "abs"},      // relative to the root
		{"sub/file", "dir/rel"},      // relative to its directory
		{"../dir/sub", "dir/up"},     // through ..
		{"/dir/sub/file", "rooted"},  // absolute
		{"rel", "dir/chain"},         // a symlink to a symlink
		{"dir", "d"},                 // a symlink to a directory
		{"missing", "dangling"},      // to nothing
		{"loop", "loop"},             // to itself
		{"pong", "ping"},             // a cycle of two
		{"ping", "pong"},             //
		{"d/up/../sub/file", "long"}, // through symlinks in the middle
	}
	for _, l := range links {
		semOK(t, fmt.Sprintf("Symlink(%q, %q)", l[0], l[1]), v.Symlink(l[0], l[1]))
	}
	for _, p := range []string{"abs", "dir/rel", "rooted", "dir/chain", "d/sub/file", "d/up/file", "long", "dir/up/file"} {
		semRead(t, v, p, []byte("content"))
		fi, err := v.Stat(p)
		semOK(t, "Stat("+p+")", err)
		if fi.Stat().Mode&syscall.S_IFMT != syscall.S_IFREG || fi.Size() != 7 {
			t.Fatalf("Stat(%q) through symlinks: expected the 7-byte regular file, got mode %#o size %d", p, fi.Stat().Mode, fi.Size())
		}
	}
	for _, l := range links {
		target, err := v.Readlink(l[1])
		if err != nil || target != l[0] {
			t.Fatalf("Readlink(%q): expected %q, got (%q, %v)", l[1], l[0], target, err)
		}
		st := semStat(t, v, l[1])
		if st.Mode != syscall.S_IFLNK|0o777 || st.Size != int64(len(l[0])) {
			t.Fatalf("Lstat(%q): expected a symlink of size %d, got mode %#o size %d", l[1], len(l[0]), st.Mode, st.Size)
		}
	}
	fi, err := v.Stat("d")
	if err != nil || !fi.IsDir() {
		t.Fatalf("Stat(d) (a symlink to a directory): expected a directory, got (%v, %v)", fi, err)
	}
	infos, err := v.ReadDir("d/sub")
	if err != nil || len(infos) != 1 || infos[0].Name() != "file" {
		t.Fatalf("ReadDir(d/sub) through a symlink: expected [file], got (%v, %v)", infos, err)
	}
	_, err = v.Stat("dangling")
	semErr(t, "Stat(dangling)", err, syscall.ENOENT)
	for _, p := range []string{"loop", "ping", "pong", "loop/x"} {
		_, err := v.Stat(p)
		semErr(t, "Stat("+p+") of a symlink cycle", err, syscall.ELOOP)
		_, err = v.Open(p)
		semErr(t, "Open("+p+") of a symlink cycle", err, syscall.ELOOP)
	}
	// A chain of 40 symlinks resolves; 41 is too many.
	prev := "dir/sub/file"
	for i := 1; i <= 41; i++ {
		name := fmt.Sprintf("c%02d", i)
		semOK(t, "Symlink", v.Symlink(prev, name))
		prev = name
	}
	semRead(t, v, "c40", []byte("content"))
	_, err = v.Stat("c41")
	semErr(t, "Stat through 41 symlinks", err, syscall.ELOOP)
	// Remove, Rename and Link act on the symlink itself, not its target.
	semOK(t, "Rename(abs, abs2)", v.Rename("abs", "abs2", 0))
	semOK(t, "Link(abs2, abs3)", v.Link("abs2", "abs3"))
	semNlink(t, v, "abs3", 2)
	semNlink(t, v, "dir/sub/file", 1)
	semOK(t, "Remove(abs2)", v.Remove("abs2"))
	semRead(t, v, "abs3", []byte("content"))
	semOK(t, "Remove(d)", v.Remove("d"))
	semRead(t, v, "dir/sub/file", []byte("content"))
	_, err = v.Stat("long")
	semErr(t, "Stat(long) after removing the symlink d it goes through", err, syscall.ENOENT)
	f, v = semReopen(t, st, f)
	semRead(t, v, "dir/chain", []byte("content"))
	semRead(t, v, "dir/up/file", []byte("content"))
	if target, _ := v.Readlink("abs3"); target != "dir/sub/file" {
		t.Fatalf("Readlink(abs3) after reopen: expected %q, got %q", "dir/sub/file", target)
	}
	semErr(t, "Symlink with an empty target", v.Symlink("", "e"), syscall.EINVAL)
	semCheck(t, f)
}

// TestSemSeekDataHole: SEEK_DATA and SEEK_HOLE on a sparse file, before and
// after commit, after a hole punch, and on a file that is all hole.
func TestSemSeekDataHole(t *testing.T) {
	st, f, v := semSetup(t)
	const size = 3 << 20
	w, err := v.Create("sparse")
	semOK(t, "Create", err)
	data := bytes.Repeat([]byte("d"), 100<<10)
	w.WriteAt(data[:4096], 0)              // [0, 4096)
	w.WriteAt(data, 1<<20)                 // [1 MiB, 1 MiB + 100 KiB)
	w.WriteAt(data[:10], 2<<20+5)          // [2 MiB + 5, 2 MiB + 15)
	semOK(t, "Truncate", w.Truncate(size)) // a hole to the end
	type seek struct {
		whence int
		off    int64
		want   int64 // -1: ENXIO
	}
	cases := []seek{
		{SeekData, 0, 0}, {SeekData, 100, 100}, {SeekHole, 0, 4096}, {SeekHole, 4095, 4096},
		{SeekData, 4096, 1 << 20}, {SeekHole, 4096, 4096}, {SeekHole, 1 << 20, 1<<20 + 100<<10},
		// Whole 4 KiB blocks: the 10 bytes at 2 MiB + 5 make [2 MiB, 2 MiB + 4 KiB) data.
		{SeekData, 1<<20 + 100<<10, 2 << 20}, {SeekHole, 2<<20 + 5, 2<<20 + 4096},
		{SeekData, 2<<20 + 15, 2<<20 + 15}, {SeekData, 2<<20 + 4096, -1},
		{SeekHole, 2<<20 + 15, 2<<20 + 4096}, {SeekHole, size - 1, size - 1},
		{SeekData, size, -1}, {SeekHole, size, -1}, {SeekData, size + 10, -1},
	}
	check := func(when string, cases []seek) {
		t.Helper()
		for _, c := range cases {
			name := map[int]string{SeekData: "SEEK_DATA", SeekHole: "SEEK_HOLE"}[c.whence]
			what := fmt.Sprintf("%s: Seek(%d, %s)", when, c.off, name)
			pos, err := w.Seek(c.off, c.whence)
			if c.want < 0 {
				semErr(t, what, err, syscall.ENXIO)
				continue
			}
			if err != nil || pos != c.want {
				t.Fatalf("%s: expected %d, got (%d, %v)", what, c.want, pos, err)
			}
		}
	}
	check("buffered", cases)
	semOK(t, "Commit", f.Commit())
	check("committed", cases)
	f, v = semReopen(t, st, f)
	semOK(t, "Close", w.Close())
	w, err = v.OpenFile("sparse", os.O_RDWR, 0)
	semOK(t, "OpenFile after reopen", err)
	check("reopened", cases)
	// Punch the middle run out: its data becomes hole.
	semOK(t, "Fallocate(punch)", w.Fallocate(FallocPunchHole|FallocKeepSize, 1<<20, 100<<10))
	check("punched", []seek{{SeekData, 4096, 2 << 20}, {SeekHole, 0, 4096}, {SeekHole, 5000, 5000}})
	if fi, _ := w.Stat(); fi.Size() != size {
		t.Fatalf("size after punching with KEEP_SIZE: expected %d, got %d", size, fi.Size())
	}
	w.Close()
	// A file that is all hole has no data.
	semOK(t, "Truncate(hole)", v.Truncate("sparse", 0))
	semOK(t, "Truncate(hole)", v.Truncate("sparse", 1<<20))
	w, _ = v.Open("sparse")
	check("all hole", []seek{{SeekData, 0, -1}, {SeekHole, 0, 0}, {SeekHole, 1<<20 - 1, 1<<20 - 1}})
	w.Close()
	semCheck(t, f)
}

// TestSemEFBIG: nothing may end past rope.MaxSize; up to it is fine.
func TestSemEFBIG(t *testing.T) {
	st, f, v := semSetup(t)
	const M = rope.MaxSize
	w, err := v.Create("big")
	semOK(t, "Create", err)
	_, err = w.WriteAt([]byte("xy"), M-1)
	semErr(t, "WriteAt of 2 bytes at MaxSize-1", err, syscall.EFBIG)
	_, err = w.WriteAt([]byte("x"), M)
	semErr(t, "WriteAt at MaxSize", err, syscall.EFBIG)
	semErr(t, "Truncate(MaxSize+1)", w.Truncate(M+1), syscall.EFBIG)
	semErr(t, "Truncate(-1)", w.Truncate(-1), syscall.EINVAL)
	semErr(t, "Volume.Truncate(-1)", v.Truncate("big", -1), syscall.EINVAL)
	semErr(t, "Fallocate(0, MaxSize, 1)", w.Fallocate(0, M, 1), syscall.EFBIG)
	semErr(t, "Fallocate(ZERO_RANGE, MaxSize-1, 2)", w.Fallocate(FallocZeroRange, M-1, 2), syscall.EFBIG)
	if fi, _ := w.Stat(); fi.Size() != 0 {
		t.Fatalf("size after refused operations: expected 0, got %d", fi.Size())
	}
	// Exactly MaxSize is allowed.
	if n, err := w.WriteAt([]byte("z"), M-1); err != nil || n != 1 {
		t.Fatalf("WriteAt of 1 byte at MaxSize-1: expected (1, nil), got (%d, %v)", n, err)
	}
	semErr(t, "Fallocate(INSERT_RANGE) past MaxSize", w.Fallocate(FallocInsertRange, 0, 1), syscall.EFBIG)
	src, _ := v.Create("src")
	src.Write([]byte("abc"))
	_, err = CopyRange(src, 0, w, M-2, 3)
	semErr(t, "CopyRange ending past MaxSize", err, syscall.EFBIG)
	src.Close()
	w.Close()
	f, v = semReopen(t, st, f)
	r, err := v.Open("big")
	semOK(t, "Open(big) after reopen", err)
	if fi, _ := r.Stat(); fi.Size() != M {
		t.Fatalf("size after reopen: expected %d, got %d", int64(M), fi.Size())
	}
	buf := make([]byte, 4)
	n, err := r.ReadAt(buf, M-3)
	if n != 3 || err != io.EOF || !bytes.Equal(buf[:3], []byte{0, 0, 'z'}) {
		t.Fatalf("ReadAt at MaxSize-3: expected (3 bytes \"\\0\\0z\", io.EOF), got (%d bytes %q, %v)", n, buf[:n], err)
	}
	if pos, err := r.Seek(0, SeekData); err != nil || pos != (M-1)/BlockSize*BlockSize {
		t.Fatalf("Seek(0, SEEK_DATA) of a file with one byte at its end: expected %d (its block), got (%d, %v)", int64((M-1)/BlockSize*BlockSize), pos, err)
	}
	r.Close()
	semOK(t, "Truncate(big, 0)", v.Truncate("big", 0))
	semErr(t, "Volume.Truncate(MaxSize+1)", v.Truncate("big", M+1), syscall.EFBIG)
	semCheck(t, f)
}

// TestSemSnapshotReadOnly: every change to a snapshot fails with EROFS.
func TestSemSnapshotReadOnly(t *testing.T) {
	_, f, v := semSetup(t)
	semOK(t, "Mkdir", v.Mkdir("d", 0o755))
	semWrite(t, v, "d/f", []byte("old"))
	semOK(t, "Snapshot", v.Snapshot("s"))
	semWrite(t, v, "d/f", []byte("new"))
	s, err := v.OpenSnapshot("s")
	semOK(t, "OpenSnapshot", err)
	if !s.ReadOnly() || s.Name() != "main@s" {
		t.Fatalf("OpenSnapshot: expected read-only volume main@s, got %q read-only=%v", s.Name(), s.ReadOnly())
	}
	semRead(t, s, "d/f", []byte("old"))
	semRead(t, v, "d/f", []byte("new"))
	open := func(flag int) error { _, err := s.OpenFile("d/f", flag, 0o644); return err }
	for _, c := range []struct {
		what string
		err  error
	}{
		{"OpenFile(O_WRONLY)", open(os.O_WRONLY)},
		{"OpenFile(O_RDWR)", open(os.O_RDWR)},
		{"OpenFile(O_RDONLY|O_TRUNC)", open(os.O_RDONLY | os.O_TRUNC)},
		{"OpenFile(new, O_CREATE)", func() error { _, err := s.OpenFile("new", os.O_RDONLY|os.O_CREATE, 0o644); return err }()},
		{"Create", func() error { _, err := s.Create("x"); return err }()},
		{"WriteFile", s.WriteFile("x", nil, 0o644)},
		{"Mkdir", s.Mkdir("x", 0o755)},
		{"Symlink", s.Symlink("d", "x")},
		{"Mknod", s.Mknod("x", syscall.S_IFIFO|0o644, 0)},
		{"Remove", s.Remove("d/f")},
		{"Rename", s.Rename("d/f", "d/g", 0)},
		{"Link", s.Link("d/f", "d/g")},
		{"Clone", s.Clone("d", "e")},
		{"Truncate", s.Truncate("d/f", 0)},
		{"Chmod", s.Chmod("d/f", 0o600)},
		{"Chown", s.Chown("d/f", 1, 1)},
		{"SetXattr", s.SetXattr("d/f", "user.x", []byte("1"), 0)},
		{"RemoveXattr", s.RemoveXattr("d/f", "user.x")},
		{"Snapshot", s.Snapshot("t")},
	} {
		semErr(t, "snapshot: "+c.what, c.err, syscall.EROFS)
		if !errors.Is(c.err, fs.ErrPermission) {
			t.Fatalf("snapshot: %s: expected errors.Is(err, fs.ErrPermission), got %v", c.what, c.err)
		}
	}
	// A snapshot file opened for reading cannot be written through.
	r, err := s.Open("d/f")
	semOK(t, "snapshot: Open", err)
	_, err = r.Write([]byte("x"))
	semErr(t, "snapshot: Write to a read-only handle", err, syscall.EBADF)
	dst, _ := v.Create("copy")
	if n, err := CopyRange(r, 0, dst, 0, 100); err != nil || n != 3 {
		t.Fatalf("CopyRange from a snapshot file into the volume: expected (3, nil), got (%d, %v)", n, err)
	}
	_, err = CopyRange(dst, 0, r, 0, 1)
	semErr(t, "CopyRange into a snapshot file", err, syscall.EBADF)
	semErr(t, "DeleteSnapshot while a file of it is open", v.DeleteSnapshot("s"), syscall.EBUSY)
	semErr(t, "DeleteVolume while files are open", f.DeleteVolume("main"), syscall.EBUSY)
	r.Close()
	dst.Close()
	semRead(t, v, "copy", []byte("old"))
	semRead(t, s, "d/f", []byte("old"))
	// The refused deletes left everything in place.
	if snaps, err := v.Snapshots(); err != nil || len(snaps) != 1 || snaps[0].Name != "s" {
		t.Fatalf("Snapshots after refused deletes: expected [s], got (%v, %v)", snaps, err)
	}
	semCheck(t, f)
	semOK(t, "DeleteSnapshot", v.DeleteSnapshot("s"))
	_, err = v.OpenSnapshot("s")
	semErr(t, "OpenSnapshot of a deleted snapshot", err, syscall.ENOENT)
	semCheck(t, f)
}

func TestSemXattr(t *testing.T) {
	st, f, v := semSetup(t)
	semWrite(t, v, "f", []byte("x"))
	get := func(name string) ([]byte, error) { return v.GetXattr("f", name) }
	semOK(t, "SetXattr(create)", v.SetXattr("f", "user.a", []byte("1"), XattrCreate))
	semErr(t, "SetXattr(create) of an existing attribute", v.SetXattr("f", "user.a", []byte("2"), XattrCreate), syscall.EEXIST)
	semErr(t, "SetXattr(replace) of a missing attribute", v.SetXattr("f", "user.b", []byte("2"), XattrReplace), syscall.ENODATA)
	if val, err := get("user.a"); err != nil || string(val) != "1" {
		t.Fatalf("GetXattr(user.a) after a refused create: expected \"1\", got (%q, %v)", val, err)
	}
	if _, err := get("user.b"); Errno(err) != syscall.ENODATA {
		t.Fatalf("GetXattr(user.b) after a refused replace: expected ENODATA, got %v", err)
	}
	semOK(t, "SetXattr(replace)", v.SetXattr("f", "user.a", []byte("3"), XattrReplace))
	semOK(t, "SetXattr(0) new", v.SetXattr("f", "user.b", nil, 0))
	semOK(t, "SetXattr(0) existing", v.SetXattr("f", "trusted.c", []byte("c"), 0))
	names, err := v.ListXattr("f")
	if err != nil || strings.Join(names, ",") != "trusted.c,user.a,user.b" {
		t.Fatalf("ListXattr: expected [trusted.c user.a user.b], got (%q, %v)", names, err)
	}
	if val, err := get("user.b"); err != nil || len(val) != 0 {
		t.Fatalf("GetXattr of an empty value: expected (\"\", nil), got (%q, %v)", val, err)
	}
	semErr(t, "SetXattr with an empty name", v.SetXattr("f", "", []byte("1"), 0), syscall.ERANGE)
	big := make([]byte, 64<<10+1)
	semErr(t, "SetXattr of a value past 64 KiB", v.SetXattr("f", "user.big", big, 0), syscall.E2BIG)
	if _, err := get("user.big"); Errno(err) != syscall.ENODATA {
		t.Fatalf("GetXattr(user.big) after E2BIG: expected ENODATA, got %v", err)
	}
	// Hard links share attributes; clones copy them.
	semOK(t, "Link", v.Link("f", "g"))
	semOK(t, "SetXattr through a link", v.SetXattr("g", "user.d", []byte("d"), XattrCreate))
	semOK(t, "Clone", v.Clone("f", "h"))
	semOK(t, "RemoveXattr", v.RemoveXattr("f", "user.a"))
	semErr(t, "RemoveXattr of a missing attribute", v.RemoveXattr("f", "user.a"), syscall.ENODATA)
	f, v = semReopen(t, st, f)
	for _, c := range []struct{ p, want string }{{"f", "trusted.c,user.b,user.d"}, {"g", "trusted.c,user.b,user.d"}, {"h", "trusted.c,user.a,user.b,user.d"}} {
		names, err := v.ListXattr(c.p)
		if err != nil || strings.Join(names, ",") != c.want {
			t.Fatalf("ListXattr(%q) after reopen: expected %s, got (%q, %v)", c.p, c.want, names, err)
		}
	}
	if val, err := v.GetXattr("h", "user.a"); err != nil || string(val) != "3" {
		t.Fatalf("GetXattr(h, user.a) of a clone: expected \"3\", got (%q, %v)", val, err)
	}
	// Symlinks carry their own attributes (no following).
	semOK(t, "Symlink", v.Symlink("f", "s"))
	semOK(t, "SetXattr on a symlink", v.SetXattr("s", "user.s", []byte("s"), 0))
	if _, err := v.GetXattr("f", "user.s"); Errno(err) != syscall.ENODATA {
		t.Fatalf("an attribute set on a symlink must not reach its target: GetXattr(f, user.s): expected ENODATA, got %v", err)
	}
	semCheck(t, f)
}

func TestSemHardLinks(t *testing.T) {
	st, f, v := semSetup(t)
	semOK(t, "MkdirAll", v.MkdirAll("a/b", 0o755))
	semOK(t, "Mkdir", v.Mkdir("c", 0o755))
	semWrite(t, v, "a/f", []byte("shared"))
	semNlink(t, v, "a/f", 1)
	ino := semStat(t, v, "a/f").Ino
	semOK(t, "Link(a/f, a/b/g)", v.Link("a/f", "a/b/g"))
	semOK(t, "Link(a/b/g, c/h)", v.Link("a/b/g", "c/h"))
	for _, p := range []string{"a/f", "a/b/g", "c/h"} {
		semNlink(t, v, p, 3)
		if got := semStat(t, v, p).Ino; got != ino {
			t.Fatalf("Ino of hard link %s: expected %#x (that of a/f), got %#x", p, ino, got)
		}
	}
	// A write through one name shows through the others.
	w, err := v.OpenFile("c/h", os.O_RDWR, 0)
	semOK(t, "OpenFile(c/h)", err)
	w.WriteAt([]byte("SH"), 0)
	semRead(t, v, "a/f", []byte("SHared"))
	semOK(t, "Rename(a/b/g, c/g)", v.Rename("a/b/g", "c/g", 0))
	semOK(t, "Remove(a/f)", v.Remove("a/f"))
	semNlink(t, v, "c/g", 2)
	if fi, _ := w.Stat(); fi.Stat().Nlink != 2 {
		t.Fatalf("Nlink through an open handle: expected 2, got %d", fi.Stat().Nlink)
	}
	f, v = semReopen(t, st, f)
	semNlink(t, v, "c/g", 2)
	semNlink(t, v, "c/h", 2)
	if got := semStat(t, v, "c/h").Ino; got != ino {
		t.Fatalf("Ino of a hard link after reopen: expected %#x, got %#x", ino, got)
	}
	// Directories count their subdirectories.
	semNlink(t, v, "/", 4)
	semNlink(t, v, "a", 3)
	semOK(t, "Remove(a/b)", v.Remove("a/b"))
	semNlink(t, v, "a", 2)
	semOK(t, "Rename(a, c/a)", v.Rename("a", "c/a", 0))
	semNlink(t, v, "/", 3)
	semNlink(t, v, "c", 3)
	// Clones of a directory link their copies among themselves.
	semOK(t, "Clone(c, c2)", v.Clone("c", "c2"))
	semNlink(t, v, "c2/g", 2)
	semNlink(t, v, "c/g", 2)
	if a, b := semStat(t, v, "c2/g").Ino, semStat(t, v, "c2/h").Ino; a != b || a == ino {
		t.Fatalf("inodes of cloned hard links: expected c2/g and c2/h to share one new number, got %#x and %#x (original %#x)", a, b, ino)
	}
	semOK(t, "WriteFile(c2/g)", v.WriteFile("c2/g", []byte("clone"), 0o644))
	semRead(t, v, "c2/h", []byte("clone"))
	semRead(t, v, "c/h", []byte("SHared"))
	semOK(t, "Remove(c/g)", v.Remove("c/g"))
	semOK(t, "Remove(c/h)", v.Remove("c/h"))
	_, err = v.Stat("c/h")
	semErr(t, "Stat of a removed last link", err, syscall.ENOENT)
	semNlink(t, v, "c2/h", 2)
	semCheck(t, f)
}

// TestSemUnlinkedOpen: a file unlinked while open keeps its data across
// commits; its space is freed when it is closed (and on reopen if never
// closed).
func TestSemUnlinkedOpen(t *testing.T) {
	st, f, v := semSetup(t)
	data := mdlTestBytes(11, 3<<20)
	semWrite(t, v, "f", data)
	semOK(t, "Commit", f.Commit())
	base := semUsage(t, st)
	h, err := v.OpenFile("f", os.O_RDWR, 0)
	semOK(t, "OpenFile", err)
	ino := semStat(t, v, "f").Ino
	semOK(t, "Remove", v.Remove("f"))
	semOK(t, "Commit", f.Commit())
	semCheck(t, f)
	if u := semUsage(t, st); u < base {
		t.Fatalf("store after removing an open file: expected at least the %d bytes held before, got %d", base, u)
	}
	got := make([]byte, len(data)+1)
	n, err := h.ReadAt(got, 0)
	if err != io.EOF || !bytes.Equal(got[:n], data) {
		t.Fatalf("ReadAt of an unlinked open file after commit: expected its %d bytes, got (%d, %v)", len(data), n, err)
	}
	h.WriteAt([]byte("more"), int64(len(data)))
	fi, err := h.Stat()
	if err != nil || fi.Stat().Nlink != 0 || fi.Stat().Ino != ino || fi.Size() != int64(len(data)+4) {
		t.Fatalf("Stat of an unlinked open file: expected nlink 0, ino %#x, size %d, got (%+v, %v)", ino, len(data)+4, fi.Stat(), err)
	}
	if _, err := v.Stat("f"); Errno(err) != syscall.ENOENT {
		t.Fatalf("Stat(f) after Remove: expected ENOENT, got %v", err)
	}
	semWrite(t, v, "f", []byte("new file, same name")) // a different file
	semOK(t, "Sync of the unlinked file", h.Sync())
	semCheck(t, f)
	semOK(t, "Close", h.Close())
	semOK(t, "Commit", f.Commit())
	semCheck(t, f)
	if u := semUsage(t, st); u >= int64(len(data)) {
		t.Fatalf("store after closing the unlinked file: expected its %d bytes freed, store holds %d bytes", len(data), u)
	}
	semRead(t, v, "f", []byte("new file, same name"))

	// Never closed: reopening the volume drops it.
	semWrite(t, v, "g", data)
	h, _ = v.Open("g")
	semOK(t, "Remove(g)", v.Remove("g"))
	semOK(t, "Commit", f.Commit())
	if u := semUsage(t, st); u < int64(len(data)) {
		t.Fatalf("store with an unlinked open file: expected its %d bytes kept, store holds %d", len(data), u)
	}
	_ = h
	f, _ = semReopen(t, st, f)
	semOK(t, "Commit after reopen", f.Commit())
	semCheck(t, f)
	if u := semUsage(t, st); u >= int64(len(data)) {
		t.Fatalf("store after reopening with an orphan left: expected its %d bytes freed, store holds %d", len(data), u)
	}
	semOK(t, "DeleteVolume", f.DeleteVolume("main"))
	if u := semUsage(t, st); u != 0 {
		t.Fatalf("store after DeleteVolume: expected empty, holds %d bytes", u)
	}
}

// mdlTestBytes returns n pseudo-random bytes.
func mdlTestBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	c := mdlCorpus()
	for i := range b {
		b[i] = c[(uint64(i)*7+seed)%uint64(len(c))] ^ byte(i>>12)
	}
	return b
}

// TestSemFallocate: the EINVAL rules of insert and collapse range, and
// what each mode does, at unaligned offsets.
func TestSemFallocate(t *testing.T) {
	_, f, v := semSetup(t)
	w, _ := v.Create("f")
	w.Write([]byte("0123456789"))
	for _, c := range []struct {
		mode    uint32
		off, n  int64
		want    syscall.Errno
		content string
	}{
		{FallocInsertRange, 10, 1, syscall.EINVAL, "0123456789"},   // at the end
		{FallocInsertRange, 11, 1, syscall.EINVAL, "0123456789"},   // past the end
		{FallocCollapseRange, 5, 5, syscall.EINVAL, "0123456789"},  // reaches the end
		{FallocCollapseRange, 9, 3, syscall.EINVAL, "0123456789"},  // past the end
		{FallocInsertRange, 0, 0, syscall.EINVAL, "0123456789"},    // empty
		{FallocCollapseRange, -1, 2, syscall.EINVAL, "0123456789"}, // negative
		{FallocPunchHole, 0, 2, syscall.EOPNOTSUPP, "0123456789"},  // punch needs KEEP_SIZE
		{FallocInsertRange, 3, 2, 0, "012\x00\x003456789"},
		{FallocCollapseRange, 1, 4, 0, "03456789"},
		{FallocPunchHole | FallocKeepSize, 6, 10, 0, "034567\x00\x00"},
		{FallocZeroRange | FallocKeepSize, 7, 10, 0, "034567\x00\x00"},
		{FallocZeroRange, 7, 3, 0, "034567\x00\x00\x00\x00"},
		{FallocKeepSize, 0, 100, 0, "034567\x00\x00\x00\x00"},
		{0, 8, 4, 0, "034567\x00\x00\x00\x00\x00\x00"},
		{FallocCollapseRange, 0, 11, 0, "\x00"},
	} {
		what := fmt.Sprintf("Fallocate(%#x, %d, %d)", c.mode, c.off, c.n)
		semErr(t, what, w.Fallocate(c.mode, c.off, c.n), c.want)
		semRead(t, v, "f", []byte(c.content))
	}
	w.Close()
	semCheck(t, f)
}

// TestSemDeleteVolumeBusy: a refused DeleteVolume deletes nothing.
func TestSemDeleteVolumeBusy(t *testing.T) {
	_, f, v := semSetup(t)
	semWrite(t, v, "f", []byte("data"))
	semOK(t, "Snapshot", v.Snapshot("s1"))
	semOK(t, "Snapshot", v.Snapshot("s2"))
	h, _ := v.Open("f")
	semErr(t, "DeleteVolume with a file open", f.DeleteVolume("main"), syscall.EBUSY)
	snaps, err := v.Snapshots()
	if err != nil || len(snaps) != 2 {
		t.Fatalf("Snapshots after a refused DeleteVolume: expected [s1 s2], got (%v, %v)", snaps, err)
	}
	s, err := v.OpenSnapshot("s1")
	semOK(t, "OpenSnapshot(s1) after a refused DeleteVolume", err)
	semRead(t, s, "f", []byte("data"))
	h.Close()
	semCheck(t, f)
	semOK(t, "DeleteVolume", f.DeleteVolume("main"))
	semErr(t, "DeleteVolume again", f.DeleteVolume("main"), syscall.ENOENT)
	semCheck(t, f)
}

// TestSemTimes: which operations change which times.
func TestSemTimes(t *testing.T) {
	st, f, v := semSetup(t)
	old := time.Date(2001, 2, 3, 4, 5, 6, 7, time.UTC)
	older := time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC)
	semWrite(t, v, "f", []byte("x"))
	semOK(t, "Mkdir", v.Mkdir("d", 0o755))
	before := time.Now()
	semOK(t, "Chtimes", v.Chtimes("f", older, old))
	s := semStat(t, v, "f")
	if !s.Mtime.Equal(old) || !s.Atime.Equal(older) {
		t.Fatalf("after Chtimes: expected atime %v mtime %v, got %v %v", older, old, s.Atime, s.Mtime)
	}
	semOK(t, "Chtimes(zero, zero)", v.Chtimes("f", time.Time{}, time.Time{}))
	if s2 := semStat(t, v, "f"); !s2.Mtime.Equal(old) || !s2.Atime.Equal(older) {
		t.Fatalf("Chtimes with zero times: expected times unchanged (%v, %v), got (%v, %v)", older, old, s2.Atime, s2.Mtime)
	}
	semOK(t, "Chmod", v.Chmod("f", 0o600))
	s = semStat(t, v, "f")
	if !s.Mtime.Equal(old) || s.Ctime.Before(before) {
		t.Fatalf("after Chmod: expected mtime unchanged (%v) and ctime >= %v, got mtime %v ctime %v", old, before, s.Mtime, s.Ctime)
	}
	// A clone keeps the modification time; its change and birth times are now.
	semOK(t, "Clone", v.Clone("f", "d/g"))
	c := semStat(t, v, "d/g")
	if !c.Mtime.Equal(old) || c.Btime.Before(before) || c.Ctime.Before(before) || c.Mode&0o777 != 0o600 {
		t.Fatalf("clone: expected mtime %v, mode 0600, btime and ctime >= %v, got mtime %v btime %v ctime %v mode %#o", old, before, c.Mtime, c.Btime, c.Ctime, c.Mode)
	}
	dirBefore := semStat(t, v, "d").Mtime
	semOK(t, "Chtimes(d)", v.Chtimes("d", time.Time{}, old))
	semOK(t, "Rename(d/g, d/h)", v.Rename("d/g", "d/h", 0))
	if m := semStat(t, v, "d").Mtime; !m.After(old) || m.Before(dirBefore) {
		t.Fatalf("rename within d: expected d's mtime updated past %v, got %v", old, m)
	}
	if m := semStat(t, v, "d/h").Mtime; !m.Equal(old) {
		t.Fatalf("rename: expected the moved file's mtime kept (%v), got %v", old, m)
	}
	// Writing and truncating change the modification time.
	w, _ := v.OpenFile("f", os.O_RDWR, 0)
	w.WriteAt([]byte("y"), 0)
	if m := semStat(t, v, "f").Mtime; !m.After(old) {
		t.Fatalf("after a write: expected mtime past %v, got %v", old, m)
	}
	semOK(t, "Chtimes", v.Chtimes("f", time.Time{}, old))
	semOK(t, "Truncate", w.Truncate(5))
	if m := semStat(t, v, "f").Mtime; !m.After(old) {
		t.Fatalf("after Truncate: expected mtime past %v, got %v", old, m)
	}
	w.Close()
	semOK(t, "Chtimes", v.Chtimes("f", time.Time{}, old))
	f, v = semReopen(t, st, f)
	if s := semStat(t, v, "f"); !s.Mtime.Equal(old) || !s.Atime.Equal(older) {
		t.Fatalf("after reopen: expected atime %v mtime %v, got %v %v", older, old, s.Atime, s.Mtime)
	}
	semCheck(t, f)
}

// TestSemMknodChown: special files and ownership.
func TestSemMknodChown(t *testing.T) {
	st, f, v := semSetup(t)
	semOK(t, "Mknod(fifo)", v.Mknod("p", syscall.S_IFIFO|0o640, 0))
	semOK(t, "Mknod(char)", v.Mknod("c", syscall.S_IFCHR|0o600, 0x0501))
	semOK(t, "Mknod(regular)", v.Mknod("r", 0o644, 7))
	semErr(t, "Mknod of a directory type", v.Mknod("x", syscall.S_IFDIR|0o755, 0), syscall.EINVAL)
	semErr(t, "Mknod over an existing name", v.Mknod("p", syscall.S_IFIFO|0o640, 0), syscall.EEXIST)
	semOK(t, "Symlink", v.Symlink("p", "l"))
	semOK(t, "Chown(l) follows the symlink", v.Chown("l", 10, 20))
	semOK(t, "Lchown(l)", v.Lchown("l", 30, -1))
	semOK(t, "Chown(c, -1, 5)", v.Chown("c", -1, 5))
	f, v = semReopen(t, st, f)
	for _, c := range []struct {
		p        string
		mode     uint32
		rdev     uint64
		uid, gid uint32
		size     int64
	}{
		{"p", syscall.S_IFIFO | 0o640, 0, 10, 20, 0},
		{"c", syscall.S_IFCHR | 0o600, 0x0501, 0, 5, 0},
		{"r", syscall.S_IFREG | 0o644, 0, 0, 0, 0},
		{"l", syscall.S_IFLNK | 0o777, 0, 30, 0, 1},
	} {
		s := semStat(t, v, c.p)
		if s.Mode != c.mode || s.Rdev != c.rdev || s.UID != c.uid || s.GID != c.gid || s.Size != c.size || s.Nlink != 1 {
			t.Fatalf("Lstat(%q): expected mode %#o rdev %#x uid %d gid %d size %d nlink 1, got mode %#o rdev %#x uid %d gid %d size %d nlink %d",
				c.p, c.mode, c.rdev, c.uid, c.gid, c.size, s.Mode, s.Rdev, s.UID, s.GID, s.Size, s.Nlink)
		}
	}
	semRead(t, v, "r", nil)
	// Clones and hard links of special files.
	semOK(t, "Clone(c, c2)", v.Clone("c", "c2"))
	semOK(t, "Link(p, p2)", v.Link("p", "p2"))
	if s := semStat(t, v, "c2"); s.Mode != syscall.S_IFCHR|0o600 || s.Rdev != 0x0501 {
		t.Fatalf("clone of a device: expected mode %#o rdev 0x501, got %#o %#x", syscall.S_IFCHR|0o600, s.Mode, s.Rdev)
	}
	semNlink(t, v, "p", 2)
	semCheck(t, f)
}

// TestSemConcurrent: the methods are safe for concurrent use. Writers each
// own a file and check it against their own copy; a reader reads a file
// nobody changes while commits, snapshots, clones, range copies and checks
// run. Run it with -race.
func TestSemConcurrent(t *testing.T) {
	st, f, v := semSetup(t)
	ro := mdlTestBytes(3, 1<<20)
	semWrite(t, v, "ro", ro)
	semOK(t, "Mkdir", v.Mkdir("w", 0o755))
	const writers, rounds = 4, 60
	errc := make(chan error, writers+2)
	done := make(chan struct{})
	var ww, bg sync.WaitGroup
	for i := 0; i < writers; i++ {
		ww.Add(1)
		go func() {
			defer ww.Done()
			if err := semWriter(v, i, rounds, ro); err != nil {
				errc <- err
			}
		}()
	}
	bg.Add(2)
	go func() { // a reader of the file nobody changes
		defer bg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			got, err := v.ReadFile("ro")
			if err != nil || !bytes.Equal(got, ro) {
				errc <- fmt.Errorf("reader: ReadFile(ro): expected its %d bytes, got (%d bytes, %v)", len(ro), len(got), err)
				return
			}
			if _, err := v.ReadDir("w"); err != nil {
				errc <- fmt.Errorf("reader: ReadDir(w): expected success, got %v", err)
				return
			}
		}
	}()
	go func() { // commits, snapshots, clones, checks
		defer bg.Done()
		for r := 0; ; r++ {
			select {
			case <-done:
				return
			default:
			}
			var err error
			switch r % 5 {
			case 0:
				err = f.Commit()
			case 1:
				err = v.Snapshot(fmt.Sprintf("s%d", r))
			case 2:
				err = v.DeleteSnapshot(fmt.Sprintf("s%d", r-1))
			case 3:
				if err = v.Clone("w", fmt.Sprintf("c%d", r)); err == nil {
					_, err = v.ReadDir(fmt.Sprintf("c%d", r))
				}
			case 4:
				var rep *CheckReport
				if rep, err = f.Check(context.Background()); err == nil {
					err = rep.Err()
				}
			}
			if err != nil {
				errc <- fmt.Errorf("background round %d: expected success, got %v", r, err)
				return
			}
		}
	}()
	ww.Wait()
	close(done)
	bg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	semCheck(t, f)
	semRead(t, v, "ro", ro)
	f, v = semReopen(t, st, f)
	semRead(t, v, "ro", ro)
	semCheck(t, f)
}

// semWriter is one writer of TestSemConcurrent: it changes file w/f<i>
// through one handle and compares it with its own copy after every change.
func semWriter(v *Volume, i, rounds int, ro []byte) error {
	h, err := v.OpenFile(fmt.Sprintf("w/f%d", i), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("writer %d: OpenFile: expected success, got %v", i, err)
	}
	defer h.Close()
	src, err := v.Open("ro")
	if err != nil {
		return fmt.Errorf("writer %d: Open(ro): expected success, got %v", i, err)
	}
	defer src.Close()
	var model []byte
	for r := 0; r < rounds; r++ {
		off := int64((r * 7919 * (i + 1)) % (300 << 10))
		switch r % 4 {
		case 0, 1:
			p := mdlTestBytes(uint64(r*10+i), 1+(r*4099)%(70<<10))
			if _, err := h.WriteAt(p, off); err != nil {
				return fmt.Errorf("writer %d: WriteAt: expected success, got %v", i, err)
			}
			model = mdlWriteAt(model, off, p)
		case 2:
			n := int64(1 + (r*977)%(200<<10))
			if _, err := CopyRange(src, off, h, off/2, n); err != nil {
				return fmt.Errorf("writer %d: CopyRange from ro: expected success, got %v", i, err)
			}
			model = mdlWriteAt(model, off/2, ro[off:off+n])
		case 3:
			size := int64((r * 31337) % (400 << 10))
			if err := h.Truncate(size); err != nil {
				return fmt.Errorf("writer %d: Truncate: expected success, got %v", i, err)
			}
			model = mdlResize(model, size)
		}
		got := make([]byte, len(model)+1)
		n, err := h.ReadAt(got, 0)
		if err != io.EOF {
			return fmt.Errorf("writer %d round %d: ReadAt of the whole file: expected io.EOF after %d bytes, got (%d, %v)", i, r, len(model), n, err)
		}
		if d := mdlDiff(got[:n], model); d != "" {
			return fmt.Errorf("writer %d round %d: content: %s", i, r, d)
		}
	}
	return nil
}

// TestSemClosed: a removed open directory, a deleted volume and a closed FS.
func TestSemClosed(t *testing.T) {
	st, f, v := semSetup(t)
	semOK(t, "Mkdir", v.Mkdir("d", 0o755))
	semWrite(t, v, "d/f", []byte("f"))
	dh, err := v.Open("d")
	semOK(t, "Open(d)", err)
	semErr(t, "Remove of a non-empty open directory", v.Remove("d"), syscall.ENOTEMPTY)
	semOK(t, "Remove(d/f)", v.Remove("d/f"))
	semOK(t, "Remove of an empty open directory", v.Remove("d"))
	semOK(t, "Commit", f.Commit())
	des, err := dh.ReadDir(-1)
	if err != nil || len(des) != 0 {
		t.Fatalf("ReadDir of a removed open directory: expected no entries, got (%v, %v)", des, err)
	}
	_, err = v.Create("d/x")
	semErr(t, "Create in a removed directory", err, syscall.ENOENT)
	semOK(t, "Close(d)", dh.Close())
	semCheck(t, f)

	// A deleted volume's handle is dead; a new volume of the same name is new.
	semWrite(t, v, "keep", []byte("old"))
	semOK(t, "DeleteVolume", f.DeleteVolume("main"))
	_, err = v.Stat("keep")
	semErr(t, "Stat on a deleted volume", err, syscall.EBADF)
	semErr(t, "Mkdir on a deleted volume", v.Mkdir("x", 0o755), syscall.EBADF)
	v2, err := f.CreateVolume("main")
	semOK(t, "CreateVolume(main) again", err)
	_, err = v2.Stat("keep")
	semErr(t, "Stat(keep) in the new volume", err, syscall.ENOENT)
	_, err = f.CreateVolume("main")
	semErr(t, "CreateVolume of an existing volume", err, syscall.EEXIST)
	_, err = f.CreateVolume("no/slash")
	semErr(t, "CreateVolume with a bad name", err, syscall.EINVAL)
	_, err = f.Volume("nothere")
	semErr(t, "Volume of a missing volume", err, syscall.ENOENT)
	semErr(t, "CloneVolume of a missing volume", f.CloneVolume("nothere", "x"), syscall.ENOENT)
	semErr(t, "CloneVolume onto an existing volume", f.CloneVolume("main", "main"), syscall.EEXIST)

	// After Close everything fails with EBADF; Close again is fine.
	semWrite(t, v2, "f", []byte("data"))
	h, _ := v2.Open("f")
	semOK(t, "Close(FS)", f.Close())
	semOK(t, "Close(FS) again", f.Close())
	semErr(t, "Commit after Close", f.Commit(), syscall.EBADF)
	_, err = f.CreateVolume("x")
	semErr(t, "CreateVolume after Close", err, syscall.EBADF)
	_, err = v2.Stat("f")
	semErr(t, "Stat after Close", err, syscall.EBADF)
	_, err = h.Read(make([]byte, 1))
	semErr(t, "Read of an open file after Close", err, syscall.EBADF)
	_, err = h.Write([]byte("x"))
	semErr(t, "Write of an open file after Close", err, syscall.EBADF)
	// Close committed: the data is there for the next FS.
	f2, err := Open(mdlStore{Store: st}, nil)
	semOK(t, "Open after Close", err)
	v3, err := f2.Volume("main")
	semOK(t, "Volume after Close", err)
	semRead(t, v3, "f", []byte("data"))
	semCheck(t, f2)
}

// TestDotsAndSlashes: "." and ".." cannot be removed or renamed, and a
// trailing slash on something not a directory is ENOTDIR (never following a
// symlink to remove its target).
func TestDotsAndSlashes(t *testing.T) {
	st := mem.New()
	f, _ := Open(st, nil)
	v, _ := f.CreateVolume("main")
	v.Mkdir("d", 0o755)
	v.WriteFile("f", []byte("x"), 0o644)
	v.Symlink("d", "l")
	for _, c := range []struct {
		name  string
		err   error
		errno syscall.Errno
	}{
		{"remove d/.", v.Remove("d/."), syscall.EINVAL},
		{"remove d/..", v.Remove("d/.."), syscall.EINVAL},
		{"rename d/. e", v.Rename("d/.", "e", 0), syscall.EINVAL},
		{"remove f/", v.Remove("f/"), syscall.ENOTDIR},
		{"remove l/", v.Remove("l/"), syscall.ENOTDIR},
	} {
		if Errno(c.err) != c.errno {
			t.Errorf("%s: %v, want %v", c.name, c.err, c.errno)
		}
	}
	if _, err := v.Stat("f/"); Errno(err) != syscall.ENOTDIR {
		t.Errorf("stat f/: %v, want ENOTDIR", err)
	}
	if fi, err := v.Stat("d/"); err != nil || !fi.IsDir() {
		t.Errorf("stat d/: %v", err)
	}
	if _, err := v.Stat("d"); err != nil {
		t.Errorf("d was removed through l/: %v", err)
	}
}
