package main

import (
	crand "crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"9fans.net/go/plan9"
	"golang.org/x/sys/unix"

	"github.com/cowfs/cowfs"
	"github.com/cowfs/cowfs/store"
)

// The tests, as the report names them.
const (
	testCloneWhole   = "clone a whole file (time vs extent count)"
	testCloneRange   = "range clone of half a file"
	testCopyRange    = "copy_file_range of half a file"
	testCp           = "cp of one file"
	testCpR          = "cp -r of a tree of small files"
	testFootprint    = "memory after reading a file and 9 clones of it"
	testFioSeqRead   = "fio sequential read, 1 MiB"
	testFioSeqWrite  = "fio sequential write, 1 MiB"
	testFioRandRead  = "fio random read, 4 KiB"
	testFioRandWrite = "fio random write, 4 KiB"
	testDeferred     = "read of a whole file: deferred vs plain"
	testSnapshot     = "snapshot of a volume"
)

const block = 4096

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

// measure runs fn sz.runs times on t and records the figures; fn returns
// its figure and a note on how it got it.
func (b *bench) measure(t *target, test, param string, x float64, unit string, higher bool, fn func(run int) (float64, string, error)) {
	r := Result{Test: test, Param: param, X: x, Target: t.name, Unit: unit, Higher: higher}
	for i := range b.sz.runs {
		v, note, err := fn(i)
		if err != nil {
			r.Err = err.Error()
			break
		}
		r.Runs, r.Note = append(r.Runs, v), note
	}
	if r.Err == "" {
		r.Median = Median(r.Runs)
		logf("%s: %s %s: %.4g %s %s", t.name, test, param, r.Median, unit, r.Note)
	} else {
		logf("%s: %s %s: %s", t.name, test, param, r.Err)
	}
	b.rep.Results = append(b.rep.Results, r)
}

// timed runs fn and returns its time in unit ("s" or "ms").
func timed(unit string, fn func() (string, error)) (float64, string, error) {
	t0 := time.Now()
	note, err := fn()
	d := time.Since(t0).Seconds()
	if unit == "ms" {
		d *= 1000
	}
	return d, note, err
}

// runAll runs every test on every target.
func (b *bench) runAll() {
	for _, t := range b.targets {
		logf("%s: starting", t.name)
		steps := []func(*target) error{b.cloneWhole, b.cloneRange, b.cp, b.cpTree, b.deferred, b.footprint, b.fio, b.snapshotTest}
		for _, step := range steps {
			if err := step(t); err != nil {
				b.skip("%s: %v", t.name, err)
			}
		}
	}
}

