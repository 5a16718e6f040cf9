package fusefs

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestRenameFlags checks renameat2's RENAME_NOREPLACE and RENAME_EXCHANGE
// through the kernel.
func TestRenameFlags(t *testing.T) {
	m := mountMem(t)
	a, b := filepath.Join(m.dir, "a"), filepath.Join(m.dir, "b")
	os.WriteFile(a, []byte("A"), 0o644)
	if err := os.Mkdir(b, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(b, "inside"), []byte("in b"), 0o644)
	err := unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_NOREPLACE)
	if !errors.Is(err, syscall.EEXIST) {
		t.Errorf("RENAME_NOREPLACE onto an existing name: %v, want EEXIST", err)
	}
	if err := unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE); err != nil {
		t.Fatalf("RENAME_EXCHANGE: %v", err)
	}
	if got, err := os.ReadFile(b); err != nil || string(got) != "A" {
		t.Errorf("b after exchange: %q, %v", got, err)
	}
	if got, err := os.ReadFile(filepath.Join(a, "inside")); err != nil || string(got) != "in b" {
		t.Errorf("a/inside after exchange: %q, %v", got, err)
	}
	if err := unix.Renameat2(unix.AT_FDCWD, b, unix.AT_FDCWD, filepath.Join(m.dir, "c"), unix.RENAME_NOREPLACE); err != nil {
		t.Errorf("RENAME_NOREPLACE to a new name: %v", err)
	}
}

// TestMknodDevices checks that fifos and device nodes keep their type and
// device number, and that a fifo works as one.
func TestMknodDevices(t *testing.T) {
	m := mountMem(t)
	dev := filepath.Join(m.dir, "null")
	if err := unix.Mknod(dev, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(dev, &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(st.Rdev) != 1 || unix.Minor(st.Rdev) != 3 {
		t.Errorf("char device: mode %o, rdev %d:%d", st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	// The mount is nodev (and nosuid), as FUSE mounts are by default: a
	// device node can be made and listed but not opened.
	if _, err := os.OpenFile(dev, os.O_WRONLY, 0); !errors.Is(err, syscall.EACCES) {
		t.Errorf("open of a device node on a nodev mount: %v, want EACCES", err)
	}
	fifo := filepath.Join(m.dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- os.WriteFile(fifo, []byte("through the fifo"), 0) }()
	got, err := os.ReadFile(fifo)
	if err != nil || string(got) != "through the fifo" {
		t.Errorf("fifo: %q, %v", got, err)
	}
	if err := <-done; err != nil {
		t.Error(err)
	}
}

// TestCopyRangeDropsCachedPages checks that after copy_file_range the
// destination's pages cached by the kernel show the new bytes.
func TestCopyRangeDropsCachedPages(t *testing.T) {
	m := mountMem(t)
	src, dst := filepath.Join(m.dir, "src"), filepath.Join(m.dir, "dst")
	os.WriteFile(src, bytes.Repeat([]byte("S"), 3<<12), 0o644)
	os.WriteFile(dst, bytes.Repeat([]byte("d"), 3<<12), 0o644)
	reader, err := os.Open(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	buf := make([]byte, 3<<12)
	if _, err := reader.ReadAt(buf, 0); err != nil { // the pages are now cached
		t.Fatal(err)
	}
	sf, _ := os.Open(src)
	defer sf.Close()
	df, err := os.OpenFile(dst, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer df.Close()
	soff, doff := int64(100), int64(5000)
	if k, err := unix.CopyFileRange(int(sf.Fd()), &soff, int(df.Fd()), &doff, 3000, 0); err != nil || k != 3000 {
		t.Fatalf("copy_file_range: %d, %v", k, err)
	}
	want := bytes.Repeat([]byte("d"), 3<<12)
	copy(want[5000:8000], bytes.Repeat([]byte("S"), 3000))
	if _, err := reader.ReadAt(buf, 0); err != nil || !bytes.Equal(buf, want) {
		t.Errorf("cached reader after copy_file_range sees stale bytes (%v)", err)
	}
}
