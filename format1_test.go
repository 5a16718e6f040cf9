package cowfs

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cowfs/cowfs/store"
	"github.com/cowfs/cowfs/store/local"
)

// TestFormat1 reads a store written by the code of commit 8f90303 (entries
// with int64-nanosecond times and every extended attribute inline; see
// testdata/format1/gen): loaded into a local store, every volume and
// snapshot must read back exactly as that code read it
// (testdata/format1/listing.txt), the checker must find nothing, and the
// store must stay good after today's code changes it, commits and reopens.
func TestFormat1(t *testing.T) {
	dir := t.TempDir()
	st, err := local.Open(dir, nil)
	must(t, err)
	loadDump(t, st, "testdata/format1/store.txt.gz")
	// The listing reads every file and directory: with access time updates
	// it would change what it lists.
	opt := &Options{Atime: Noatime}
	f, err := Open(st, opt)
	must(t, err)
	want, err := os.ReadFile("testdata/format1/listing.txt")
	must(t, err)
	if got := listVolumes(t, f); got != string(want) {
		t.Fatalf("the old store reads differently:\n%s", lineDiff(string(want), got))
	}
	checkClean(t, f)

	// Explicit values the old code wrote, in case both sides of the
	// comparison above were wrong the same way.
	v, err := f.Volume("main")
	must(t, err)
	snap, err := v.OpenSnapshot("snap")
	must(t, err)
	utc := func(y int, mo time.Month, d, h, mi, s, ns int) time.Time {
		return time.Date(y, mo, d, h, mi, s, ns, time.UTC)
	}
	for _, c := range []struct {
		vol          *Volume
		p            string
		atime, mtime time.Time
	}{
		{snap, "d/small", utc(1960, 1, 1, 0, 0, 0, 123456789), utc(1969, 12, 31, 23, 59, 59, 500000000)},
		{v, "big", utc(1901, 12, 13, 20, 45, 52, 1), utc(2262, 1, 1, 0, 0, 0, 999999999)},
		{v, "d", utc(2038, 1, 19, 3, 14, 8, 0), utc(1970, 1, 1, 0, 0, 0, 1)},
		{v, "ln", utc(1999, 12, 31, 23, 59, 59, 999999999), utc(1970, 1, 1, 0, 0, 0, 0)},
	} {
		fi, err := c.vol.Lstat(c.p)
		must(t, err)
		if st := fi.Stat(); !st.Atime.Equal(c.atime) || !st.Mtime.Equal(c.mtime) {
			t.Fatalf("%s of %s: atime %v mtime %v, want %v %v", c.p, c.vol.Name(), st.Atime, st.Mtime, c.atime, c.mtime)
		}
	}
	val, err := v.GetXattr("big", "user.big")
	must(t, err)
	if !bytes.Equal(val, bytes.Repeat([]byte("0123456789"), 6000)) {
		t.Fatalf("user.big of big: %d bytes, not the 60,000 written", len(val))
	}

	// Today's code changes old entries, next to entries it leaves alone.
	must(t, v.WriteFile("d/e/new", []byte("new"), 0o644))
	must(t, v.Chtimes("d/e/new", utc(1900, 1, 1, 0, 0, 0, 7), utc(2400, 1, 1, 0, 0, 0, 8)))
	must(t, v.SetXattr("d/e/mid", "user.large", bytes.Repeat([]byte{'L'}, 65536), 0))
	must(t, v.SetXattr("big", "user.big", []byte("now small"), XattrReplace))
	must(t, f.Commit())
	checkClean(t, f)
	must(t, f.Close())

	st, err = local.Open(dir, nil)
	must(t, err)
	f, err = Open(st, opt)
	must(t, err)
	defer f.Close()
	checkClean(t, f)
	v, err = f.Volume("main")
	must(t, err)
	fi, err := v.Stat("d/e/new")
	must(t, err)
	if s := fi.Stat(); !s.Atime.Equal(utc(1900, 1, 1, 0, 0, 0, 7)) || !s.Mtime.Equal(utc(2400, 1, 1, 0, 0, 0, 8)) {
		t.Fatalf("after reopen: d/e/new has atime %v mtime %v", s.Atime, s.Mtime)
	}
	if val, err := v.GetXattr("d/e/mid", "user.large"); err != nil || !bytes.Equal(val, bytes.Repeat([]byte{'L'}, 65536)) {
		t.Fatalf("after reopen: user.large of d/e/mid: %d bytes, %v", len(val), err)
	}
	// The snapshot and the other volume are as the old code left them.
	got := listVolumes(t, f)
	for _, prefix := range []string{"copy:", "main@snap:"} {
		if w, g := linesWith(string(want), prefix), linesWith(got, prefix); w != g {
			t.Fatalf("after changes to main, %s reads differently:\n%s", prefix, lineDiff(w, g))
		}
	}
}

