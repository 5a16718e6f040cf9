package ninep

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/cowfs/cowfs"
	"github.com/cowfs/cowfs/store/mem"
)

// fixedClock stamps every change at the same instant, so whole exchanges
// are reproducible byte for byte.
func fixedClock() time.Time { return time.Unix(1700000000, 123456789) }

// newServer returns a server on a fresh in-memory FS with volume "main"
// and a fixed clock, checked for consistency when the test ends.
func newServer(t testing.TB) *Server {
	t.Helper()
	f, err := cowfs.Open(mem.New(), &cowfs.Options{Now: fixedClock})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.CreateVolume("main"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if rep, err := f.Check(context.Background()); err != nil {
			t.Errorf("check: %v", err)
		} else if rep.Err() != nil {
			t.Errorf("check: %v", rep.Err())
		}
		f.Close()
	})
	return &Server{FS: f}
}

// raw is a client that speaks messages one at a time over a pipe to a
// Server's Serve.
type raw struct {
	t       testing.TB
	c       net.Conn
	dialect Dialect
	done    chan struct{} // closed when Serve returned
	err     error         // what Serve returned
}

func dial(t testing.TB, s *Server) *raw {
	t.Helper()
	cli, srv := net.Pipe()
	r := &raw{t: t, c: cli, done: make(chan struct{})}
	go func() {
		r.err = s.Serve(srv)
		close(r.done)
	}()
	t.Cleanup(func() {
		cli.Close()
		<-r.done
	})
	return r
}

// send writes bytes as they are.
func (r *raw) send(b []byte) {
	r.t.Helper()
	if _, err := r.c.Write(b); err != nil {
		r.t.Fatalf("send: %v", err)
	}
}

// recv reads one whole message's bytes.
func (r *raw) recv() []byte {
	r.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var n [4]byte
	if _, err := io.ReadFull(r.c, n[:]); err != nil {
		r.t.Fatalf("recv: %v", err)
	}
	b := make([]byte, binary.LittleEndian.Uint32(n[:]))
	copy(b, n[:])
	if _, err := io.ReadFull(r.c, b[4:]); err != nil {
		r.t.Fatalf("recv: %v", err)
	}
	return b
}

// rpc sends m and returns the decoded reply.
func (r *raw) rpc(m *Msg) *Msg {
	r.t.Helper()
	d := r.dialect
	if d == NoDialect {
		d = Plan9 // to send messages before Tversion
	}
	b, err := m.Marshal(d, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	r.send(b)
	return r.reply(m.Tag)
}

// reply reads and decodes one reply, which must carry tag.
func (r *raw) reply(tag uint16) *Msg {
	r.t.Helper()
	d := r.dialect
	b := r.recv()
	if b[4] == Rversion {
		d = NoDialect
	}
	m, err := Unmarshal(d, b)
	if err != nil {
		r.t.Fatalf("reply %x: %v", b, err)
	}
	if m.Tag != tag {
		r.t.Fatalf("reply %v has tag %d, want %d", m, m.Tag, tag)
	}
	return m
}

// Rversion is Tversion's reply type.
const Rversion = Tversion + 1

// version negotiates dialect d ("9P2000" or "9P2000.L") and msize.
func (r *raw) version(d Dialect, msize uint32) *Msg {
	r.t.Helper()
	m := r.rpc(&Msg{Type: Tversion, Tag: NoTag, Msize: msize, Version: d.String()})
	if m.Type != Rversion || m.Version != d.String() {
		r.t.Fatalf("Tversion: %v", m)
	}
	r.dialect = d
	return m
}

// ok sends m and fails unless the reply is m's R-message.
func (r *raw) ok(m *Msg) *Msg {
	r.t.Helper()
	rep := r.rpc(m)
	if rep.Type != m.Type+1 {
		r.t.Fatalf("%v: got %v", m, rep)
	}
	return rep
}

// fails sends m and fails unless the reply is an error with errno e
// (9P2000.L) or e's text (9P2000); it returns the reply.
func (r *raw) fails(m *Msg, e syscall.Errno) *Msg {
	r.t.Helper()
	rep := r.rpc(m)
	switch {
	case rep.Type == Rlerror && syscall.Errno(rep.Ecode) == e:
	case rep.Type == Rerror && (e == 0 || rep.Ename == e.Error()):
	default:
		r.t.Fatalf("%v: got %v, want error %v (%d)", m, rep, e, e)
	}
	return rep
}

// attachL negotiates 9P2000.L and attaches fid 0 as user uid to aname.
func (r *raw) attachL(uid uint32, aname string) {
	r.t.Helper()
	r.version(Linux, 65536)
	r.ok(&Msg{Type: Tattach, Fid: 0, Afid: NoFid, Aname: aname, NUname: uid})
}

// closed reports whether the server ended the conversation, with its error.
func (r *raw) closed() error {
	r.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := r.c.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
		r.t.Fatalf("connection still open: read %d, %v", n, err)
	}
	<-r.done
	return r.err
}

// msg builds a message from raw body bytes, to send malformed ones.
func msg(typ uint8, tag uint16, body ...[]byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, 0)
	b = append(b, typ)
	b = binary.LittleEndian.AppendUint16(b, tag)
	b = append(b, bytes.Join(body, nil)...)
	binary.LittleEndian.PutUint32(b, uint32(len(b)))
	return b
}

// must fails the test on an error of setting it up.
func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
