package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"path"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/cowfs/cowfs"
	"github.com/cowfs/cowfs/store"
)

// demoCommand is `cowfs demo`: an end-to-end example that creates a volume,
// writes files, clones a directory tree, copies byte ranges at unaligned
// offsets, deduplicates, snapshots, lists the snapshot with per-file stats,
// and checks every result. It fails on the first result that is wrong.
//
// It runs on any store, by default the default local store, and can run
// again and again on the same one: a demo volume left by an earlier run
// (marked as the demo's by an extended attribute on its root) is deleted
// first, with its snapshots. A volume of that name that the demo did not
// create is left alone and the demo fails.
func demoCommand() *cobra.Command {
	var spec, name string
	c := &cobra.Command{
		Use:   "demo [--store S] [--volume NAME]",
		Short: "run an end-to-end example and verify it",
		Long: "demo creates volume NAME, writes files, clones a directory tree, copies\n" +
			"byte ranges at unaligned offsets, deduplicates, snapshots, lists the\n" +
			"snapshot with per-file stats, and checks every result; it fails on the\n" +
			"first that is wrong. It can run again on the same store: a volume an\n" +
			"earlier demo left is deleted first; one it did not create is left alone.",
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(c *cobra.Command, _ []string) error {
			return runDemo(spec, name, c.OutOrStdout())
		},
	}
	storeFlag(c, &spec)
	c.Flags().StringVar(&name, "volume", "demo", "the `NAME` of the volume the demo creates (and deletes first if an earlier demo left it)")
	return c
}

// runDemo runs the demo on the store spec names, in volume name.
func runDemo(spec, name string, stdout io.Writer) error {
	f, st, where, err := openFS(spec, mayCreate, nil)
	if err != nil {
		return err
	}
	d := &demo{f: f, st: st, out: stdout, name: name}
	d.say("demo: store %s", where)
	err = d.run()
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close: %w", cerr)
	}
	if err == nil {
		d.say("")
		d.say("demo: all checks passed; volume %q stays in the store", d.name)
	}
	return err
}

// demoMark is the extended attribute on the root of a volume the demo
// created: only such a volume is deleted by a later run.
const demoMark = "user.cowfs.demo"

// demo holds the state of one demo run.
type demo struct {
	f    *cowfs.FS
	st   store.Store
	name string // of the demo's volume
	v    *cowfs.Volume
	out  io.Writer
	step int
	big  []byte // content of src/data/big.bin
}

// Sizes and offsets of the demo. The range copies use odd offsets and
// lengths on purpose: cowfs clones byte ranges, not blocks.
const (
	bigSize   = 4<<20 + 3 // src/data/big.bin
	copySoff  = 12_345    // first range copy: from big.bin at copySoff ...
	copyDoff  = 777       // ... to spliced.bin at copyDoff ...
	copyN     = 1_000_003 // ... this many bytes
	copy2Soff = 3_000_001 // second range copy, past the end with a gap
	copy2Gap  = 13
	copy2N    = 65_537
	headerLen = 1000 // spliced.bin starts as this many bytes of header
)

func (d *demo) say(format string, args ...any) { fmt.Fprintf(d.out, format+"\n", args...) }

func (d *demo) heading(title string) {
	d.step++
	d.say("")
	d.say("== %d. %s", d.step, title)
}

// check turns a failed expectation into an error.
func check(ok bool, format string, args ...any) error {
	if ok {
		return nil
	}
	return fmt.Errorf("check failed: "+format, args...)
}