// loadDump puts the blobs, counts and roots of a dump written by
// testdata/format1/gen into st.
func loadDump(t *testing.T, st store.Store, path string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	must(t, err)
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	must(t, err)
	ctx := context.Background()
	b := store.Batch{Refs: map[store.ID]int64{}}
	sc := bufio.NewScanner(zr)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		switch {
		case len(fields) == 3 && fields[0] == "root":
			id, err := store.ParseID(fields[2])
			must(t, err)
			b.Roots = append(b.Roots, store.RootSwap{Name: fields[1], New: id})
		case len(fields) == 4 && fields[0] == "blob":
			id, err := store.ParseID(fields[1])
			must(t, err)
			refs, err := strconv.ParseInt(fields[2], 10, 64)
			must(t, err)
			data, err := base64.StdEncoding.DecodeString(fields[3])
			must(t, err)
			got, err := st.Put(ctx, data)
			must(t, err)
			if got != id {
				t.Fatalf("blob %s of the dump hashes to %s", id.Short(), got.Short())
			}
			b.Refs[id] = refs
		default:
			t.Fatalf("bad dump line %.80q", sc.Text())
		}
	}
	must(t, sc.Err())
	must(t, st.Commit(ctx, b))
}

// listVolumes lists every volume and snapshot of f as testdata/format1/gen
// does.
func listVolumes(t *testing.T, f *FS) string {
	t.Helper()
	var w bytes.Buffer
	main, err := f.Volume("main")
	must(t, err)
	cp, err := f.Volume("copy")
	must(t, err)
	snap, err := main.OpenSnapshot("snap")
	must(t, err)
	for _, v := range []struct {
		name string
		vol  *Volume
	}{{"main", main}, {"copy", cp}, {"main@snap", snap}} {
		listTree(t, &w, v.vol, v.name, "")
	}
	return w.String()
}

// listTree is testdata/format1/gen's list: one line per file under dir.
func listTree(t *testing.T, w *bytes.Buffer, vol *Volume, name, dir string) {
	t.Helper()
	p := dir
	if p == "" {
		p = "."
	}
	fi, err := vol.Lstat(p)
	must(t, err)
	st := fi.Stat()
	ts := func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
	fmt.Fprintf(w, "%s:%s mode=%o uid=%d gid=%d nlink=%d size=%d rdev=%#x ino=%#x atime=%s mtime=%s ctime=%s btime=%s",
		name, p, st.Mode, st.UID, st.GID, st.Nlink, st.Size, st.Rdev, st.Ino, ts(st.Atime), ts(st.Mtime), ts(st.Ctime), ts(st.Btime))
	if st.Target != "" {
		fmt.Fprintf(w, " target=%s", st.Target)
	}
	if st.Mode&0o170000 == 0o100000 {
		b, err := vol.ReadFile(p)
		must(t, err)
		fmt.Fprintf(w, " data=%s", store.Sum(b).Short())
	}
	xs, err := vol.ListXattr(p)
	must(t, err)
	for _, x := range xs {
		val, err := vol.GetXattr(p, x)
		must(t, err)
		fmt.Fprintf(w, " xattr[%s]=%d:%s", x, len(val), store.Sum(val).Short())
	}
	fmt.Fprintln(w)
	if !fi.IsDir() {
		return
	}
	ents, err := vol.ReadDir(p)
	must(t, err)
	for _, e := range ents {
		listTree(t, w, vol, name, filepath.Join(dir, e.Name()))
	}
}

// checkClean runs the invariant checker and fails on any problem.
func checkClean(t *testing.T, f *FS) {
	t.Helper()
	rep, err := f.Check(context.Background())
	must(t, err)
	must(t, rep.Err())
}

// linesWith returns the lines of s that start with prefix.
func linesWith(s, prefix string) string {
	var out []string
	for _, l := range strings.SplitAfter(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "")
}

// lineDiff shows the lines that differ between want and got.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < max(len(w), len(g)); i++ {
		var a, c string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			c = g[i]
		}
		if a != c {
			fmt.Fprintf(&b, "line %d:\n  want %s\n  got  %s\n", i+1, a, c)
		}
	}
	return b.String()
}