// randFile writes size random bytes as file p of t.
func (b *bench) randFile(t *target, p string, size int64) error {
	buf := make([]byte, 1<<20)
	var w io.WriterAt
	switch t.kind {
	case posixKind:
		f, err := os.Create(filepath.Join(t.dir, p))
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	case apiKind:
		f, err := t.vol.Create(p)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	case ninepKind:
		f, err := t.fsys.Create(p, plan9.OWRITE, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	for off := int64(0); off < size; off += int64(len(buf)) {
		crand.Read(buf)
		n := min(int64(len(buf)), size-off)
		if _, err := w.WriteAt(buf[:n], off); err != nil {
			return err
		}
	}
	return nil
}

// settle makes what was just written durable before a timed step, so the
// step does not pay for it: sync(2), or for cowfs commits (a commit, or
// ctl's sync) until no deletions of earlier tests are still pending.
func (b *bench) settle(t *target) error {
	if t.kind == posixKind && t.ctl == nil {
		syscall.Sync()
		return nil
	}
	for range 1000 {
		var pending int64
		if t.kind == apiKind {
			if err := t.fs.Commit(); err != nil {
				return err
			}
			pending = t.fs.Zombies()
		} else {
			if _, err := t.ctl("sync"); err != nil {
				return err
			}
			reply, err := t.ctl("stats")
			if err != nil {
				return err
			}
			var st struct {
				Zombies int64 `json:"zombies"`
			}
			if err := jsonUnmarshal(reply, &st); err != nil {
				return fmt.Errorf("stats reply: %v", err)
			}
			pending = st.Zombies
		}
		if pending == 0 {
			// Let the local store compact now rather than under a timed
			// step (the daemons compact in the background on their own).
			if c, ok := t.fsStore().(store.Compacter); ok {
				return c.Compact()
			}
			return nil
		}
	}
	return errors.New("deletions still pending after 1000 commits")
}

// fsStore is the API target's store, nil for the others.
func (t *target) fsStore() any {
	if t.fs == nil {
		return nil
	}
	return t.fs.Store()
}

// remove removes p (a file or a tree) of t.
func (b *bench) remove(t *target, p string) {
	switch t.kind {
	case posixKind:
		os.RemoveAll(filepath.Join(t.dir, p))
	case apiKind:
		removeAll(t.vol, p)
	case ninepKind:
		t.ctl("sync")
		t.fsys.Remove(p)
	}
}

func removeAll(v *cowfs.Volume, p string) {
	if list, err := v.ReadDir(p); err == nil {
		for _, fi := range list {
			removeAll(v, path.Join(p, fi.Name()))
		}
	}
	v.Remove(p)
}

// cloneRangeFd shares n bytes of src at soff into dst at doff with
// FICLONERANGE, falling back to copy_file_range; it returns how.
func cloneRangeFd(dst, src *os.File, soff, doff, n int64) (string, error) {
	err := unix.IoctlFileCloneRange(int(dst.Fd()), &unix.FileCloneRange{Src_fd: int64(src.Fd()), Src_offset: uint64(soff), Src_length: uint64(n), Dest_offset: uint64(doff)})
	if err == nil {
		return "FICLONERANGE", nil
	}
	return fmt.Sprintf("FICLONERANGE: %v; copy_file_range", err), copyRangeFd(dst, src, soff, doff, n)
}

// copyRangeFd copies n bytes of src at soff into dst at doff with
// copy_file_range(2), which the file system may serve as a clone.
func copyRangeFd(dst, src *os.File, soff, doff, n int64) error {
	for n > 0 {
		k, err := unix.CopyFileRange(int(src.Fd()), &soff, int(dst.Fd()), &doff, int(min(n, 1<<30)), 0)
		if err != nil {
			return fmt.Errorf("copy_file_range: %v", err)
		}
		if k == 0 {
			return errors.New("copy_file_range: short copy")
		}
		n -= int64(k)
	}
	return nil
}

// cloneFile clones src to a new file dst: FICLONE, else copy_file_range.
func cloneFile(dst, src string) (string, error) {
	s, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer s.Close()
	d, err := os.Create(dst)
	if err != nil {
		return "", err
	}
	defer d.Close()
	if err := unix.IoctlFileClone(int(d.Fd()), int(s.Fd())); err == nil {
		return "FICLONE", nil
	} else {
		fi, _ := s.Stat()
		how, err2 := cloneRangeFd(d, s, 0, 0, fi.Size())
		return fmt.Sprintf("FICLONE: %v; %s", err, strings.TrimPrefix(how, "FICLONERANGE: "+err.Error()+"; ")), err2
	}
}

// piece is the source block of extent i of a fragmented file: a stride
// through 1024 blocks that never puts neighbours side by side.
func piece(i int) int64 { return int64(i*7919%1024) * block }

// cloneWhole builds files of n extents (each 4 KiB, shared from a 4 MiB
// source in an order that keeps them apart) and times cloning each.
func (b *bench) cloneWhole(t *target) error {
	if err := b.randFile(t, "clsrc", 1024*block); err != nil {
		return err
	}
	defer b.remove(t, "clsrc")
	for _, n := range b.sz.extents {
		param := fmt.Sprintf("%d extents", n)
		if n == 1 {
			param = "1 extent"
		}
		limit := ""
		switch {
		case t.kind == ninepKind && n > b.sz.maxExt9P:
			limit = "built over 9P one round trip per extent: capped at " + strconv.Itoa(b.sz.maxExt9P)
		case t.kind == posixKind && !t.reflink && t.name != "cowfs-fuse" && n > 65536:
			limit = "no shared extents: the file would be copied into memory"
		}
		if limit != "" {
			b.rep.Results = append(b.rep.Results, Result{Test: testCloneWhole, Param: param, X: float64(n), Target: t.name, Unit: "s", Err: limit})
			continue
		}
		frag := fmt.Sprintf("frag%d", n)
		how, err := b.fragment(t, frag, n)
		if err == nil {
			err = b.settle(t)
		}
		if err != nil {
			return fmt.Errorf("building %d extents: %v", n, err)
		}
		b.measure(t, testCloneWhole, param, float64(n), "s", false, func(run int) (float64, string, error) {
			dst := fmt.Sprintf("%s-clone%d", frag, run)
			v, note, err := timed("s", func() (string, error) { return b.cloneOne(t, frag, dst) })
			b.remove(t, dst)
			return v, "file built with " + how + "; cloned with " + note, err
		})
		b.remove(t, frag)
	}
	return nil
}

// fragment builds file p of n 4 KiB extents from clsrc.
func (b *bench) fragment(t *target, p string, n int) (string, error) {
	switch t.kind {
	case apiKind:
		src, err := t.vol.Open("clsrc")
		if err != nil {
			return "", err
		}
		defer src.Close()
		dst, err := t.vol.Create(p)
		if err != nil {
			return "", err
		}
		defer dst.Close()
		for i := range n {
			if _, err := cowfs.CopyRange(src, piece(i), dst, int64(i)*block, block); err != nil {
				return "", err
			}
		}
		return "CopyRange", t.fs.Commit()
	case ninepKind:
		f, err := t.fsys.Create(p, plan9.OWRITE, 0o644)
		if err != nil {
			return "", err
		}
		f.Close()
		for i := range n {
			if _, err := t.ctl(fmt.Sprintf("copyrange clsrc %d %s %d %d", piece(i), p, int64(i)*block, block)); err != nil {
				return "", err
			}
		}
		return "ctl copyrange", nil
	}
	src, err := os.Open(filepath.Join(t.dir, "clsrc"))
	if err != nil {
		return "", err
	}
	defer src.Close()
	dst, err := os.Create(filepath.Join(t.dir, p))
	if err != nil {
		return "", err
	}
	defer dst.Close()
	how := ""
	for i := range n {
		h, err := cloneRangeFd(dst, src, piece(i), int64(i)*block, block)
		if err != nil {
			return "", err
		}
		how = h
	}
	return how, dst.Sync()
}

// cloneOne clones file src to dst the target's cheapest way.
func (b *bench) cloneOne(t *target, src, dst string) (string, error) {
	switch t.kind {
	case apiKind:
		return "Volume.Clone", t.vol.Clone(src, dst)
	case ninepKind:
		_, err := t.ctl("clone " + src + " " + dst)
		return "ctl clone over 9P", err
	}
	if fi, err := os.Stat(filepath.Join(t.dir, src)); err == nil && fi.IsDir() {
		if t.ctl == nil {
			return "", errors.New("cannot clone a directory here")
		}
		_, err := t.ctl("clone " + src + " " + dst)
		return "ctl clone through the mount", err
	}
	return cloneFile(filepath.Join(t.dir, dst), filepath.Join(t.dir, src))
}

// cloneRange shares half of a file into another at aligned and unaligned
// offsets: FICLONERANGE falling back to copy_file_range (or the cowfs
// range clone), then copy_file_range alone.
func (b *bench) cloneRange(t *target) error {
	size := b.sz.rangeMiB << 20
	for _, p := range []string{"rsrc", "rdst"} {
		if err := b.randFile(t, p, size); err != nil {
			return err
		}
		defer b.remove(t, p)
	}
	if err := b.settle(t); err != nil {
		return err
	}
	for _, c := range []struct {
		param            string
		soff, doff, span int64
	}{{"aligned", block, 2 * block, size / 2}, {"unaligned", 1000, 5001, size/2 - 3}} {
		b.measure(t, testCloneRange, c.param, 0, "ms", false, func(int) (float64, string, error) {
			return timed("ms", func() (string, error) {
				switch t.kind {
				case apiKind:
					src, err := t.vol.Open("rsrc")
					if err != nil {
						return "", err
					}
					defer src.Close()
					dst, err := t.vol.OpenFile("rdst", os.O_RDWR, 0)
					if err != nil {
						return "", err
					}
					defer dst.Close()
					_, err = cowfs.CopyRange(src, c.soff, dst, c.doff, c.span)
					return "CopyRange", err
				case ninepKind:
					_, err := t.ctl(fmt.Sprintf("copyrange rsrc %d rdst %d %d", c.soff, c.doff, c.span))
					return "ctl copyrange over 9P", err
				}
				src, dst, err := openPair(t)
				if err != nil {
					return "", err
				}
				defer src.Close()
				defer dst.Close()
				return cloneRangeFd(dst, src, c.soff, c.doff, c.span)
			})
		})
		// copy_file_range on its own, which cp uses and which btrfs and
		// XFS serve as a clone where the offsets allow.
		if t.kind != posixKind {
			b.rep.Results = append(b.rep.Results, Result{Test: testCopyRange, Param: c.param, Target: t.name, Unit: "ms", Err: "no copy_file_range: see " + testCloneRange})
			continue
		}
		b.measure(t, testCopyRange, c.param, 0, "ms", false, func(int) (float64, string, error) {
			return timed("ms", func() (string, error) {
				src, dst, err := openPair(t)
				if err != nil {
					return "", err
				}
				defer src.Close()
				defer dst.Close()
				return "copy_file_range", copyRangeFd(dst, src, c.soff, c.doff, c.span)
			})
		})
	}
	return nil
}

// openPair opens the range tests' source for reading and target for
// writing.
func openPair(t *target) (src, dst *os.File, err error) {
	if src, err = os.Open(filepath.Join(t.dir, "rsrc")); err != nil {
		return nil, nil, err
	}
	if dst, err = os.OpenFile(filepath.Join(t.dir, "rdst"), os.O_RDWR, 0); err != nil {
		src.Close()
		return nil, nil, err
	}
	return src, dst, nil
}

// cp times copying one big file: cp(1) on a kernel path, the cheapest
// clone elsewhere.
func (b *bench) cp(t *target) error {
	if err := b.randFile(t, "big", b.sz.fileMiB<<20); err != nil {
		return err
	}
	defer b.remove(t, "big")
	if err := b.settle(t); err != nil {
		return err
	}
	param := fmt.Sprintf("%d MiB", b.sz.fileMiB)
	b.measure(t, testCp, param, 0, "s", false, func(run int) (float64, string, error) {
		dst := fmt.Sprintf("big-copy%d", run)
		defer b.remove(t, dst)
		return timed("s", func() (string, error) {
			if t.kind != posixKind {
				return b.cloneOne(t, "big", dst)
			}
			return "cp", sh("cp", filepath.Join(t.dir, "big"), filepath.Join(t.dir, dst))
		})
	})
	return nil
}

// makeTree makes n files of 1 KiB, 100 to a directory, under p.
func (b *bench) makeTree(t *target, p string, n int) error {
	data := make([]byte, 1024)
	for i := range n {
		dir := fmt.Sprintf("%s/d%d", p, i/100)
		name := fmt.Sprintf("%s/f%d", dir, i)
		crand.Read(data[:16])
		switch t.kind {
		case posixKind:
			if i%100 == 0 {
				if err := os.MkdirAll(filepath.Join(t.dir, dir), 0o755); err != nil {
					return err
				}
			}
			if err := os.WriteFile(filepath.Join(t.dir, name), data, 0o644); err != nil {
				return err
			}
		case apiKind:
			if i%100 == 0 {
				if err := t.vol.MkdirAll(dir, 0o755); err != nil {
					return err
				}
			}
			if err := t.vol.WriteFile(name, data, 0o644); err != nil {
				return err
			}
		case ninepKind:
			if i == 0 {
				if err := b.mkdir(t, p); err != nil {
					return err
				}
			}
			if i%100 == 0 {
				if err := b.mkdir(t, dir); err != nil {
					return err
				}
			}
			f, err := t.fsys.Create(name, plan9.OWRITE, 0o644)
			if err != nil {
				return err
			}
			_, err = f.Write(data)
			f.Close()
			if err != nil {
				return err
			}
		}
	}
	return nil
}

func (b *bench) cpTree(t *target) error {
	n := b.sz.treeFiles
	if t.kind == ninepKind {
		n = min(n, 10000) // one round trip per file and directory
	}
	if err := b.makeTree(t, "tree", n); err != nil {
		return err
	}
	defer b.remove(t, "tree")
	if err := b.settle(t); err != nil {
		return err
	}
	b.measure(t, testCpR, fmt.Sprintf("%d files", n), 0, "s", false, func(run int) (float64, string, error) {
		dst := fmt.Sprintf("tree-copy%d", run)
		defer b.remove(t, dst)
		return timed("s", func() (string, error) {
			switch t.kind {
			case apiKind:
				return "Volume.Clone of the directory", t.vol.Clone("tree", dst)
			case ninepKind:
				_, err := t.ctl("clone tree " + dst)
				return "ctl clone over 9P", err
			}
			return "cp -r", sh("cp", "-r", filepath.Join(t.dir, "tree"), filepath.Join(t.dir, dst))
		})
	})
	return nil
}

// deferred times a deferred read of a whole file (mmap MAP_PRIVATE on a
// kernel path; File.ReadDeferred in the API) against reading it.
func (b *bench) deferred(t *target) error {
	if t.kind == ninepKind {
		b.rep.Results = append(b.rep.Results, Result{Test: testDeferred, Param: "deferred", Target: t.name, Unit: "ms", Err: "9P has no deferred read"})
		return nil
	}
	size := b.sz.fileMiB << 20
	if err := b.randFile(t, "dread", size); err != nil {
		return err
	}
	defer b.remove(t, "dread")
	if err := b.settle(t); err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	for _, param := range []string{"deferred", "plain"} {
		b.measure(t, testDeferred, param, 0, "ms", false, func(int) (float64, string, error) {
			return timed("ms", func() (string, error) {
				if t.kind == apiKind {
					f, err := t.vol.Open("dread")
					if err != nil {
						return "", err
					}
					defer f.Close()
					if param == "deferred" {
						v, err := f.ReadDeferred(0, size)
						if err == nil {
							v.Release()
						}
						return "File.ReadDeferred", err
					}
					for off := int64(0); off < size; off += int64(len(buf)) {
						if _, err := f.ReadAt(buf, off); err != nil && err != io.EOF {
							return "", err
						}
					}
					return "File.ReadAt, 1 MiB at a time", nil
				}
				f, err := os.Open(filepath.Join(t.dir, "dread"))
				if err != nil {
					return "", err
				}
				defer f.Close()
				if param == "deferred" {
					m, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE)
					if err == nil {
						unix.Munmap(m)
					}
					return "mmap(MAP_PRIVATE)", err
				}
				for {
					if _, err := f.Read(buf); err == io.EOF {
						return "read(2), 1 MiB at a time", nil
					} else if err != nil {
						return "", err
					}
				}
			})
		})
	}
	return nil
}

// meminfo returns a /proc/meminfo field in bytes.
func meminfo(field string) (int64, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == field+":" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/meminfo", field)
}

func dropCaches() error {
	syscall.Sync()
	return os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0)
}

