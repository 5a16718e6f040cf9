// Command gen wrote testdata/format1 with the code of commit 8f90303, the
// last whose directory entries kept times as int64 nanoseconds and every
// extended attribute inline: store.txt.gz is every blob of that store (ID,
// count, bytes) and its roots, and listing.txt what that code read back
// from each volume and snapshot. TestFormat1 loads the store with today's
// code and must read the same. Do not run it again: its output must stay
// in the old format (it is kept to show how the store was made).
//
//	go run ./testdata/format1/gen testdata/format1
package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/cowfs/cowfs"
	"github.com/cowfs/cowfs/acl"
	"github.com/cowfs/cowfs/store"
	"github.com/cowfs/cowfs/store/mem"
)

func main() {
	out := os.Args[1]
	st := mem.New()
	// A clock before 1970 with nanoseconds, one tick per stamp, so that
	// ctimes and birth times are negative with a fraction too.
	clock := time.Date(1965, 5, 5, 5, 5, 5, 123456789, time.UTC)
	now := func() time.Time { clock = clock.Add(time.Second + time.Nanosecond); return clock }
	f, err := cowfs.Open(nopClose{st}, &cowfs.Options{Now: now})
	check(err)
	v, err := f.CreateVolume("main")
	check(err)
	check(v.MkdirAll("d/e", 0o750))
	check(v.WriteFile("d/small", []byte("hello, old format\n"), 0o640))
	big := make([]byte, 10<<10) // one data blob
	for i := range big {
		big[i] = byte(i*7 + i/251)
	}
	check(v.WriteFile("big", big, 0o600))
	mid := make([]byte, 40<<10) // past the smallest content-defined chunk
	x := uint32(1)
	for i := range mid {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		mid[i] = byte(x)
	}
	check(v.WriteFile("d/e/mid", mid, 0o644))
	check(v.Symlink("d/small", "ln"))
	check(v.Mknod("fifo", 0o010644, 0))
	check(v.Mknod("chr", 0o020600, 0x0501))
	check(v.Link("d/small", "hard"))
	check(v.SetXattr("d/small", "user.a", []byte("1"), 0))
	check(v.SetXattr("d/small", "user.empty", nil, 0))
	check(v.SetXattr("d/small", "trusted.t", []byte("t"), 0))
	check(v.SetXattr("big", "user.big", bytes.Repeat([]byte("0123456789"), 6000), 0))
	check(v.Mkdir("acl", 0o755))
	def := acl.ACL{{Tag: acl.UserObj, Perm: 7}, {Tag: acl.User, ID: 1000, Perm: 5}, {Tag: acl.GroupObj, Perm: 5}, {Tag: acl.Mask, Perm: 5}, {Tag: acl.Other, Perm: 0}}
	check(v.SetXattr("acl", acl.DefaultXattr, def.Encode(), 0))
	check(v.WriteFile("acl/f", []byte("inherits"), 0o666))
	check(v.Chown("d", 1000, 100))
	utc := func(y int, mo time.Month, d, h, mi, s, ns int) time.Time {
		return time.Date(y, mo, d, h, mi, s, ns, time.UTC)
	}
	check(v.Chtimes("d/small", utc(1960, 1, 1, 0, 0, 0, 123456789), utc(1969, 12, 31, 23, 59, 59, 500000000)))
	check(v.Chtimes("big", utc(1901, 12, 13, 20, 45, 52, 1), utc(2262, 1, 1, 0, 0, 0, 999999999)))
	check(v.Chtimes("d", utc(2038, 1, 19, 3, 14, 8, 0), utc(1970, 1, 1, 0, 0, 0, 1)))
	check(v.Lchtimes("ln", utc(1999, 12, 31, 23, 59, 59, 999999999), utc(1970, 1, 1, 0, 0, 0, 0)))
	check(v.Clone("d", "dclone"))
	check(f.Commit())
	check(v.Snapshot("snap"))
	check(v.WriteFile("d/small", []byte("changed after the snapshot\n"), 0o640))
	check(v.Remove("fifo"))
	check(f.Commit())
	check(f.CloneVolume("main", "copy"))
	check(f.Commit())

	var listing bytes.Buffer
	vols := []string{"main", "copy", "main@snap"}
	for _, name := range vols {
		var vol *cowfs.Volume
		if name == "main@snap" {
			vol, err = v.OpenSnapshot("snap")
		} else {
			vol, err = f.Volume(name)
		}
		check(err)
		list(&listing, vol, name, "")
	}
	check(f.Close())
	check(os.WriteFile(filepath.Join(out, "listing.txt"), listing.Bytes(), 0o644))

	var dump bytes.Buffer
	ctx := context.Background()
	roots, err := st.ListRoots(ctx)
	check(err)
	for _, r := range roots {
		fmt.Fprintf(&dump, "root %s %s\n", r.Name, r.ID)
	}
	var blobs []store.BlobInfo
	check(st.List(ctx, func(b store.BlobInfo) error { blobs = append(blobs, b); return nil }))
	sort.Slice(blobs, func(i, j int) bool { return blobs[i].ID.String() < blobs[j].ID.String() })
	for _, b := range blobs {
		data, err := st.Get(ctx, b.ID)
		check(err)
		fmt.Fprintf(&dump, "blob %s %d %s\n", b.ID, b.Refs, base64.StdEncoding.EncodeToString(data))
	}
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	_, err = w.Write(dump.Bytes())
	check(err)
	check(w.Close())
	check(os.WriteFile(filepath.Join(out, "store.txt.gz"), gz.Bytes(), 0o644))
}

// list writes one line per file of vol under dir, depth first in name order.
func list(w *bytes.Buffer, vol *cowfs.Volume, name, dir string) {
	p := dir
	if p == "" {
		p = "."
	}
	fi, err := vol.Lstat(p)
	check(err)
	st := fi.Stat()
	ts := func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
	fmt.Fprintf(w, "%s:%s mode=%o uid=%d gid=%d nlink=%d size=%d rdev=%#x ino=%#x atime=%s mtime=%s ctime=%s btime=%s",
		name, p, st.Mode, st.UID, st.GID, st.Nlink, st.Size, st.Rdev, st.Ino, ts(st.Atime), ts(st.Mtime), ts(st.Ctime), ts(st.Btime))
	if st.Target != "" {
		fmt.Fprintf(w, " target=%s", st.Target)
	}
	if st.Mode&0o170000 == 0o100000 {
		b, err := vol.ReadFile(p)
		check(err)
		fmt.Fprintf(w, " data=%s", store.Sum(b).Short())
	}
	xs, err := vol.ListXattr(p)
	check(err)
	for _, x := range xs {
		val, err := vol.GetXattr(p, x)
		check(err)
		fmt.Fprintf(w, " xattr[%s]=%d:%s", x, len(val), store.Sum(val).Short())
	}
	fmt.Fprintln(w)
	if !fi.IsDir() {
		return
	}
	ents, err := vol.ReadDir(p)
	check(err)
	for _, e := range ents {
		list(w, vol, name, filepath.Join(dir, e.Name()))
	}
}

type nopClose struct{ *mem.Store }

func (nopClose) Close() error { return nil }

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
