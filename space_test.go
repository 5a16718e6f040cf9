package cowfs

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/cowfs/cowfs/internal/fusetest"
	"github.com/cowfs/cowfs/store/local"
	"github.com/cowfs/cowfs/store/mem"
)

// TestFallocateMemoryStore: on an in-memory store, whose free space is the
// machine's free memory, allocating an exabyte fails with ENOSPC in every
// allocating mode and leaves the file as it was; a mebibyte is allocated.
func TestFallocateMemoryStore(t *testing.T) {
	f, err := Open(mem.New(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v, _ := f.CreateVolume("main")
	if err := v.WriteFile("f", []byte("some data"), 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := v.OpenFile("f", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for _, mode := range []uint32{0, FallocKeepSize, FallocZeroRange, FallocZeroRange | FallocKeepSize} {
		if err := h.Fallocate(mode, 0, 1<<60); Errno(err) != syscall.ENOSPC {
			t.Errorf("Fallocate(%#x) of 1 EiB: %v, want ENOSPC", mode, err)
		}
		if fi, err := h.Stat(); err != nil || fi.Size() != 9 {
			t.Fatalf("after Fallocate(%#x) of 1 EiB: size %d, %v; want 9", mode, fi.Size(), err)
		}
	}
	if got, err := v.ReadFile("f"); err != nil || string(got) != "some data" {
		t.Errorf("after the refused fallocates: %q, %v", got, err)
	}
	if err := h.Fallocate(0, 0, 1<<20); err != nil {
		t.Fatalf("Fallocate of 1 MiB: %v", err)
	}
	if fi, _ := h.Stat(); fi.Size() != 1<<20 {
		t.Errorf("size %d after allocating 1 MiB", fi.Size())
	}
	// Punching and collapsing allocate nothing: no limit.
	if err := h.Fallocate(FallocPunchHole|FallocKeepSize, 0, 1<<60); err != nil {
		t.Errorf("punch hole of 1 EiB: %v", err)
	}
	mustCheck(t, f)
}

// TestFallocateLocalStore runs a local store on a 16 MiB tmpfs, so that the
// free space is small and exact: a fallocate whose range holds more bytes
// without data (holes, and past the end of file) than the disk has free
// fails with ENOSPC and changes nothing, in the plain, keep-size and
// zero-range modes; one whose range is longer than the free space but
// mostly data succeeds; none reserves space.
func TestFallocateLocalStore(t *testing.T) {
	mnt := fusetest.Tmpfs(t, "size=16m")
	st, err := local.Open(filepath.Join(mnt, "store"), &local.Options{NoAutoCompact: true})
	if err != nil {
		t.Fatal(err)
	}
	f, err := Open(st, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v, _ := f.CreateVolume("main")
	const dataSize = 2 << 20
	data := randBytes(7, dataSize)
	if err := v.WriteFile("data", data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	freeSpace := func() int64 {
		t.Helper()
		space, err := st.StatFS(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		n := space.Avail()
		var s syscall.Statfs_t
		if err := syscall.Statfs(mnt, &s); err != nil {
			t.Fatal(err)
		}
		if want := int64(s.Bavail) * s.Frsize; n != want {
			t.Fatalf("StatFS says %d bytes available, but statfs of the disk says %d", n, want)
		}
		return n
	}
	free := freeSpace()
	if free < 8<<20 || free > 14<<20 {
		t.Fatalf("free space %d on a 16 MiB tmpfs holding 2 MiB", free)
	}
	h, err := v.OpenFile("data", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	unchanged := func(what string, size int64) {
		t.Helper()
		fi, err := h.Stat()
		if err != nil || fi.Size() != size {
			t.Fatalf("%s: size %d, %v; want %d", what, fi.Size(), err, size)
		}
		got := make([]byte, dataSize)
		if _, err := h.ReadAt(got, 0); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s: the data changed (%v)", what, err)
		}
	}
	const margin = 256 << 10
	for _, c := range []struct {
		what      string
		mode      uint32
		off, n    int64
		wantSpace bool
	}{
		{"past the end, more than free", 0, 0, dataSize + free + margin, false},
		{"keep size, past the end, more than free", FallocKeepSize, dataSize, free + margin, false},
		{"zero range over data and past the end, more than free", FallocZeroRange, dataSize / 2, dataSize/2 + free + margin, false},
		{"zero range, keep size, more than free", FallocZeroRange | FallocKeepSize, 0, dataSize + free + margin, false},
	} {
		if err := h.Fallocate(c.mode, c.off, c.n); Errno(err) != syscall.ENOSPC {
			t.Errorf("%s: %v, want ENOSPC", c.what, err)
		}
		unchanged(c.what, dataSize)
	}
	// Longer than the free space, but the data needs none: allowed.
	size := dataSize + free - margin
	if err := h.Fallocate(0, 0, size); err != nil {
		t.Fatalf("fallocate of data and less than the free space past it: %v", err)
	}
	fi, _ := h.Stat()
	if fi.Size() != size {
		t.Errorf("size %d after fallocate, want %d", fi.Size(), size)
	}
	tail := make([]byte, 64<<10)
	if _, err := h.ReadAt(tail, size-int64(len(tail))); err != nil || !bytes.Equal(tail, make([]byte, len(tail))) {
		t.Errorf("the allocated range does not read as zeros (%v)", err)
	}
	if got := freeSpace(); got != free {
		t.Errorf("free space %d after fallocate, was %d: nothing is reserved", got, free)
	}
	// A hole inside the file counts: a few bytes written past the end,
	// then the whole file and a little more allocated with keep size.
	if _, err := h.WriteAt([]byte("end"), size); err != nil {
		t.Fatal(err)
	}
	size += 3
	if err := h.Fallocate(FallocKeepSize, 0, size+2*margin); Errno(err) != syscall.ENOSPC {
		t.Errorf("keep size over a hole and past the end, more than free: %v, want ENOSPC", err)
	}
	if err := h.Fallocate(FallocKeepSize, 0, size+margin/2); err != nil {
		t.Errorf("keep size over a hole and past the end, less than free: %v", err)
	}
	unchanged("keep size", size)
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	if used := free - freeSpace(); used > 256<<10 {
		t.Errorf("committing the allocated file used %d bytes of the disk", used)
	}
	mustCheck(t, f)
}
