package dirtree

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/cowfs/cowfs/acl"
	"github.com/cowfs/cowfs/internal/btree"
	"github.com/cowfs/cowfs/internal/rope"
	"github.com/cowfs/cowfs/store"
	"pgregory.net/rapid"
)

func sample() Entry {
	return Entry{
		Name: "file.txt", Mode: TypeReg | 0o640, UID: 1000, GID: 100, Nlink: 3, Local: 77,
		Scope: 9, Link: 5, Links: 2, Subdirs: 0,
		Atime: TimeOfNano(-5), Mtime: TimeOfNano(1 << 60), Ctime: TimeOfNano(3), Btime: TimeOfNano(4),
		Rdev: 0x0801, Target: "../x",
		Xattrs: []Xattr{Inline("user.a", []byte("1")), Inline("user.b", []byte{})},
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
	if x, ok := e.Xattr("b"); !ok || string(x.Value) != "2" || x.Size != 1 {
		t.Fatalf("Xattr(b) = %+v, %v", x, ok)
	}
}

// format1 are entries as the code of commit 8f90303 (the last to write only
// format 1) encoded them: sample() and the directory entry of format1Dir.
var format1 = []string{
	"7d0866696c652e747874a08302e80764034d020009808080808080808020060801b2dea48d667b2821a9bcf69eded39a2458a1d8165ca7fcac64c3557b69a7ea0802808080808020b960042e2e2f780206757365722e61013106757365722e620005098110",
	"0a03646972fd8b01010200808080808020030701ffffffffffffffffff01feffffffffffffffff01ffbbc1960b01d5ede538f628f687e5e0422c7755b503653de2dcd7053ca8791afa5d4787d843010909011773797374656d2e706f7369785f61636c5f6163636573730c0200000001000600ffffffff",
}

// format1Dir is the second entry of format1, with its times as that code
// kept them (nanoseconds since 1970): -1, MinInt64, MaxInt64, -1.5 s.
func format1Dir() Entry {
	return Entry{Name: "dir", Mode: TypeDir | 0o2775, UID: 1, GID: 2, Local: 1 << 40, Links: 3, Subdirs: 7,
		Atime: Time{-1, 999999999}, Mtime: Time{-9223372037, 145224192}, Ctime: Time{9223372036, 854775807}, Btime: Time{-2, 500000000},
		Xattrs: []Xattr{Inline(acl.AccessXattr, []byte{2, 0, 0, 0, 1, 0, 6, 0, 0xff, 0xff, 0xff, 0xff})},
		Dir:    btree.Stored[Entry](store.Sum([]byte("d")), 1, 9, 9, "")}
}

// TestFormat1Entries: entries the old code wrote decode to what it meant,
// times before 1970 with a fraction of a second and the ends of its range
// included, and today's encoder writes them byte for byte as it did.
func TestFormat1Entries(t *testing.T) {
	for i, want := range []Entry{sample(), format1Dir()} {
		b, err := hex.DecodeString(format1[i])
		if err != nil {
			t.Fatal(err)
		}
		got, n, err := ops{}.DecodeItem(b)
		if err != nil || n != len(b) {
			t.Fatalf("entry %d: decode: %v, used %d of %d", i, err, n, len(b))
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("entry %d decodes as\n %+v\nwant %+v", i, got, want)
		}
		again, err := ops{}.AppendItem(nil, got)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("entry %d re-encodes as %x (%v), not as the old code wrote it", i, again, err)
		}
	}
}

