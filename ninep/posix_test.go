package ninep

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"9fans.net/go/plan9"

	"github.com/cowfs/cowfs"
	"github.com/cowfs/cowfs/store/mem"
)

// clockServer is newServer with a clock the test moves, and atime mode.
func clockServer(t *testing.T, mode cowfs.AtimeMode) (*Server, func(time.Time)) {
	t.Helper()
	var mu sync.Mutex
	now := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	f, err := cowfs.Open(mem.New(), &cowfs.Options{Atime: mode, Now: func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}})
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
	return &Server{FS: f}, func(t time.Time) { mu.Lock(); now = t; mu.Unlock() }
}

// signed is a Timespec's seconds as Linux's client reads them.
func signed(ts Timespec) (int64, uint64) { return int64(ts.Sec), ts.Nsec }

// TestTimes9P: Tsetattr's times (u64 seconds that Linux reads as signed,
// and nanoseconds) come back exactly from Tgetattr, before 1970 with
// nanoseconds and from year 1 to 2486 and past included, also from a
// snapshot; nanoseconds of a second or more are EINVAL. 9P2000's stat,
// whose times are unsigned 32-bit seconds, shows a time before 1970 as 0
// and one after 2106-02-07T06:28:15Z as that second.
func TestTimes9P(t *testing.T) {
	s := newServer(t)
	v, _ := s.FS.Volume("main")
	r := dial(t, s)
	r.attachL(0, "")
	cases := []struct{ asec, ansec, msec, mnsec int64 }{
		{-1 << 31, 1, -1 << 31, 999999999}, // 1901
		{-315619200, 123456789, -315619200, 0},
		{-1, 999999999, 0, 0},
		{9223372037, 0, 16299260415, 999999999},   // past 2262, 2486
		{-9223372037, 145224191, -62135596800, 0}, // before 1678, year 1
		{1<<32 + 5, 7, 1 << 31, 0},                // past 2106, 2038
	}
	for i, c := range cases {
		name := fmt.Sprintf("f%d", i)
		r.ok(&Msg{Type: Twalk, Fid: 0, Newfid: 1})
		r.ok(&Msg{Type: Tlcreate, Fid: 1, Name: name, Flags: syscall.O_WRONLY, Mode: 0o644})
		r.ok(&Msg{Type: Tsetattr, Fid: 1, Attr: Attr{Valid: setattrAtime | setattrMtime | setattrAtSet | setattrMtSet,
			Atime: Timespec{uint64(c.asec), uint64(c.ansec)}, Mtime: Timespec{uint64(c.msec), uint64(c.mnsec)}}})
		r.ok(&Msg{Type: Tclunk, Fid: 1})
		r.ok(&Msg{Type: Twalk, Fid: 0, Newfid: 1, Names: []string{name}})
		a := r.ok(&Msg{Type: Tgetattr, Fid: 1, Mask: attrBasic}).Attr
		r.ok(&Msg{Type: Tclunk, Fid: 1})
		as, ans := signed(a.Atime)
		ms, mns := signed(a.Mtime)
		if as != c.asec || ans != uint64(c.ansec) || ms != c.msec || mns != uint64(c.mnsec) {
			t.Errorf("%s: Rgetattr atime %d.%09d mtime %d.%09d, want %d.%09d %d.%09d", name, as, ans, ms, mns, c.asec, c.ansec, c.msec, c.mnsec)
		}
	}
	r.ok(&Msg{Type: Twalk, Fid: 0, Newfid: 1, Names: []string{"f0"}})
	r.fails(&Msg{Type: Tsetattr, Fid: 1, Attr: Attr{Valid: setattrMtime | setattrMtSet, Mtime: Timespec{0, 1e9}}}, syscall.EINVAL)
	r.ok(&Msg{Type: Tsetattr, Fid: 1, Attr: Attr{Valid: setattrMtime | setattrMtSet, Mtime: Timespec{math.MaxInt64, 0}}})
	if a := r.ok(&Msg{Type: Tgetattr, Fid: 1, Mask: attrBasic}).Attr; int64(a.Mtime.Sec) != cowfs.MaxTime.Unix() {
		t.Errorf("a time past what cowfs keeps: %d s, want the end of the range, %d", int64(a.Mtime.Sec), cowfs.MaxTime.Unix())
	}
	r.ok(&Msg{Type: Tsetattr, Fid: 1, Attr: Attr{Valid: setattrMtime | setattrMtSet, Mtime: Timespec{uint64(cases[0].msec), uint64(cases[0].mnsec)}}})
	r.ok(&Msg{Type: Tclunk, Fid: 1})

	if err := v.Snapshot("s"); err != nil {
		t.Fatal(err)
	}
	for i, c := range cases {
		r.ok(&Msg{Type: Twalk, Fid: 0, Newfid: 1, Names: []string{".cowfs", "snapshots", "s", fmt.Sprintf("f%d", i)}})
		a := r.ok(&Msg{Type: Tgetattr, Fid: 1, Mask: attrBasic}).Attr
		r.ok(&Msg{Type: Tclunk, Fid: 1})
		if as, ans := signed(a.Atime); as != c.asec || ans != uint64(c.ansec) {
			t.Errorf("f%d in a snapshot: atime %d.%09d, want %d.%09d", i, as, ans, c.asec, c.ansec)
		}
	}

	p := dial(t, s)
	p.version(Plan9, 8192)
	p.ok(&Msg{Type: Tattach, Afid: NoFid, Uname: "0"})
	for i, want := range [][2]uint32{{0, 0}, {0, 0}, {0, 0}, {math.MaxUint32, math.MaxUint32}, {0, 0}, {math.MaxUint32, 1 << 31}} {
		p.ok(&Msg{Type: Twalk, Fid: 0, Newfid: 1, Names: []string{fmt.Sprintf("f%d", i)}})
		d, err := plan9.UnmarshalDir(p.ok(&Msg{Type: Tstat, Fid: 1}).Stat)
		if err != nil {
			t.Fatal(err)
		}
		p.ok(&Msg{Type: Tclunk, Fid: 1})
		if d.Atime != want[0] || d.Mtime != want[1] {
			t.Errorf("f%d over 9P2000: atime %d mtime %d, want %d %d", i, d.Atime, d.Mtime, want[0], want[1])
		}
	}
}

