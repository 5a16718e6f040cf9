package ninep

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"9fans.net/go/plan9"
	"9fans.net/go/plan9/client"

	"github.com/cowfs/cowfs/internal/logtest"
)

// TestLogHandlerPanic: a handler's panic is logged once, at Error, with the
// request type, the panic value and the stack; the request is answered EIO
// and the conversation goes on.
func TestLogHandlerPanic(t *testing.T) {
	var rec logtest.Recorder
	s := newServer(t)
	s.Logger = rec.Logger()
	s.panicOn = Tstatfs
	r := dial(t, s)
	r.attachL(0, "")
	r.fails(&Msg{Type: Tstatfs, Fid: 0}, syscall.EIO)
	r.ok(&Msg{Type: Tgetattr, Fid: 0, Mask: attrBasic})
	r.c.Close()
	<-r.done
	recs := rec.Records(slog.LevelDebug)
	if len(recs) != 1 {
		t.Fatalf("%d records, want 1: %v", len(recs), recs)
	}
	rc := recs[0]
	stack, _ := rc.Attrs["stack"].(string)
	if rc.Level != slog.LevelError || rc.Attrs["op"] != "Tstatfs" || rc.Attrs["panic"] != "panicOn is set" ||
		!strings.Contains(stack, "ninep.(*conn).serve") {
		t.Errorf("record %v: want an Error with op Tstatfs, the panic value and a stack through conn.serve", rc)
	}
}

// TestLogBrokenConnection: a connection that ends in a broken frame, or
// inside a message, is logged once each, at Warn, with the client's
// address and the error.
func TestLogBrokenConnection(t *testing.T) {
	var rec logtest.Recorder
	s := newServer(t)
	s.Logger = rec.Logger()
	addr, stop := serveOn(t, s)
	var clients []string
	for _, send := range [][]byte{
		{3, 0, 0, 0},               // a size field under 7
		msg(Tclunk, 1, u32(0))[:9], // cut short by the client hanging up
	} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c.LocalAddr().String())
		if _, err := c.Write(send); err != nil {
			t.Fatal(err)
		}
		if tc, ok := c.(*net.TCPConn); ok && len(send) > 4 {
			tc.CloseWrite()
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil {
			t.Errorf("connection still open after %x: read %d, %v", send, n, err)
		}
		c.Close()
	}
	stop()
	recs := rec.Records(slog.LevelDebug)
	if len(recs) != len(clients) {
		t.Fatalf("%d records, want %d: %v", len(recs), len(clients), recs)
	}
	for i, rc := range recs {
		err, _ := rc.Attrs["err"].(error)
		if rc.Level != slog.LevelWarn || rc.Attrs["remote"] != clients[i] || !errors.Is(err, errFraming) {
			t.Errorf("record %v: want a Warn with remote %s and a framing error", rc, clients[i])
		}
	}
}

// TestLogQuietNormalRun: many requests over 9P2000 and 9P2000.L, some
// answered with errors (the client's to handle), clients that hang up
// cleanly, and connections the server closes itself (as serve does at
// shutdown): nothing is logged at the default level.
func TestLogQuietNormalRun(t *testing.T) {
	var rec logtest.Recorder
	s := newServer(t)
	s.Logger = rec.Logger()
	addr, stop := serveOn(t, s)

	c, err := client.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := c.Attach(nil, "root", "")
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("cowfs "), 5000)
	for i := range 50 {
		name := "f" + strconv.Itoa(i)
		fid, err := fsys.Create(name, plan9.ORDWR, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fid.WriteAt(data, 0); err != nil {
			t.Fatal(err)
		}
		fid.Close()
		if got := readAll(t, fsys, name); !bytes.Equal(got, data) {
			t.Fatalf("%s: read back %d bytes", name, len(got))
		}
		if _, err := fsys.Stat(name); err != nil {
			t.Fatal(err)
		}
		if _, err := fsys.Open("missing"+name, plan9.OREAD); err == nil {
			t.Fatal("open of a missing file succeeded")
		}
		if i%2 == 0 {
			if err := fsys.Remove(name); err != nil {
				t.Fatal(err)
			}
		}
	}
	c.Close()

	r := dial(t, s)
	r.attachL(0, "")
	r.ok(&Msg{Type: Twalk, Fid: 0, Newfid: 1, Names: []string{"f1"}})
	r.ok(&Msg{Type: Tlopen, Fid: 1, Flags: syscall.O_RDONLY})
	for off := uint64(0); off < uint64(len(data)); off += 4096 {
		r.ok(&Msg{Type: Tread, Fid: 1, Offset: off, Count: 4096})
	}
	r.fails(&Msg{Type: Twalk, Fid: 0, Newfid: 2, Names: []string{"missing"}}, syscall.ENOENT)
	r.fails(&Msg{Type: Tlock, Fid: 1}, syscall.ENOLCK)
	r.send(msg(200, 9)) // an unknown type is answered, not fatal
	if m := r.reply(9); m.Type != Rlerror {
		t.Fatalf("unknown type answered %v", m)
	}
	r.ok(&Msg{Type: Tclunk, Fid: 1})
	r.c.Close()
	<-r.done

	// The server closes the connection under a client, as serve does on
	// SIGTERM.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cli, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error)
	go func() { served <- s.Serve(sc) }()
	sc.Close()
	if err := <-served; err != nil {
		t.Errorf("Serve of a connection the server closed: %v, want nil", err)
	}

	stop()
	if recs := rec.Records(slog.LevelInfo); len(recs) != 0 {
		t.Errorf("a normal run logged %d records: %v", len(recs), recs)
	}
}
