package fusefs

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cowfs/cowfs/ctl/ctlclient"
	"github.com/cowfs/cowfs/internal/control"
	"golang.org/x/sys/unix"
)

// copyRange calls copy_file_range until n bytes are copied and returns the
// byte count of each call.
func copyRange(t *testing.T, src *os.File, soff int64, dst *os.File, doff int64, n int64) []int {
	t.Helper()
	var calls []int
	for n > 0 {
		k, err := unix.CopyFileRange(int(src.Fd()), &soff, int(dst.Fd()), &doff, int(n), 0)
		if err != nil {
			t.Fatalf("copy_file_range at %d: %v", soff, err)
		}
		if k == 0 {
			t.Fatalf("copy_file_range at %d: no progress with %d bytes left", soff, n)
		}
		calls = append(calls, k)
		n -= int64(k)
	}
	return calls
}

// sameContent compares two files of the volume through the Go API, a MiB
// at a time.
func sameContent(t *testing.T, m *testMount, a, b string) {
	t.Helper()
	fa, err := m.vol.Open(a)
	if err != nil {
		t.Fatal(err)
	}
	defer fa.Close()
	fb, err := m.vol.Open(b)
	if err != nil {
		t.Fatal(err)
	}
	defer fb.Close()
	ba, bb := make([]byte, 1<<20), make([]byte, 1<<20)
	for off := int64(0); ; off += int64(len(ba)) {
		na, ea := fa.ReadAt(ba, off)
		nb, eb := fb.ReadAt(bb, off)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			t.Fatalf("%s and %s differ in the MiB at %d", a, b, off)
		}
		if errors.Is(ea, io.EOF) && errors.Is(eb, io.EOF) {
			return
		}
		if ea != nil || eb != nil {
			t.Fatalf("read at %d: %v, %v", off, ea, eb)
		}
	}
}

// TestCpGiBMovesNoData proves that coreutils cp of a 1 GiB file in the
// mount shares the data: no byte goes through read(2) or write(2).
func TestCpGiBMovesNoData(t *testing.T) {
	m := mountMem(t)
	if testing.Short() {
		t.Skip("builds a 1 GiB file")
	}
	src := filepath.Join(m.dir, "big")
	f, err := os.Create(src)
	if err != nil {
		t.Fatal(err)
	}
	seed := make([]byte, 1<<20)
	rand.Read(seed)
	if _, err := f.Write(seed); err != nil {
		t.Fatal(err)
	}
	// Double the file with copy_file_range until it holds 1 GiB.
	for size := int64(1 << 20); size < 1<<30; size *= 2 {
		copyRange(t, f, 0, f, size, size)
	}
	f.Close()
	before := m.srv.Stats()
	out, err := exec.Command("cp", src, filepath.Join(m.dir, "copy")).CombinedOutput()
	if err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	after := m.srv.Stats()
	if d := after.ReadBytes - before.ReadBytes; d != 0 {
		t.Errorf("cp read %d bytes through read(2)", d)
	}
	if d := after.WriteBytes - before.WriteBytes; d != 0 {
		t.Errorf("cp wrote %d bytes through write(2)", d)
	}
	if d := after.CopyRangeBytes - before.CopyRangeBytes; d != 1<<30 {
		t.Errorf("cp shared %d bytes with copy_file_range, want %d", d, 1<<30)
	}
	fi, err := os.Stat(filepath.Join(m.dir, "copy"))
	if err != nil || fi.Size() != 1<<30 {
		t.Fatalf("copy: %v, size %v", err, fi)
	}
	sameContent(t, m, "big", "copy")
}

