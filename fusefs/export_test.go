package fusefs

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// dropKernelCaches makes the kernel forget the dentries and inodes nothing
// holds, so that file handles must be resolved by the server again.
func dropKernelCaches(t *testing.T) {
	t.Helper()
	unix.Sync()
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("2"), 0); err != nil {
		t.Fatalf("drop caches: %v", err)
	}
}

// handleOf is name_to_handle_at(2) of p.
func handleOf(t *testing.T, p string) unix.FileHandle {
	t.Helper()
	h, _, err := unix.NameToHandleAt(unix.AT_FDCWD, p, 0)
	if err != nil {
		t.Fatalf("name_to_handle_at %s: %v", p, err)
	}
	return h
}

// openHandle is open_by_handle_at(2) through the mount at dir.
func openHandle(t *testing.T, dir string, h unix.FileHandle, flags int) (*os.File, error) {
	t.Helper()
	mfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(mfd)
	fd, err := unix.OpenByHandleAt(mfd, h, flags)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), "by-handle"), nil
}

// readHandle opens a file's handle and returns its content.
func readHandle(t *testing.T, dir string, h unix.FileHandle) ([]byte, error) {
	t.Helper()
	f, err := openHandle(t, dir, h, unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var b [64]byte
	n, err := f.Read(b[:])
	if err != nil {
		return nil, err
	}
	return b[:n], nil
}

// TestFileHandles: name_to_handle_at and open_by_handle_at work for live
// files and directories of the mount, when the kernel still has their
// inodes, after it dropped them, after a rename and after a remount; a
// handle of a removed file, or with another generation, is stale.
func TestFileHandles(t *testing.T) {
	r := newRemountable(t)
	dir := r.dir
	for p, data := range map[string]string{"f": "file f", "d/e/g": "file g", "d/gone": "removed"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Link(filepath.Join(dir, "f"), filepath.Join(dir, "d", "link")); err != nil {
		t.Fatal(err)
	}
	hf, hg, hgone := handleOf(t, filepath.Join(dir, "f")), handleOf(t, filepath.Join(dir, "d/e/g")), handleOf(t, filepath.Join(dir, "d/gone"))
	hd, hlink := handleOf(t, filepath.Join(dir, "d/e")), handleOf(t, filepath.Join(dir, "d/link"))
	want := func(what string, h unix.FileHandle, content string) {
		t.Helper()
		if got, err := readHandle(t, dir, h); err != nil || string(got) != content {
			t.Errorf("%s: open by handle: %q, %v; want %q", what, got, err, content)
		}
	}
	stale := func(what string, h unix.FileHandle) {
		t.Helper()
		if f, err := openHandle(t, dir, h, unix.O_RDONLY); !errors.Is(err, unix.ESTALE) {
			if f != nil {
				f.Close()
			}
			t.Errorf("%s: open by handle: %v, want ESTALE", what, err)
		}
	}
	want("f, inode cached", hf, "file f")
	want("hard link", hlink, "file f")

	// The kernel forgets; the mount finds the inodes by number.
	if err := os.Rename(filepath.Join(dir, "d/e"), filepath.Join(dir, "d/moved")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "d/gone")); err != nil {
		t.Fatal(err)
	}
	dropKernelCaches(t)
	before := r.srv.Stats().HandleLookups
	want("f, inode dropped", hf, "file f")
	want("g, in a renamed directory", hg, "file g")
	stale("a removed file", hgone)
	if r.srv.Stats().HandleLookups == before {
		t.Errorf("no handle was resolved by the mount: the kernel still had every inode (lookups %d)", before)
	}
	// A directory opened by handle, and a lookup relative to it.
	dropKernelCaches(t)
	df, err := openHandle(t, dir, hd, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		t.Fatalf("directory by handle: %v", err)
	}
	fd, err := unix.Openat(int(df.Fd()), "g", unix.O_RDONLY, 0)
	df.Close()
	if err != nil {
		t.Fatalf("openat in a directory opened by handle: %v", err)
	}
	unix.Close(fd)
	// Another generation is another file.
	bad := append([]byte(nil), hf.Bytes()...)
	if len(bad) != 12 {
		t.Fatalf("FUSE handle of %d bytes (% x), want 12: node ID and generation", len(bad), bad)
	}
	binary.NativeEndian.PutUint32(bad[8:], binary.NativeEndian.Uint32(bad[8:])+1)
	dropKernelCaches(t)
	stale("another generation", unix.NewFileHandle(hf.Type(), bad))

	// After a remount.
	r.unmount()
	r.mount()
	want("f after a remount", hf, "file f")
	want("g after a remount", hg, "file g")
	want("hard link after a remount", hlink, "file f")
	stale("a removed file after a remount", hgone)
	if err := os.WriteFile(filepath.Join(dir, "d/moved/g"), []byte("written"), 0o644); err != nil {
		t.Fatal(err)
	}
	want("g rewritten", hg, "written")
}
