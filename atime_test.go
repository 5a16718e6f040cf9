package cowfs

import (
	"context"
	"io"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cowfs/cowfs/store"
	"github.com/cowfs/cowfs/store/mem"
)

// clockFS opens an FS on a fresh mem store with the given atime mode and a
// clock the test sets; it returns the store, the FS, volume "main" and the
// clock.
func clockFS(t *testing.T, mode AtimeMode) (*mem.Store, *FS, *Volume, *time.Time) {
	t.Helper()
	st := mem.New()
	clock := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	f, err := Open(mdlStore{Store: st}, &Options{Atime: mode, Now: func() time.Time { return clock }})
	must(t, err)
	v, err := f.CreateVolume("main")
	must(t, err)
	return st, f, v, &clock
}

// TestRelatime: reads and directory listings update the access time as
// Linux's relatime does: when it is not after the modification or change
// time, or is 24 hours old; never on a snapshot, never for an empty read;
// noatime never, strictatime at every read.
func TestRelatime(t *testing.T) {
	_, f, v, clock := clockFS(t, Relatime)
	t0 := *clock
	at := func(d time.Duration) time.Time { *clock = t0.Add(d); return *clock }
	atime := func(p string) time.Time { return semStat(t, v, p).Atime }
	want := func(what, p string, w time.Time) {
		t.Helper()
		if got := atime(p); !got.Equal(w) {
			t.Fatalf("%s: atime of %s is %v, want %v", what, p, got, w)
		}
	}
	read := func(p string) {
		t.Helper()
		h, err := v.Open(p)
		must(t, err)
		if _, err := h.Read(make([]byte, 10)); err != nil && err != io.EOF {
			t.Fatal(err)
		}
		must(t, h.Close())
	}
	semWrite(t, v, "f", []byte("data"))
	semOK(t, "Mkdir", v.Mkdir("d", 0o755))
	want("created", "f", t0)

	read("f")
	want("first read, atime = mtime", "f", t0) // the same time: nothing to do
	t1 := at(time.Second)
	read("f")
	want("read with atime = mtime", "f", t1)
	at(2 * time.Second)
	read("f")
	want("read with atime after mtime and ctime", "f", t1)
	at(3 * time.Second)
	semOK(t, "Chmod", v.Chmod("f", 0o600)) // ctime after atime
	t4 := at(4 * time.Second)
	read("f")
	want("read after a change", "f", t4)
	at(4*time.Second + 24*time.Hour - time.Nanosecond)
	read("f")
	want("read less than a day later", "f", t4)
	t5 := at(4*time.Second + 24*time.Hour)
	read("f")
	want("read a day later", "f", t5)
	at(25 * time.Hour)
	h, err := v.OpenFile("f", os.O_RDWR, 0)
	must(t, err)
	_, err = h.WriteAt([]byte("x"), 0) // mtime
	must(t, err)
	t6 := at(26 * time.Hour)
	if _, err := h.ReadAt(nil, 0); err != nil {
		t.Fatal(err)
	}
	want("empty read", "f", t5)
	if _, err := h.ReadAt(make([]byte, 1), 100); err != io.EOF {
		t.Fatalf("read past the end: %v, want EOF", err)
	}
	want("read at end of file after a write", "f", t6)
	must(t, h.Close())

	t7 := at(27 * time.Hour)
	if _, err := v.ReadDir("d"); err != nil {
		t.Fatal(err)
	}
	want("ReadDir of a new directory", "d", t7)
	semWrite(t, v, "d/x", nil) // d's mtime
	t8 := at(28 * time.Hour)
	dh, err := v.Open("d")
	must(t, err)
	if _, err := dh.ReadDir(-1); err != nil {
		t.Fatal(err)
	}
	must(t, dh.Close())
	want("File.ReadDir after a change", "d", t8)

	semOK(t, "Snapshot", v.Snapshot("s"))
	s, err := v.OpenSnapshot("s")
	must(t, err)
	semOK(t, "Chmod", v.Chmod("f", 0o644))
	at(29 * time.Hour)
	sf, err := s.Open("f")
	must(t, err)
	sf.Read(make([]byte, 10))
	sf.Close()
	s.ReadDir("d")
	if got := semStat(t, s, "f").Atime; !got.Equal(t6) {
		t.Fatalf("a read changed a snapshot's atime: %v, want %v", got, t6)
	}
	if got := semStat(t, s, "d").Atime; !got.Equal(t8) {
		t.Fatalf("a listing changed a snapshot's atime: %v, want %v", got, t8)
	}
	semCheck(t, f)

	for _, c := range []struct {
		mode    AtimeMode
		updates bool // a second read, with atime after mtime and ctime
	}{{Noatime, false}, {Strictatime, true}, {Relatime, false}} {
		_, _, v, clock := clockFS(t, c.mode)
		created := *clock
		must(t, v.WriteFile("f", []byte("x"), 0o644))
		*clock = created.Add(time.Second)
		v.ReadFile("f")
		first := semStat(t, v, "f").Atime
		if wantFirst := c.mode != Noatime; first.Equal(*clock) != wantFirst {
			t.Fatalf("%v: first read leaves atime %v (created %v)", c.mode, first, created)
		}
		*clock = created.Add(2 * time.Second)
		v.ReadFile("f")
		if got := semStat(t, v, "f").Atime; got.Equal(*clock) != c.updates {
			t.Fatalf("%v: second read leaves atime %v", c.mode, got)
		}
	}
}

