package cowfs

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/cowfs/cowfs/internal/dirtree"
	"github.com/cowfs/cowfs/store"
	"github.com/cowfs/cowfs/store/mem"
	"pgregory.net/rapid"
)

// TestXattrLinuxLimits: values up to 65,536 bytes, names up to 255 bytes
// and name lists up to 64 KiB, with ERANGE, E2BIG and ENOSPC where Linux's
// XFS and tmpfs return them (ENOSPC for a name that would take the list
// past what listxattr can return); a tiny value replaced by a large one
// (XATTR_REPLACE) and back; all of it read back after a reopen.
func TestXattrLinuxLimits(t *testing.T) {
	st, f, v := semSetup(t)
	semWrite(t, v, "f", []byte("x"))
	big := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 65,536 bytes
	semOK(t, "SetXattr of 64 KiB", v.SetXattr("f", "user.big", big, 0))
	semErr(t, "SetXattr of 64 KiB + 1", v.SetXattr("f", "user.big2", append(big, 'x'), 0), syscall.E2BIG)
	semOK(t, "SetXattr tiny", v.SetXattr("f", "user.tiny", []byte("t"), 0))
	semOK(t, "XATTR_REPLACE tiny by 64 KiB", v.SetXattr("f", "user.tiny", big, XattrReplace))
	semOK(t, "SetXattr with a 255-byte name", v.SetXattr("f", "user."+strings.Repeat("n", 250), []byte("v"), 0))
	semErr(t, "SetXattr with a 256-byte name", v.SetXattr("f", "user."+strings.Repeat("n", 251), []byte("v"), 0), syscall.ERANGE)
	semErr(t, "SetXattr with an empty name", v.SetXattr("f", "", nil, 0), syscall.ERANGE)
	semErr(t, "XATTR_REPLACE of a missing large one", v.SetXattr("f", "user.nope", big, XattrReplace), syscall.ENODATA)
	semErr(t, "XATTR_CREATE over a large one", v.SetXattr("f", "user.big", []byte("v"), XattrCreate), syscall.EEXIST)
	for name, want := range map[string][]byte{"user.big": big, "user.tiny": big} {
		if got, err := v.GetXattr("f", name); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("GetXattr(%s): %d bytes, %v; want %d", name, len(got), err, len(want))
		}
	}
	semOK(t, "XATTR_REPLACE 64 KiB by tiny", v.SetXattr("f", "user.tiny", []byte("t"), XattrReplace))
	if got, err := v.GetXattr("f", "user.tiny"); err != nil || string(got) != "t" {
		t.Fatalf("GetXattr(user.tiny) after shrinking: %q, %v", got, err)
	}

	// A list of exactly 64 KiB: 256 names of 255 bytes, each with its NUL.
	semWrite(t, v, "g", nil)
	var names []string
	for i := range 256 {
		name := fmt.Sprintf("user.%03d%s", i, strings.Repeat("n", 255-8))
		names = append(names, name)
		semOK(t, "SetXattr "+name[:8], v.SetXattr("g", name, []byte{byte(i)}, 0))
	}
	semErr(t, "SetXattr past a 64 KiB list", v.SetXattr("g", "user.x", nil, 0), syscall.ENOSPC)
	semOK(t, "replacing an attribute of a full list", v.SetXattr("g", names[7], big, 0))
	semOK(t, "RemoveXattr", v.RemoveXattr("g", names[0]))
	semOK(t, "SetXattr into the room made", v.SetXattr("g", "user.x", big, 0))
	names = append(names[1:], "user.x")
	slices.Sort(names)
	got, err := v.ListXattr("g")
	if err != nil || !slices.Equal(got, names) {
		t.Fatalf("ListXattr of a full list: %d names, %v", len(got), err)
	}
	semCheck(t, f)
	f, v = semReopen(t, st, f)
	got, err = v.ListXattr("g")
	if err != nil || !slices.Equal(got, names) {
		t.Fatalf("ListXattr of a full list after reopening: %d names, %v", len(got), err)
	}
	for _, c := range []struct {
		p, name string
		want    []byte
	}{{"g", names[6], big}, {"g", "user.x", big}, {"g", names[0], []byte{1}}, {"f", "user.big", big}} {
		if got, err := v.GetXattr(c.p, c.name); err != nil || !bytes.Equal(got, c.want) {
			t.Fatalf("GetXattr(%s, %.12s) after reopening: %d bytes, %v; want %d", c.p, c.name, len(got), err, len(c.want))
		}
	}
	semCheck(t, f)
}

