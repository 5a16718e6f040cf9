package ninep

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"

	"9fans.net/go/plan9"

	"github.com/cowfs/cowfs"
)

// TestRenameOpenLinux: a file renamed while a fid has it open, and the
// directory holding an open fid and an unopened one renamed and moved,
// keep working through the old fids (9P2000.L).
func TestRenameOpenLinux(t *testing.T) {
	s := newServer(t)
	v, _ := s.FS.Volume("main")
	must(t, v.Mkdir("d", 0o755))
	must(t, v.Mkdir("other", 0o755))
	must(t, v.WriteFile("d/f", []byte("hello"), 0o644))
	r := dial(t, s)
	r.attachL(0, "")
	r.ok(&Msg{Type: Twalk, Fid: 0, Newfid: 1, Names: []string{"d", "f"}})
	r.ok(&Msg{Type: Tlopen, Fid: 1, Flags: syscall.O_RDWR})
	r.ok(&Msg{Type: Twalk, Fid: 0, Newfid: 2, Names: []string{"d"}})
	r.ok(&Msg{Type: Twalk, Fid: 0, Newfid: 3, Names: []string{"d"}})
	r.ok(&Msg{Type: Tlopen, Fid: 3, Flags: syscall.O_RDONLY | syscall.O_DIRECTORY})
	r.ok(&Msg{Type: Twalk, Fid: 0, Newfid: 4, Names: []string{"other"}})

	// The open file is renamed by its own fid (Trename), then its
	// directory is moved by name (Trenameat).
	r.ok(&Msg{Type: Trename, Fid: 1, Dfid: 2, Name: "g"})
	r.ok(&Msg{Type: Trenameat, Fid: 0, Name: "d", Dfid: 4, NewName: "e"})
	r.ok(&Msg{Type: Twrite, Fid: 1, Offset: 5, Data: []byte(" world")})
	if rd := r.ok(&Msg{Type: Tread, Fid: 1, Count: 100}); string(rd.Data) != "hello world" {
		t.Errorf("read through the renamed file's fid: %q", rd.Data)
	}
	if a := r.ok(&Msg{Type: Tgetattr, Fid: 1, Mask: attrBasic}); a.Attr.Size != 11 {
		t.Errorf("getattr through the renamed file's fid: size %d", a.Attr.Size)
	}
	if got, err := v.ReadFile("other/e/g"); err != nil || string(got) != "hello world" {
		t.Errorf("other/e/g: %q, %v", got, err)
	}
	// The directory's fids still stand for it: walk, create, list.
	r.ok(&Msg{Type: Twalk, Fid: 2, Newfid: 5, Names: []string{"g"}})
	r.fails(&Msg{Type: Tlcreate, Fid: 5, Name: "x", Flags: syscall.O_WRONLY, Mode: 0o644}, syscall.ENOTDIR)
	r.ok(&Msg{Type: Tclunk, Fid: 5})
	r.ok(&Msg{Type: Tmkdir, Dfid: 2, Name: "sub", Mode: 0o755})
	if _, err := v.Lstat("other/e/sub"); err != nil {
		t.Errorf("mkdir through the moved directory's fid: %v", err)
	}
	rd := r.ok(&Msg{Type: Treaddir, Fid: 3, Count: 4096})
	if n := countDirents(t, rd.Data); n != 4 { // . .. g sub
		t.Errorf("readdir of the moved directory: %d entries, want 4", n)
	}
	// Removing the open file through its fid removes it where it is now.
	r.ok(&Msg{Type: Tremove, Fid: 1})
	if _, err := v.Lstat("other/e/g"); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("other/e/g after Tremove: %v", err)
	}
}

// countDirents counts the entries of a Rreaddir's data.
func countDirents(t *testing.T, b []byte) int {
	n := 0
	for len(b) > 0 {
		if len(b) < direntHeader {
			t.Fatalf("a dirent cut short: %x", b)
		}
		l := int(b[direntHeader-2]) | int(b[direntHeader-1])<<8
		b = b[direntHeader+l:]
		n++
	}
	return n
}

