package cowfs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/cowfs/cowfs/store"
	"github.com/cowfs/cowfs/store/mem"
	"github.com/cowfs/cowfs/store/storetest"
)

// bound is how long a cancelled operation may take to return: generous,
// for loaded machines and the race detector.
const bound = 5 * time.Second

// started runs fn in a goroutine and returns its error's channel once the
// store blocks, or with ok false and fn's error if fn returned first.
func started(t *testing.T, st *storetest.Blocking, fn func() error) (errc chan error, ok bool) {
	t.Helper()
	errc = make(chan error, 1)
	go func() { errc <- fn() }()
	select {
	case <-st.Blocked:
		return errc, true
	case err := <-errc:
		errc <- err
		return errc, false
	case <-time.After(10 * time.Second):
		t.Fatal("the store did not block within 10 s")
	}
	return nil, false
}

// interrupted cancels the operation of errc and checks that it returns an
// EINTR error wrapping context.Canceled promptly.
func interrupted(t *testing.T, cancel context.CancelFunc, errc chan error) {
	t.Helper()
	cancel()
	select {
	case err := <-errc:
		if Errno(err) != syscall.EINTR || !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled operation returned %v, want EINTR wrapping context.Canceled", err)
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("cancelled operation returned %T, want *Error", err)
		}
	case <-time.After(bound):
		t.Fatalf("cancelled operation still running after %v", bound)
	}
}

// freshVolume opens volume "main" of a fresh FS on st, with empty caches.
func freshVolume(t *testing.T, st store.Store, opt *Options) (*FS, *Volume) {
	t.Helper()
	f, err := Open(st, opt)
	if err != nil {
		t.Fatal(err)
	}
	v, err := f.Volume("main")
	if err != nil {
		t.Fatal(err)
	}
	return f, v
}