// TestXattrBlobCounts: a value kept in a blob is counted once per entry
// that holds it (two files with the same value share one blob), shared by
// clones, snapshots and other volumes, survives the release of any one
// of them and is deleted with the last; one overwritten before a commit is
// never kept. The checker agrees at every step, and du counts such values
// as stored data.
func TestXattrBlobCounts(t *testing.T) {
	st, f, v := semSetup(t)
	ctx := context.Background()
	val := bytes.Repeat([]byte("large attribute value "), 1000)
	id := store.Sum(val)
	refs := func(what string, want int64) {
		t.Helper()
		semOK(t, "Commit", f.Commit())
		gc(t, f)
		semCheck(t, f)
		info, err := st.Stat(ctx, id)
		if want == 0 {
			if err == nil {
				t.Fatalf("%s: the value's blob is still stored (count %d)", what, info.Refs)
			}
			return
		}
		if err != nil || info.Refs != want {
			t.Fatalf("%s: the value's blob has count %d (%v), want %d", what, info.Refs, err, want)
		}
	}
	semWrite(t, v, "f", []byte("data"))
	semWrite(t, v, "g", nil)
	semOK(t, "SetXattr another value first", v.SetXattr("f", "user.v", bytes.Repeat([]byte{'o'}, 1000), 0))
	semOK(t, "SetXattr", v.SetXattr("f", "user.v", val, 0))
	refs("one file", 1)
	if _, err := st.Stat(ctx, store.Sum(bytes.Repeat([]byte{'o'}, 1000))); err == nil {
		t.Fatal("a value replaced before the commit was kept by it")
	}
	wantUsage(t, v, "f", Usage{Logical: 4, Exclusive: int64(len(val)) + 4})
	semOK(t, "SetXattr the same value on g", v.SetXattr("g", "user.w", val, 0))
	refs("two files", 2)
	wantUsage(t, v, "f", Usage{Logical: 4, Shared: int64(len(val)), Exclusive: 4})
	semOK(t, "Clone", v.Clone("f", "c"))
	refs("a clone", 3)
	semOK(t, "Snapshot", v.Snapshot("s"))
	semOK(t, "CloneVolume", f.CloneVolume("main", "other"))
	refs("a snapshot and a volume", 3) // they share the volume's nodes
	semOK(t, "RemoveXattr of f", v.RemoveXattr("f", "user.v"))
	semOK(t, "Remove g", v.Remove("g"))
	semOK(t, "Remove c", v.Remove("c"))
	refs("removed from the volume", 3) // the volume's old nodes: snapshot and other
	snap, err := v.OpenSnapshot("s")
	semOK(t, "OpenSnapshot", err)
	if got, err := snap.GetXattr("c", "user.v"); err != nil || !bytes.Equal(got, val) {
		t.Fatalf("the snapshot's clone lost its value: %d bytes, %v", len(got), err)
	}
	semOK(t, "DeleteSnapshot", v.DeleteSnapshot("s"))
	refs("held by the other volume", 3)
	semOK(t, "DeleteVolume", f.DeleteVolume("other"))
	refs("all gone", 0)
}

