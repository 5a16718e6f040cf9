package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cowfs/cowfs"
	"github.com/cowfs/cowfs/store/mem"
)

// testServer is a Server on a fresh volume of an in-memory store, recording
// the paths its commands report as changed.
type testServer struct {
	*Server
	changed   []string
	snapshots int // calls of SnapshotsChanged
}

func newTestServer(t *testing.T) *testServer {
	t.Helper()
	f, err := cowfs.Open(mem.New(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	v, err := f.CreateVolume("v")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{}
	ts.Server = &Server{
		FS:               f,
		Vol:              v,
		Changed:          func(p string) { ts.changed = append(ts.changed, p) },
		SnapshotsChanged: func() { ts.snapshots++ },
	}
	return ts
}

// exec runs line and fails the test on an error.
func (ts *testServer) exec(t *testing.T, line string) string {
	t.Helper()
	r, err := ts.Exec(line)
	if err != nil {
		t.Fatalf("%q: %v", line, err)
	}
	return r
}

// randomBytes returns n bytes that do not compress or dedup.
func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func writeFile(t *testing.T, v *cowfs.Volume, p string, data []byte) {
	t.Helper()
	if err := v.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, v *cowfs.Volume, p string) []byte {
	t.Helper()
	b, err := v.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTokenize(t *testing.T) {
	tests := []struct {
		line string
		want []string
	}{
		{"", nil},
		{" \t\n", nil},
		{"sync\n", []string{"sync"}},
		{"clone  a\tb\r\n", []string{"clone", "a", "b"}},
		{"clone 'my file' 'it''s' ''", []string{"clone", "my file", "it's", ""}},
		{"a'b c'd", []string{"ab cd"}},
		{"''''", []string{"'"}},
		{"'line\nbreak'", []string{"line\nbreak"}},
		{"x'' y", []string{"x", "y"}},
	}
	for _, tc := range tests {
		got, err := Tokenize(tc.line)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("Tokenize(%q) = %q, %v, want %q", tc.line, got, err, tc.want)
		}
	}
	for _, line := range []string{"'", "clone 'a b", "'it''s"} {
		if _, err := Tokenize(line); cowfs.Errno(err) != syscall.EINVAL {
			t.Errorf("Tokenize(%q): %v, want EINVAL", line, err)
		}
	}
}

func TestQuote(t *testing.T) {
	for s, want := range map[string]string{
		"plain":     "plain",
		"a/b.txt":   "a/b.txt",
		"":          "''",
		"my file":   "'my file'",
		"it's":      "'it''s'",
		"tab\there": "'tab\there'",
		"nl\n":      "'nl\n'",
	} {
		if got := Quote(s); got != want {
			t.Errorf("Quote(%q) = %q, want %q", s, got, want)
		}
	}
}

// FuzzQuote checks that a line of quoted fields tokenizes back to the
// fields, whatever their bytes.
func FuzzQuote(f *testing.F) {
	for _, s := range []string{"", "a", "a b", "'", "''", "it's", " ' \n\t\r", "\x00\xff"} {
		f.Add(s, "x")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		line := Quote(a) + " " + Quote(b) + "\n"
		got, err := Tokenize(line)
		if err != nil || !slices.Equal(got, []string{a, b}) {
			t.Fatalf("Tokenize(%q) = %q, %v, want %q", line, got, err, []string{a, b})
		}
	})
}

func TestClone(t *testing.T) {
	ts := newTestServer(t)
	v := ts.Vol
	data := randomBytes(200_000, 1)
	writeFile(t, v, "a file", data)
	if r := ts.exec(t, "clone "+Quote("/a file")+" "+Quote("it's a copy")+"\n"); r != "" {
		t.Fatalf("clone replied %q, want nothing", r)
	}
	if !bytes.Equal(readFile(t, v, "it's a copy"), data) {
		t.Fatal("clone differs from its source")
	}
	// The clone is independent: writing either leaves the other alone.
	f, err := v.OpenFile("it's a copy", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("changed"), 1000); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if !bytes.Equal(readFile(t, v, "a file"), data) {
		t.Fatal("writing the clone changed the source")
	}
	if got := readFile(t, v, "it's a copy"); !bytes.Equal(got[1000:1007], []byte("changed")) || !bytes.Equal(got[1007:], data[1007:]) {
		t.Fatal("the clone does not hold what was written to it")
	}

	// A directory tree.
	if err := v.MkdirAll("d/sub", 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, v, "d/sub/x", []byte("x"))
	writeFile(t, v, "d/y", data[:5000])
	ts.exec(t, "clone d d2")
	if got := readFile(t, v, "d2/sub/x"); string(got) != "x" {
		t.Fatalf("d2/sub/x = %q", got)
	}
	if got := readFile(t, v, "d2/y"); !bytes.Equal(got, data[:5000]) {
		t.Fatal("d2/y differs from d/y")
	}
	writeFile(t, v, "d2/sub/x", []byte("new"))
	if got := readFile(t, v, "d/sub/x"); string(got) != "x" {
		t.Fatalf("writing d2/sub/x changed d/sub/x to %q", got)
	}
	// The whole volume, into a subdirectory of itself.
	ts.exec(t, "clone / whole")
	if got := readFile(t, v, "whole/d/sub/x"); string(got) != "x" {
		t.Fatalf("whole/d/sub/x = %q", got)
	}

	if want := []string{"it's a copy", "d2", "whole"}; !slices.Equal(ts.changed, want) {
		t.Fatalf("Changed got %q, want %q", ts.changed, want)
	}
}

func TestCopyRange(t *testing.T) {
	ts := newTestServer(t)
	v := ts.Vol
	src := randomBytes(100_000, 2)
	dst := randomBytes(3_000, 3)
	writeFile(t, v, "src", src)
	if err := v.Mkdir("dir", 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, v, "dir/dst file", dst)

	if r := ts.exec(t, "copyrange src 101 '/dir/dst file' 7 50000"); r != "50000\n" {
		t.Fatalf("copyrange replied %q, want \"50000\\n\"", r)
	}
	want := append(slices.Clone(dst[:7]), src[101:50101]...)
	if got := readFile(t, v, "dir/dst file"); !bytes.Equal(got, want) {
		t.Fatalf("dst holds %d bytes, not the expected %d", len(got), len(want))
	}
	// Past the end of the source it copies what there is.
	if r := ts.exec(t, "copyrange src 99990 src 0 1000"); r != "10\n" {
		t.Fatalf("short copyrange replied %q, want \"10\\n\"", r)
	}
	if got := readFile(t, v, "src"); !bytes.Equal(got[:10], src[99990:]) || !bytes.Equal(got[10:], src[10:]) {
		t.Fatal("copyrange within src copied the wrong bytes")
	}
	if want := []string{"dir/dst file", "src"}; !slices.Equal(ts.changed, want) {
		t.Fatalf("Changed got %q, want %q", ts.changed, want)
	}
}

func TestInsertCollapse(t *testing.T) {
	ts := newTestServer(t)
	v := ts.Vol
	data := randomBytes(10_000, 4)
	writeFile(t, v, "f", data)
	ts.exec(t, "insert f 1234 777")
	want := append(append(slices.Clone(data[:1234]), make([]byte, 777)...), data[1234:]...)
	if got := readFile(t, v, "f"); !bytes.Equal(got, want) {
		t.Fatalf("after insert: %d bytes, not the expected %d", len(got), len(want))
	}
	ts.exec(t, "collapse /f 1000 3001")
	want = append(slices.Clone(want[:1000]), want[4001:]...)
	if got := readFile(t, v, "f"); !bytes.Equal(got, want) {
		t.Fatalf("after collapse: %d bytes, not the expected %d", len(got), len(want))
	}
	if want := []string{"f", "f"}; !slices.Equal(ts.changed, want) {
		t.Fatalf("Changed got %q, want %q", ts.changed, want)
	}
	// A collapse reaching past the end of file changes nothing.
	if _, err := ts.Exec("collapse f 5000 100000"); cowfs.Errno(err) != syscall.EINVAL {
		t.Errorf("collapse past the end: %v, want EINVAL", err)
	}
	if _, err := ts.Exec("insert missing 0 1"); cowfs.Errno(err) != syscall.ENOENT {
		t.Errorf("insert into a missing file: %v, want ENOENT", err)
	}
	if got := readFile(t, v, "f"); !bytes.Equal(got, want) {
		t.Fatal("a refused command changed the file")
	}
}

func TestSnapshotFile(t *testing.T) {
	ts := newTestServer(t)
	writeFile(t, ts.Vol, "f", []byte("snapshot me"))
	if _, err := ts.Exec("snapshot-file f"); cowfs.Errno(err) != syscall.ENOTSUP {
		t.Errorf("snapshot-file without a frontend that serves views: %v, want ENOTSUP", err)
	}
	var got *cowfs.View
	ts.ServeView = func(v *cowfs.View, st *cowfs.Stat) (string, error) {
		got = v
		if st.Size != 11 {
			t.Errorf("ServeView got the stat of a %d-byte file", st.Size)
		}
		return ".cowfs/files/1", nil
	}
	if r := ts.exec(t, "snapshot-file /f"); r != ".cowfs/files/1\n" {
		t.Fatalf("snapshot-file replied %q", r)
	}
	writeFile(t, ts.Vol, "f", []byte("changed"))
	b := make([]byte, 11)
	if n, err := got.ReadAt(b, 0); n != 11 || string(b) != "snapshot me" {
		t.Errorf("the served view reads %q, %v", b[:n], err)
	}
	got.Release()
	if _, err := ts.Exec("snapshot-file missing"); cowfs.Errno(err) != syscall.ENOENT {
		t.Errorf("snapshot-file of a missing file: %v, want ENOENT", err)
	}
}

func TestSnapshots(t *testing.T) {
	ts := newTestServer(t)
	v := ts.Vol
	writeFile(t, v, "f", []byte("before"))
	if r := ts.exec(t, "snapshot list"); r != "[]\n" {
		t.Fatalf("empty snapshot list replied %q", r)
	}
	start := time.Now()
	ts.exec(t, "snapshot create s1")
	writeFile(t, v, "f", []byte("after"))
	ts.exec(t, "snapshot create s0")
	if ts.snapshots != 2 {
		t.Fatalf("SnapshotsChanged called %d times, want 2", ts.snapshots)
	}
	snap, err := v.OpenSnapshot("s1")
	if err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, snap, "f"); string(got) != "before" {
		t.Fatalf("snapshot s1 holds %q", got)
	}

	var list []SnapshotReply
	r := ts.exec(t, "snapshot list")
	if err := json.Unmarshal([]byte(r), &list); err != nil {
		t.Fatalf("snapshot list: %v:\n%s", err, r)
	}
	if len(list) != 2 || list[0].Name != "s0" || list[1].Name != "s1" {
		t.Fatalf("snapshot list = %+v", list)
	}
	for _, s := range list {
		c, err := time.Parse(time.RFC3339, s.Created)
		if err != nil || c.Before(start.Add(-time.Second)) || c.After(time.Now().Add(time.Second)) {
			t.Fatalf("snapshot %s created %q (%v), not now", s.Name, s.Created, err)
		}
	}

	ts.exec(t, "snapshot delete s0")
	if r := ts.exec(t, "snapshot list"); !strings.Contains(r, `"s1"`) || strings.Contains(r, `"s0"`) {
		t.Fatalf("snapshot list after deleting s0:\n%s", r)
	}
	if ts.snapshots != 3 {
		t.Fatalf("SnapshotsChanged called %d times, want 3", ts.snapshots)
	}
	if len(ts.changed) != 0 {
		t.Fatalf("Changed called with %q", ts.changed)
	}
}

