package cowfs

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/cowfs/cowfs/store/local"
)

// TestFullDisk runs a local store on an 8 MiB tmpfs and writes through the
// Go API until the disk is full: the failing call reports ENOSPC, committed
// files stay readable, the checker is clean once space is freed, deleting
// gives space back, and writes work again.
func TestFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("TestFullDisk needs root to mount a small tmpfs, and CI=true forbids skipping it")
		}
		t.Skip("needs root to mount a small tmpfs")
	}
	mnt := t.TempDir()
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=8m"); err != nil {
		t.Fatalf("mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(mnt, 0) })
	ballast := filepath.Join(mnt, "ballast")
	if err := os.WriteFile(ballast, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := local.Open(filepath.Join(mnt, "store"), &local.Options{SegmentSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	f, err := Open(st, &Options{FlushBytes: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v, _ := f.CreateVolume("main")
	keep := randBytes(30, 500<<10)
	if err := v.WriteFile("keep", keep, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	// Fill the disk: files of 1 MiB, each synced.
	var full error
	var last string
	for i := 0; i < 20 && full == nil; i++ {
		last = "fill" + strconv.Itoa(i)
		full = v.WriteFile(last, randBytes(uint64(100+i), 1<<20), 0o644)
		if full == nil {
			full = f.Commit()
		}
	}
	if Errno(full) != syscall.ENOSPC {
		t.Fatalf("writing past the end of the disk: %v, want ENOSPC", full)
	}
	if got, err := v.ReadFile("keep"); err != nil || string(got) != string(keep) {
		t.Fatalf("a committed file after ENOSPC: %v", err)
	}
	// Free space: drop the file that did not fit, and the ballast.
	if err := v.Remove(last); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	mustCheck(t, f)
	// Deleting files gives their space back; then writes work again.
	before, _ := st.Usage(context.Background())
	for i := 0; i < 20; i++ {
		v.Remove("fill" + strconv.Itoa(i))
	}
	if _, err := f.GC(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	after, _ := st.Usage(context.Background())
	if after.Bytes >= before.Bytes {
		t.Fatalf("deleting files freed nothing: %d bytes before, %d after", before.Bytes, after.Bytes)
	}
	if err := v.WriteFile("again", randBytes(40, 2<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err != nil {
		t.Fatalf("writing after freeing space: %v", err)
	}
	mustCheck(t, f)
}
