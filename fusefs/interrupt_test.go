package fusefs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cowfs/cowfs"
	"github.com/cowfs/cowfs/internal/fusetest"
	"github.com/cowfs/cowfs/store/mem"
	"github.com/cowfs/cowfs/store/storetest"
)

// TestCallGrace: a call's context is done interruptGrace after its
// interrupt, not before, and never once the request ended.
func TestCallGrace(t *testing.T) {
	irq := make(chan struct{})
	c := newCall(context.Background(), irq)
	if c.Err() != nil {
		t.Fatalf("Err before any interrupt: %v", c.Err())
	}
	start := time.Now()
	done := c.Done()
	close(irq)
	<-done
	if d := time.Since(start); d < interruptGrace {
		t.Errorf("done %v after the interrupt, want at least %v", d, interruptGrace)
	}
	if !errors.Is(c.Err(), context.Canceled) {
		t.Errorf("Err once done: %v", c.Err())
	}
	c.end()
	c.end() // a second end does nothing

	irq = make(chan struct{})
	c = newCall(context.Background(), irq)
	done = c.Done()
	close(irq)
	c.end() // the request answered within the grace
	select {
	case <-done:
		t.Fatal("a call that ended was cancelled")
	case <-time.After(2 * interruptGrace):
	}
	if c.Err() != nil {
		t.Errorf("Err of a call that ended: %v", c.Err())
	}
}

// blockedMount mounts volume "main" of a fresh FS on a blocking store
// (disarmed), the volume holding file "f" of 1 MB written by an FS before
// it, so that none of it is cached.
func blockedMount(t *testing.T) (string, *cowfs.FS, *storetest.Blocking, []byte) {
	t.Helper()
	fusetest.Require(t)
	st := storetest.NewBlocking(mem.New())
	f, err := cowfs.Open(st, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := f.CreateVolume("main")
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 1_000_000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	if err := v.WriteFile("f", data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if f, err = cowfs.Open(st, nil); err != nil {
		t.Fatal(err)
	}
	if v, err = f.Volume("main"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	srv, err := Mount(f, v, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		st.Disarm()
		if err := srv.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
		}
		srv.Wait()
		f.Close()
	})
	return dir, f, st, data
}

// interruptedCall runs sys on a thread of its own and signals that thread
// (SIGURG, which the Go runtime ignores) every 20 ms until sys returns,
// as a program's signals interrupt its system calls; it returns what sys
// returned, failing the test after 10 s.
func interruptedCall(t *testing.T, sys func() error) error {
	t.Helper()
	tids, errc := make(chan int, 1), make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		tids <- unix.Gettid()
		errc <- sys()
	}()
	tid := <-tids
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case err := <-errc:
			return err
		case <-tick.C:
			unix.Tgkill(unix.Getpid(), tid, unix.SIGURG)
		case <-deadline:
			t.Fatal("the interrupted system call did not return within 10 s")
		}
	}
}

// TestInterruptBlockedRead: a read through the mount waiting for a store
// that does not answer returns EINTR when the reader is signalled, ending
// the store call; the same read afterwards returns the file's bytes. The
// read is direct (O_DIRECT), one request that the reader waits for: a
// buffered read waits for the page cache, which only a fatal signal
// interrupts (the kernel then gives up the wait by itself).
func TestInterruptBlockedRead(t *testing.T) {
	dir, _, st, data := blockedMount(t)
	fd, err := unix.Open(filepath.Join(dir, "f"), unix.O_RDONLY|unix.O_DIRECT, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	st.Arm(0)
	buf := make([]byte, 4096)
	err = interruptedCall(t, func() error {
		_, err := unix.Pread(fd, buf, 500_000)
		return err
	})
	if err != syscall.EINTR {
		t.Fatalf("interrupted read: %v, want EINTR", err)
	}
	storetest.WaitFor(t, st.Unblocked, "the end of the store call")
	st.Disarm()
	n, err := unix.Pread(fd, buf, 500_000)
	if err != nil || n != len(buf) || string(buf) != string(data[500_000:500_000+len(buf)]) {
		t.Fatalf("read after the interrupt: %d, %v, or wrong bytes", n, err)
	}
}

// TestInterruptLockWait: a chmod through the mount waiting for the FS lock
// (held by a commit blocked in the store) returns EINTR when the caller is
// signalled, and changes nothing; once the commit gives up, the same
// chmod succeeds.
func TestInterruptLockWait(t *testing.T) {
	dir, f, st, _ := blockedMount(t)
	p := filepath.Join(dir, "f")
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
	v, err := f.Volume("main")
	if err != nil {
		t.Fatal(err)
	}
	if err := v.WriteFile("g", []byte("dirty"), 0o644); err != nil {
		t.Fatal(err)
	}
	st.Arm(0)
	ctx, cancel := context.WithCancel(context.Background())
	commit := make(chan error, 1)
	go func() { commit <- f.CommitContext(ctx) }()
	storetest.WaitFor(t, st.Blocked, "the commit's store call")
	err = interruptedCall(t, func() error { return unix.Chmod(p, 0o600) })
	if err != syscall.EINTR {
		t.Fatalf("chmod waiting for the lock: %v, want EINTR", err)
	}
	cancel()
	if err := <-commit; cowfs.Errno(err) != syscall.EINTR {
		t.Fatalf("cancelled commit: %v, want EINTR", err)
	}
	st.Disarm()
	fi, err := v.Stat("f")
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("after the interrupted chmod: %v, %v; want mode 0644", fi, err)
	}
	if err := unix.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	if fi, err := v.Stat("f"); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("after chmod: %v, %v; want mode 0600", fi, err)
	}
}