func TestDu(t *testing.T) {
	ts := newTestServer(t)
	v := ts.Vol
	if err := v.Mkdir("d", 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, v, "d/f", randomBytes(100_000, 4))
	du := func(line string) UsageReply {
		t.Helper()
		var u UsageReply
		r := ts.exec(t, line)
		if err := json.Unmarshal([]byte(r), &u); err != nil {
			t.Fatalf("%q: %v:\n%s", line, err, r)
		}
		return u
	}
	if u := du("du /d/f"); u != (UsageReply{Path: "d/f", Logical: 100_000, Shared: 0, Exclusive: 100_000}) {
		t.Fatalf("du of a new file: %+v", u)
	}
	ts.exec(t, "clone d/f g")
	if u := du("du d/./f"); u != (UsageReply{Path: "d/f", Logical: 100_000, Shared: 100_000, Exclusive: 0}) {
		t.Fatalf("du of a cloned file: %+v", u)
	}
	if u := du("du ''"); u.Path != "." || u.Logical != 200_000 {
		t.Fatalf("du of the root: %+v", u)
	}
	if u := du("du /"); u.Path != "." || u.Logical != 200_000 {
		t.Fatalf("du of the root: %+v", u)
	}
}

func TestStats(t *testing.T) {
	ts := newTestServer(t)
	writeFile(t, ts.Vol, "f", randomBytes(300_000, 5))
	// Reading a snapshot loads its nodes and data through the caches.
	ts.exec(t, "snapshot create s")
	snap, err := ts.Vol.OpenSnapshot("s")
	if err != nil {
		t.Fatal(err)
	}
	readFile(t, snap, "f")
	ts.Stats = func() map[string]any { return map[string]any{"lookups": 42} }
	r := ts.exec(t, "stats")
	var st StatsReply
	if err := json.Unmarshal([]byte(r), &st); err != nil {
		t.Fatalf("stats: %v:\n%s", err, r)
	}
	u, err := ts.FS.Store().Usage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	nodes, data := ts.FS.CacheStats()
	switch {
	case st.Volume != "v":
		t.Errorf("volume %q, want v", st.Volume)
	case st.Store.Blobs != u.Blobs || st.Store.Bytes != u.Bytes || u.Bytes < 300_000:
		t.Errorf("store %+v, want %+v", st.Store, u)
	case st.Cache.Nodes.Entries != nodes.Entries || st.Cache.Nodes.Bytes != nodes.Bytes || nodes.Entries == 0:
		t.Errorf("node cache %+v, want %+v", st.Cache.Nodes, nodes)
	case st.Cache.Data.Entries != data.Entries || st.Cache.Data.Bytes != data.Bytes || data.Entries == 0:
		t.Errorf("data cache %+v, want %+v", st.Cache.Data, data)
	case st.Frontend["lookups"] != float64(42):
		t.Errorf("frontend %v, want lookups 42", st.Frontend)
	}
	// Every counter is in the reply, under its documented name.
	for _, key := range []string{`"nodes"`, `"data"`, `"hits"`, `"misses"`, `"evictions"`, `"entries"`, `"blobs"`, `"zombies"`} {
		if !strings.Contains(r, key) {
			t.Errorf("stats reply lacks %s:\n%s", key, r)
		}
	}
	ts.Stats = nil
	if r := ts.exec(t, "stats"); strings.Contains(r, "frontend") {
		t.Errorf("stats without frontend counters:\n%s", r)
	}
}