// commitCounter counts a store's commits.
type commitCounter struct {
	mdlStore
	n *atomic.Int64
}

func (c commitCounter) Commit(ctx context.Context, b store.Batch) error {
	c.n.Add(1)
	return c.mdlStore.Commit(ctx, b)
}

// TestAtimeRidesAlong: an access time update alone never makes the
// background commit run; it is committed with the next commit made for
// another reason, and by Commit, Sync and Close.
func TestAtimeRidesAlong(t *testing.T) {
	st := mem.New()
	var commits atomic.Int64
	clock := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu atomic.Pointer[time.Time]
	mu.Store(&clock)
	now := func() time.Time { return *mu.Load() }
	tick := func(d time.Duration) time.Time { c := mu.Load().Add(d); mu.Store(&c); return c }
	opt := &Options{Now: now, CommitInterval: 10 * time.Millisecond}
	f, err := Open(commitCounter{mdlStore{Store: st}, &commits}, opt)
	must(t, err)
	v, err := f.CreateVolume("main")
	must(t, err)
	semWrite(t, v, "a", []byte("a"))
	semWrite(t, v, "b", []byte("b"))
	must(t, f.Commit())
	reopened := func(p string) time.Time {
		t.Helper()
		f2, err := Open(mdlStore{Store: st}, &Options{Atime: Noatime})
		must(t, err)
		v2, err := f2.Volume("main")
		must(t, err)
		return semStat(t, v2, p).Atime
	}

	read := tick(time.Second)
	semRead(t, v, "a", []byte("a"))
	if got := semStat(t, v, "a").Atime; !got.Equal(read) {
		t.Fatalf("atime after a read: %v, want %v", got, read)
	}
	before := commits.Load()
	time.Sleep(20 * opt.CommitInterval)
	if n := commits.Load() - before; n != 0 {
		t.Fatalf("%d background commits for an access time alone", n)
	}
	if got := reopened("a"); got.Equal(read) {
		t.Fatal("the access time was committed without a commit")
	}
	tick(time.Second)
	must(t, v.Chmod("b", 0o600)) // another change: the background commits both
	deadline := time.Now().Add(10 * time.Second)
	for commits.Load() == before && time.Now().Before(deadline) {
		time.Sleep(opt.CommitInterval)
	}
	time.Sleep(5 * opt.CommitInterval)
	if got := reopened("a"); !got.Equal(read) {
		t.Fatalf("after a background commit for another change, the stored atime is %v, want %v", got, read)
	}

	for _, c := range []struct {
		name   string
		commit func() error
	}{
		{"Commit", f.Commit},
		{"Sync", func() error {
			h, err := v.Open("b")
			if err != nil {
				return err
			}
			defer h.Close()
			return h.Sync()
		}},
		{"Close", f.Close},
	} {
		read := tick(48 * time.Hour) // a day later: relatime updates
		semRead(t, v, "a", []byte("a"))
		before := commits.Load()
		time.Sleep(5 * opt.CommitInterval)
		if commits.Load() != before {
			t.Fatalf("before %s: a background commit for an access time alone", c.name)
		}
		must(t, c.commit())
		if got := reopened("a"); !got.Equal(read) {
			t.Fatalf("after %s, the stored atime is %v, want %v", c.name, got, read)
		}
	}
}
