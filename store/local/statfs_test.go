package local

import (
	"errors"
	"math/rand/v2"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/cowfs/cowfs/internal/fusetest"
	"github.com/cowfs/cowfs/store"
)

// TestStatFS: a local store reports the file system holding it, as
// statfs(2) of its directory does (here a 8 MiB tmpfs), and a Put and
// Commit of a MiB shows in it; a closed store fails with ErrClosed.
func TestStatFS(t *testing.T) {
	disk := fusetest.Tmpfs(t, "size=8m")
	s := openStore(t, filepath.Join(disk, "store"), &Options{NoAutoCompact: true})
	check := func(what string) store.StatFS {
		t.Helper()
		got, err := s.StatFS(t.Context())
		if err != nil {
			t.Fatalf("%s: StatFS: %v", what, err)
		}
		var st syscall.Statfs_t
		if err := syscall.Statfs(disk, &st); err != nil {
			t.Fatal(err)
		}
		want := store.StatFS{Bsize: uint32(st.Bsize), Frsize: uint32(st.Frsize), Blocks: st.Blocks, Bfree: st.Bfree,
			Bavail: st.Bavail, Files: st.Files, Ffree: st.Ffree}
		if got != want {
			t.Errorf("%s: StatFS %+v, statfs of the store's tmpfs %+v", what, got, want)
		}
		if got.Avail() != int64(st.Bavail)*st.Frsize {
			t.Errorf("%s: Avail %d, want %d bytes", what, got.Avail(), int64(st.Bavail)*st.Frsize)
		}
		return got
	}
	before := check("empty store")
	if total := before.Blocks * uint64(before.Frsize); total != 8<<20 {
		t.Errorf("StatFS: %d bytes in all, want the tmpfs's 8 MiB", total)
	}
	id := mustPut(t, s, randBytes(rand.New(rand.NewPCG(1, 2)), 1<<20))
	if err := s.Commit(t.Context(), store.Batch{Refs: map[store.ID]int64{id: 1}}); err != nil {
		t.Fatal(err)
	}
	after := check("after a MiB")
	if used := before.Avail() - after.Avail(); used < 1<<20 {
		t.Errorf("StatFS: %d bytes fewer available after storing a MiB, want at least that", used)
	}
	closeStore(t, s)
	if _, err := s.StatFS(t.Context()); !errors.Is(err, store.ErrClosed) {
		t.Errorf("StatFS of a closed store: %v, want ErrClosed", err)
	}
}