func TestSync(t *testing.T) {
	ts := newTestServer(t)
	before, err := ts.FS.Store().Usage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, ts.Vol, "f", randomBytes(100_000, 6))
	if r := ts.exec(t, "sync"); r != "" {
		t.Fatalf("sync replied %q", r)
	}
	after, err := ts.FS.Store().Usage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if after.Bytes < before.Bytes+100_000 {
		t.Fatalf("sync stored %d bytes, want at least 100000", after.Bytes-before.Bytes)
	}
}

func TestHelp(t *testing.T) {
	ts := newTestServer(t)
	r := ts.exec(t, "help")
	for _, c := range commands {
		if !strings.Contains(r, "\t"+c.usage+"\n") {
			t.Errorf("help lacks %q:\n%s", c.usage, r)
		}
	}
}

// TestErrors checks that bad command lines fail with the right errno and
// change nothing.
func TestErrors(t *testing.T) {
	ts := newTestServer(t)
	v := ts.Vol
	src, dst := randomBytes(10_000, 7), randomBytes(10_000, 8)
	writeFile(t, v, "src", src)
	writeFile(t, v, "dst", dst)
	if err := v.Mkdir("dir", 0o755); err != nil {
		t.Fatal(err)
	}
	ts.exec(t, "snapshot create keep")
	tests := []struct {
		line  string
		errno syscall.Errno
	}{
		{"", syscall.EINVAL},
		{"\n", syscall.EINVAL},
		{"frob", syscall.EINVAL},
		{"CLONE src x", syscall.EINVAL},
		{"clone src", syscall.EINVAL},
		{"clone src x y", syscall.EINVAL},
		{"clone 'src x", syscall.EINVAL},
		{"clone missing x", syscall.ENOENT},
		{"clone src dst", syscall.EEXIST},
		{"clone src dir", syscall.EEXIST},
		{"clone src nodir/x", syscall.ENOENT},
		{"copyrange src 0 dst 0", syscall.EINVAL},
		{"copyrange src 0 dst 0 1 2", syscall.EINVAL},
		{"copyrange src x dst 0 1", syscall.EINVAL},
		{"copyrange src 0 dst -1 1", syscall.EINVAL},
		{"copyrange src 0 dst 0 +1", syscall.EINVAL},
		{"copyrange src 0 dst 0 0x10", syscall.EINVAL},
		{"copyrange src 0 dst 0 ''", syscall.EINVAL},
		{"copyrange src 0 dst 0 9223372036854775808", syscall.EINVAL},
		{"copyrange src 99999999999999999999 dst 0 1", syscall.EINVAL},
		{"copyrange missing 0 dst 0 1", syscall.ENOENT},
		{"copyrange src 0 missing 0 1", syscall.ENOENT},
		{"copyrange src 0 dir 0 1", syscall.EISDIR},
		{"snapshot", syscall.EINVAL},
		{"snapshot frob", syscall.EINVAL},
		{"snapshot create", syscall.EINVAL},
		{"snapshot create a b", syscall.EINVAL},
		{"snapshot create 'bad/name'", syscall.EINVAL},
		{"snapshot create keep", syscall.EEXIST},
		{"snapshot delete", syscall.EINVAL},
		{"snapshot delete nosuch", syscall.ENOENT},
		{"snapshot list x", syscall.EINVAL},
		{"du", syscall.EINVAL},
		{"du a b", syscall.EINVAL},
		{"du missing", syscall.ENOENT},
		{"stats x", syscall.EINVAL},
		{"sync now", syscall.EINVAL},
		{"help me", syscall.EINVAL},
	}
	for _, tc := range tests {
		r, err := ts.Exec(tc.line)
		var cerr *cowfs.Error
		if !errors.As(err, &cerr) || cerr.Errno != tc.errno {
			t.Errorf("%q: reply %q, error %v, want errno %v", tc.line, r, err, tc.errno)
		}
	}
	if !bytes.Equal(readFile(t, v, "src"), src) || !bytes.Equal(readFile(t, v, "dst"), dst) {
		t.Fatal("a failed command changed a file")
	}
	names := func() []string {
		infos, err := v.ReadDir(".")
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, fi := range infos {
			out = append(out, fi.Name())
		}
		return out
	}
	if got, want := names(), []string{"dir", "dst", "src"}; !slices.Equal(got, want) {
		t.Fatalf("root holds %q after failed commands, want %q", got, want)
	}
	if r := ts.exec(t, "snapshot list"); strings.Count(r, `"name"`) != 1 {
		t.Fatalf("snapshots after failed commands:\n%s", r)
	}
	if len(ts.changed) != 0 || ts.snapshots != 1 {
		t.Fatalf("failed commands reported changes: %q, %d", ts.changed, ts.snapshots-1)
	}
}