// footprint writes a file and 9 clones of it, reads all 10 once and
// reports the memory that holds their data afterwards: the growth of the
// kernel's Cached for kernel paths (caches dropped first), the cowfs
// data cache for the API and 9P (and both for the cowfs mount).
func (b *bench) footprint(t *target) error {
	size := b.sz.fileMiB << 20
	if t.kind == posixKind {
		total, err := meminfo("MemTotal")
		if err != nil {
			return err
		}
		if !t.reflink && t.name != "cowfs-fuse" && 10*size > total*2/5 {
			b.rep.Results = append(b.rep.Results, Result{Test: testFootprint, Param: fmt.Sprintf("%d MiB file", b.sz.fileMiB), Target: t.name, Unit: "MiB", Err: "10 full copies would not fit in 40% of memory"})
			return nil
		}
	}
	b.measure(t, testFootprint, fmt.Sprintf("%d MiB file", b.sz.fileMiB), 0, "MiB", false, func(int) (float64, string, error) {
		var before int64
		if t.kind == posixKind {
			if err := dropCaches(); err != nil {
				return 0, "", err
			}
			var err error
			if before, err = meminfo("Cached"); err != nil {
				return 0, "", err
			}
		}
		names := []string{"fp0"}
		if err := b.randFile(t, "fp0", size); err != nil {
			return 0, "", err
		}
		defer func() {
			for _, n := range names {
				b.remove(t, n)
			}
		}()
		how := ""
		for i := 1; i < 10; i++ {
			names = append(names, fmt.Sprintf("fp%d", i))
			h, err := b.cloneOne(t, "fp0", names[i])
			if err != nil {
				return 0, "", err
			}
			how = h
		}
		if t.kind == apiKind {
			// Start from an empty cache: reopen the FS.
			if err := b.reopenAPI(t); err != nil {
				return 0, "", err
			}
		}
		if t.kind == posixKind {
			if err := dropCaches(); err != nil {
				return 0, "", err
			}
		}
		for _, n := range names {
			if err := b.readAll(t, n); err != nil {
				return 0, "", err
			}
		}
		note := "clones made with " + how
		var got int64
		if t.kind == posixKind {
			after, err := meminfo("Cached")
			if err != nil {
				return 0, "", err
			}
			got = after - before
			note += "; growth of Cached (/proc/meminfo)"
		}
		if t.cacheBytes != nil {
			c, err := t.cacheBytes()
			if err != nil {
				return 0, "", err
			}
			got += c
			note += fmt.Sprintf("; cowfs data cache %d MiB", c>>20)
		}
		return float64(got) / (1 << 20), note, nil
	})
	return nil
}

