package fusefs

import (
	"bufio"
	"bytes"
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Tests that run real tools (coreutils, tar, git, xfs_io) and real system
// calls inside a mount and check the results byte for byte.

// toolRandBytes returns n random bytes.
func toolRandBytes(n int) []byte {
	b := make([]byte, n)
	crand.Read(b)
	return b
}

// toolCmd returns a command to run name with args, set up so that
// starting it cannot deadlock this process, which serves the mount.
//
// Between fork and exec, the child moves descriptors with dup3 onto
// numbers just above the highest one it is given; if such a number is a
// file of the mount open in this process, the child's dup3 closes its copy
// and waits for FLUSH, which this process may not serve while the forking
// thread waits for the exec (vfork) and the runtime waits for that thread
// (see "Deadlocks" in go-fuse's fs package). Standard input at a number
// above 1000 puts those moves out of reach of the files tests open.
func toolCmd(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.Stdin = toolStdin()
	return cmd
}

// toolStdin is /dev/null at a descriptor numbered 1000 or above.
var toolStdin = sync.OnceValue(func() *os.File {
	f, err := os.Open(os.DevNull)
	if err != nil {
		panic(err)
	}
	h, err := toolHigh(f)
	if err != nil {
		panic(err)
	}
	f.Close()
	return h
})

// toolHigh returns a duplicate of f numbered 1000 or above.
func toolHigh(f *os.File) (*os.File, error) {
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 1000)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}