// TestRenameOpenPlan9: the same through 9P2000's Twstat: the open file
// and its directory renamed keep working through the old fids, and Tstat
// names them by their new names.
func TestRenameOpenPlan9(t *testing.T) {
	s := newServer(t)
	v, _ := s.FS.Volume("main")
	must(t, v.Mkdir("d", 0o755))
	must(t, v.WriteFile("d/f", []byte("hello"), 0o644))
	r := dial(t, s)
	r.version(Plan9, 8192)
	r.ok(&Msg{Type: Tattach, Afid: NoFid, Uname: "root"})
	r.ok(&Msg{Type: Twalk, Fid: 0, Newfid: 1, Names: []string{"d", "f"}})
	r.ok(&Msg{Type: Topen, Fid: 1, OMode: plan9.ORDWR})
	r.ok(&Msg{Type: Twalk, Fid: 0, Newfid: 2, Names: []string{"d"}})
	rename := func(fid uint32, name string) {
		t.Helper()
		d := wstatNull()
		d.Name = name
		st, _ := d.Bytes()
		r.ok(&Msg{Type: Twstat, Fid: fid, Stat: st})
	}
	rename(1, "g")
	rename(2, "e")
	r.ok(&Msg{Type: Twrite, Fid: 1, Offset: 5, Data: []byte("!")})
	if rd := r.ok(&Msg{Type: Tread, Fid: 1, Count: 100}); string(rd.Data) != "hello!" {
		t.Errorf("read through the renamed file's fid: %q", rd.Data)
	}
	for fid, want := range map[uint32]string{1: "g", 2: "e"} {
		st := r.ok(&Msg{Type: Tstat, Fid: fid})
		d, err := plan9.UnmarshalDir(st.Stat)
		if err != nil || d.Name != want {
			t.Errorf("stat of fid %d: %v, %v; want name %s", fid, d, err, want)
		}
	}
	if got, err := v.ReadFile("e/g"); err != nil || string(got) != "hello!" {
		t.Errorf("e/g: %q, %v", got, err)
	}
	r.ok(&Msg{Type: Twalk, Fid: 2, Newfid: 3, Names: []string{"g"}})
	r.ok(&Msg{Type: Tcreate, Fid: 2, Name: "new", Perm: 0o644, OMode: plan9.OWRITE})
	if _, err := v.Lstat("e/new"); err != nil {
		t.Errorf("create through the renamed directory's fid: %v", err)
	}
}

// TestClosedConnectionReleases: a connection that closes with fids open
// on a volume, and a request under way, releases them: the request's
// context ends and the volume is no longer busy.
func TestClosedConnectionReleases(t *testing.T) {
	s := newServer(t)
	v, err := s.FS.CreateVolume("v2")
	if err != nil {
		t.Fatal(err)
	}
	must(t, v.WriteFile("f", []byte("data"), 0o644))
	held := make(chan struct{})
	ended := make(chan error, 1)
	s.beforeServe = func(ctx context.Context, m *Msg) {
		if m.Type == Tread {
			close(held)
			<-ctx.Done()
			ended <- ctx.Err()
		}
	}
	r := dial(t, s)
	r.attachL(0, "v2")
	r.ok(&Msg{Type: Twalk, Fid: 0, Newfid: 1, Names: []string{"f"}})
	r.ok(&Msg{Type: Tlopen, Fid: 1, Flags: syscall.O_RDWR})
	r.ok(&Msg{Type: Twalk, Fid: 0, Newfid: 2})
	r.ok(&Msg{Type: Tlopen, Fid: 2, Flags: syscall.O_RDONLY})
	if err := s.FS.DeleteVolume("v2"); cowfs.Errno(err) != syscall.EBUSY {
		t.Fatalf("delete of a volume with a file open over 9P: %v, want EBUSY", err)
	}
	b, _ := (&Msg{Type: Tread, Tag: 7, Fid: 1, Count: 10}).Marshal(Linux, nil)
	r.send(b)
	<-held
	r.c.Close()
	select {
	case err := <-ended:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("the request's context ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("closing the connection did not cancel its request")
	}
	<-r.done
	if err := s.FS.DeleteVolume("v2"); err != nil {
		t.Errorf("delete after the connection closed: %v", err)
	}
}

// TestFlush: a Tflush cancels the request it names while that runs; its
// reply (EINTR) comes before Rflush. A Tflush of a request answered
// already, or of no request, gets Rflush alone.
func TestFlush(t *testing.T) {
	s := newServer(t)
	v, _ := s.FS.Volume("main")
	must(t, v.WriteFile("f", []byte("data"), 0o644))
	held := make(chan struct{}, 1)
	s.beforeServe = func(ctx context.Context, m *Msg) {
		if m.Type == Twrite {
			held <- struct{}{}
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Second):
			}
		}
	}
	r := dial(t, s)
	r.attachL(0, "")
	r.ok(&Msg{Type: Twalk, Fid: 0, Newfid: 1, Names: []string{"f"}})
	r.ok(&Msg{Type: Tlopen, Fid: 1, Flags: syscall.O_RDWR})
	b, _ := (&Msg{Type: Twrite, Tag: 5, Fid: 1, Data: []byte("new!")}).Marshal(Linux, nil)
	r.send(b)
	<-held
	b, _ = (&Msg{Type: Tflush, Tag: 6, Oldtag: 5}).Marshal(Linux, nil)
	r.send(b)
	if rep := r.reply(5); rep.Type != Rlerror || syscall.Errno(rep.Ecode) != syscall.EINTR {
		t.Errorf("flushed Twrite: %v, want EINTR", rep)
	}
	if rep := r.reply(6); rep.Type != Tflush+1 {
		t.Errorf("Tflush: %v", rep)
	}
	if got, _ := v.ReadFile("f"); string(got) != "data" {
		t.Errorf("the flushed write wrote: %q", got)
	}
	r.ok(&Msg{Type: Tflush, Tag: 8, Oldtag: 5})
	r.ok(&Msg{Type: Tflush, Tag: 9, Oldtag: 77})
}