// TestCopyRangeClamped checks that one copy_file_range request copies less
// than 4 GiB and says so with a short count, and that looping finishes the
// copy exactly.
func TestCopyRangeClamped(t *testing.T) {
	m := mountMem(t)
	const size = 5 << 30 // sparse: data only at both ends
	src, err := os.Create(filepath.Join(m.dir, "src"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	head, tail := []byte("head of the file"), []byte("tail of the file")
	if _, err := src.WriteAt(head, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := src.WriteAt(tail, size-int64(len(tail))); err != nil {
		t.Fatal(err)
	}
	dst, err := os.Create(filepath.Join(m.dir, "dst"))
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	calls := copyRange(t, src, 0, dst, 1, size)
	if len(calls) < 2 {
		t.Fatalf("one call copied %d bytes; a reply cannot count 4 GiB or more", calls[0])
	}
	for _, k := range calls {
		if k >= 1<<32 {
			t.Errorf("a call copied %d bytes, not below 4 GiB", k)
		}
	}
	got := make([]byte, len(head))
	if _, err := dst.ReadAt(got, 4); err != nil || !bytes.Equal(got, head) {
		t.Errorf("head: %q, %v", got, err)
	}
	if _, err := dst.ReadAt(got[:len(tail)], size+1-int64(len(tail))); err != nil || !bytes.Equal(got[:len(tail)], tail) {
		t.Errorf("tail: %q, %v", got, err)
	}
	if fi, _ := dst.Stat(); fi.Size() != size+1 {
		t.Errorf("size %d, want %d", fi.Size(), size+1)
	}

	// The handler itself clamps, whatever the kernel asks.
	n := m.srv.m.root
	sf, err := m.vol.Open("src")
	if err != nil {
		t.Fatal(err)
	}
	defer sf.Close()
	df, err := m.vol.OpenFile("dst", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer df.Close()
	k, e := n.CopyFileRange(context.Background(), &handle{f: sf}, 0, nil, &handle{f: df}, 0, size, 0)
	if e != 0 || k != maxCopy {
		t.Errorf("CopyFileRange of 5 GiB: %d, %v; want %d", k, e, maxCopy)
	}
}

// ctlExec runs one control command through the mount's ctl file.
func ctlExec(t *testing.T, m *testMount, args ...string) string {
	t.Helper()
	reply, err := ctlclient.Mount{Root: m.dir}.Exec(args...)
	if err != nil {
		t.Fatalf("ctl %q: %v", args, err)
	}
	return reply
}

// TestCtlInvalidatesKernelCache checks that a file changed by a control
// command (not through the kernel) shows the new content at once, though
// the kernel caches pages and attributes.
func TestCtlInvalidatesKernelCache(t *testing.T) {
	m := mountMem(t)
	a, b := filepath.Join(m.dir, "a"), filepath.Join(m.dir, "b")
	if err := os.WriteFile(a, []byte("AAAAAAAAAAAAAAAA"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(b, []byte("bbbb"), 0o644); err != nil {
		t.Fatal(err)
	}
	fb, err := os.Open(b) // keeps b's pages cached
	if err != nil {
		t.Fatal(err)
	}
	defer fb.Close()
	if got, _ := io.ReadAll(fb); string(got) != "bbbb" {
		t.Fatalf("b: %q", got)
	}
	if reply := ctlExec(t, m, "copyrange", "a", "2", "b", "2", "6"); strings.TrimSpace(reply) != "6" {
		t.Errorf("copyrange reply %q, want 6", reply)
	}
	got, err := os.ReadFile(b)
	if err != nil || string(got) != "bbAAAAAA" {
		t.Errorf("b after copyrange: %q, %v; want bbAAAAAA", got, err)
	}
	ctlExec(t, m, "clone", "a", "dir-clone")
	if got, err := os.ReadFile(filepath.Join(m.dir, "dir-clone")); err != nil || string(got) != "AAAAAAAAAAAAAAAA" {
		t.Errorf("clone: %q, %v", got, err)
	}
}

// TestSnapshotsDirectory checks .cowfs/snapshots: a snapshot made through
// ctl shows the volume as it was, refuses writes, and goes away when
// deleted; a new snapshot of the same name shows the newer content.
func TestSnapshotsDirectory(t *testing.T) {
	m := mountMem(t)
	a := filepath.Join(m.dir, "a")
	if err := os.WriteFile(a, []byte("one"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctlExec(t, m, "snapshot", "create", "s")
	if err := os.WriteFile(a, []byte("two"), 0o644); err != nil {
		t.Fatal(err)
	}
	snapA := filepath.Join(m.dir, ".cowfs", "snapshots", "s", "a")
	if got, err := os.ReadFile(snapA); err != nil || string(got) != "one" {
		t.Errorf("snapshot: %q, %v", got, err)
	}
	if err := os.WriteFile(snapA, []byte("x"), 0o644); !errors.Is(err, syscall.EROFS) {
		t.Errorf("write to a snapshot: %v, want EROFS", err)
	}
	var sa, sb syscall.Stat_t
	if err := syscall.Stat(a, &sa); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Stat(snapA, &sb); err != nil {
		t.Fatal(err)
	}
	if sa.Ino == sb.Ino {
		t.Errorf("a file and its snapshot share inode number %d in one mount", sa.Ino)
	}
	ents, err := os.ReadDir(m.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() == control.DirName {
			t.Errorf("the root's listing shows %s", control.DirName)
		}
	}
	ctlExec(t, m, "snapshot", "delete", "s")
	if _, err := os.Stat(snapA); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("deleted snapshot: %v", err)
	}
	ctlExec(t, m, "snapshot", "create", "s")
	if got, err := os.ReadFile(snapA); err != nil || string(got) != "two" {
		t.Errorf("new snapshot of the same name: %q, %v", got, err)
	}
	if err := os.Mkdir(filepath.Join(m.dir, control.DirName), 0o755); !errors.Is(err, os.ErrExist) {
		t.Errorf("mkdir .cowfs: %v, want EEXIST", err)
	}
}

// TestTmpfileRefused checks that O_TMPFILE fails with a clear EOPNOTSUPP.
func TestTmpfileRefused(t *testing.T) {
	m := mountMem(t)
	_, err := unix.Open(m.dir, unix.O_TMPFILE|unix.O_RDWR, 0o600)
	if !errors.Is(err, unix.EOPNOTSUPP) {
		t.Errorf("O_TMPFILE: %v, want EOPNOTSUPP", err)
	}
}

// TestSnapshotDeleteAfterClose reads a snapshot's file and deletes the
// snapshot at once, again and again: the kernel releases the closed file
// only after close(2) returns, and the delete must not fail with EBUSY for
// a file nobody has open any more.
func TestSnapshotDeleteAfterClose(t *testing.T) {
	m := mountMem(t)
	if err := os.WriteFile(filepath.Join(m.dir, "a"), []byte("content"), 0o644); err != nil {
		t.Fatal(err)
	}
	for range 300 {
		ctlExec(t, m, "snapshot", "create", "s")
		if got, err := os.ReadFile(filepath.Join(m.dir, ".cowfs", "snapshots", "s", "a")); err != nil || string(got) != "content" {
			t.Fatalf("snapshot file: %q, %v", got, err)
		}
		ctlExec(t, m, "snapshot", "delete", "s")
	}
}
