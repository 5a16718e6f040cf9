package ninep

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"syscall"
	"testing"
)

func u32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

// TestVersionNegotiation: messages before Tversion are refused without
// ending the conversation; msize is the smaller of the two, and under
// MinMsize is refused; unknown versions get "unknown"; 9P2000.u gets
// 9P2000; a new Tversion clunks every fid.
func TestVersionNegotiation(t *testing.T) {
	s := newServer(t)
	s.Msize = 16384 + 24
	r := dial(t, s)
	rep := r.rpc(&Msg{Type: Twalk, Tag: 1, Fid: 0, Newfid: 1})
	if rep.Type != Rerror || !strings.Contains(rep.Ename, "before Tversion") {
		t.Fatalf("walk before version: %v", rep)
	}
	if rep := r.rpc(&Msg{Type: Tversion, Tag: NoTag, Msize: 100, Version: "9P2000.L"}); rep.Type != Rerror {
		t.Errorf("msize 100: %v", rep)
	}
	if rep := r.rpc(&Msg{Type: Tversion, Tag: NoTag, Msize: 8192, Version: "styx"}); rep.Version != "unknown" {
		t.Errorf("unknown version: %v", rep)
	}
	if rep := r.rpc(&Msg{Type: Tversion, Tag: NoTag, Msize: 8192, Version: "9P2000.u"}); rep.Version != "9P2000" || rep.Msize != 8192 {
		t.Errorf("9P2000.u: %v", rep)
	}
	if rep := r.version(Linux, 1<<20); rep.Msize != s.Msize {
		t.Errorf("msize %d, want the server's %d", rep.Msize, s.Msize)
	}
	r.ok(&Msg{Type: Tattach, Fid: 7, Afid: NoFid, NUname: 0})
	r.version(Linux, 8192)
	r.fails(&Msg{Type: Tgetattr, Tag: 2, Fid: 7, Mask: attrBasic}, syscall.EBADF)
}

// TestMsizeEnforced: a message longer than msize is skipped and answered
// with EMSGSIZE, and the conversation goes on; reads never return more
// than msize allows.
func TestMsizeEnforced(t *testing.T) {
	s := newServer(t)
	r := dial(t, s)
	r.attachL(0, "")
	r.ok(&Msg{Type: Twalk, Fid: 0, Newfid: 1})
	r.ok(&Msg{Type: Tlcreate, Fid: 1, Name: "f", Flags: syscall.O_RDWR, Mode: 0o644, Gid: 0})
	big := bytes.Repeat([]byte("x"), 70000)
	r.fails(&Msg{Type: Twrite, Tag: 3, Fid: 1, Data: big}, syscall.EMSGSIZE)
	w := r.ok(&Msg{Type: Twrite, Tag: 4, Fid: 1, Data: big[:65536-24]})
	w2 := r.ok(&Msg{Type: Twrite, Tag: 4, Fid: 1, Offset: uint64(w.Count), Data: big[:65536-24]})
	if w.Count != 65536-24 || w2.Count != w.Count {
		t.Fatalf("writes: %d, %d", w.Count, w2.Count)
	}
	rd := r.ok(&Msg{Type: Tread, Tag: 5, Fid: 1, Count: 1 << 30})
	if len(rd.Data) != 65536-24 {
		t.Errorf("read of 1 GiB returned %d bytes, want msize-24", len(rd.Data))
	}
	// A declared size of 4 GiB is still framing: the server reads past it.
	// Here a smaller oversized message is followed by a good one.
	b := msg(Tclunk, 9, u32(1), make([]byte, 70000))
	r.send(b)
	if rep := r.reply(9); rep.Type != Rlerror || syscall.Errno(rep.Ecode) != syscall.EMSGSIZE {
		t.Fatalf("oversized clunk: %v", rep)
	}
	r.ok(&Msg{Type: Tclunk, Tag: 10, Fid: 1})
}

// TestMalformedMessages: every malformed, unknown or misplaced message is
// answered with an error and the conversation goes on.
func TestMalformedMessages(t *testing.T) {
	s := newServer(t)
	r := dial(t, s)
	r.attachL(0, "")
	names := make([]string, 17)
	for i := range names {
		names[i] = "a"
	}
	cases := []struct {
		name string
		b    []byte
		want syscall.Errno
	}{
		{"truncated walk", msg(Twalk, 1, u32(0), u32(1), []byte{1, 0, 5, 0, 'a'}), syscall.EINVAL},
		{"bytes after clunk", msg(Tclunk, 1, u32(5), []byte{0}), syscall.EINVAL},
		{"short clunk", msg(Tclunk, 1, []byte{1, 2}), syscall.EINVAL},
		{"walk of 17 names", walk17(names), syscall.EINVAL},
		{"unknown type", msg(200, 1, u32(0)), syscall.EOPNOTSUPP},
		{"9P2000 Tstat in 9P2000.L", msg(Tstat, 1, u32(0)), syscall.EOPNOTSUPP},
		{"a reply", msg(Tclunk+1, 1), syscall.EPROTO},
		{"count past the data", msg(Twrite, 1, u32(0), make([]byte, 8), u32(100), []byte("abc")), syscall.EINVAL},
	}
	for _, c := range cases {
		r.send(c.b)
		rep := r.reply(1)
		if rep.Type != Rlerror || syscall.Errno(rep.Ecode) != c.want {
			t.Errorf("%s: got %v, want Rlerror %v", c.name, rep, c.want)
		}
	}
	// The conversation is intact.
	r.ok(&Msg{Type: Tgetattr, Tag: 2, Fid: 0, Mask: attrBasic})
}