// newCancelFS returns an FS on a fresh blocking store, with volume "main"
// holding the file "f" of data, committed.
func newCancelFS(t *testing.T, data []byte) (*storetest.Blocking, *FS, *Volume) {
	t.Helper()
	st := storetest.NewBlocking(mem.New())
	f, err := Open(st, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := f.CreateVolume("main")
	if err != nil {
		t.Fatal(err)
	}
	if err := v.WriteFile("f", data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	return st, f, v
}

// TestReadAtContextCancel: a read of a file that is not cached, with the
// store blocking, returns EINTR promptly when cancelled; the same read
// afterwards returns the file's bytes.
func TestReadAtContextCancel(t *testing.T) {
	data := randBytes(1, 3<<20)
	st, _, _ := newCancelFS(t, data)
	_, v := freshVolume(t, st, nil)
	fl, err := v.Open("f")
	if err != nil {
		t.Fatal(err)
	}
	defer fl.Close()
	p := make([]byte, 100_000)
	const off = 1<<20 + 12345
	st.Arm(0)
	ctx, cancel := context.WithCancel(context.Background())
	errc, ok := started(t, st, func() error { _, err := fl.ReadAtContext(ctx, p, off); return err })
	if !ok {
		t.Fatalf("read did not reach the store: %v", <-errc)
	}
	interrupted(t, cancel, errc)

	st.Disarm()
	n, err := fl.ReadAtContext(context.Background(), p, off)
	if err != nil || n != len(p) {
		t.Fatalf("read after disarming: %d, %v", n, err)
	}
	if !bytes.Equal(p, data[off:off+len(p)]) {
		t.Fatal("read after disarming returned wrong bytes")
	}
	// Seeking reads the rope's nodes the same way.
	_, v2 := freshVolume(t, st, nil)
	fl2, err := v2.Open("f")
	if err != nil {
		t.Fatal(err)
	}
	defer fl2.Close()
	st.Arm(0)
	ctx, cancel = context.WithCancel(context.Background())
	errc, ok = started(t, st, func() error { _, err := fl2.SeekContext(ctx, 4096, SeekHole); return err })
	if ok {
		interrupted(t, cancel, errc)
	} else if err := <-errc; err != nil {
		t.Fatal(err)
	}
	cancel()
	st.Disarm()
	if pos, err := fl2.Seek(4096, SeekHole); err != nil || pos != int64(len(data)) {
		t.Fatalf("SeekHole: %d, %v; want %d", pos, err, len(data))
	}
}

// TestLockOpCancel: while one operation holds the FS lock, blocked in the
// store, another's lockOp gives up with EINTR when its context is done
// (already, or later), and records its context for ioCtx when it gets
// the lock.
func TestLockOpCancel(t *testing.T) {
	st, f, v := newCancelFS(t, []byte("x"))
	gdata := randBytes(2, 200_000)
	if err := v.WriteFile("g", gdata, 0o644); err != nil {
		t.Fatal(err)
	}
	root := v.RootInode()
	defer root.Release()
	g, err := v.OpenFile("g", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	view, err := g.ReadDeferred(0, 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer view.Release()
	st.Arm(0)
	ctx1, cancel1 := context.WithCancel(context.Background())
	errc, ok := started(t, st, func() error { return f.CommitContext(ctx1) })
	if !ok {
		t.Fatalf("commit did not reach the store: %v", <-errc)
	}

	done, cancelDone := context.WithCancel(context.Background())
	cancelDone()
	start := time.Now()
	if err := f.lockOp(done); Errno(err) != syscall.EINTR || !errors.Is(err, context.Canceled) {
		t.Fatalf("lockOp with a cancelled context: %v", err)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	err = f.lockOp(ctx2)
	if Errno(err) != syscall.EINTR || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("lockOp past its deadline: %v", err)
	}
	if d := time.Since(start); d > bound {
		t.Fatalf("lockOp took %v to give up", d)
	}
	// So does a handle's call, holding no lock when it fails (the Stat
	// after the commit below would wait forever otherwise).
	ctx4, cancel4 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel4()
	if _, _, err := root.Lookup(ctx4, "g"); Errno(err) != syscall.EINTR || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Inode.Lookup past its deadline while the lock is held: %v", err)
	}
	// And the calls on an open file that change it.
	mode := uint32(0o600)
	for what, call := range map[string]func() error{
		"File.Setattr":          func() error { return g.Setattr(ctx4, SetAttr{Mode: &mode}) },
		"File.FallocateContext": func() error { return g.FallocateContext(ctx4, FallocPunchHole|FallocKeepSize, 0, 4096) },
		"CopyRangeContext": func() error {
			_, err := CopyRangeContext(ctx4, g, 0, g, 8192, 4096)
			return err
		},
		"View.CopyRangeContext": func() error {
			_, err := view.CopyRangeContext(ctx4, 0, g, 8192, 4096)
			return err
		},
	} {
		if err := call(); Errno(err) != syscall.EINTR || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%s past its deadline while the lock is held: %v", what, err)
		}
	}
	// A path-based operation waits meanwhile, and runs once the lock is free.
	statc := make(chan error, 1)
	go func() { _, err := v.Stat("g"); statc <- err }()

	interrupted(t, cancel1, errc)
	st.Disarm()
	if err := <-statc; err != nil {
		t.Fatal(err)
	}
	if _, _, err := root.Lookup(context.Background(), "g"); err != nil {
		t.Fatalf("Inode.Lookup once the lock is free: %v", err)
	}
	if b, err := v.ReadFile("g"); err != nil || !bytes.Equal(b, gdata) {
		t.Fatalf("g after the interrupted calls: %v, or changed", err)
	}
	if fi, err := v.Stat("g"); err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("g's mode after the interrupted chmod: %v, %v", fi.Mode(), err)
	}
	type key struct{}
	ctx3 := context.WithValue(context.Background(), key{}, 3)
	if err := f.lockOp(ctx3); err != nil {
		t.Fatal(err)
	}
	if f.ioCtx() != ctx3 {
		t.Error("ioCtx is not the context lockOp took the lock with")
	}
	f.unlockOp()
	f.mu.Lock()
	if f.ioCtx() != context.Background() {
		t.Error("ioCtx under mu.Lock is not context.Background")
	}
	f.mu.Unlock()
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
}

// cancelTree writes a few directories and files (with data blobs, inline
// data and an extended attribute) and returns what each file holds.
func cancelTree(t *testing.T, v *Volume, seed uint64) map[string][]byte {
	t.Helper()
	want := map[string][]byte{}
	if err := v.MkdirAll("a/b/c", 0o755); err != nil {
		t.Fatal(err)
	}
	for i, p := range []string{"a/big", "a/b/small", "a/b/c/mid", "top"} {
		data := randBytes(seed+uint64(i), []int{700_000, 100, 40_000, 3}[i])
		if err := v.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		want[p] = data
	}
	if err := v.SetXattr("a/b/small", "user.k", bytes.Repeat([]byte("v"), 9000), 0); err != nil {
		t.Fatal(err)
	}
	return want
}

// checkTree checks that v holds want and the attribute cancelTree set.
func checkTree(t *testing.T, v *Volume, want map[string][]byte) {
	t.Helper()
	for p, data := range want {
		got, err := v.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("%s: %d bytes, want %d (or other bytes)", p, len(got), len(data))
		}
	}
	if val, err := v.GetXattr("a/b/small", "user.k"); err != nil || len(val) != 9000 {
		t.Fatalf("xattr: %d bytes, %v", len(val), err)
	}
}