// TestTimeNano: Nano and TimeOfNano agree wherever nanoseconds fit in an
// int64, and Nano refuses exactly the times outside.
func TestTimeNano(t *testing.T) {
	for _, ns := range []int64{0, 1, -1, 999999999, -999999999, 1e9, -1e9, -1e9 - 1, math.MaxInt64, math.MinInt64, math.MinInt64 + 1, math.MaxInt64 - 1} {
		tm := TimeOfNano(ns)
		if tm.Nsec >= 1e9 {
			t.Fatalf("TimeOfNano(%d) = %+v", ns, tm)
		}
		if got, ok := tm.Nano(); !ok || got != ns {
			t.Fatalf("TimeOfNano(%d).Nano() = %d, %v", ns, got, ok)
		}
	}
	for _, tm := range []Time{{9223372036, 854775808}, {-9223372037, 145224191}, {9223372037, 0}, {-9223372038, 999999999}, {math.MaxInt64, 0}, {math.MinInt64, 0}} {
		if ns, ok := tm.Nano(); ok {
			t.Fatalf("%+v.Nano() = %d, true; it does not fit", tm, ns)
		}
	}
	rapid.Check(t, func(t *rapid.T) {
		tm := Time{Sec: rapid.Int64().Draw(t, "sec"), Nsec: uint32(rapid.IntRange(0, 1e9-1).Draw(t, "nsec"))}
		ns, ok := tm.Nano()
		// It fits iff between MinInt64 and MaxInt64 nanoseconds, in exact arithmetic.
		fits := tm.Compare(TimeOfNano(math.MinInt64)) >= 0 && tm.Compare(TimeOfNano(math.MaxInt64)) <= 0
		if ok != fits || ok && TimeOfNano(ns) != tm {
			t.Fatalf("%+v.Nano() = %d, %v; fits: %v", tm, ns, ok, fits)
		}
	})
}

// drawEntry draws an entry with times anywhere in the int64 seconds and
// attributes inline or in blobs.
func drawEntry(t *rapid.T) Entry {
	drawTime := func(label string) Time {
		switch rapid.IntRange(0, 2).Draw(t, label+" kind") {
		case 0: // in format 1's range
			return TimeOfNano(rapid.Int64().Draw(t, label))
		case 1: // 1901 to 2486, as ext4 and XFS keep them
			return Time{Sec: rapid.Int64Range(-2147483648, 16299260425).Draw(t, label), Nsec: uint32(rapid.IntRange(0, 1e9-1).Draw(t, label+" ns"))}
		}
		return Time{Sec: rapid.Int64().Draw(t, label), Nsec: uint32(rapid.IntRange(0, 1e9-1).Draw(t, label+" ns"))}
	}
	e := Entry{Name: rapid.StringMatching(`[a-z]{1,8}`).Draw(t, "name"), Mode: TypeReg | 0o644,
		Atime: drawTime("atime"), Mtime: drawTime("mtime"), Ctime: drawTime("ctime"), Btime: drawTime("btime")}
	names := rapid.SliceOfDistinct(rapid.SampledFrom([]string{"user.a", "user.b", "trusted.c", acl.AccessXattr, "user." + strings.Repeat("n", 250)}), rapid.ID[string]).Draw(t, "xattrs")
	for _, n := range names {
		size := rapid.SampledFrom([]int{0, 1, XattrInlineMax, XattrInlineMax + 1, MaxXattrValue}).Draw(t, n+" size")
		if !AlwaysInline(n) && size > XattrInlineMax || rapid.Bool().Draw(t, n+" in blob") && !AlwaysInline(n) {
			e.PutXattr(Xattr{Name: n, Blob: store.Sum([]byte(n)), Size: size}, false)
		} else {
			e.SetXattr(n, bytes.Repeat([]byte{'v'}, size))
		}
	}
	return e
}

// TestEntryFormats: every entry round-trips, in format 1 exactly when format
// 1 can hold it (times within int64 nanoseconds, attributes inline and at
// most 64 KiB), and Children reports its blob-held values.
func TestEntryFormats(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		e := drawEntry(t)
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
		fits := xattrsFormat1(e.Xattrs)
		for _, tm := range []Time{e.Atime, e.Mtime, e.Ctime, e.Btime} {
			_, ok := tm.Nano()
			fits = fits && ok
		}
		if (b[0]&hasExt == 0) != fits {
			t.Fatalf("format 2 flag %v for an entry format 1 can hold: %v", b[0]&hasExt != 0, fits)
		}
		var blobs, want []store.ID
		for _, x := range e.Xattrs {
			if !x.Blob.IsZero() {
				want = append(want, x.Blob)
			}
		}
		ops{}.Children(e, func(c btree.Child) error {
			if !c.Raw {
				t.Fatalf("child %s of an entry without content is not raw", c.ID.Short())
			}
			blobs = append(blobs, c.ID)
			return nil
		})
		if !reflect.DeepEqual(blobs, want) {
			t.Fatalf("Children: %v, want %v", blobs, want)
		}
	})
}