// toolCommand runs name with args (and extra environment variables) and
// returns its combined output; a failure fails the test with the output.
func toolCommand(t testing.TB, env []string, name string, args ...string) string {
	t.Helper()
	cmd := toolCmd(name, args...)
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// toolRun runs name with args; see toolCommand.
func toolRun(t testing.TB, name string, args ...string) string {
	t.Helper()
	return toolCommand(t, nil, name, args...)
}

// toolDiff describes where got differs from want, or returns "".
func toolDiff(got, want []byte) string {
	if bytes.Equal(got, want) {
		return ""
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	g, w := got[i:min(len(got), i+16)], want[i:min(len(want), i+16)]
	return fmt.Sprintf("%d bytes, want %d; first difference at %d: %x, want %x", len(got), len(want), i, g, w)
}

// toolSame fails the test if got is not want.
func toolSame(t testing.TB, what string, got, want []byte) {
	t.Helper()
	if d := toolDiff(got, want); d != "" {
		t.Errorf("%s: %s", what, d)
	}
}

// toolVolRead reads file p of the mounted volume through the Go API: what
// the server holds, whatever the kernel's page cache says.
func toolVolRead(t testing.TB, m *testMount, p string) []byte {
	t.Helper()
	f, err := m.vol.Open(p)
	if err != nil {
		t.Fatalf("server side: %v", err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatalf("server side: read %s: %v", p, err)
	}
	return b
}

// toolReadFile reads a file through the kernel.
func toolReadFile(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// toolWriteFile writes a file through the kernel with exactly mode perm.
func toolWriteFile(t testing.TB, p string, data []byte, perm os.FileMode) {
	t.Helper()
	if err := os.WriteFile(p, data, perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, perm); err != nil { // whatever the umask
		t.Fatal(err)
	}
}

// toolCheckContent checks the content of file name of the mount through
// the kernel and on the server.
func toolCheckContent(t testing.TB, m *testMount, name string, want []byte) {
	t.Helper()
	toolSame(t, name+" through the kernel", toolReadFile(t, filepath.Join(m.dir, name)), want)
	toolSame(t, name+" on the server", toolVolRead(t, m, name), want)
}

// toolEntry is what toolTree records of one entry of a tree.
type toolEntry struct {
	mode     fs.FileMode
	data     []byte // a regular file's content
	target   string // a symlink's target
	ino      uint64
	nlink    uint64
	mtime    int64 // seconds
	uid, gid uint32
}

// toolTree describes every entry under root by its path relative to root.
func toolTree(t testing.TB, root string) map[string]toolEntry {
	t.Helper()
	tree := map[string]toolEntry{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		e := toolEntry{mode: fi.Mode(), ino: st.Ino, nlink: uint64(st.Nlink), mtime: st.Mtim.Sec, uid: st.Uid, gid: st.Gid}
		switch {
		case fi.Mode().IsRegular():
			e.data, err = os.ReadFile(p)
		case fi.Mode()&fs.ModeSymlink != 0:
			e.target, err = os.Readlink(p)
		}
		tree[rel] = e
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

// toolCompareTrees checks that tree b has the entries of tree a with the
// same type and content, and, if full, the same permissions, owners and
// modification times (but for symlinks').
func toolCompareTrees(t testing.TB, a, b map[string]toolEntry, full bool) {
	t.Helper()
	names := func(m map[string]toolEntry) []string {
		var s []string
		for k := range m {
			s = append(s, k)
		}
		sort.Strings(s)
		return s
	}
	if na, nb := names(a), names(b); !slices.Equal(na, nb) {
		t.Fatalf("trees differ: %q, want %q", nb, na)
	}
	for name, ea := range a {
		eb := b[name]
		if full && eb.mode != ea.mode || eb.mode.Type() != ea.mode.Type() {
			t.Errorf("%s: mode %v, want %v", name, eb.mode, ea.mode)
		}
		toolSame(t, name, eb.data, ea.data)
		if eb.target != ea.target {
			t.Errorf("%s: symlink to %q, want %q", name, eb.target, ea.target)
		}
		if full && ea.mode.Type() != fs.ModeSymlink && eb.mtime != ea.mtime {
			t.Errorf("%s: mtime %d, want %d", name, eb.mtime, ea.mtime)
		}
		if full && (eb.uid != ea.uid || eb.gid != ea.gid) {
			t.Errorf("%s: owner %d:%d, want %d:%d", name, eb.uid, eb.gid, ea.uid, ea.gid)
		}
	}
}

// TestToolsCpClone checks that coreutils cp of a file in the mount is a
// clone (no byte through read(2) or write(2)) with the same content, and
// that cp -r copies a tree.
func TestToolsCpClone(t *testing.T) {
	m := mountMem(t)
	const size = 3<<20 + 12345
	data := toolRandBytes(size)
	src, dst := filepath.Join(m.dir, "src"), filepath.Join(m.dir, "dst")
	toolWriteFile(t, src, data, 0o644)

	before := m.srv.Stats()
	toolRun(t, "cp", src, dst)
	after := m.srv.Stats()
	if d := after.ReadBytes - before.ReadBytes; d != 0 {
		t.Errorf("cp read %d bytes through read(2)", d)
	}
	if d := after.WriteBytes - before.WriteBytes; d != 0 {
		t.Errorf("cp wrote %d bytes through write(2)", d)
	}
	if d := after.CopyRangeBytes - before.CopyRangeBytes; d != size {
		t.Errorf("cp shared %d bytes with copy_file_range, want %d", d, size)
	}
	if after.CopyRanges == before.CopyRanges {
		t.Errorf("cp made no copy_file_range request")
	}
	toolCheckContent(t, m, "dst", data)

	// cp -r of a tree with files of several sizes, an empty file and an
	// empty directory.
	files := map[string][]byte{
		"tree/a":              toolRandBytes(100 << 10),
		"tree/empty":          {},
		"tree/small":          []byte("hello\n"),
		"tree/sub/b":          toolRandBytes(1<<20 + 3),
		"tree/sub/deep/c":     toolRandBytes(5000),
		"tree/sub/deep/d.txt": bytes.Repeat([]byte("line\n"), 3000),
	}
	var total int64
	for name, b := range files {
		p := filepath.Join(m.dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		toolWriteFile(t, p, b, 0o644)
		total += int64(len(b))
	}
	if err := os.Mkdir(filepath.Join(m.dir, "tree/sub/emptydir"), 0o755); err != nil {
		t.Fatal(err)
	}
	before = m.srv.Stats()
	toolRun(t, "cp", "-r", filepath.Join(m.dir, "tree"), filepath.Join(m.dir, "copy"))
	after = m.srv.Stats()
	if d := after.ReadBytes - before.ReadBytes; d != 0 {
		t.Errorf("cp -r read %d bytes through read(2)", d)
	}
	if d := after.WriteBytes - before.WriteBytes; d != 0 {
		t.Errorf("cp -r wrote %d bytes through write(2)", d)
	}
	if d := after.CopyRangeBytes - before.CopyRangeBytes; d != total {
		t.Errorf("cp -r shared %d bytes with copy_file_range, want %d", d, total)
	}
	a, b := toolTree(t, filepath.Join(m.dir, "tree")), toolTree(t, filepath.Join(m.dir, "copy"))
	if len(a) != len(files)+4 { // ., sub, sub/deep, sub/emptydir and the files
		t.Fatalf("tree has %d entries, want %d", len(a), len(files)+4)
	}
	toolCompareTrees(t, a, b, false)
	for name, want := range files {
		toolSame(t, name+" copied, on the server", toolVolRead(t, m, "copy/"+strings.TrimPrefix(name, "tree/")), want)
	}
}

// TestToolsTar archives a tree of the mount with tar (files, an empty file,
// directories, symlinks, a hard link, modes, a sparse file, an xattr),
// extracts it back into the mount and compares the trees.
func TestToolsTar(t *testing.T) {
	m := mountMem(t)
	src := filepath.Join(m.dir, "src")
	mk := func(name string, data []byte, perm os.FileMode) {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		toolWriteFile(t, p, data, perm)
	}
	mk("file", toolRandBytes(70000), 0o644)
	mk("empty", nil, 0o644)
	mk("secret", []byte("for root's eyes only\n"), 0o600)
	mk("script.sh", []byte("#!/bin/sh\necho hi\n"), 0o755)
	mk("sub/nested/deep.bin", toolRandBytes(300<<10), 0o640)
	if err := os.Mkdir(filepath.Join(src, "sub/emptydir"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(src, "sub/emptydir"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("sub/nested/deep.bin", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../nowhere", filepath.Join(src, "sub/dangling")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(src, "file"), filepath.Join(src, "sub/hard")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(filepath.Join(src, "file"), "user.color", []byte("blue"), 0); err != nil {
		t.Fatal(err)
	}
	// A sparse file: data at both ends of 8 MiB.
	sp, err := os.Create(filepath.Join(src, "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sp.WriteAt([]byte("head"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := sp.WriteAt([]byte("tail!"), 5<<20); err != nil {
		t.Fatal(err)
	}
	if err := sp.Truncate(8 << 20); err != nil {
		t.Fatal(err)
	}
	sp.Close()
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	for _, name := range []string{"file", "sub/nested", "sparse"} {
		if err := os.Chtimes(filepath.Join(src, name), old, old); err != nil {
			t.Fatal(err)
		}
	}

	want := toolTree(t, src)
	if a, b := want["file"], want["sub/hard"]; a.ino != b.ino || a.nlink != 2 {
		t.Fatalf("hard link in the source: inodes %d and %d, nlink %d", a.ino, b.ino, a.nlink)
	}
	archive := filepath.Join(t.TempDir(), "archive.tar")
	toolRun(t, "tar", "-cf", archive, "-C", src, ".")
	dst := filepath.Join(m.dir, "dst")
	if err := os.Mkdir(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	toolRun(t, "tar", "-xf", archive, "-C", dst)
	got := toolTree(t, dst)
	toolCompareTrees(t, want, got, true)
	if a, b := got["file"], got["sub/hard"]; a.ino != b.ino || a.nlink != 2 {
		t.Errorf("hard link extracted: inodes %d and %d, nlink %d; want one inode with 2 links", a.ino, b.ino, a.nlink)
	}
	if got["file"].ino == want["file"].ino {
		t.Errorf("the extracted file shares inode %d with its source", got["file"].ino)
	}

	// Again with --sparse and --xattrs. tar finds no hole to skip in the
	// mount's sparse file (st_blocks counts holes as data, so that cp takes
	// the copy_file_range path), but the content and the xattr come back.
	archive2 := filepath.Join(t.TempDir(), "sparse.tar")
	toolRun(t, "tar", "--sparse", "--xattrs", "-cf", archive2, "-C", src, ".")
	dst2 := filepath.Join(m.dir, "dst2")
	if err := os.Mkdir(dst2, 0o755); err != nil {
		t.Fatal(err)
	}
	toolRun(t, "tar", "--xattrs", "--xattrs-include=user.*", "-xf", archive2, "-C", dst2)
	toolCompareTrees(t, want, toolTree(t, dst2), true)
	buf := make([]byte, 64)
	if n, err := unix.Getxattr(filepath.Join(dst2, "file"), "user.color", buf); err != nil || string(buf[:n]) != "blue" {
		t.Errorf("xattr extracted: %q, %v; want blue", buf[:max(n, 0)], err)
	}

	// A sparse file archived with --sparse outside the mount: tar extracts
	// it by seeking over the holes, and the mount shows the holes exactly
	// where the archive has them (where the host's file system has them).
	host := filepath.Join(t.TempDir(), "sparse")
	hf, err := os.Create(host)
	if err != nil {
		t.Fatal(err)
	}
	hdata := make([]byte, 8<<20)
	for _, off := range []int{0, 5 << 20} {
		w := toolRandBytes(10000)
		copy(hdata[off:], w)
		if _, err := hf.WriteAt(w, int64(off)); err != nil {
			t.Fatal(err)
		}
	}
	if err := hf.Truncate(8 << 20); err != nil {
		t.Fatal(err)
	}
	hf.Close()
	hostSegs := toolSegments(t, host)
	if len(hostSegs) < 2 {
		t.Logf("the host's file system shows no hole in %s: %v", host, hostSegs)
	}
	archive3 := filepath.Join(t.TempDir(), "host.tar")
	toolRun(t, "tar", "--sparse", "-cf", archive3, "-C", filepath.Dir(host), "sparse")
	toolRun(t, "tar", "-xf", archive3, "-C", dst2)
	toolCheckContent(t, m, "dst2/sparse", hdata)
	if segs := toolSegments(t, filepath.Join(dst2, "sparse")); !slices.Equal(segs, hostSegs) {
		t.Errorf("data of the sparse file extracted in the mount: %v, want %v as archived", segs, hostSegs)
	}
}

// toolSegments walks file p with SEEK_DATA and SEEK_HOLE and returns its
// data segments [start, end).
func toolSegments(t testing.TB, p string) [][2]int64 {
	t.Helper()
	fd, err := unix.Open(p, unix.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	var segs [][2]int64
	for off := int64(0); ; {
		d, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			return segs
		}
		if err != nil {
			t.Fatalf("SEEK_DATA %d: %v", off, err)
		}
		h, err := unix.Seek(fd, d, unix.SEEK_HOLE)
		if err != nil {
			t.Fatalf("SEEK_HOLE %d: %v", d, err)
		}
		if h <= d {
			t.Fatalf("SEEK_HOLE %d: %d", d, h)
		}
		segs = append(segs, [2]int64{d, h})
		off = h
	}
}

// TestToolsGit uses git in the mount: commits on two branches, checkouts,
// fsck, status, gc.
func TestToolsGit(t *testing.T) {
	m := mountMem(t)
	repo := filepath.Join(m.dir, "repo")
	env := []string{"HOME=" + t.TempDir(), "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0"}
	git := func(args ...string) string {
		t.Helper()
		return toolCommand(t, env, "git", append([]string{"-C", repo}, args...)...)
	}
	if err := os.Mkdir(repo, 0o755); err != nil {
		t.Fatal(err)
	}
	git("init", "-q", "-b", "main")
	git("config", "user.name", "cowfs test")
	git("config", "user.email", "test@cowfs.invalid")
	files := map[string][]byte{
		"README.md":  []byte("hello\n"),
		"src/lib.go": []byte("package lib\n\nfunc F() int { return 1 }\n"),
		"data.bin":   toolRandBytes(200 << 10),
		"remove.txt": []byte("goes away on the branch\n"),
	}
	write := func(name string, b []byte) {
		p := filepath.Join(repo, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		toolWriteFile(t, p, b, 0o644)
	}
	for name, b := range files {
		write(name, b)
	}
	git("add", "-A")
	git("commit", "-q", "-m", "first")

	git("checkout", "-q", "-b", "feature")
	feature := map[string][]byte{
		"README.md":  []byte("hello\nfrom the feature branch\n"),
		"src/lib.go": files["src/lib.go"],
		"data.bin":   append(slices.Clone(files["data.bin"][:100<<10]), toolRandBytes(50<<10)...),
		"new.txt":    []byte("new on the branch\n"),
	}
	for _, name := range []string{"README.md", "data.bin", "new.txt"} {
		write(name, feature[name])
	}
	git("rm", "-q", "remove.txt")
	git("add", "-A")
	git("commit", "-q", "-m", "second")

	checkTree := func(branch string, want map[string][]byte, gone ...string) {
		t.Helper()
		for name, b := range want {
			toolSame(t, branch+": "+name, toolReadFile(t, filepath.Join(repo, name)), b)
		}
		for _, name := range gone {
			if _, err := os.Lstat(filepath.Join(repo, name)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s: %s: %v, want it absent", branch, name, err)
			}
		}
		if st := git("status", "--porcelain"); st != "" {
			t.Errorf("%s: git status --porcelain: %q", branch, st)
		}
	}
	git("checkout", "-q", "main")
	checkTree("main", files, "new.txt")
	git("checkout", "-q", "feature")
	checkTree("feature", feature, "remove.txt")
	if log := git("log", "--format=%s", "feature"); log != "second\nfirst\n" {
		t.Errorf("git log: %q", log)
	}
	fsck := func() {
		t.Helper()
		out := git("fsck", "--full", "--strict", "--no-progress")
		for _, bad := range []string{"error", "missing", "broken", "corrupt", "bad"} {
			if strings.Contains(out, bad) {
				t.Errorf("git fsck: %s", out)
			}
		}
	}
	fsck()
	git("gc", "-q")
	fsck()
	git("checkout", "-q", "main")
	checkTree("main after gc", files, "new.txt")
}

// toolXfsIO runs xfs_io commands on file and returns the output. xfs_io
// exits 0 after some failed commands, so callers check the output too.
func toolXfsIO(file string, cmds ...string) (string, error) {
	var args []string
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	out, err := toolCmd("xfs_io", append(args, file)...).CombinedOutput()
	return string(out), err
}

// toolXfsIOQuiet runs xfs_io commands that print nothing when they succeed.
func toolXfsIOQuiet(t testing.TB, file string, cmds ...string) {
	t.Helper()
	if out, err := toolXfsIO(file, cmds...); err != nil || out != "" {
		t.Fatalf("xfs_io %q %s: %v: %s", cmds, file, err, out)
	}
}

// TestToolsXfsIOCopyRange runs xfs_io copy_range at unaligned offsets,
// between files and within one file, and compares the results with a
// model byte for byte.
func TestToolsXfsIOCopyRange(t *testing.T) {
	m := mountMem(t)
	src, dst := filepath.Join(m.dir, "src"), filepath.Join(m.dir, "dst")
	srcData, dstData := toolRandBytes(300000), toolRandBytes(200000)
	toolWriteFile(t, src, srcData, 0o644)
	toolWriteFile(t, dst, dstData, 0o644)
	// copyModel copies n bytes at so of from to do of to as copy_file_range
	// does: no further than the end of from, growing to (with zeros) as
	// needed.
	copyModel := func(to, from []byte, so, do, n int) []byte {
		n = max(0, min(n, len(from)-so))
		if end := do + n; end > len(to) {
			to = append(to, make([]byte, end-len(to))...)
		}
		copy(to[do:do+n], from[so:so+n]) // memmove: correct for overlap
		return to
	}
	// xfsCopy copies from src into to with xfs_io and checks that it went
	// through copy_file_range, moving no data through read or write.
	xfsCopy := func(to string, s, d, l int) {
		t.Helper()
		before := m.srv.Stats()
		toolXfsIOQuiet(t, to, fmt.Sprintf("copy_range -s %d -d %d -l %d %s", s, d, l, src))
		after := m.srv.Stats()
		if after.ReadBytes != before.ReadBytes || after.WriteBytes != before.WriteBytes {
			t.Errorf("copy_range moved data: %d bytes read, %d written",
				after.ReadBytes-before.ReadBytes, after.WriteBytes-before.WriteBytes)
		}
		if d, want := after.CopyRangeBytes-before.CopyRangeBytes, int64(max(0, min(l, len(srcData)-s))); d != want {
			t.Errorf("copy_range shared %d bytes, want %d", d, want)
		}
	}
	for _, c := range []struct{ s, d, l int }{
		{12345, 777, 100000},
		{0, 0, 1},
		{1, 199999, 65537},  // grows dst
		{250000, 3, 100000}, // only 50000 bytes left in src
		{4096, 8192, 4096},
		{299999, 300000, 1}, // past dst's end: a hole in between
		{7, 123456, 131071},
	} {
		xfsCopy(dst, c.s, c.d, c.l)
		dstData = copyModel(dstData, srcData, c.s, c.d, c.l)
		toolCheckContent(t, m, "dst", dstData)
	}
	// Within one file, without overlap, forwards and backwards.
	for _, c := range []struct{ s, d, l int }{
		{1000, 150000, 100000},
		{200000, 10, 90000},
		{3, 299990, 20}, // grows the file
	} {
		xfsCopy(src, c.s, c.d, c.l)
		srcData = copyModel(srcData, slices.Clone(srcData), c.s, c.d, c.l)
		toolCheckContent(t, m, "src", srcData)
	}

	// Overlapping ranges of one file: the kernel refuses them (EINVAL, in
	// generic_copy_file_checks) before the server sees them, and xfs_io
	// says so but exits 0.
	out, err := toolXfsIO(src, fmt.Sprintf("copy_range -s 1000 -d 5000 -l 100000 %s", src))
	if err != nil || !strings.Contains(out, "copy_range: Invalid argument") {
		t.Errorf("overlapping copy_range: %v: %q; want the kernel's EINVAL", err, out)
	}
	f, err := os.OpenFile(src, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	soff, doff := int64(5000), int64(1000)
	if _, err := unix.CopyFileRange(int(f.Fd()), &soff, int(f.Fd()), &doff, 100000, 0); !errors.Is(err, unix.EINVAL) {
		t.Errorf("overlapping copy_file_range: %v, want EINVAL", err)
	}
	toolCheckContent(t, m, "src", srcData)

	// The server's own answer to an overlapping copy is a memmove: call the
	// handler as the kernel would, on a file the kernel has not cached.
	vf, err := m.vol.OpenFile("overlap", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer vf.Close()
	ov := toolRandBytes(150000)
	if _, err := vf.WriteAt(ov, 0); err != nil {
		t.Fatal(err)
	}
	h := &handle{f: vf}
	for _, c := range []struct{ s, d, l int }{{1000, 5000, 100000}, {5000, 1000, 100000}, {12345, 12346, 137000}} {
		k, e := m.srv.m.root.CopyFileRange(context.Background(), h, uint64(c.s), nil, h, uint64(c.d), uint64(c.l), 0)
		if e != 0 || int(k) != c.l {
			t.Fatalf("overlapping CopyFileRange %v: %d, %v", c, k, e)
		}
		ov = copyModel(ov, ov, c.s, c.d, c.l)
		toolSame(t, fmt.Sprintf("overlapping copy %v on the server", c), toolVolRead(t, m, "overlap"), ov)
	}
}

// TestToolsSeekDataHole checks SEEK_DATA and SEEK_HOLE on sparse files, in
// whole 4 KiB blocks, from Go and with xfs_io (TestSeekModelMount checks
// random layouts).
func TestToolsSeekDataHole(t *testing.T) {
	m := mountMem(t)
	p := filepath.Join(m.dir, "sparse")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	head, mid := toolRandBytes(4096), toolRandBytes(10)
	if _, err := f.WriteAt(head, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(mid, 1<<20); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(3 << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	want := make([]byte, 3<<20)
	copy(want, head)
	copy(want[1<<20:], mid)
	toolCheckContent(t, m, "sparse", want)

	fd, err := unix.Open(p, unix.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	const mib = 1 << 20
	for _, c := range []struct {
		off    int64
		whence int
		want   int64 // -1: ENXIO
	}{
		{0, unix.SEEK_DATA, 0},
		{0, unix.SEEK_HOLE, 4096},
		{100, unix.SEEK_DATA, 100},
		{4095, unix.SEEK_DATA, 4095},
		{4095, unix.SEEK_HOLE, 4096},
		{4096, unix.SEEK_DATA, mib},
		{4096, unix.SEEK_HOLE, 4096},
		{500000, unix.SEEK_DATA, mib},
		{mib - 1, unix.SEEK_HOLE, mib - 1},
		{mib, unix.SEEK_DATA, mib},
		{mib, unix.SEEK_HOLE, mib + 4096}, // the block of the 10 bytes is data
		{mib + 9, unix.SEEK_DATA, mib + 9},
		{mib + 9, unix.SEEK_HOLE, mib + 4096},
		{mib + 10, unix.SEEK_DATA, mib + 10},
		{mib + 4095, unix.SEEK_DATA, mib + 4095},
		{mib + 4096, unix.SEEK_DATA, -1},
		{mib + 10, unix.SEEK_HOLE, mib + 4096},
		{mib + 4096, unix.SEEK_HOLE, mib + 4096},
		{2 * mib, unix.SEEK_HOLE, 2 * mib},
		{3*mib - 1, unix.SEEK_DATA, -1},
		{3*mib - 1, unix.SEEK_HOLE, 3*mib - 1},
		{3 * mib, unix.SEEK_DATA, -1},
		{3 * mib, unix.SEEK_HOLE, -1},
		{5 * mib, unix.SEEK_DATA, -1},
		{5 * mib, unix.SEEK_HOLE, -1},
		{-1, unix.SEEK_DATA, -1},
	} {
		name := map[int]string{unix.SEEK_DATA: "SEEK_DATA", unix.SEEK_HOLE: "SEEK_HOLE"}[c.whence]
		got, err := unix.Seek(fd, c.off, c.whence)
		if c.want < 0 {
			if !errors.Is(err, unix.ENXIO) {
				t.Errorf("%s %d: %d, %v; want ENXIO", name, c.off, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%s %d: %d, %v; want %d", name, c.off, got, err, c.want)
			continue
		}
		if pos, err := unix.Seek(fd, 0, io.SeekCurrent); err != nil || pos != c.want {
			t.Errorf("%s %d: file offset now %d, %v; want %d", name, c.off, pos, err, c.want)
		}
	}

	out, err := toolXfsIO(p, "seek -a -r 0")
	if err != nil {
		t.Fatalf("xfs_io seek: %v: %s", err, out)
	}
	var segs []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] { // after "Whence Result"
		segs = append(segs, strings.Join(strings.Fields(line), " "))
	}
	if wantSegs := []string{"DATA 0", "HOLE 4096", "DATA 1048576", "HOLE 1052672"}; !slices.Equal(segs, wantSegs) {
		t.Errorf("xfs_io seek -a -r 0: %q, want %q (output %q)", segs, wantSegs, out)
	}

	// A file that starts with a hole, one that is all hole, an empty one.
	g, err := os.Create(filepath.Join(m.dir, "late"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.WriteAt([]byte("x"), 777777); err != nil {
		t.Fatal(err)
	}
	g.Close()
	// One byte at 777777: its block [774144, 777778) is data, up to the end.
	if segs := toolSegments(t, filepath.Join(m.dir, "late")); !slices.Equal(segs, [][2]int64{{774144, 777778}}) {
		t.Errorf("late: data %v, want [774144 777778]", segs)
	}
	if err := os.Truncate(filepath.Join(m.dir, "late"), 1<<30); err != nil {
		t.Fatal(err)
	}
	if segs := toolSegments(t, filepath.Join(m.dir, "late")); !slices.Equal(segs, [][2]int64{{774144, 778240}}) {
		t.Errorf("late grown to 1 GiB: data %v, want [774144 778240]", segs)
	}
	for _, c := range []struct {
		name string
		size int64
	}{{"allhole", 12345}, {"empty", 0}} {
		p := filepath.Join(m.dir, c.name)
		toolWriteFile(t, p, nil, 0o644)
		if err := os.Truncate(p, c.size); err != nil {
			t.Fatal(err)
		}
		fd, err := unix.Open(p, unix.O_RDONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if off, err := unix.Seek(fd, 0, unix.SEEK_DATA); !errors.Is(err, unix.ENXIO) {
			t.Errorf("%s: SEEK_DATA 0: %d, %v; want ENXIO", c.name, off, err)
		}
		off, err := unix.Seek(fd, 0, unix.SEEK_HOLE)
		if c.size > 0 && (err != nil || off != 0) {
			t.Errorf("%s: SEEK_HOLE 0: %d, %v; want 0", c.name, off, err)
		}
		if c.size == 0 && !errors.Is(err, unix.ENXIO) {
			t.Errorf("%s: SEEK_HOLE 0: %d, %v; want ENXIO", c.name, off, err)
		}
		unix.Close(fd)
	}
}

// toolSparseModel is a file's expected content and which bytes are holes.
type toolSparseModel struct {
	data []byte
	hole []bool
}

// resize grows (with hole) or shrinks the model.
func (s *toolSparseModel) resize(n int) {
	for len(s.data) < n {
		s.data = append(s.data, 0)
		s.hole = append(s.hole, true)
	}
	s.data, s.hole = s.data[:n], s.hole[:n]
}

// punch makes [off, off+n) a hole, within the size.
func (s *toolSparseModel) punch(off, n int) {
	for i := off; i < min(off+n, len(s.data)); i++ {
		s.data[i], s.hole[i] = 0, true
	}
}

// segments returns the data segments [start, end) in whole 4 KiB blocks,
// as SEEK_DATA and SEEK_HOLE report them: a block holding any data byte is
// data, the last block ends at the size.
func (s *toolSparseModel) segments() [][2]int64 {
	const block = 4096
	var segs [][2]int64
	for b := 0; b < len(s.hole); b += block {
		end := min(b+block, len(s.hole))
		if !slices.Contains(s.hole[b:end], false) {
			continue
		}
		if n := len(segs); n > 0 && segs[n-1][1] == int64(b) {
			segs[n-1][1] = int64(end)
		} else {
			segs = append(segs, [2]int64{int64(b), int64(end)})
		}
	}
	return segs
}

// TestToolsFallocate runs xfs_io's fallocate commands in the mount: those
// the kernel passes to the server change the file as a model says, to the
// byte and to the hole; those it refuses fail with EOPNOTSUPP and change
// nothing.
func TestToolsFallocate(t *testing.T) {
	m := mountMem(t)
	p := filepath.Join(m.dir, "f")
	s := &toolSparseModel{data: toolRandBytes(64 << 10), hole: make([]bool, 64<<10)}
	toolWriteFile(t, p, s.data, 0o644)
	check := func(what string) {
		t.Helper()
		toolCheckContent(t, m, "f", s.data)
		if segs, want := toolSegments(t, p), s.segments(); !slices.Equal(segs, want) {
			t.Errorf("after %s: data %v, want %v", what, segs, want)
		}
		if fi, err := os.Stat(p); err != nil || fi.Size() != int64(len(s.data)) {
			t.Errorf("after %s: stat %v, %v; want size %d", what, fi, err, len(s.data))
		}
	}
	check("writing")
	for _, c := range []struct {
		cmd   string
		apply func()
	}{
		{"fpunch 1000 3000", func() { s.punch(1000, 3000) }},
		{"fzero 10000 5000", func() { s.punch(10000, 5000) }},
		{"fzero 60000 10000", func() { s.resize(70000); s.punch(60000, 10000) }}, // grows the file
		{"fzero -k 69000 5000", func() { s.punch(69000, 5000) }},
		{"falloc 80000 5000", func() { s.resize(85000) }},
		{"falloc -k 100000 10", func() {}},
		{"falloc 0 100", func() {}}, // inside the file: data unchanged
		{"fpunch 84000 5000", func() { s.punch(84000, 5000) }},
		{"fpunch 0 1", func() { s.punch(0, 1) }},
		{"pwrite -q -S 0x61 2000 100", func() {
			for i := 2000; i < 2100; i++ {
				s.data[i], s.hole[i] = 'a', false
			}
		}},
		{"fzero 30000 1", func() { s.punch(30000, 1) }},
	} {
		toolXfsIOQuiet(t, p, c.cmd)
		c.apply()
		check(c.cmd)
	}

	// The Linux FUSE client passes only mode 0, KEEP_SIZE, PUNCH_HOLE and
	// ZERO_RANGE to the server; the VFS wants PUNCH_HOLE with KEEP_SIZE.
	// The rest fail with EOPNOTSUPP before the server sees them, though
	// cowfs implements insert and collapse (below).
	fd, err := unix.Open(p, unix.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	for _, c := range []struct {
		cmd  string // xfs_io command, or ""
		mode uint32
	}{
		{"finsert 4096 4096", unix.FALLOC_FL_INSERT_RANGE},
		{"fcollapse 4096 4096", unix.FALLOC_FL_COLLAPSE_RANGE},
		{"funshare 4096 4096", unix.FALLOC_FL_UNSHARE_RANGE},
		{"", unix.FALLOC_FL_PUNCH_HOLE},
	} {
		if c.cmd != "" {
			out, err := toolXfsIO(p, c.cmd)
			if err == nil || strings.TrimSpace(out) != "fallocate: Operation not supported" {
				t.Errorf("xfs_io %s: %v: %q; want exit 1 and EOPNOTSUPP", c.cmd, err, out)
			}
		}
		if err := unix.Fallocate(fd, c.mode, 4096, 4096); !errors.Is(err, unix.EOPNOTSUPP) {
			t.Errorf("fallocate mode %#x: %v, want EOPNOTSUPP", c.mode, err)
		}
		check(fmt.Sprintf("fallocate mode %#x", c.mode))
	}

	// The server does insert and collapse when asked (here without the
	// kernel, on a file it has not cached).
	vf, err := m.vol.OpenFile("direct", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer vf.Close()
	d := toolRandBytes(20000)
	if _, err := vf.WriteAt(d, 0); err != nil {
		t.Fatal(err)
	}
	h := &handle{f: vf}
	if e := m.srv.m.root.Allocate(context.Background(), h, 5000, 3000, unix.FALLOC_FL_INSERT_RANGE); e != 0 {
		t.Fatalf("insert range: %v", e)
	}
	d = slices.Concat(d[:5000], make([]byte, 3000), d[5000:])
	toolSame(t, "insert range on the server", toolVolRead(t, m, "direct"), d)
	if e := m.srv.m.root.Allocate(context.Background(), h, 1001, 2002, unix.FALLOC_FL_COLLAPSE_RANGE); e != 0 {
		t.Fatalf("collapse range: %v", e)
	}
	d = slices.Concat(d[:1001], d[3003:])
	toolSame(t, "collapse range on the server", toolVolRead(t, m, "direct"), d)
}

// TestToolsMmapCoherence checks that mmap and read(2)/write(2) see each
// other's changes, that MAP_PRIVATE changes stay private, and that msync
// and fsync bring a shared mapping's changes to the server. The mappings
// live in a helper process: a page fault on a FUSE file served by the
// faulting process can deadlock the Go runtime.
func TestToolsMmapCoherence(t *testing.T) {
	m := mountMem(t)
	p := filepath.Join(m.dir, "mapped")
	model := filepath.Join(t.TempDir(), "model")
	orig := toolRandBytes(3 * os.Getpagesize())
	toolWriteFile(t, p, orig, 0o644)
	if err := os.WriteFile(model, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := toolCmd(os.Args[0], "-test.run=^TestToolsMmapHelper$", "-test.count=1")
	cmd.Env = append(cmd.Env, "COWFS_MMAP_FILE="+p, "COWFS_MMAP_MODEL="+model)
	inR, stdin, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	highIn, err := toolHigh(inR) // see toolCmd
	inR.Close()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdin = highIn
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Start()
	highIn.Close()
	if err != nil {
		t.Fatal(err)
	}
	var lines, checks []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		label, ok := strings.CutPrefix(sc.Text(), "CHECK ")
		if !ok {
			continue
		}
		// The helper wrote what the file must hold now.
		want, err := os.ReadFile(model)
		if err != nil {
			t.Fatal(err)
		}
		toolSame(t, "server content after "+label, toolVolRead(t, m, "mapped"), want)
		checks = append(checks, label)
		fmt.Fprintln(stdin, "next")
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v\n%s\n%s", err, strings.Join(lines, "\n"), stderr.Bytes())
	}
	if want := []string{"msync", "private write", "fsync", "close"}; !slices.Equal(checks, want) {
		t.Fatalf("helper checkpoints %q, want %q\n%s", checks, want, strings.Join(lines, "\n"))
	}
	want, err := os.ReadFile(model)
	if err != nil {
		t.Fatal(err)
	}
	toolCheckContent(t, m, "mapped", want)
}

// TestToolsMmapHelper is the helper process of TestToolsMmapCoherence.
func TestToolsMmapHelper(t *testing.T) {
	p, modelPath := os.Getenv("COWFS_MMAP_FILE"), os.Getenv("COWFS_MMAP_MODEL")
	if p == "" {
		return // not started as the helper: nothing to test on its own
	}
	model, err := os.ReadFile(modelPath)
	if err != nil {
		t.Fatal(err)
	}
	in := bufio.NewReader(os.Stdin)
	// checkpoint saves the model and waits while the parent compares it
	// with what the server holds.
	checkpoint := func(label string) {
		if err := os.WriteFile(modelPath, model, 0o644); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("CHECK %s\n", label)
		if _, err := in.ReadString('\n'); err != nil {
			t.Fatalf("checkpoint %s: %v", label, err)
		}
	}
	ps, size := os.Getpagesize(), len(model)
	open := func(flag int) *os.File {
		f, err := os.OpenFile(p, flag, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	fa, fb, fc := open(os.O_RDWR), open(os.O_RDONLY), open(os.O_RDWR)
	readAll := func(what string) {
		t.Helper()
		got := make([]byte, size+10)
		n, err := fb.ReadAt(got, 0)
		if err != nil && err != io.EOF {
			t.Fatalf("%s: read: %v", what, err)
		}
		toolSame(t, what+": read(2)", got[:n], model)
	}
	put := func(b []byte, off int, s string) { copy(b[off:], s) }

	shared, err := unix.Mmap(int(fa.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	toolSame(t, "shared mapping at first", shared, model)

	// Stores into a shared mapping show in read(2) of another descriptor
	// at once, and reach the server by msync.
	for _, w := range []struct {
		off int
		s   string
	}{{100, "through the shared mapping"}, {2*ps + 5, "page two"}, {ps - 3, "across a page boundary"}} {
		put(shared, w.off, w.s)
		put(model, w.off, w.s)
	}
	readAll("after stores into the shared mapping")
	if err := unix.Msync(shared, unix.MS_SYNC); err != nil {
		t.Fatal(err)
	}
	checkpoint("msync")

	// write(2) shows in the shared mapping at once.
	if _, err := fc.WriteAt([]byte("through write(2)"), int64(ps+300)); err != nil {
		t.Fatal(err)
	}
	put(model, ps+300, "through write(2)")
	toolSame(t, "shared mapping after write(2)", shared, model)

	// A private mapping's stores stay in it: read(2), the shared mapping
	// and the server never see them, and a page it wrote keeps its content
	// when the file changes there later.
	priv, err := unix.Mmap(int(fa.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	toolSame(t, "private mapping at first", priv, model)
	put(priv, ps+1000, "private store")
	privPage := slices.Clone(model[ps : 2*ps])
	put(privPage, 1000, "private store")
	toolSame(t, "private mapping's page", priv[ps:2*ps], privPage)
	readAll("after a store into the private mapping")
	toolSame(t, "shared mapping after a store into the private one", shared, model)
	checkpoint("private write")
	if _, err := fc.WriteAt([]byte("later write(2)"), int64(ps+2000)); err != nil {
		t.Fatal(err)
	}
	put(model, ps+2000, "later write(2)")
	toolSame(t, "private mapping's page after a later write(2)", priv[ps:2*ps], privPage)
	toolSame(t, "shared mapping after a later write(2)", shared, model)
	readAll("after a later write(2)")
	if err := unix.Munmap(priv); err != nil {
		t.Fatal(err)
	}
	readAll("after unmapping the private mapping")

	// fsync of the mapping's descriptor also brings its stores to the
	// server.
	put(shared, 10, "stored, then fsync")
	put(model, 10, "stored, then fsync")
	if err := fa.Sync(); err != nil {
		t.Fatal(err)
	}
	checkpoint("fsync")

	// The last stores, unmapped without msync, are written back by close.
	put(shared, 3*ps-20, "unmapped and closed")
	put(model, 3*ps-20, "unmapped and closed")
	if err := unix.Munmap(shared); err != nil {
		t.Fatal(err)
	}
	for _, f := range []*os.File{fa, fb, fc} {
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	toolSame(t, "a fresh open after close", got, model)
	checkpoint("close")
}

// TestToolsAppend writes through two O_APPEND descriptors in turn: every
// write lands at the end, whatever the descriptor's offset.
func TestToolsAppend(t *testing.T) {
	m := mountMem(t)
	p := filepath.Join(m.dir, "log")
	a, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := os.OpenFile(p, os.O_RDWR|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var want []byte
	for i := range 60 {
		f, name := a, "a"
		if i%3 == 1 {
			f, name = b, "b"
		}
		rec := []byte(fmt.Sprintf("%s %d %s\n", name, i, strings.Repeat("x", i*97%1500)))
		fd := int(f.Fd())
		if _, err := unix.Seek(fd, 0, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		var n int
		if i%5 == 4 {
			n, err = unix.Pwrite(fd, rec, 3) // Linux appends, whatever the offset
		} else {
			n, err = unix.Write(fd, rec)
		}
		if err != nil || n != len(rec) {
			t.Fatalf("append %d: %d, %v", i, n, err)
		}
		want = append(want, rec...)
		if i%5 != 4 {
			if pos, err := unix.Seek(fd, 0, io.SeekCurrent); err != nil || pos != int64(len(want)) {
				t.Fatalf("append %d: offset %d, %v; want %d", i, pos, err, len(want))
			}
		}
	}
	got := make([]byte, len(want)+1)
	n, err := b.ReadAt(got, 0)
	if err != io.EOF {
		t.Fatalf("read: %d, %v", n, err)
	}
	toolSame(t, "log through an O_APPEND descriptor", got[:n], want)
	toolCheckContent(t, m, "log", want)
}

// TestToolsOTrunc checks that O_TRUNC empties a file for every descriptor
// and leaves no stale byte behind.
func TestToolsOTrunc(t *testing.T) {
	m := mountMem(t)
	p := filepath.Join(m.dir, "t")
	old := toolRandBytes(100 << 10)
	toolWriteFile(t, p, old, 0o644)
	r, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got, err := io.ReadAll(r); err != nil || !bytes.Equal(got, old) {
		t.Fatalf("first read: %v, %s", err, toolDiff(got, old))
	}
	w, err := os.OpenFile(p, os.O_RDWR|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, f := range []*os.File{w, r} {
		if fi, err := f.Stat(); err != nil || fi.Size() != 0 {
			t.Errorf("fstat after O_TRUNC: %v, %v; want size 0", fi, err)
		}
	}
	buf := make([]byte, 100)
	if n, err := r.ReadAt(buf, 0); n != 0 || err != io.EOF {
		t.Errorf("read after O_TRUNC: %d, %v; want EOF", n, err)
	}
	if _, err := w.Write([]byte("short new content")); err != nil {
		t.Fatal(err)
	}
	if n, err := r.ReadAt(buf, 0); string(buf[:n]) != "short new content" || err != io.EOF {
		t.Errorf("read through the other descriptor: %q, %v", buf[:n], err)
	}
	toolCheckContent(t, m, "t", []byte("short new content"))
	if err := os.WriteFile(p, []byte("x"), 0o644); err != nil { // O_CREAT|O_TRUNC
		t.Fatal(err)
	}
	toolCheckContent(t, m, "t", []byte("x"))
	if err := os.Truncate(p, 5000); err != nil {
		t.Fatal(err)
	}
	toolCheckContent(t, m, "t", append([]byte("x"), make([]byte, 4999)...))
	if segs := toolSegments(t, p); !slices.Equal(segs, [][2]int64{{0, 4096}}) {
		t.Errorf("after truncate up: data %v, want [0 4096] (the first block)", segs)
	}
}

// TestToolsOpenUnlinked uses a file through its descriptor after its name
// is removed, and checks that closing it releases its data in the store.
func TestToolsOpenUnlinked(t *testing.T) {
	m := mountMem(t)
	usage := func() int64 {
		t.Helper()
		u, err := m.fsys.Store().Usage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return u.Bytes
	}
	if err := m.fsys.Commit(); err != nil {
		t.Fatal(err)
	}
	base := usage()
	p := filepath.Join(m.dir, "doomed")
	data := toolRandBytes(2<<20 + 77)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil { // commits
		t.Fatal(err)
	}
	f.Close()
	if u := usage(); u < base+int64(len(data)) {
		t.Fatalf("store holds %d bytes after committing %d (%d before)", u, len(data), base)
	}

	f, err = os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stat after unlink: %v", err)
	}
	ents, err := os.ReadDir(m.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() == "doomed" {
			t.Errorf("listing after unlink shows doomed")
		}
	}
	readBack := func(what string) {
		t.Helper()
		got := make([]byte, len(data)+1)
		n, err := f.ReadAt(got, 0)
		if err != io.EOF {
			t.Fatalf("%s: read %d, %v", what, n, err)
		}
		toolSame(t, what, got[:n], data)
	}
	readBack("read after unlink")
	if _, err := f.WriteAt([]byte("patched"), 1000); err != nil {
		t.Fatal(err)
	}
	copy(data[1000:], "patched")
	if err := f.Truncate(int64(len(data) + 5000)); err != nil {
		t.Fatal(err)
	}
	data = append(data, make([]byte, 5000)...)
	readBack("read after write and ftruncate")
	if err := f.Chmod(0o600); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode != unix.S_IFREG|0o600 || st.Size != int64(len(data)) || st.Nlink != 0 {
		t.Errorf("fstat after unlink: mode %o, size %d, nlink %d; want %o, %d, 0", st.Mode, st.Size, st.Nlink, unix.S_IFREG|0o600, len(data))
	}
	if err := f.Sync(); err != nil { // commits: the open file's data stays
		t.Fatal(err)
	}
	if u := usage(); u < base+int64(len(data))-5000 {
		t.Errorf("store holds %d bytes while the unlinked file is open (%d before it)", u, base)
	}
	readBack("read after fsync")
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	// The kernel sends release after close returns: wait for it.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if err := m.fsys.Commit(); err != nil {
			t.Fatal(err)
		}
		u := usage()
		if u < base+16<<10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("store holds %d bytes after the unlinked file was closed, %d before it was written", u, base)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// toolRunAs runs a command as uid:gid and returns its combined output.
func toolRunAs(uid, gid uint32, name string, args ...string) (string, error) {
	cmd := toolCmd(name, args...)
	cmd.Env = []string{"LC_ALL=C", "PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestToolsStatfsAndPermissions checks statfs and that the kernel enforces
// the stored modes and owners for another user, whose new files are its
// own.
func TestToolsStatfsAndPermissions(t *testing.T) {
	m := mountMem(t)
	var s unix.Statfs_t
	if err := unix.Statfs(m.dir, &s); err != nil {
		t.Fatal(err)
	}
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		t.Fatal(err)
	}
	if s.Type != 0x65735546 { // FUSE_SUPER_MAGIC
		t.Errorf("statfs type %#x, want FUSE's", s.Type)
	}
	if s.Blocks == 0 || s.Bavail == 0 || s.Bfree < s.Bavail || s.Bsize != 4096 || s.Namelen != 255 {
		t.Errorf("statfs: blocks %d, bfree %d, bavail %d, bsize %d, namelen %d", s.Blocks, s.Bfree, s.Bavail, s.Bsize, s.Namelen)
	}
	if want := uint64(si.Totalram) * uint64(si.Unit) / 4096; s.Blocks != want { // an in-memory store reports the machine's memory
		t.Errorf("statfs: %d blocks, want %d (the machine's memory)", s.Blocks, want)
	}

	const nobody = 65534
	// Let nobody reach the mount point (the test's temporary directory is
	// 0700).
	if err := os.Chmod(filepath.Dir(m.dir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(m.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	public, secret := filepath.Join(m.dir, "public"), filepath.Join(m.dir, "secret")
	toolWriteFile(t, public, []byte("anyone may read this\n"), 0o644)
	toolWriteFile(t, secret, []byte("root only\n"), 0o600)
	if out, err := toolRunAs(nobody, nobody, "cat", public); err != nil || out != "anyone may read this\n" {
		t.Errorf("nobody: cat public: %v: %q", err, out)
	}
	if out, err := toolRunAs(nobody, nobody, "cat", secret); err == nil || !strings.Contains(out, "Permission denied") {
		t.Errorf("nobody: cat of a 0600 root file: %v: %q; want Permission denied", err, out)
	}
	if out, err := toolRunAs(nobody, nobody, "sh", "-c", "echo x >> "+public); err == nil || !strings.Contains(out, "Permission denied") {
		t.Errorf("nobody: append to a 0644 root file: %v: %q; want Permission denied", err, out)
	}
	if out, err := toolRunAs(nobody, nobody, "touch", filepath.Join(m.dir, "mine")); err == nil || !strings.Contains(out, "Permission denied") {
		t.Errorf("nobody: touch in a 0755 root directory: %v: %q; want Permission denied", err, out)
	}
	toolCheckContent(t, m, "public", []byte("anyone may read this\n"))

	open := filepath.Join(m.dir, "open")
	if err := os.Mkdir(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	for _, c := range [][]string{
		{"touch", filepath.Join(open, "new")},
		{"mkdir", filepath.Join(open, "newdir")},
		{"ln", "-s", "new", filepath.Join(open, "newlink")},
	} {
		if out, err := toolRunAs(nobody, nobody, c[0], c[1:]...); err != nil {
			t.Fatalf("nobody: %q: %v: %s", c, err, out)
		}
		var st unix.Stat_t
		if err := unix.Lstat(c[len(c)-1], &st); err != nil {
			t.Fatal(err)
		}
		if st.Uid != nobody || st.Gid != nobody {
			t.Errorf("%s made by nobody belongs to %d:%d", c[len(c)-1], st.Uid, st.Gid)
		}
	}
	// The sticky bit keeps nobody from removing root's file, not its own.
	toolWriteFile(t, filepath.Join(open, "roots"), []byte("root's"), 0o666)
	if out, err := toolRunAs(nobody, nobody, "rm", "-f", filepath.Join(open, "roots")); err == nil || !strings.Contains(out, "Operation not permitted") {
		t.Errorf("nobody: rm of root's file in a sticky directory: %v: %q; want EPERM", err, out)
	}
	if out, err := toolRunAs(nobody, nobody, "rm", filepath.Join(open, "new")); err != nil {
		t.Errorf("nobody: rm of its own file: %v: %s", err, out)
	}
	if out, err := toolRunAs(nobody, nobody, "sh", "-c", "echo changed > "+filepath.Join(open, "roots")); err != nil {
		t.Errorf("nobody: write to a 0666 file: %v: %s", err, out)
	}
	toolCheckContent(t, m, "open/roots", []byte("changed\n"))
	if out, err := toolRunAs(nobody, nobody, "chmod", "0777", secret); err == nil || !strings.Contains(out, "Operation not permitted") {
		t.Errorf("nobody: chmod of root's file: %v: %q; want EPERM", err, out)
	}
	fi, err := os.Stat(secret)
	if err != nil || fi.Mode() != 0o600 {
		t.Errorf("secret: %v, %v; want mode 0600", fi, err)
	}
}