func (d *demo) run() error {
	for _, step := range []func() error{
		d.create,
		d.writeFiles,
		d.cloneTree,
		d.rangeCopy,
		d.dedup,
		d.snapshot,
		d.stats,
	} {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// usage returns the store's total bytes.
func (d *demo) usage() (store.Usage, error) {
	u, err := d.st.Usage(context.Background())
	if err != nil {
		return u, fmt.Errorf("store usage: %w", err)
	}
	return u, nil
}

// commit commits and returns how many bytes the store grew by.
func (d *demo) commit() (int64, error) {
	before, err := d.usage()
	if err != nil {
		return 0, err
	}
	if err := d.f.Commit(); err != nil {
		return 0, err
	}
	after, err := d.usage()
	if err != nil {
		return 0, err
	}
	d.say("committed: store holds %d blobs, %d bytes (%+d bytes)", after.Blobs, after.Bytes, after.Bytes-before.Bytes)
	return after.Bytes - before.Bytes, nil
}

func (d *demo) create() error {
	d.heading("create a volume")
	if err := d.dropEarlier(); err != nil {
		return err
	}
	v, err := d.f.CreateVolume(d.name)
	if err != nil {
		return err
	}
	if err := v.SetXattr("/", demoMark, []byte("created by cowfs demo"), 0); err != nil {
		return err
	}
	if err := d.f.Commit(); err != nil {
		return err
	}
	d.v = v
	d.say("volume %q created", v.Name())
	return nil
}

// dropEarlier deletes the volume an earlier demo left under the demo's
// name, and refuses to touch a volume of that name the demo did not create.
func (d *demo) dropEarlier() error {
	names, err := d.f.Volumes()
	if err != nil {
		return err
	}
	if !slices.Contains(names, d.name) {
		return nil
	}
	v, err := d.f.Volume(d.name)
	if err != nil {
		return err
	}
	if _, err := v.GetXattr("/", demoMark); err != nil {
		if errors.Is(err, syscall.ENODATA) {
			return fmt.Errorf("volume %q exists and was not created by cowfs demo; leaving it alone (choose another name with --volume)", d.name)
		}
		return err
	}
	before, err := d.usage()
	if err != nil {
		return err
	}
	if err := d.f.DeleteVolume(d.name); err != nil {
		return err
	}
	after, err := d.usage()
	if err != nil {
		return err
	}
	d.say("deleted volume %q left by an earlier demo, and its snapshots (%d bytes freed)", d.name, before.Bytes-after.Bytes)
	return nil
}

// files of the source tree, other than big.bin.
var smallFiles = map[string]string{
	"src/docs/readme.txt": "cowfs: copies cost metadata, not bytes.\n",
	"src/docs/notes.txt":  "Clones of files, directories and volumes are O(1).\nRange copies work at any byte offset.\n",
	"src/data/small.txt":  "a small file, kept inline in its rope\n",
}

func (d *demo) writeFiles() error {
	d.heading("write files")
	for _, dir := range []string{"src/docs", "src/data"} {
		if err := d.v.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	for _, p := range sortedKeys(smallFiles) {
		if err := d.v.WriteFile(p, []byte(smallFiles[p]), 0o644); err != nil {
			return err
		}
		d.say("wrote %-22s %9d bytes", p, len(smallFiles[p]))
	}
	d.big = make([]byte, bigSize)
	// Fresh bytes every run, so that the demo measures what writing new data
	// costs even on a store that holds the data of earlier runs.
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], uint64(time.Now().UnixNano()))
	copy(seed[8:], d.name)
	rand.NewChaCha8(seed).Read(d.big)
	if err := d.v.WriteFile("src/data/big.bin", d.big, 0o644); err != nil {
		return err
	}
	d.say("wrote %-22s %9d bytes (pseudo-random)", "src/data/big.bin", len(d.big))
	if err := d.v.Symlink("docs/readme.txt", "src/README"); err != nil {
		return err
	}
	d.say("symlink src/README -> docs/readme.txt")
	grew, err := d.commit()
	if err != nil {
		return err
	}
	return check(grew >= bigSize, "store grew by %d bytes for %d bytes of data", grew, bigSize)
}

// want is the expected content of every file of the tree under root.
func (d *demo) want(root string) map[string][]byte {
	w := map[string][]byte{root + "/data/big.bin": d.big}
	for p, s := range smallFiles {
		w[root+strings.TrimPrefix(p, "src")] = []byte(s)
	}
	return w
}

// verify reads back files and compares them with their expected content.
func verify(v *cowfs.Volume, want map[string][]byte) error {
	for _, p := range sortedKeys(want) {
		got, err := v.ReadFile(p)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, want[p]) {
			return fmt.Errorf("check failed: %s of volume %s holds %d bytes that differ from the %d expected", p, v.Name(), len(got), len(want[p]))
		}
	}
	return nil
}

