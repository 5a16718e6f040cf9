package dirtree

import (
	"reflect"
	"testing"

	"github.com/cowfs/cowfs/internal/btree"
	"github.com/cowfs/cowfs/internal/rope"
	"github.com/cowfs/cowfs/store"
)

func sample() Entry {
	return Entry{
		Name: "file.txt", Mode: TypeReg | 0o640, UID: 1000, GID: 100, Nlink: 3, Local: 77,
		Scope: 9, Link: 5, Links: 2, Subdirs: 0, Atime: -5, Mtime: 1 << 60, Ctime: 3, Btime: 4,
		Rdev: 0x0801, Target: "../x",
		Xattrs: []Xattr{{"user.a", []byte("1")}, {"user.b", []byte{}}},
		Data:   btree.Stored[rope.Extent](store.Sum([]byte("r")), 2, 1<<40, 12345, ""),
	}
}

func TestEntryRoundTrip(t *testing.T) {
	e := sample()
	b, err := ops{}.AppendItem(nil, e)
	if err != nil {
		t.Fatal(err)
	}
	got, n, err := ops{}.DecodeItem(b)
	if err != nil || n != len(b) {
		t.Fatalf("decode: %v, used %d of %d", err, n, len(b))
	}
	if !reflect.DeepEqual(got, e) {
		t.Fatalf("round trip changed the entry:\n got %+v\nwant %+v", got, e)
	}
	d := e
	d.Mode, d.Data = TypeDir|0o755, rope.Rope{}
	d.Dir = btree.Stored[Entry](store.Sum([]byte("d")), 0, 4, 4, "")
	b, _ = ops{}.AppendItem(nil, d)
	if got, _, err := (ops{}).DecodeItem(b); err != nil || !reflect.DeepEqual(got, d) {
		t.Fatalf("directory entry round trip: %v", err)
	}
}

// TestEntryGarbage: every truncation is an error; every byte flip is an
// error or a valid entry, never a panic.
func TestEntryGarbage(t *testing.T) {
	b, _ := ops{}.AppendItem(nil, sample())
	for cut := 0; cut < len(b); cut++ {
		if _, _, err := (ops{}).DecodeItem(b[:cut]); err == nil {
			t.Fatalf("entry cut to %d of %d bytes decoded without error", cut, len(b))
		}
	}
	for i := range b {
		for _, x := range []byte{0x01, 0x80, 0xff} {
			m := append([]byte(nil), b...)
			m[i] ^= x
			ops{}.DecodeItem(m)
		}
	}
}

func TestXattrEdits(t *testing.T) {
	var e Entry
	if e.SetXattr("b", []byte("2")) || e.SetXattr("a", []byte("1")) {
		t.Fatal("new attributes reported as existing")
	}
	shared := e.Xattrs
	if !e.SetXattr("a", nil) {
		t.Fatal("removing an existing attribute reported it absent")
	}
	if len(shared) != 2 || shared[0].Name != "a" {
		t.Fatal("editing changed a list another entry shares")
	}
	if v, ok := e.Xattr("b"); !ok || string(v) != "2" {
		t.Fatalf("Xattr(b) = %q, %v", v, ok)
	}
}