// TestEntryFormat2Garbage: every truncation of a format 2 entry is an
// error, every byte flip an error or a valid entry, never a panic.
func TestEntryFormat2Garbage(t *testing.T) {
	e := sample()
	e.Mtime = Time{Sec: math.MinInt64, Nsec: 999999999}
	e.PutXattr(Xattr{Name: "user.big", Blob: store.Sum([]byte("v")), Size: MaxXattrValue}, false)
	b, _ := ops{}.AppendItem(nil, e)
	if b[0]&hasExt == 0 {
		t.Fatal("entry not in format 2")
	}
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

// TestXattrDecodeLimits: the decoder refuses what no engine writes.
func TestXattrDecodeLimits(t *testing.T) {
	enc := func(e Entry) []byte {
		b, err := ops{}.AppendItem(nil, e)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	inBlob := Entry{Name: "x"}
	inBlob.PutXattr(Xattr{Name: acl.AccessXattr, Blob: store.Sum([]byte("a")), Size: 4}, false)
	big := Entry{Name: "x", Mtime: Time{Sec: math.MaxInt64}}
	big.SetXattr("user.v", make([]byte, MaxXattrValue+1))
	for what, b := range map[string][]byte{"an ACL in a blob": enc(inBlob), "a value past 64 KiB": enc(big)} {
		if _, _, err := (ops{}).DecodeItem(b); err == nil {
			t.Errorf("an entry with %s decoded", what)
		}
	}
}

// TestKeepInline: short values stay inline until the budget is spent, long
// ones never, ACLs always.
func TestKeepInline(t *testing.T) {
	var e Entry
	if !e.KeepInline("user.a", XattrInlineMax) || e.KeepInline("user.a", XattrInlineMax+1) {
		t.Fatal("the inline limit is not XattrInlineMax")
	}
	if !e.KeepInline(acl.DefaultXattr, MaxXattrValue) {
		t.Fatal("an ACL would leave the entry")
	}
	for i := 0; inlineBytes(&e)+2*(9+XattrInlineMax) < XattrInlineBudget; i++ {
		name := fmt.Sprintf("user.%04d", i)
		if !e.KeepInline(name, XattrInlineMax) {
			t.Fatalf("value %d of %d bytes left the entry with %d bytes inline", i, XattrInlineMax, inlineBytes(&e))
		}
		e.SetXattr(name, make([]byte, XattrInlineMax))
	}
	e.SetXattr(acl.AccessXattr, make([]byte, 60000)) // ACLs do not count
	if !e.KeepInline("user.last", 1) {
		t.Fatal("an ACL counted in the budget")
	}
	e.SetXattr("user.fill", make([]byte, XattrInlineBudget-inlineBytes(&e)-len("user.fill")))
	if inlineBytes(&e) != XattrInlineBudget || e.KeepInline("user.more", 1) {
		t.Fatalf("a value went inline past the budget (%d bytes inline)", inlineBytes(&e))
	}
	if !e.KeepInline("user.more", 0) {
		t.Fatal("an empty value would be kept in a blob")
	}
	if !e.KeepInline("user.0000", len(mustXattr(t, &e, "user.0000").Value)) {
		t.Fatal("replacing a value by one of the same size would leave the entry")
	}
}

func inlineBytes(e *Entry) int {
	n := 0
	for _, x := range e.Xattrs {
		if !AlwaysInline(x.Name) {
			n += len(x.Name) + len(x.Value)
		}
	}
	return n
}

func mustXattr(t *testing.T, e *Entry, name string) Xattr {
	x, ok := e.Xattr(name)
	if !ok {
		t.Fatalf("no attribute %s", name)
	}
	return x
}