// reopenAPI closes and reopens the API target's FS, emptying its cache.
func (b *bench) reopenAPI(t *target) error {
	b.stop(t)
	return b.cowfsAPI(t)
}

// readAll reads file p of t once, 1 MiB at a time.
func (b *bench) readAll(t *target, p string) error {
	var r io.Reader
	switch t.kind {
	case posixKind:
		f, err := os.Open(filepath.Join(t.dir, p))
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	case apiKind:
		f, err := t.vol.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	case ninepKind:
		f, err := t.fsys.Open(p, plan9.OREAD)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	_, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{r}, make([]byte, 1<<20))
	return err
}

// fio runs fio's four jobs on a kernel path.
func (b *bench) fio(t *target) error {
	if t.kind != posixKind {
		for _, test := range []string{testFioSeqRead, testFioSeqWrite, testFioRandRead, testFioRandWrite} {
			b.rep.Results = append(b.rep.Results, Result{Test: test, Target: t.name, Err: "fio needs a kernel path"})
		}
		return nil
	}
	if _, err := exec.LookPath("fio"); err != nil {
		return errors.New("fio is missing (Debian package fio)")
	}
	file := filepath.Join(t.dir, "fio.dat")
	defer os.Remove(file)
	for _, job := range []struct {
		test, rw, bs, unit string
	}{
		{testFioSeqWrite, "write", "1M", "MiB/s"},
		{testFioSeqRead, "read", "1M", "MiB/s"},
		{testFioRandWrite, "randwrite", "4k", "ops/s"},
		{testFioRandRead, "randread", "4k", "ops/s"},
	} {
		b.measure(t, job.test, "", 0, job.unit, true, func(int) (float64, string, error) {
			out, err := exec.Command("fio", "--name=bench", "--filename="+file, "--size="+strconv.FormatInt(b.sz.fioMiB, 10)+"M",
				"--rw="+job.rw, "--bs="+job.bs, "--ioengine=psync", "--runtime="+strconv.Itoa(b.sz.fioSeconds), "--time_based=0",
				"--end_fsync=1", "--output-format=json").Output()
			if err != nil {
				return 0, "", fmt.Errorf("fio %s: %v", job.rw, err)
			}
			var doc struct {
				Jobs []struct {
					Read, Write struct {
						BwBytes float64 `json:"bw_bytes"`
						Iops    float64 `json:"iops"`
					}
				} `json:"jobs"`
			}
			s := string(out)
			if i := strings.Index(s, "{"); i > 0 {
				s = s[i:]
			}
			if err := jsonUnmarshal(s, &doc); err != nil || len(doc.Jobs) == 0 {
				return 0, "", fmt.Errorf("fio %s output: %v", job.rw, err)
			}
			io := doc.Jobs[0].Read
			if strings.Contains(job.rw, "write") {
				io = doc.Jobs[0].Write
			}
			if job.unit == "ops/s" {
				return io.Iops, "psync, buffered, after the previous job", nil
			}
			return io.BwBytes / (1 << 20), "psync, buffered, after the previous job", nil
		})
	}
	return nil
}

