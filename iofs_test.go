package cowfs

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"slices"
	"syscall"
	"testing"
	"testing/fstest"

	"github.com/cowfs/cowfs/store/mem"
)

// apiBytes returns n pseudo-random bytes determined by seed.
func apiBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 0x636f7766))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// apiFS opens an FS on a fresh memory store with one volume "main".
func apiFS(t *testing.T) (*FS, *Volume) {
	t.Helper()
	f, err := Open(mem.New(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	v, err := f.CreateVolume("main")
	if err != nil {
		t.Fatal(err)
	}
	return f, v
}

func noErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// iofsTree fills v with nested directories, empty files and directories, a
// small (inline) file, a 1 MiB file, a sparse file, a hard link and symlinks,
// and returns the regular files' contents by path and every path.
func iofsTree(t *testing.T, v *Volume) (map[string][]byte, []string) {
	t.Helper()
	noErr(t, v.MkdirAll("a/b/c", 0o755))
	noErr(t, v.Mkdir("empty-dir", 0o700))
	files := map[string][]byte{
		"a/b/c/deep.txt": []byte("deep down\n"),
		"a/b/small":      apiBytes(1, 100),
		"a/empty":        {},
		"big":            apiBytes(2, 1<<20),
		"B-upper":        []byte("sorts before lower case\n"),
	}
	for p, b := range files {
		noErr(t, v.WriteFile(p, b, 0o644))
	}
	// Sparse: data, a hole, data, and a hole up to 256 KiB.
	sparse := make([]byte, 256<<10)
	copy(sparse, apiBytes(3, 5000))
	copy(sparse[100000:], apiBytes(4, 70000))
	fl, err := v.Create("sparse")
	noErr(t, err)
	_, err = fl.WriteAt(sparse[:5000], 0)
	noErr(t, err)
	_, err = fl.WriteAt(sparse[100000:170000], 100000)
	noErr(t, err)
	noErr(t, fl.Truncate(256<<10))
	noErr(t, fl.Close())
	files["sparse"] = sparse
	noErr(t, v.Link("a/b/c/deep.txt", "a/hard"))
	files["a/hard"] = files["a/b/c/deep.txt"]
	noErr(t, v.Symlink("a/b/small", "link"))
	noErr(t, v.Symlink("/a/b", "dirlink"))
	all := []string{"a", "a/b", "a/b/c", "empty-dir", "link", "dirlink"}
	for p := range files {
		all = append(all, p)
	}
	slices.Sort(all)
	return files, all
}

// checkContents compares every file read through fsys with want.
func checkContents(t *testing.T, fsys fs.FS, want map[string][]byte) {
	t.Helper()
	for p, w := range want {
		got, err := fs.ReadFile(fsys, p)
		if err != nil {
			t.Fatalf("ReadFile %s: %v", p, err)
		}
		if !bytes.Equal(got, w) {
			t.Fatalf("ReadFile %s: %d bytes differ from the %d expected", p, len(got), len(w))
		}
	}
}

func TestIOFS(t *testing.T) {
	t.Parallel() // fstest reads every file byte by byte: slow, and independent
	f, v := apiFS(t)
	files, all := iofsTree(t, v)
	if err := fstest.TestFS(v.FS(), all...); err != nil {
		t.Fatal("live volume:", err)
	}
	checkContents(t, v.FS(), files)

	noErr(t, v.Snapshot("s1"))
	s, err := v.OpenSnapshot("s1")
	noErr(t, err)
	if err := fstest.TestFS(s.FS(), all...); err != nil {
		t.Fatal("snapshot:", err)
	}

	// Change the live volume in every way; the snapshot keeps the old tree.
	noErr(t, v.WriteFile("big", apiBytes(5, 1<<19), 0o600))
	noErr(t, v.Remove("a/b/c/deep.txt"))
	noErr(t, v.Rename("a/b/small", "moved", 0))
	noErr(t, v.Remove("link"))
	noErr(t, v.Symlink("moved", "link"))
	noErr(t, v.WriteFile("new", []byte("new file"), 0o644))
	fl, err := v.OpenFile("sparse", os.O_RDWR, 0)
	noErr(t, err)
	_, err = fl.WriteAt([]byte("filled"), 50000)
	noErr(t, err)
	noErr(t, fl.Close())
	noErr(t, f.Commit())
	for _, c := range []struct {
		v    *Volume
		want []string
	}{
		{s, all},
		{v, []string{"a/b/c", "a/hard", "big", "moved", "new", "sparse", "link", "dirlink"}},
	} {
		if err := fstest.TestFS(c.v.FS(), c.want...); err != nil {
			t.Fatalf("%s after the change: %v", c.v.Name(), err)
		}
	}
	checkContents(t, s.FS(), files)
	if _, err := fs.Stat(v.FS(), "a/b/c/deep.txt"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("removed file on the live volume: %v", err)
	}
	noErr(t, v.Symlink("nowhere", "dangling"))
	if _, err := fs.Stat(v.FS(), "dangling"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Stat of a dangling symlink: %v", err)
	}
	if fi, err := fs.Lstat(v.FS(), "dangling"); err != nil || fi.Mode().Type() != fs.ModeSymlink {
		t.Fatalf("Lstat of a dangling symlink: %v, %v", fi, err)
	}
	got, err := fs.ReadFile(v.FS(), "a/hard")
	if err != nil || !bytes.Equal(got, files["a/b/c/deep.txt"]) {
		t.Fatalf("hard link on the live volume: %q, %v", got, err)
	}
}

func TestIOFSErrors(t *testing.T) {
	_, v := apiFS(t)
	iofsTree(t, v)
	fsys := v.FS()
	type call struct {
		op string
		fn func(string) error
	}
	calls := []call{
		{"open", func(p string) error { _, err := fsys.Open(p); return err }},
		{"stat", func(p string) error { _, err := fs.Stat(fsys, p); return err }},
		{"lstat", func(p string) error { _, err := fs.Lstat(fsys, p); return err }},
		{"readdir", func(p string) error { _, err := fs.ReadDir(fsys, p); return err }},
		{"readfile", func(p string) error { _, err := fs.ReadFile(fsys, p); return err }},
		{"readlink", func(p string) error { _, err := fs.ReadLink(fsys, p); return err }},
	}
	check := func(c call, p string, want error, errno syscall.Errno) {
		t.Helper()
		err := c.fn(p)
		var pe *fs.PathError
		if !errors.As(err, &pe) || pe.Path != p {
			t.Fatalf("%s(%q) = %v (%T), want a *fs.PathError about %q", c.op, p, err, err, p)
		}
		if !errors.Is(err, want) {
			t.Fatalf("%s(%q) = %v, want %v", c.op, p, err, want)
		}
		if errno != 0 && Errno(err) != errno {
			t.Fatalf("%s(%q) = %v, errno %v, want %v", c.op, p, err, Errno(err), errno)
		}
	}
	for _, c := range calls {
		for _, p := range []string{"", "/", "/big", "a/", "./a", "a/./b", "a/../a", "a//b", ".."} {
			check(c, p, fs.ErrInvalid, 0)
		}
		for _, p := range []string{"nope", "a/nope", "a/b/nope/deeper"} {
			check(c, p, fs.ErrNotExist, syscall.ENOENT)
		}
		check(c, "big/x", syscall.ENOTDIR, syscall.ENOTDIR)
	}
	check(calls[3], "big", syscall.ENOTDIR, syscall.ENOTDIR) // readdir of a file
	check(calls[4], "a", syscall.EISDIR, syscall.EISDIR)     // readfile of a directory
	check(calls[5], "big", fs.ErrInvalid, syscall.EINVAL)    // readlink of a file
	if target, err := fs.ReadLink(fsys, "dirlink"); err != nil || target != "/a/b" {
		t.Fatalf("ReadLink = %q, %v", target, err)
	}
	if fi, err := fs.Lstat(fsys, "link"); err != nil || fi.Mode()&fs.ModeSymlink == 0 || fi.Name() != "link" {
		t.Fatalf("Lstat(link) = %v, %v", fi, err)
	}
	if fi, err := fs.Stat(fsys, "dirlink"); err != nil || !fi.IsDir() || fi.Name() != "dirlink" {
		t.Fatalf("Stat(dirlink) = %v, %v", fi, err)
	}

	// A snapshot's files cannot be written through it or otherwise.
	noErr(t, v.Snapshot("s"))
	s, err := v.OpenSnapshot("s")
	noErr(t, err)
	if _, err := s.OpenFile("big", os.O_RDWR, 0); !errors.Is(err, fs.ErrPermission) {
		t.Fatalf("writing a snapshot: %v", err)
	}

	// Errors of open files are PathErrors too; io.EOF stays io.EOF.
	fl, err := fsys.Open("a")
	noErr(t, err)
	if _, err := fl.Read(make([]byte, 1)); !errors.As(err, new(*fs.PathError)) || Errno(err) != syscall.EISDIR {
		t.Fatalf("Read of a directory: %v", err)
	}
	noErr(t, fl.Close())
	if err := fl.Close(); !errors.Is(err, fs.ErrClosed) || !errors.As(err, new(*fs.PathError)) {
		t.Fatalf("second Close: %v", err)
	}
	fl, err = fsys.Open("a/empty")
	noErr(t, err)
	if n, err := fl.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("Read at EOF = %d, %v", n, err)
	}
	noErr(t, fl.Close())
}

func TestIOFSFiles(t *testing.T) {
	_, v := apiFS(t)
	files, _ := iofsTree(t, v)
	fsys := v.FS()

	// Random access to the 1 MiB file.
	fl, err := fsys.Open("big")
	noErr(t, err)
	defer fl.Close()
	ra, ok := fl.(io.ReaderAt)
	sk, ok2 := fl.(io.Seeker)
	if !ok || !ok2 {
		t.Fatalf("%T is not an io.ReaderAt and io.Seeker", fl)
	}
	big := files["big"]
	buf := make([]byte, 1000)
	for _, off := range []int64{0, 4095, 65536, 1<<20 - 1000} {
		if n, err := ra.ReadAt(buf, off); n != len(buf) || err != nil || !bytes.Equal(buf, big[off:off+1000]) {
			t.Fatalf("ReadAt %d = %d, %v", off, n, err)
		}
	}
	if n, err := ra.ReadAt(buf, 1<<20-10); n != 10 || err != io.EOF {
		t.Fatalf("ReadAt past the end = %d, %v", n, err)
	}
	if pos, err := sk.Seek(-10, io.SeekEnd); pos != 1<<20-10 || err != nil {
		t.Fatalf("Seek = %d, %v", pos, err)
	}
	if b, err := io.ReadAll(fl); err != nil || !bytes.Equal(b, big[1<<20-10:]) {
		t.Fatalf("read after Seek: %d bytes, %v", len(b), err)
	}
	fi, err := fl.Stat()
	if err != nil || fi.Size() != 1<<20 || fi.Name() != "big" || fi.Mode() != 0o644 {
		t.Fatalf("Stat = %v, %v", fi, err)
	}
	if _, ok := fi.Sys().(*Stat); !ok {
		t.Fatalf("Sys() is %T", fi.Sys())
	}

	// Directories list sorted (bytewise: upper case first), in pieces, and
	// rewind with Seek(0, io.SeekStart).
	d, err := fsys.Open(".")
	noErr(t, err)
	defer d.Close()
	rd, ok := d.(fs.ReadDirFile)
	if !ok {
		t.Fatalf("%T is not an fs.ReadDirFile", d)
	}
	var names []string
	for {
		list, err := rd.ReadDir(2)
		for _, e := range list {
			names = append(names, e.Name())
		}
		if err == io.EOF {
			break
		}
		noErr(t, err)
	}
	want := []string{"B-upper", "a", "big", "dirlink", "empty-dir", "link", "sparse"}
	if !slices.Equal(names, want) {
		t.Fatalf("ReadDir(2) in a loop: %q, want %q", names, want)
	}
	if _, err := d.(io.Seeker).Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	list, err := rd.ReadDir(-1)
	if err != nil || len(list) != len(want) {
		t.Fatalf("ReadDir(-1) after rewind: %d entries, %v", len(list), err)
	}
	if _, err := d.(io.Seeker).Seek(1, io.SeekStart); Errno(err) != syscall.EINVAL {
		t.Fatalf("Seek(1) of a directory: %v", err)
	}
	entries, err := fs.ReadDir(fsys, ".")
	noErr(t, err)
	for i, e := range entries {
		if e.Name() != want[i] {
			t.Fatalf("ReadDir: %d is %q, want %q", i, e.Name(), want[i])
		}
	}
	if entries[5].Type() != fs.ModeSymlink || !entries[4].IsDir() || entries[6].Type() != 0 {
		t.Fatalf("entry types: %v %v %v", entries[5], entries[4], entries[6])
	}

	// The sparse file reads its holes as zeros and tells where data lies.
	sf, err := fsys.Open("sparse")
	noErr(t, err)
	defer sf.Close()
	// Data lies in [0, 5000) and [100000, 170000), reported in whole 4 KiB
	// blocks: 5000 is in a data block; the next data from 8192 on starts
	// with the block holding 100000.
	if pos, err := sf.(io.Seeker).Seek(5000, SeekData); err != nil || pos != 5000 {
		t.Fatalf("SeekData(5000) = %d, %v", pos, err)
	}
	if pos, err := sf.(io.Seeker).Seek(8192, SeekData); err != nil || pos != 100000/BlockSize*BlockSize {
		t.Fatalf("SeekData = %d, %v", pos, err)
	}
}
