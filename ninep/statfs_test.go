package ninep

import (
	"crypto/rand"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/cowfs/cowfs"
	"github.com/cowfs/cowfs/internal/fusetest"
	"github.com/cowfs/cowfs/store"
	"github.com/cowfs/cowfs/store/local"
	"github.com/cowfs/cowfs/store/mem"
)

// storeServer returns a server of a new FS on st with volume "main"; the
// test's cleanup closes the FS.
func storeServer(t *testing.T, st store.Store) *Server {
	t.Helper()
	f, err := cowfs.Open(st, nil)
	must(t, err)
	t.Cleanup(func() { f.Close() })
	_, err = f.CreateVolume("main")
	must(t, err)
	return &Server{FS: f}
}

// TestStatfsOfStore: Tstatfs answers what the served store reports
// (store.StatFSer): for a local store on a 16 MiB tmpfs, the tmpfs's own
// statfs, in blocks of Rstatfs's bsize, before and after a MiB is written
// and committed.
func TestStatfsOfStore(t *testing.T) {
	disk := fusetest.Tmpfs(t, "size=16m")
	st, err := local.Open(filepath.Join(disk, "store"), &local.Options{NoAutoCompact: true})
	must(t, err)
	s := storeServer(t, st)
	r := dial(t, s)
	r.attachL(0, "main")
	check := func(what string) Statfs {
		t.Helper()
		got := r.ok(&Msg{Type: Tstatfs, Fid: 0}).Statfs
		var want unix.Statfs_t
		must(t, unix.Statfs(disk, &want))
		if got.Blocks != want.Blocks || got.Bfree != want.Bfree || got.Bavail != want.Bavail ||
			got.Files != want.Files || got.Ffree != want.Ffree || int64(got.Bsize) != want.Frsize ||
			got.Namelen != 255 || got.Type != v9fsMagic {
			t.Errorf("%s: Rstatfs %+v, statfs of the store's tmpfs %+v: want the same blocks, files and block size", what, got, want)
		}
		return got
	}
	before := check("empty store")
	if total := before.Blocks * uint64(before.Bsize); total != 16<<20 {
		t.Fatalf("Rstatfs: %d bytes in all, want the tmpfs's 16 MiB", total)
	}
	v, err := s.FS.Volume("main")
	must(t, err)
	data := make([]byte, 1<<20)
	rand.Read(data) // no chunk repeats: the MiB is stored whole
	must(t, v.WriteFile("data", data, 0o644))
	must(t, s.FS.Commit())
	after := check("after writing a MiB")
	if used := (before.Bavail - after.Bavail) * uint64(after.Bsize); used < 1<<20 {
		t.Errorf("Rstatfs: %d bytes fewer available after writing a MiB, want at least that", used)
	}
}

// noStatFS is a store that cannot tell its space: only store.Store's
// methods.
type noStatFS struct{ store.Store }

// TestStatfsStoreCannotTell: Tstatfs of a store that is no
// store.StatFSer answers no blocks and no files.
func TestStatfsStoreCannotTell(t *testing.T) {
	r := dial(t, storeServer(t, noStatFS{mem.New()}))
	r.attachL(0, "main")
	got := r.ok(&Msg{Type: Tstatfs, Fid: 0}).Statfs
	if want := (Statfs{Type: v9fsMagic, Bsize: 4096, Namelen: 255}); got != want {
		t.Errorf("Rstatfs of a store that cannot tell: %+v, want %+v", got, want)
	}
}
