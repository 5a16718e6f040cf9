package main

import (
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/cowfs/cowfs/internal/fusetest"
)

// TestMountFallocateSpace mounts a local store kept on a 32 MiB tmpfs with
// a real `cowfs mount`, so that the free space statfs reports is small and
// exact: fallocate(2) in the mount of more than that fails with ENOSPC and
// leaves size and content as they were (plain and keep-size modes); within
// it, it succeeds, the range reads as zeros, and statfs of the mount, the
// same as the tmpfs's, shows nothing reserved.
func TestMountFallocateSpace(t *testing.T) {
	fusetest.Require(t)
	disk, mnt := fusetest.Tmpfs(t, "size=32m"), t.TempDir()
	startMount(t, filepath.Join(disk, "store"), mnt)
	avail := func(dir string) (int64, uint64) {
		t.Helper()
		var s unix.Statfs_t
		if err := unix.Statfs(dir, &s); err != nil {
			t.Fatal(err)
		}
		return int64(s.Bavail) * s.Frsize, s.Blocks * uint64(s.Frsize)
	}
	const dataSize = 2 << 20
	data := make([]byte, dataSize)
	rand.Read(data)
	p := filepath.Join(mnt, "data")
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil { // commits: the data is on the disk
		t.Fatal(err)
	}
	free, total := avail(mnt)
	if diskFree, diskTotal := avail(disk); diskTotal != total || diskFree != free {
		t.Fatalf("statfs of the mount: %d of %d bytes free; of the store's disk: %d of %d", free, total, diskFree, diskTotal)
	}
	if total != 32<<20 || free < 16<<20 || free > 30<<20 {
		t.Fatalf("statfs of the mount: %d of %d bytes free", free, total)
	}
	unchanged := func(what string) {
		t.Helper()
		var st unix.Stat_t
		if err := unix.Fstat(int(f.Fd()), &st); err != nil || st.Size != dataSize {
			t.Fatalf("%s: size %d, %v; want %d", what, st.Size, err, dataSize)
		}
		got := make([]byte, dataSize)
		if _, err := f.ReadAt(got, 0); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s: the data changed (%v)", what, err)
		}
	}
	const margin = 1 << 20 // more than a background commit writes
	fd := int(f.Fd())
	if err := unix.Fallocate(fd, 0, 0, dataSize+free+margin); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("fallocate past the free space: %v, want ENOSPC", err)
	}
	unchanged("plain fallocate refused")
	if err := unix.Fallocate(fd, unix.FALLOC_FL_KEEP_SIZE, dataSize, free+margin); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("fallocate with keep size past the free space: %v, want ENOSPC", err)
	}
	unchanged("keep-size fallocate refused")
	// Within the free space (the range is longer: the data needs none).
	size := int64(dataSize) + free - margin
	if err := unix.Fallocate(fd, 0, 0, size); err != nil {
		t.Fatalf("fallocate within the free space: %v", err)
	}
	if err := unix.Fallocate(fd, unix.FALLOC_FL_KEEP_SIZE, size, margin/2); err != nil {
		t.Fatalf("fallocate with keep size within the free space: %v", err)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Size() != size {
		t.Fatalf("after fallocate: %v, %v; want size %d", fi, err, size)
	}
	tail := make([]byte, 1<<20)
	if _, err := f.ReadAt(tail, size-int64(len(tail))); err != nil || !bytes.Equal(tail, make([]byte, len(tail))) {
		t.Errorf("the allocated range does not read as zeros (%v)", err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	after, _ := avail(mnt)
	if diskAfter, _ := avail(disk); diskAfter != after || free-after > margin/2 || after > free {
		t.Errorf("free space after fallocate and a commit: %d in the mount, %d on the disk; was %d (nothing is reserved)", after, diskAfter, free)
	}
}