// TestReadOnly checks a server of a snapshot: it reads, and refuses every
// change with EROFS.
func TestReadOnly(t *testing.T) {
	ts := newTestServer(t)
	data := randomBytes(20_000, 9)
	writeFile(t, ts.Vol, "f", data)
	writeFile(t, ts.Vol, "g", nil)
	ts.exec(t, "snapshot create s")
	snap, err := ts.Vol.OpenSnapshot("s")
	if err != nil {
		t.Fatal(err)
	}
	ro := &Server{FS: ts.FS, Vol: snap, Changed: func(p string) { t.Errorf("Changed(%q) on a snapshot", p) }}
	for _, line := range []string{"clone f h", "copyrange f 0 g 0 10", "snapshot create t", "snapshot delete s"} {
		if _, err := ro.Exec(line); cowfs.Errno(err) != syscall.EROFS {
			t.Errorf("%q on a snapshot: %v, want EROFS", line, err)
		}
	}
	if _, err := ts.Vol.OpenSnapshot("s"); err != nil {
		t.Fatalf("the snapshot is gone: %v", err)
	}
	r, err := ro.Exec("du f")
	if err != nil || !strings.Contains(r, `"logical": 20000`) {
		t.Fatalf("du on a snapshot: %q, %v", r, err)
	}
	if r, err := ro.Exec("snapshot list"); err != nil || r != "[]\n" {
		t.Fatalf("snapshot list on a snapshot: %q, %v", r, err)
	}
	for _, line := range []string{"stats", "sync", "help"} {
		if _, err := ro.Exec(line); err != nil {
			t.Errorf("%q on a snapshot: %v", line, err)
		}
	}
	if got := readFile(t, snap, "g"); len(got) != 0 {
		t.Fatalf("snapshot g holds %d bytes", len(got))
	}
}