// TestXattrModel: random sets (sizes around the inline limit and up to
// Linux's, with XATTR_CREATE and XATTR_REPLACE), removals, clones, hard
// links, snapshots, commits and reopens on a few files, against a map per
// file; after each step every attribute is compared, errnos included, and
// after each commit the checker runs. At the end everything is deleted and
// the store must be empty.
func TestXattrModel(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		st := mem.New()
		open := func() (*FS, *Volume) {
			f, err := Open(mdlStore{Store: st}, nil)
			must(rt, err)
			v, err := f.Volume("main")
			if err != nil {
				v, err = f.CreateVolume("main")
			}
			must(rt, err)
			return f, v
		}
		f, v := open()
		type attrs map[string][]byte
		// model: file path -> attributes; links share one map.
		model := map[string]attrs{}
		var snaps []map[string]attrs
		for i := range 3 {
			p := fmt.Sprintf("f%d", i)
			must(rt, v.WriteFile(p, nil, 0o644))
			model[p] = attrs{}
		}
		files := func() []string { return slices.Sorted(maps.Keys(model)) }
		names := []string{"user.a", "user.b", "trusted.c", "user." + strings.Repeat("l", 250)}
		sizes := []int{0, 1, dirtree.XattrInlineMax, dirtree.XattrInlineMax + 1, 4096, dirtree.MaxXattrValue, dirtree.MaxXattrValue + 1}
		for step := range rapid.IntRange(1, 30).Draw(rt, "steps") {
			p := rapid.SampledFrom(files()).Draw(rt, "file")
			switch rapid.IntRange(0, 9).Draw(rt, "op") {
			case 0, 1, 2, 3:
				name := rapid.SampledFrom(names).Draw(rt, "name")
				size := rapid.SampledFrom(sizes).Draw(rt, "size")
				flags := rapid.SampledFrom([]int{0, 0, XattrCreate, XattrReplace}).Draw(rt, "flags")
				val := bytes.Repeat([]byte{byte('a' + step%26)}, size)
				_, exists := model[p][name]
				want := syscall.Errno(0)
				switch {
				case size > dirtree.MaxXattrValue:
					want = syscall.E2BIG
				case exists && flags == XattrCreate:
					want = syscall.EEXIST
				case !exists && flags == XattrReplace:
					want = syscall.ENODATA
				}
				err := v.SetXattr(p, name, val, flags)
				if e := mdlCheckErr(fmt.Sprintf("SetXattr(%s, %.10s, %d bytes, %d)", p, name, size, flags), err, want); e != nil {
					rt.Fatal(e)
				}
				if want == 0 {
					model[p][name] = val
				}
			case 4:
				name := rapid.SampledFrom(names).Draw(rt, "name")
				_, exists := model[p][name]
				want := syscall.Errno(0)
				if !exists {
					want = syscall.ENODATA
				}
				if e := mdlCheckErr(fmt.Sprintf("RemoveXattr(%s, %.10s)", p, name), v.RemoveXattr(p, name), want); e != nil {
					rt.Fatal(e)
				}
				delete(model[p], name)
			case 5:
				dst := fmt.Sprintf("c%d", step)
				must(rt, v.Clone(p, dst))
				model[dst] = maps.Clone(model[p])
			case 6:
				dst := fmt.Sprintf("l%d", step)
				must(rt, v.Link(p, dst))
				model[dst] = model[p]
			case 7:
				must(rt, v.Snapshot(fmt.Sprintf("s%d", len(snaps))))
				snap := map[string]attrs{}
				for q, a := range model {
					snap[q] = maps.Clone(a)
				}
				snaps = append(snaps, snap)
			case 8:
				must(rt, f.Commit())
				rep, err := f.Check(context.Background())
				must(rt, err)
				must(rt, rep.Err())
			case 9:
				must(rt, f.Close())
				f, v = open()
			}
			compare := func(v *Volume, model map[string]attrs, where string) {
				for q, a := range model {
					got, err := v.ListXattr(q)
					must(rt, err)
					if want := slices.Sorted(maps.Keys(a)); !slices.Equal(got, want) {
						rt.Fatalf("%s: ListXattr(%s) = %.12q, want %.12q", where, q, got, want)
					}
					for name, want := range a {
						val, err := v.GetXattr(q, name)
						if err != nil || !bytes.Equal(val, want) {
							rt.Fatalf("%s: GetXattr(%s, %.10s): %d bytes, %v; want %d", where, q, name, len(val), err, len(want))
						}
					}
				}
			}
			compare(v, model, "volume")
			for i, s := range snaps {
				sv, err := v.OpenSnapshot(fmt.Sprintf("s%d", i))
				must(rt, err)
				compare(sv, s, fmt.Sprintf("snapshot s%d", i))
			}
		}
		for i := range snaps {
			must(rt, v.DeleteSnapshot(fmt.Sprintf("s%d", i)))
		}
		must(rt, f.DeleteVolume("main"))
		gc(rt, f)
		u, err := st.Usage(context.Background())
		must(rt, err)
		if u.Blobs != 0 {
			rt.Fatalf("%d blobs left after deleting everything", u.Blobs)
		}
	})
}

// TestCheckXattrBlobs: the checker verifies blob-held values like file
// data: a missing blob and a wrong count are reported, at the attribute.
func TestCheckXattrBlobs(t *testing.T) {
	st, f, v := semSetup(t)
	ctx := context.Background()
	val := bytes.Repeat([]byte("v"), 1000)
	semWrite(t, v, "f", nil)
	semOK(t, "SetXattr", v.SetXattr("f", "user.v", val, 0))
	semOK(t, "Commit", f.Commit())
	id := store.Sum(val)
	semOK(t, "raise the count", st.Commit(ctx, store.Batch{Refs: map[store.ID]int64{id: 1}}))
	rep, err := f.Check(ctx)
	semOK(t, "Check", err)
	if err := rep.Err(); err == nil || !strings.Contains(err.Error(), "/f<user.v>: stored count 2, recomputed 1") {
		t.Fatalf("Check with a value's blob counted twice: %v", err)
	}
	semOK(t, "delete the blob", st.Commit(ctx, store.Batch{Refs: map[store.ID]int64{id: -2}, Delete: []store.ID{id}}))
	rep, err = CheckStore(ctx, mdlStore{Store: st})
	semOK(t, "CheckStore", err)
	if err := rep.Err(); err == nil || !strings.Contains(err.Error(), "/f<user.v>: missing: referenced but not stored") {
		t.Fatalf("Check with a value's blob missing: %v", err)
	}
}
