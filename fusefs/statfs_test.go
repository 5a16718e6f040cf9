package fusefs

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/cowfs/cowfs"
	"github.com/cowfs/cowfs/internal/fusetest"
	"github.com/cowfs/cowfs/store"
	"github.com/cowfs/cowfs/store/local"
	"github.com/cowfs/cowfs/store/mem"
)

// mountStore mounts volume "main" of a new FS on st; the test's cleanup
// unmounts it and closes the FS.
func mountStore(t *testing.T, st store.Store) string {
	t.Helper()
	fusetest.Require(t)
	fsys, err := cowfs.Open(st, nil)
	if err != nil {
		t.Fatal(err)
	}
	vol, err := fsys.CreateVolume("main")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	srv, err := Mount(fsys, vol, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
		}
		srv.Wait()
		if err := fsys.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return dir
}

// statfsOf returns statfs(2) of dir.
func statfsOf(t *testing.T, dir string) unix.Statfs_t {
	t.Helper()
	var s unix.Statfs_t
	if err := unix.Statfs(dir, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// statfsFields are the statfs(2) figures a mount takes from its store.
func statfsFields(s unix.Statfs_t) [7]uint64 {
	return [7]uint64{s.Blocks, s.Bfree, s.Bavail, s.Files, s.Ffree, uint64(s.Bsize), uint64(s.Frsize)}
}

// TestStatfsOfStore: statfs of a mount is what its store reports
// (store.StatFSer): for a local store on a 16 MiB tmpfs, the tmpfs's own
// statfs, before and after a MiB is written and committed.
func TestStatfsOfStore(t *testing.T) {
	fusetest.Require(t)
	disk := fusetest.Tmpfs(t, "size=16m")
	st, err := local.Open(filepath.Join(disk, "store"), &local.Options{NoAutoCompact: true})
	if err != nil {
		t.Fatal(err)
	}
	mnt := mountStore(t, st)
	check := func(what string) unix.Statfs_t {
		t.Helper()
		got, want := statfsOf(t, mnt), statfsOf(t, disk)
		if statfsFields(got) != statfsFields(want) {
			t.Errorf("%s: statfs of the mount %+v, of the store's tmpfs %+v: want the same blocks, files and sizes", what, got, want)
		}
		if got.Namelen != 255 || got.Type != 0x65735546 { // FUSE_SUPER_MAGIC
			t.Errorf("%s: statfs of the mount: namelen %d, type %#x; want 255 and FUSE's", what, got.Namelen, got.Type)
		}
		return got
	}
	before := check("empty store")
	if total := before.Blocks * uint64(before.Frsize); total != 16<<20 {
		t.Fatalf("statfs of the mount: %d bytes in all, want the tmpfs's 16 MiB", total)
	}
	data := make([]byte, 1<<20)
	rand.Read(data)
	f, err := os.Create(filepath.Join(mnt, "data"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil { // commits: the MiB is in the store's segment file
		t.Fatal(err)
	}
	after := check("after writing a MiB")
	if used := int64(before.Bavail-after.Bavail) * after.Frsize; used < 1<<20 {
		t.Errorf("statfs of the mount: %d bytes fewer available after writing a MiB, want at least that", used)
	}
}

// noStatFS is a store that cannot tell its space: only store.Store's
// methods.
type noStatFS struct{ store.Store }

// TestStatfsStoreCannotTell: a mount of a store that is no
// store.StatFSer shows no blocks and no files, as pseudo file systems do.
func TestStatfsStoreCannotTell(t *testing.T) {
	mnt := mountStore(t, noStatFS{mem.New()})
	s := statfsOf(t, mnt)
	if s.Blocks != 0 || s.Bfree != 0 || s.Bavail != 0 || s.Files != 0 || s.Ffree != 0 || s.Bsize != 4096 || s.Namelen != 255 {
		t.Errorf("statfs of a store that cannot tell: %+v; want no blocks or files, bsize 4096, namelen 255", s)
	}
}