// xattrSet sets attribute name of path to value over 9P2000.L, writing it
// in pieces that fit the connection's 64 KiB messages, and returns the
// error of Txattrcreate or of the clunk, which sets it.
func (c *aclClient) xattrSet(name string, value []byte, flags uint32, names ...string) syscall.Errno {
	c.t.Helper()
	fid := c.walk(names...)
	if m := c.rpc(&Msg{Type: Txattrcreate, Fid: fid, Name: name, Size: uint64(len(value)), Flags: flags}); m.Type == Rlerror {
		c.rpc(&Msg{Type: Tclunk, Fid: fid})
		return syscall.Errno(m.Ecode)
	}
	for off := 0; off < len(value); off += 32 << 10 {
		c.ok(&Msg{Type: Twrite, Fid: fid, Offset: uint64(off), Data: value[off:min(len(value), off+32<<10)]})
	}
	if m := c.rpc(&Msg{Type: Tclunk, Fid: fid}); m.Type == Rlerror {
		return syscall.Errno(m.Ecode)
	}
	return 0
}

// xattrGet reads attribute name of path (the list of names if name is
// ""), in pieces.
func (c *aclClient) xattrGet(name string, names ...string) ([]byte, syscall.Errno) {
	c.t.Helper()
	fid := c.walk(names...)
	defer c.rpc(&Msg{Type: Tclunk, Fid: fid})
	c.next++
	m := c.rpc(&Msg{Type: Txattrwalk, Fid: fid, Newfid: c.next, Name: name})
	if m.Type == Rlerror {
		return nil, syscall.Errno(m.Ecode)
	}
	defer c.rpc(&Msg{Type: Tclunk, Fid: c.next})
	var out []byte
	for uint64(len(out)) < m.Size {
		d := c.ok(&Msg{Type: Tread, Fid: c.next, Offset: uint64(len(out)), Count: 32 << 10}).Data
		if len(d) == 0 {
			break
		}
		out = append(out, d...)
	}
	if uint64(len(out)) != m.Size {
		c.t.Fatalf("xattr %s: read %d bytes of %d", name, len(out), m.Size)
	}
	return out, 0
}