func (d *demo) cloneTree() error {
	d.heading("clone a directory tree")
	if err := d.v.Clone("src", "copy"); err != nil {
		return err
	}
	d.say("cloned src -> copy")
	grew, err := d.commit()
	if err != nil {
		return err
	}
	if err := check(grew < bigSize/100, "cloning the tree stored %d bytes; want only metadata (< %d)", grew, bigSize/100); err != nil {
		return err
	}
	if err := verify(d.v, d.want("copy")); err != nil {
		return err
	}
	target, err := d.v.Readlink("copy/README")
	if err != nil {
		return err
	}
	if err := check(target == "docs/readme.txt", "copy/README points to %q", target); err != nil {
		return err
	}
	d.say("copy holds the same bytes as src; the copy stored %d bytes of metadata and no data", grew)

	for _, p := range []string{"docs/readme.txt", "data/big.bin"} {
		a, err := d.v.Stat("src/" + p)
		if err != nil {
			return err
		}
		b, err := d.v.Stat("copy/" + p)
		if err != nil {
			return err
		}
		if err := check(a.Stat().Ino != b.Stat().Ino, "src/%s and copy/%s share inode number %#x", p, p, a.Stat().Ino); err != nil {
			return err
		}
		d.say("inode numbers: src/%s %#x, copy/%s %#x", p, a.Stat().Ino, p, b.Stat().Ino)
	}

	// The copy is independent: changing it leaves src alone.
	fl, err := d.v.OpenFile("copy/docs/readme.txt", os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	if _, err := fl.Write([]byte("changed in the copy only\n")); err != nil {
		fl.Close()
		return err
	}
	if err := fl.Close(); err != nil {
		return err
	}
	if err := verify(d.v, d.want("src")); err != nil {
		return err
	}
	d.say("appended to copy/docs/readme.txt; src/docs/readme.txt is unchanged")
	return nil
}

func (d *demo) rangeCopy() error {
	d.heading("copy byte ranges at unaligned offsets")
	header := bytes.Repeat([]byte("header. "), headerLen/8)
	if err := d.v.WriteFile("spliced.bin", header, 0o644); err != nil {
		return err
	}
	src, err := d.v.Open("src/data/big.bin")
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := d.v.OpenFile("spliced.bin", os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer dst.Close()
	n, err := cowfs.CopyRange(src, copySoff, dst, copyDoff, copyN)
	if err != nil {
		return err
	}
	if err := check(n == copyN, "copied %d bytes, want %d", n, copyN); err != nil {
		return err
	}
	d.say("copy range: %d bytes of src/data/big.bin at %d -> spliced.bin at %d", n, copySoff, copyDoff)
	at := int64(copyDoff + copyN + copy2Gap)
	if n, err = cowfs.CopyRange(src, copy2Soff, dst, at, copy2N); err != nil {
		return err
	}
	if err := check(n == copy2N, "copied %d bytes, want %d", n, copy2N); err != nil {
		return err
	}
	d.say("copy range: %d bytes of src/data/big.bin at %d -> spliced.bin at %d (leaving a %d-byte hole)", n, copy2Soff, at, copy2Gap)

	want := append([]byte{}, header[:copyDoff]...)
	want = append(want, d.big[copySoff:copySoff+copyN]...)
	want = append(want, make([]byte, copy2Gap)...)
	want = append(want, d.big[copy2Soff:copy2Soff+copy2N]...)
	grew, err := d.commit()
	if err != nil {
		return err
	}
	if err := check(grew < bigSize/100, "range copies stored %d bytes; want only metadata", grew); err != nil {
		return err
	}
	if err := verify(d.v, map[string][]byte{"spliced.bin": want}); err != nil {
		return err
	}
	fi, err := d.v.Stat("spliced.bin")
	if err != nil {
		return err
	}
	d.say("spliced.bin: %d bytes in %d extents, content verified", fi.Size(), fi.Stat().Extents)
	return nil
}

func (d *demo) dedup() error {
	d.heading("write the same bytes again")
	if err := d.v.WriteFile("src/data/big-again.bin", d.big, 0o644); err != nil {
		return err
	}
	d.say("wrote src/data/big-again.bin: the %d bytes of big.bin, written anew", len(d.big))
	grew, err := d.commit()
	if err != nil {
		return err
	}
	if err := check(grew < bigSize/100, "writing %d identical bytes stored %d bytes; want < 1%%", bigSize, grew); err != nil {
		return err
	}
	d.say("identical data is stored once: the store grew by %d bytes for %d written", grew, bigSize)
	return nil
}

func (d *demo) snapshot() error {
	d.heading("snapshot, then change the volume")
	if err := d.v.Snapshot("before-cleanup"); err != nil {
		return err
	}
	d.say("snapshot %q taken", "before-cleanup")
	if err := d.v.Remove("copy/docs/notes.txt"); err != nil {
		return err
	}
	if err := d.v.WriteFile("src/docs/readme.txt", []byte("rewritten after the snapshot\n"), 0o644); err != nil {
		return err
	}
	d.say("removed copy/docs/notes.txt, rewrote src/docs/readme.txt")
	if _, err := d.commit(); err != nil {
		return err
	}

	snaps, err := d.v.Snapshots()
	if err != nil {
		return err
	}
	if err := check(len(snaps) == 1 && snaps[0].Name == "before-cleanup", "snapshots: %v", snaps); err != nil {
		return err
	}
	d.say("snapshots of %s:", d.v.Name())
	for _, s := range snaps {
		d.say("  %s  (created %s)", s.Name, s.Created.Format("2006-01-02 15:04:05.000"))
	}
	snap, err := d.v.OpenSnapshot("before-cleanup")
	if err != nil {
		return err
	}
	d.say("")
	d.say("contents of snapshot %s:", snap.Name())
	if _, err := d.list(snap); err != nil {
		return err
	}
	if err := verify(snap, d.want("src")); err != nil {
		return err
	}
	if err := verify(snap, map[string][]byte{"copy/docs/notes.txt": []byte(smallFiles["src/docs/notes.txt"])}); err != nil {
		return err
	}
	if _, err := d.v.Stat("copy/docs/notes.txt"); !errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("check failed: copy/docs/notes.txt in the volume after its removal: %v", err)
	}
	err = snap.WriteFile("src/docs/readme.txt", []byte("x"), 0o644)
	if !errors.Is(err, syscall.EROFS) {
		return fmt.Errorf("check failed: writing to a snapshot: %v, want EROFS", err)
	}
	d.say("the snapshot keeps the old files and contents, and refuses writes (%v)", syscall.EROFS)
	return nil
}

func (d *demo) stats() error {
	d.heading("per-file stats of the volume")
	inos, err := d.list(d.v)
	if err != nil {
		return err
	}
	seen := map[uint64]string{}
	for p, ino := range inos {
		if q, dup := seen[ino]; dup {
			return fmt.Errorf("check failed: %s and %s share inode number %#x", p, q, ino)
		}
		seen[ino] = p
	}
	d.say("%d entries, every inode number distinct", len(inos))
	return nil
}

// list prints every entry of v with its inode number, size and extent
// count, and returns the inode numbers by path.
func (d *demo) list(v *cowfs.Volume) (map[string]uint64, error) {
	inos := map[string]uint64{}
	d.say("  %-26s %-16s %-4s %10s %8s", "path", "ino", "type", "size", "extents")
	var walk func(dir string) error
	walk = func(dir string) error {
		infos, err := v.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, fi := range infos {
			p := path.Join(dir, fi.Name())
			st := fi.Stat()
			inos[p] = st.Ino
			kind, size, ext := "file", fmt.Sprint(st.Size), fmt.Sprint(st.Extents)
			switch {
			case fi.IsDir():
				kind, size = "dir", "-"
				ext = "-"
			case st.Target != "":
				kind, ext = "link", "-"
			}
			d.say("  %-26s %#-16x %-4s %10s %8s", p, st.Ino, kind, size, ext)
			if fi.IsDir() {
				if err := walk(p); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return inos, walk(".")
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
