package ninep

import (
	"syscall"
	"testing"

	"github.com/cowfs/cowfs"
	"github.com/cowfs/cowfs/store/mem"
	"github.com/cowfs/cowfs/store/storetest"
)

// blockedServer returns a server on a store that blocks (armed), whose
// volume "main" holds file "f" of 100 KB, committed by an FS before it so
// that nothing of "f" is cached.
func blockedServer(t *testing.T) (*Server, *storetest.Blocking) {
	t.Helper()
	st := storetest.NewBlocking(mem.New())
	f, err := cowfs.Open(st, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := f.CreateVolume("main")
	must(t, err)
	data := make([]byte, 100_000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	must(t, v.WriteFile("f", data, 0o644))
	must(t, f.Close())
	f, err = cowfs.Open(st, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		st.Disarm()
		f.Close()
	})
	return &Server{FS: f}, st
}

// readBlocked opens "f" over r and sends a Tread of it with tag, which
// blocks in the store.
func readBlocked(t *testing.T, r *raw, st *storetest.Blocking, tag uint16) {
	t.Helper()
	r.attachL(0, "")
	r.ok(&Msg{Type: Twalk, Fid: 0, Newfid: 1, Names: []string{"f"}})
	r.ok(&Msg{Type: Tlopen, Fid: 1, Flags: syscall.O_RDONLY})
	st.Arm(0)
	b, _ := (&Msg{Type: Tread, Tag: tag, Fid: 1, Count: 8192}).Marshal(Linux, nil)
	r.send(b)
	storetest.WaitFor(t, st.Blocked, "the read's store call")
}

// TestFlushBlockedRead: a Tflush of a Tread waiting for a store that does
// not answer ends the store call, the Tread answers EINTR, and the same
// read afterwards returns the file's bytes.
func TestFlushBlockedRead(t *testing.T) {
	s, st := blockedServer(t)
	r := dial(t, s)
	readBlocked(t, r, st, 5)
	b, _ := (&Msg{Type: Tflush, Tag: 6, Oldtag: 5}).Marshal(Linux, nil)
	r.send(b)
	if rep := r.reply(5); rep.Type != Rlerror || syscall.Errno(rep.Ecode) != syscall.EINTR {
		t.Errorf("flushed Tread: %v, want EINTR", rep)
	}
	if rep := r.reply(6); rep.Type != Tflush+1 {
		t.Errorf("Tflush: %v", rep)
	}
	storetest.WaitFor(t, st.Unblocked, "the end of the store call")
	st.Disarm()
	rep := r.ok(&Msg{Type: Tread, Tag: 7, Fid: 1, Offset: 1000, Count: 10})
	for i, c := range rep.Data {
		if want := byte((1000 + i) * 7); c != want {
			t.Fatalf("byte %d after the flushed read: %#x, want %#x", 1000+i, c, want)
		}
	}
	if len(rep.Data) != 10 {
		t.Fatalf("read %d bytes, want 10", len(rep.Data))
	}
}

// TestClosedConnectionEndsStoreCall: closing the connection of a Tread
// waiting for a store that does not answer ends the store call.
func TestClosedConnectionEndsStoreCall(t *testing.T) {
	s, st := blockedServer(t)
	r := dial(t, s)
	readBlocked(t, r, st, 5)
	r.c.Close()
	storetest.WaitFor(t, st.Unblocked, "the end of the store call at the connection's close")
	<-r.done
}