// TestXattrs9P: values of 64 KiB through Txattrcreate (a tiny value
// replaced by a large one with XATTR_REPLACE too), E2BIG past it, ERANGE
// for a long name, a list of 64 KiB of names, ENOSPC past it.
func TestXattrs9P(t *testing.T) {
	s := newServer(t)
	v, _ := s.FS.Volume("main")
	if err := v.WriteFile("f", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	c := newACLClient(t, s, 0)
	big := bytes.Repeat([]byte("0123456789abcdef"), 4096)
	for _, st := range []struct {
		name  string
		value []byte
		flags uint32
		want  syscall.Errno
	}{
		{"user.big", big, 0, 0},
		{"user.big2", append(big, 'x'), 0, syscall.E2BIG},
		{"user.tiny", []byte("t"), 0, 0},
		{"user.tiny", big, cowfs.XattrReplace, 0},
		{"user.none", big, cowfs.XattrReplace, syscall.ENODATA},
		{"user.big", big, cowfs.XattrCreate, syscall.EEXIST},
		{"user." + strings.Repeat("n", 251), []byte("v"), 0, syscall.ERANGE},
	} {
		if e := c.xattrSet(st.name, st.value, st.flags, "f"); e != st.want {
			t.Errorf("set %.12s (%d bytes, flags %d): %v, want %v", st.name, len(st.value), st.flags, e, st.want)
		}
	}
	for _, name := range []string{"user.big", "user.tiny"} {
		if got, e := c.xattrGet(name, "f"); e != 0 || !bytes.Equal(got, big) {
			t.Errorf("get %s: %d bytes, %v", name, len(got), e)
		}
	}
	if _, e := c.xattrGet("user."+strings.Repeat("n", 251), "f"); e != syscall.ERANGE {
		t.Errorf("get of a 256-byte name: %v, want ERANGE", e)
	}
	if err := v.WriteFile("g", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var list []byte
	for i := range 256 {
		name := fmt.Sprintf("user.%03d%s", i, strings.Repeat("n", 255-8))
		if e := c.xattrSet(name, big[:i+1], 0, "g"); e != 0 {
			t.Fatalf("set %s: %v", name[:8], e)
		}
		list = append(append(list, name...), 0)
	}
	if got, e := c.xattrGet("", "g"); e != 0 || !bytes.Equal(got, list) {
		t.Errorf("the list of 64 KiB of names: %d bytes, %v", len(got), e)
	}
	if e := c.xattrSet("user.more", []byte("v"), 0, "g"); e != syscall.ENOSPC {
		t.Errorf("a name past a 64 KiB list: %v, want ENOSPC", e)
	}
}

// TestRelatime9P: Tread and Treaddir update the access time as relatime
// says; a snapshot's stays.
func TestRelatime9P(t *testing.T) {
	s, set := clockServer(t, cowfs.Relatime)
	t0 := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	v, _ := s.FS.Volume("main")
	if err := v.WriteFile("f", []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := v.Mkdir("d", 0o755); err != nil {
		t.Fatal(err)
	}
	r := dial(t, s)
	r.attachL(0, "")
	atime := func(names ...string) time.Time {
		r.ok(&Msg{Type: Twalk, Fid: 0, Newfid: 9, Names: names})
		defer r.ok(&Msg{Type: Tclunk, Fid: 9})
		a := r.ok(&Msg{Type: Tgetattr, Fid: 9, Mask: attrBasic}).Attr.Atime
		return time.Unix(int64(a.Sec), int64(a.Nsec))
	}
	read := func(names ...string) {
		r.ok(&Msg{Type: Twalk, Fid: 0, Newfid: 8, Names: names})
		r.ok(&Msg{Type: Tlopen, Fid: 8, Flags: syscall.O_RDONLY})
		if names[len(names)-1] == "d" {
			r.ok(&Msg{Type: Treaddir, Fid: 8, Count: 4096})
		} else {
			r.ok(&Msg{Type: Tread, Fid: 8, Count: 100})
		}
		r.ok(&Msg{Type: Tclunk, Fid: 8})
	}
	for _, p := range []string{"f", "d"} {
		t1 := t0.Add(time.Second)
		set(t1)
		read(p)
		if a := atime(p); !a.Equal(t1) {
			t.Errorf("%s: atime %v after a read with atime = mtime, want %v", p, a, t1)
		}
		set(t0.Add(2 * time.Second))
		read(p)
		if a := atime(p); !a.Equal(t1) {
			t.Errorf("%s: atime %v after a second read, want %v", p, a, t1)
		}
		t2 := t0.Add(time.Second + 24*time.Hour)
		set(t2)
		read(p)
		if a := atime(p); !a.Equal(t2) {
			t.Errorf("%s: atime %v after a read a day later, want %v", p, a, t2)
		}
		set(t0)
	}
	if err := v.Snapshot("s"); err != nil {
		t.Fatal(err)
	}
	before := atime(".cowfs", "snapshots", "s", "f")
	set(t0.Add(72 * time.Hour)) // two days after the last read: due, were it not a snapshot
	read(".cowfs", "snapshots", "s", "f")
	if a := atime(".cowfs", "snapshots", "s", "f"); !a.Equal(before) {
		t.Errorf("a read of a snapshot's file moved its atime from %v to %v", before, a)
	}
}