// TestCommitCancel: a commit (File.SyncContext) cancelled while blocked in
// the store, after any number of its store calls went through, returns
// EINTR and leaves the store's roots alone; a later commit commits
// everything, as a fresh FS on the store shows.
func TestCommitCancel(t *testing.T) {
	for pass := int64(0); ; pass++ {
		if pass > 500 {
			t.Fatal("the commit still blocks after 500 store calls")
		}
		st, f, v := newCancelFS(t, []byte("first"))
		before, err := st.ListRoots(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		want := cancelTree(t, v, 10*uint64(pass))
		want["f"] = []byte("first")
		fl, err := v.OpenFile("f", os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		st.Arm(pass)
		ctx, cancel := context.WithCancel(context.Background())
		errc, blocked := started(t, st, func() error { return fl.SyncContext(ctx) })
		if !blocked {
			cancel()
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			if pass < 3 {
				t.Fatalf("the commit made only %d store calls", pass)
			}
			t.Logf("interrupted commits after each of the first %d store calls", pass)
			return
		}
		interrupted(t, cancel, errc)
		st.Disarm()
		after, err := st.ListRoots(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(after) != len(before) || (len(after) > 0 && after[0] != before[0]) {
			t.Fatalf("pass %d: an interrupted commit changed the roots: %v, then %v", pass, before, after)
		}
		// Nothing is lost meanwhile, and nothing stored half.
		checkTree(t, v, want)
		if _, fv := freshVolume(t, st, nil); true {
			if got, err := fv.ReadFile("f"); err != nil || string(got) != "first" {
				t.Fatalf("pass %d: committed file after an interrupted commit: %q, %v", pass, got, err)
			}
			if _, err := fv.Stat("top"); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("pass %d: an interrupted commit left an uncommitted file in the store: %v", pass, err)
			}
		}
		if err := fl.Sync(); err != nil {
			t.Fatalf("pass %d: commit after an interrupted one: %v", pass, err)
		}
		mustCheck(t, f)
		f2, v2 := freshVolume(t, st, nil)
		checkTree(t, v2, want)
		mustCheck(t, f2)
		fl.Close()
	}
}

// TestWriteAtContextCancel: a write that must cut buffered bytes into blobs
// (a Put) and is cancelled meanwhile returns EINTR having written nothing:
// the file holds what it held before the call, buffered writes included,
// and the write can be made again.
func TestWriteAtContextCancel(t *testing.T) {
	st, f, v := newCancelFS(t, nil)
	a := randBytes(3, 1<<20)
	b := []byte("written after a hole")
	fl, err := v.OpenFile("f", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fl.Close()
	if n, err := fl.WriteAtContext(context.Background(), a, 0); err != nil || n != len(a) {
		t.Fatalf("write: %d, %v", n, err)
	}
	f.opt.FlushBytes = 64 << 10 // so that moving a's buffer into the rope cuts it
	st.Arm(0)
	ctx, cancel := context.WithCancel(context.Background())
	errc, ok := started(t, st, func() error {
		n, err := fl.WriteAtContext(ctx, b, 3<<20)
		if err != nil && n != 0 {
			t.Errorf("an interrupted write reports %d bytes written", n)
		}
		return err
	})
	if !ok {
		t.Fatalf("write did not reach the store: %v", <-errc)
	}
	interrupted(t, cancel, errc)
	st.Disarm()
	got, err := io.ReadAll(io.NewSectionReader(fl, 0, 1<<30))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, a) {
		t.Fatalf("after an interrupted write the file holds %d bytes, want the %d before it", len(got), len(a))
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	_, v2 := freshVolume(t, st, nil)
	if got, err := v2.ReadFile("f"); err != nil || !bytes.Equal(got, a) {
		t.Fatalf("committed after an interrupted write: %d bytes, %v", len(got), err)
	}
	// Made again, the write happens.
	if n, err := fl.WriteAtContext(context.Background(), b, 3<<20); err != nil || n != len(b) {
		t.Fatalf("write again: %d, %v", n, err)
	}
	if fi, err := fl.Stat(); err != nil || fi.Size() != 3<<20+int64(len(b)) {
		t.Fatalf("size after writing again: %v, %v", fi, err)
	}
	mustCheck(t, f)
}

// TestFlushBufKeepsBuffer: when moving the write buffer into the rope fails
// (a rope node the store does not deliver), the buffered bytes are kept.
func TestFlushBufKeepsBuffer(t *testing.T) {
	data := randBytes(4, 4<<20)
	st, _, _ := newCancelFS(t, data)
	f, v := freshVolume(t, st, nil)
	fl, err := v.OpenFile("f", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fl.Close()
	st.Arm(0)
	// Buffered: the store is not asked.
	patch := []byte("buffered bytes")
	if _, err := fl.WriteAtContext(context.Background(), patch, 1000); err != nil {
		t.Fatal(err)
	}
	// Not sequential: the buffer goes into the rope first, which loads it.
	ctx, cancel := context.WithCancel(context.Background())
	errc, ok := started(t, st, func() error { _, err := fl.WriteAtContext(ctx, []byte("elsewhere"), 2<<20); return err })
	if !ok {
		t.Fatalf("write did not reach the store: %v", <-errc)
	}
	interrupted(t, cancel, errc)
	st.Disarm()
	want := bytes.Clone(data)
	copy(want[1000:], patch)
	got, err := io.ReadAll(io.NewSectionReader(fl, 0, 1<<30))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("a failed load lost the write buffer")
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	_, v2 := freshVolume(t, st, nil)
	if got, err := v2.ReadFile("f"); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("committed: %d bytes, %v", len(got), err)
	}
}

// TestWrapIOContext: wrapIO reports a cancelled or expired context as EINTR.
func TestWrapIOContext(t *testing.T) {
	for _, cause := range []error{context.Canceled, context.DeadlineExceeded} {
		err := wrapIO("read", "p", errors.Join(errors.New("node x"), cause))
		if Errno(err) != syscall.EINTR || !errors.Is(err, cause) {
			t.Errorf("wrapIO(%v) = %v, want EINTR", cause, err)
		}
	}
}