// snapshotTest fills the volume with small files and times a snapshot of
// it. btrfs gets real empty files; cowfs volumes are filled by cloning
// (what a snapshot costs does not depend on how files came), see
// fillByClones. The files stay until the target goes.
func (b *bench) snapshotTest(t *target) error {
	n := b.sz.snapFiles
	if t.snapshot == nil {
		b.rep.Results = append(b.rep.Results, Result{Test: testSnapshot, Param: fmt.Sprintf("%d files", n), Target: t.name, Unit: "ms", Err: "no snapshots"})
		return nil
	}
	how := map[int]string{apiKind: "Volume.Snapshot", ninepKind: "ctl snapshot over 9P"}[t.kind]
	if t.name == "btrfs" {
		how = "btrfs subvolume snapshot -r (a process)"
		for i := range n {
			dir := filepath.Join(t.dir, "many", fmt.Sprintf("d%d", i/1000))
			if i%1000 == 0 {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					return err
				}
			}
			f, err := os.Create(filepath.Join(dir, fmt.Sprintf("f%d", i)))
			if err != nil {
				return err
			}
			f.Close()
		}
		syscall.Sync()
	} else {
		if t.kind == posixKind {
			how = "ctl snapshot through the mount"
		}
		var err error
		if n, err = b.fillByClones(t, n); err != nil {
			return err
		}
	}
	if err := b.settle(t); err != nil {
		return err
	}
	b.measure(t, testSnapshot, fmt.Sprintf("%d files", b.sz.snapFiles), 0, "ms", false, func(run int) (float64, string, error) {
		return timed("ms", func() (string, error) {
			return fmt.Sprintf("%s; %d files", how, n), t.snapshot(fmt.Sprintf("snap%d", run))
		})
	})
	return nil
}

