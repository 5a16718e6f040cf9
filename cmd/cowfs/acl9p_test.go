package main

import (
	"encoding/binary"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cowfs/cowfs"
	"github.com/cowfs/cowfs/acl"
	"github.com/cowfs/cowfs/ninep"
)

// wire9p is a bare 9P2000.L conversation over TCP, for the messages diod's
// tools do not send (xattrs).
type wire9p struct {
	t *testing.T
	c net.Conn
}

func dial9p(t *testing.T, addr string, uid uint32) *wire9p {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	w := &wire9p{t: t, c: c}
	w.rpc(&ninep.Msg{Type: ninep.Tversion, Tag: ninep.NoTag, Msize: 65536, Version: "9P2000.L"}, ninep.NoDialect)
	w.ok(&ninep.Msg{Type: ninep.Tattach, Fid: 0, Afid: ninep.NoFid, Aname: "main", NUname: uid})
	return w
}

// rpc sends m and returns the reply, decoded as dialect d.
func (w *wire9p) rpc(m *ninep.Msg, d ninep.Dialect) *ninep.Msg {
	w.t.Helper()
	send := d
	if send == ninep.NoDialect {
		send = ninep.Plan9
	}
	b, err := m.Marshal(send, nil)
	if err != nil {
		w.t.Fatal(err)
	}
	w.c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := w.c.Write(b); err != nil {
		w.t.Fatal(err)
	}
	var n [4]byte
	if _, err := io.ReadFull(w.c, n[:]); err != nil {
		w.t.Fatal(err)
	}
	rb := make([]byte, binary.LittleEndian.Uint32(n[:]))
	copy(rb, n[:])
	if _, err := io.ReadFull(w.c, rb[4:]); err != nil {
		w.t.Fatal(err)
	}
	r, err := ninep.Unmarshal(d, rb)
	if err != nil {
		w.t.Fatalf("reply % x: %v", rb, err)
	}
	return r
}

// ok sends m and fails the test unless it succeeds.
func (w *wire9p) ok(m *ninep.Msg) *ninep.Msg {
	w.t.Helper()
	r := w.rpc(m, ninep.Linux)
	if r.Type != m.Type+1 {
		w.t.Fatalf("%v: %v", m, r)
	}
	return r
}

// setxattr sets attribute name of path (one name below the root) as
// Linux's v9fs client does, and returns the errno of the clunk that
// applies it.
func (w *wire9p) setxattr(path, name string, value []byte) syscall.Errno {
	w.t.Helper()
	w.ok(&ninep.Msg{Type: ninep.Twalk, Fid: 0, Newfid: 1, Names: []string{path}})
	w.ok(&ninep.Msg{Type: ninep.Txattrcreate, Fid: 1, Name: name, Size: uint64(len(value))})
	w.ok(&ninep.Msg{Type: ninep.Twrite, Fid: 1, Data: value})
	if r := w.rpc(&ninep.Msg{Type: ninep.Tclunk, Fid: 1}, ninep.Linux); r.Type != ninep.Tclunk+1 {
		return syscall.Errno(r.Ecode)
	}
	return 0
}

// TestServeACLs: ACLs set over 9P2000.L's xattr messages to a real `cowfs
// serve` change the mode as Linux does, and diod's clients, attaching as
// another user, are let in and kept out exactly as the entries say.
func TestServeACLs(t *testing.T) {
	diodTool(t, "diodcat")
	store := storeWith(t, func(f *cowfs.FS) {
		vol, err := f.CreateVolume("main")
		must(t, err)
		must(t, vol.WriteFile("granted", []byte("for 4242\n"), 0o600))
		must(t, vol.WriteFile("denied", []byte("not for 4242\n"), 0o644))
		must(t, vol.WriteFile("masked", []byte("masked\n"), 0o600))
	})
	addr := freeAddr(t)
	d := startServe(t, store, addr)

	root := dial9p(t, addr, 0)
	entries := func(user, mask uint16) []byte {
		return acl.ACL{
			{Tag: acl.UserObj, Perm: 6},
			{Tag: acl.User, Perm: user, ID: 4242},
			{Tag: acl.GroupObj, Perm: 0},
			{Tag: acl.Mask, Perm: mask},
			{Tag: acl.Other, Perm: 4},
		}.Encode()
	}
	for _, c := range []struct {
		path       string
		user, mask uint16
	}{{"granted", 4, 4}, {"denied", 0, 4}, {"masked", 4, 0}} {
		if e := root.setxattr(c.path, acl.AccessXattr, entries(c.user, c.mask)); e != 0 {
			t.Fatalf("set %s's ACL: %v", c.path, e)
		}
	}
	if e := root.setxattr("granted", acl.AccessXattr, []byte{2, 0, 0, 0, 9}); e != syscall.EINVAL {
		t.Errorf("a malformed ACL: %v, want EINVAL", e)
	}
	for path, want := range map[string]string{"granted": "-rw-r--r--", "denied": "-rw-r--r--", "masked": "-rw----r--"} {
		out, errs, ok := runDiod(t, "diodls", addr, "-a", "main", "-l", path)
		if !ok || !strings.HasPrefix(out, want) {
			t.Errorf("diodls -l %s: %q %q, want mode %s", path, out, errs, want)
		}
	}
	out, errs, ok := runDiod(t, "diodcat", addr, "-a", "main", "-u", "4242", "granted")
	if !ok || out != "for 4242\n" {
		t.Errorf("diodcat -u 4242 granted: %v %q %q", ok, out, errs)
	}
	for _, p := range []string{"denied", "masked"} {
		// denied: the named entry takes other's r away; masked: the mask
		// of nothing leaves the mode, whose other bits allow reading.
		out, errs, ok = runDiod(t, "diodcat", addr, "-a", "main", "-u", "4242", p)
		if p == "denied" && (ok || !strings.Contains(errs, "Permission denied")) {
			t.Errorf("diodcat -u 4242 %s: %v %q %q; want Permission denied", p, ok, out, errs)
		}
		if p == "masked" && (!ok || out != "masked\n") {
			t.Errorf("diodcat -u 4242 %s: %v %q %q; want it read, by other's bits", p, ok, out, errs)
		}
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	if code := d.wait(t); code != 0 {
		t.Errorf("serve exited %d\n%s", code, d.stderr)
	}
}