func walk17(names []string) []byte {
	b := msg(Twalk, 1, u32(0), u32(1), []byte{byte(len(names)), 0})
	for _, n := range names {
		b = append(b, byte(len(n)), 0)
		b = append(b, n...)
	}
	binary.LittleEndian.PutUint32(b, uint32(len(b)))
	return b
}

// TestFidErrors: unknown fids, reused fids and walks from open fids are
// refused; Tremove clunks even when it fails; Tflush is answered.
func TestFidErrors(t *testing.T) {
	s := newServer(t)
	r := dial(t, s)
	r.attachL(0, "")
	r.fails(&Msg{Type: Tattach, Fid: 0, Afid: NoFid, NUname: 0}, syscall.EBADF)
	r.fails(&Msg{Type: Tattach, Fid: 1, Afid: 5, NUname: 0}, syscall.EBADF)
	r.fails(&Msg{Type: Tgetattr, Fid: 9, Mask: attrBasic}, syscall.EBADF)
	r.fails(&Msg{Type: Twalk, Fid: 9, Newfid: 10}, syscall.EBADF)
	r.ok(&Msg{Type: Twalk, Fid: 0, Newfid: 1})
	r.fails(&Msg{Type: Twalk, Fid: 0, Newfid: 1}, syscall.EBADF)
	r.ok(&Msg{Type: Tlopen, Fid: 1, Flags: syscall.O_RDONLY})
	r.fails(&Msg{Type: Twalk, Fid: 1, Newfid: 1, Names: []string{"x"}}, syscall.EBUSY)
	r.fails(&Msg{Type: Tlopen, Fid: 1, Flags: syscall.O_RDONLY}, syscall.EBADF)
	r.fails(&Msg{Type: Twalk, Fid: 0, Newfid: 2, Names: []string{"missing"}}, syscall.ENOENT)
	r.fails(&Msg{Type: Twalk, Fid: 0, Newfid: 2, Names: []string{"a/b"}}, syscall.EINVAL)
	r.fails(&Msg{Type: Tremove, Fid: 0}, syscall.EPERM) // the root; fid 0 is clunked
	r.fails(&Msg{Type: Tclunk, Fid: 0}, syscall.EBADF)
	r.ok(&Msg{Type: Tflush, Tag: 3, Oldtag: 2})
	r.fails(&Msg{Type: Tauth, Afid: 4, NUname: 0}, syscall.ENOENT)
	r.fails(&Msg{Type: Tlock, Fid: 1}, syscall.ENOLCK)
}

// TestBrokenFraming: a size field under 7 ends the conversation, and
// so does a message cut short by the end of input.
func TestBrokenFraming(t *testing.T) {
	s := newServer(t)
	r := dial(t, s)
	r.attachL(0, "")
	r.send([]byte{3, 0, 0, 0})
	if err := r.closed(); !errors.Is(err, errFraming) {
		t.Errorf("Serve: %v, want a framing error", err)
	}
	r = dial(t, s)
	r.attachL(0, "")
	r.send(msg(Tclunk, 1, u32(0))[:9])
	r.c.Close()
	if <-r.done; !errors.Is(r.err, errFraming) {
		t.Errorf("Serve: %v, want a framing error", r.err)
	}
}

// TestSnapshotsReadOnly: writes to a snapshot fail with EROFS, both when
// it is attached as VOLUME@SNAPSHOT and through .cowfs/snapshots/.
func TestSnapshotsReadOnly(t *testing.T) {
	s := newServer(t)
	v, _ := s.FS.Volume("main")
	if err := v.WriteFile("f", []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := v.Snapshot("s1"); err != nil {
		t.Fatal(err)
	}
	if err := v.WriteFile("f", []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := dial(t, s)
	r.attachL(0, "main@s1")
	r.ok(&Msg{Type: Tattach, Fid: 100, Afid: NoFid, NUname: 0, Aname: "main"})
	r.ok(&Msg{Type: Twalk, Fid: 100, Newfid: 101, Names: []string{".cowfs", "snapshots", "s1"}})
	for _, root := range []uint32{0, 101} {
		r.ok(&Msg{Type: Twalk, Fid: root, Newfid: 1, Names: []string{"f"}})
		r.fails(&Msg{Type: Tlopen, Fid: 1, Flags: syscall.O_WRONLY}, syscall.EROFS)
		r.fails(&Msg{Type: Tsetattr, Fid: 1, Attr: Attr{Valid: attrMode, Mode: 0o600}}, syscall.EROFS)
		r.ok(&Msg{Type: Tlopen, Fid: 1, Flags: syscall.O_RDONLY})
		if rd := r.ok(&Msg{Type: Tread, Fid: 1, Count: 100}); string(rd.Data) != "old" {
			t.Errorf("snapshot reads %q", rd.Data)
		}
		r.ok(&Msg{Type: Tclunk, Fid: 1})
		r.fails(&Msg{Type: Tmkdir, Dfid: root, Name: "d", Mode: 0o755}, syscall.EROFS)
		r.fails(&Msg{Type: Tunlinkat, Fid: root, Name: "f"}, syscall.EROFS)
	}
}