// fillByClones makes at least n files under "many" in few operations: a
// directory of 1000 files, then levels each holding two clones of the one
// before. It returns how many files there are.
func (b *bench) fillByClones(t *target, n int) (int, error) {
	if err := b.mkdir(t, "many"); err != nil {
		return 0, err
	}
	last := min(n, 1000)
	if err := b.makeTree(t, "many/a0", last); err != nil {
		return 0, err
	}
	total := last
	for k := 1; total < n; k++ {
		lvl := fmt.Sprintf("many/a%d", k)
		if err := b.mkdir(t, lvl); err != nil {
			return 0, err
		}
		for _, half := range []string{"x", "y"} {
			if _, err := b.cloneOne(t, fmt.Sprintf("many/a%d", k-1), lvl+"/"+half); err != nil {
				return 0, err
			}
		}
		last *= 2
		total += last
	}
	return total, nil
}

// mkdir makes directory p of t.
func (b *bench) mkdir(t *target, p string) error {
	switch t.kind {
	case apiKind:
		return t.vol.Mkdir(p, 0o755)
	case ninepKind:
		f, err := t.fsys.Create(p, plan9.OREAD, plan9.DMDIR|0o755)
		if err != nil {
			return err
		}
		return f.Close()
	}
	return os.Mkdir(filepath.Join(t.dir, p), 0o755)
}
