package cowfs

// Benchmarks of the engine on the mem store. They do not run under plain
// `go test`; run them with
//
//	go test -run XXX -bench . -benchtime 1x .
//
// and add -short to shrink them (64 MiB instead of 1 GiB, 10^4 instead of
// 10^6 extents) for a run of a few seconds.

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/cowfs/cowfs/store/mem"
)

const (
	benchChunk = 1 << 20 // read and write size of the sequential benchmarks
	benchPiece = 4 << 10 // piece size of BenchmarkCloneExtents

	cloneDirSize = 256 // clones per directory in BenchmarkCloneExtents
)

// benchSize is the size of the "1 GiB" benchmarks (64 MiB with -short).
func benchSize() int64 {
	if testing.Short() {
		return 64 << 20
	}
	return 1 << 30
}

// benchMaxExtents is the largest extent count of BenchmarkCloneExtents
// (10^4 with -short).
func benchMaxExtents() int {
	if testing.Short() {
		return 10_000
	}
	return 1_000_000
}

// benchFixture holds the setup of the benchmark running now, so that the
// testing package calling a benchmark again with a larger b.N does not
// rebuild it. Only one fixture lives at a time: building the next one drops
// the previous one first, so large fixtures do not add up.
var benchFixture struct {
	key string
	val any
}

func fixture[T any](key string, build func() T) T {
	if benchFixture.key == key {
		return benchFixture.val.(T)
	}
	benchFixture.key, benchFixture.val = "", nil
	runtime.GC()
	v := build()
	benchFixture.key, benchFixture.val = key, v
	return v
}

// benchFS opens an FS on a fresh mem store with one volume.
func benchFS(b *testing.B, opt *Options) (*FS, *mem.Store, *Volume) {
	b.Helper()
	st := mem.New()
	f, err := Open(st, opt)
	if err != nil {
		b.Fatal(err)
	}
	v, err := f.CreateVolume("bench")
	if err != nil {
		b.Fatal(err)
	}
	return f, st, v
}

// writeSeq writes size bytes to a new file p in benchChunk writes. The bytes
// come from data if it is not nil, else they are random.
func writeSeq(b *testing.B, v *Volume, p string, size int64, data []byte) {
	b.Helper()
	fl, err := v.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, benchChunk)
	for off := int64(0); off < size; off += benchChunk {
		chunk := buf[:min(benchChunk, size-off)]
		if data != nil {
			chunk = data[off : off+int64(len(chunk))]
		} else {
			rand.Read(chunk)
		}
		if _, err := fl.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	if err := fl.Close(); err != nil {
		b.Fatal(err)
	}
}

// fillRandom fills p with random bytes, a MiB at a time: one huge
// crypto/rand.Read call cannot be preempted and stalls the garbage collector.
func fillRandom(p []byte) {
	for len(p) > 0 {
		n := min(len(p), benchChunk)
		rand.Read(p[:n])
		p = p[n:]
	}
}

func benchUsage(b *testing.B, st *mem.Store) int64 {
	b.Helper()
	u, err := st.Usage(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	return u.Bytes
}

// cloneFixture is a volume holding file "dst" made of a given number of
// extents.
type cloneFixture struct {
	v       *Volume
	extents int64
	clones  int
}

// buildExtents makes file "dst" of n extents: n 4 KiB pieces of a 4 MiB
// source, range-copied to consecutive destination offsets in shuffled order.
// No piece is followed by the piece that follows it in the source, so no two
// neighbours merge into one extent, and only pieces that lie inside one data
// blob of the source are used, so each piece is one extent.
func buildExtents(b *testing.B, n int) *cloneFixture {
	b.Helper()
	f, _, v := benchFS(b, nil)
	const srcSize = 4 << 20
	writeSeq(b, v, "src", srcSize, nil)
	if err := f.Commit(); err != nil {
		b.Fatal(err)
	}
	src, err := v.Open("src")
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()

	// Keep the pieces that copy as exactly one extent.
	probe, err := v.Create("probe")
	if err != nil {
		b.Fatal(err)
	}
	var good []int64 // piece numbers
	for k := int64(0); k < srcSize/benchPiece; k++ {
		if err := probe.Truncate(0); err != nil {
			b.Fatal(err)
		}
		if _, err := CopyRange(src, k*benchPiece, probe, 0, benchPiece); err != nil {
			b.Fatal(err)
		}
		fi, err := probe.Stat()
		if err != nil {
			b.Fatal(err)
		}
		if fi.Stat().Extents == 1 {
			good = append(good, k)
		}
	}
	probe.Close()
	if err := v.Remove("probe"); err != nil {
		b.Fatal(err)
	}
	if len(good) < 2 {
		b.Fatalf("only %d of %d source pieces lie inside one blob", len(good), srcSize/benchPiece)
	}

	rng := mrand.New(mrand.NewPCG(1, 2))
	piece := make([]int64, n) // source piece of destination slot j
	for j := range piece {
		for {
			piece[j] = good[rng.IntN(len(good))]
			if j == 0 || piece[j] != piece[j-1]+1 {
				break
			}
		}
	}
	order := rng.Perm(n)

	dst, err := v.Create("dst")
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	for _, j := range order {
		got, err := CopyRange(src, piece[j]*benchPiece, dst, int64(j)*benchPiece, benchPiece)
		if err != nil || got != benchPiece {
			b.Fatalf("copy range to slot %d: %d, %v", j, got, err)
		}
	}
	built := time.Since(start)
	fi, err := dst.Stat()
	if err != nil {
		b.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		b.Fatal(err)
	}
	start = time.Now()
	if err := f.Commit(); err != nil {
		b.Fatal(err)
	}
	committed := time.Since(start)
	st := fi.Stat()
	if st.Size != int64(n)*benchPiece || st.Extents != int64(n) {
		b.Fatalf("dst: size %d, %d extents; want %d, %d", st.Size, st.Extents, int64(n)*benchPiece, n)
	}
	if err := v.Mkdir("c", 0o755); err != nil {
		b.Fatal(err)
	}
	b.Logf("built %d extents (%d MiB logical) with %d range copies in %v (%v per copy), committed in %v",
		n, st.Size>>20, n, built.Round(time.Millisecond), built/time.Duration(n), committed.Round(time.Millisecond))
	return &cloneFixture{v: v, extents: st.Extents}
}

// BenchmarkCloneExtents times Volume.Clone of a committed file whose rope has
// 1, 1000 and 10^6 extents. A clone copies one pointer, so the time must not
// depend on the extent count.
func BenchmarkCloneExtents(b *testing.B) {
	for _, n := range []int{1, 1000, benchMaxExtents()} {
		b.Run(fmt.Sprintf("extents=%d", n), func(b *testing.B) {
			fx := fixture(fmt.Sprintf("clone-extents-%d", n), func() *cloneFixture { return buildExtents(b, n) })
			// Clones go into directories of cloneDirSize entries, so that the
			// cost of adding a name to an ever larger directory does not
			// creep into the numbers.
			names := make([]string, b.N)
			for i := range names {
				k := fx.clones
				fx.clones++
				if k%cloneDirSize == 0 {
					if err := fx.v.Mkdir(fmt.Sprintf("c/%d", k/cloneDirSize), 0o755); err != nil {
						b.Fatal(err)
					}
				}
				names[i] = fmt.Sprintf("c/%d/%d", k/cloneDirSize, k%cloneDirSize)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := fx.v.Clone("dst", names[i]); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			fi, err := fx.v.Stat(names[b.N-1])
			if err != nil {
				b.Fatal(err)
			}
			if got := fi.Stat().Extents; got != fx.extents {
				b.Fatalf("clone has %d extents, source %d", got, fx.extents)
			}
			b.ReportMetric(float64(fx.extents), "extents")
		})
	}
}

// copyFixture is a volume with a committed random file "src" and an open
// source and destination.
type copyFixture struct {
	src, dst *File
}

// BenchmarkCopyRange256MiB times CopyRange of 256 MiB (64 MiB with -short)
// between unaligned offsets of two files.
func BenchmarkCopyRange256MiB(b *testing.B) {
	n := min(int64(256<<20), benchSize())
	const soff, doff = 100, 7
	fx := fixture("copy-range", func() *copyFixture {
		f, _, v := benchFS(b, nil)
		writeSeq(b, v, "src", n+soff+benchChunk, nil)
		if err := f.Commit(); err != nil {
			b.Fatal(err)
		}
		src, err := v.Open("src")
		if err != nil {
			b.Fatal(err)
		}
		dst, err := v.Create("dst")
		if err != nil {
			b.Fatal(err)
		}
		return &copyFixture{src: src, dst: dst}
	})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		got, err := CopyRange(fx.src, soff, fx.dst, doff, n)
		if err != nil || got != n {
			b.Fatalf("copy range: %d, %v", got, err)
		}
	}
	b.StopTimer()
	// Spot-check the copy: its first and last MiB.
	for _, at := range []int64{0, n - benchChunk} {
		want, got := make([]byte, benchChunk), make([]byte, benchChunk)
		if _, err := fx.src.ReadAt(want, soff+at); err != nil {
			b.Fatal(err)
		}
		if _, err := fx.dst.ReadAt(got, doff+at); err != nil {
			b.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			b.Fatalf("copy differs from its source in the MiB at %d", at)
		}
	}
	fi, err := fx.dst.Stat()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(n>>20), "MiB")
	b.ReportMetric(float64(fi.Stat().Extents), "extents")
}

// readFixture is an open, committed file of random data that has been read
// once, so that the data cache holds it.
type readFixture struct {
	f    *FS
	file *File
}

// BenchmarkSeqReadCached1GiB reads a 1 GiB file (64 MiB with -short) in
// 1 MiB ReadAt calls, every byte already in the data cache. Compare with
// BenchmarkMemcpy1GiB.
func BenchmarkSeqReadCached1GiB(b *testing.B) {
	size := benchSize()
	buf := make([]byte, benchChunk)
	readAll := func(fl *File) {
		for off := int64(0); off < size; off += benchChunk {
			if _, err := fl.ReadAt(buf, off); err != nil {
				b.Fatal(err)
			}
		}
	}
	fx := seqReadFixture(b, size)
	_, before := fx.f.CacheStats()
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		readAll(fx.file)
	}
	b.StopTimer()
	_, after := fx.f.CacheStats()
	if misses := after.Misses - before.Misses; misses != 0 {
		b.Fatalf("%d data cache misses reading a cached file", misses)
	}
}

// BenchmarkMemcpy1GiB copies 1 GiB (64 MiB with -short) between two
// in-memory buffers in 1 MiB copy calls: the yardstick for a cached read.
// The read copies into one reused 1 MiB buffer, which stays in the CPU cache,
// and this copy into a 1 GiB buffer, so the read can come out faster.
func BenchmarkMemcpy1GiB(b *testing.B) {
	size := benchSize()
	bufs := fixture("memcpy", func() [2][]byte {
		src, dst := make([]byte, size), make([]byte, size)
		fillRandom(src)
		copy(dst, src) // touch every page of both
		return [2][]byte{src, dst}
	})
	src, dst := bufs[0], bufs[1]
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for off := int64(0); off < size; off += benchChunk {
			copy(dst[off:off+benchChunk], src[off:])
		}
	}
}

// BenchmarkSeqWrite1GiB writes 1 GiB (64 MiB with -short) of random data in
// 1 MiB writes to a new file of a fresh FS and commits. Afterwards it writes
// the same data to a second file and checks that deduplication keeps the
// store from growing by 1% or more.
func BenchmarkSeqWrite1GiB(b *testing.B) {
	size := benchSize()
	data := fixture("seq-write", func() []byte {
		d := make([]byte, size)
		fillRandom(d)
		return d
	})
	b.SetBytes(size)
	b.ResetTimer()
	var f *FS
	var st *mem.Store
	var v *Volume
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		f, st, v = nil, nil, nil
		runtime.GC()
		f, st, v = benchFS(b, nil)
		b.StartTimer()
		writeSeq(b, v, "one", size, data)
		if err := f.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	u1 := benchUsage(b, st)
	writeSeq(b, v, "two", size, data)
	if err := f.Commit(); err != nil {
		b.Fatal(err)
	}
	u2 := benchUsage(b, st)
	two, err := v.Open("two")
	if err != nil {
		b.Fatal(err)
	}
	got := make([]byte, benchChunk)
	for off := int64(0); off < size; off += benchChunk {
		if _, err := two.ReadAt(got, off); err != nil {
			b.Fatal(err)
		}
		if !bytes.Equal(got, data[off:off+benchChunk]) {
			b.Fatalf("second file reads back different bytes in the MiB at %d", off)
		}
	}
	two.Close()
	b.ReportMetric(float64(u1), "usage1-bytes")
	b.ReportMetric(float64(u2), "usage2-bytes")
	if u1 < size || u2-u1 >= u1/100 {
		b.Fatalf("store usage %d bytes after one file of %d, %d after a second identical file: want growth < 1%%", u1, size, u2)
	}
}

// BenchmarkReadDeferred1GiB takes a deferred read of a whole committed 1 GiB
// file (64 MiB with -short), next to ReadAt of the same bytes into a 1 GiB
// buffer in the same run, the baseline.
func BenchmarkReadDeferred1GiB(b *testing.B) {
	size := benchSize()
	fx := seqReadFixture(b, size)
	b.Run("ReadDeferred", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			w, err := fx.file.ReadDeferred(0, size)
			if err != nil {
				b.Fatal(err)
			}
			if w.Len() != size {
				b.Fatalf("view of %d bytes", w.Len())
			}
			w.Release()
		}
	})
	b.Run("ReadAt", func(b *testing.B) {
		buf := make([]byte, size)
		b.SetBytes(size)
		for i := 0; i < b.N; i++ {
			if _, err := fx.file.ReadAt(buf, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkViewWriteBack1GiB writes back a view of a 1 GiB file (64 MiB
// with -short) in which 1% of the pages were changed, and reports the bytes
// written as a share of the view (goal: at most 1.1%).
func BenchmarkViewWriteBack1GiB(b *testing.B) {
	size := benchSize()
	f, _, v := benchFS(b, nil)
	writeSeq(b, v, "big", size, nil)
	if err := f.Commit(); err != nil {
		b.Fatal(err)
	}
	fl, err := v.OpenFile("big", os.O_RDWR, 0)
	if err != nil {
		b.Fatal(err)
	}
	pages := size / PageSize
	changed := make([]byte, 1)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		w, err := fl.ReadDeferred(0, size)
		if err != nil {
			b.Fatal(err)
		}
		for pg := int64(0); pg < pages; pg += 100 { // 1% of the pages
			changed[0] = byte(i + int(pg))
			if _, err := w.WriteAt(changed, pg*PageSize+17); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		written, err := w.WriteTo(fl, 0)
		if err != nil {
			b.Fatal(err)
		}
		if err := f.Commit(); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		b.ReportMetric(100*float64(written)/float64(size), "%written")
		w.Release()
		b.StartTimer()
	}
}

// BenchmarkViewTouchPages reads k random pages of a view of a whole 1 GiB
// file (64 MiB with -short): the time per page should not grow with k.
func BenchmarkViewTouchPages(b *testing.B) {
	size := benchSize()
	fx := seqReadFixture(b, size)
	page := make([]byte, PageSize)
	for _, k := range []int{1, 100, 10000} {
		b.Run(fmt.Sprintf("pages=%d", k), func(b *testing.B) {
			w, err := fx.file.ReadDeferred(0, size)
			if err != nil {
				b.Fatal(err)
			}
			defer w.Release()
			r := mrand.New(mrand.NewPCG(1, uint64(k)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for range k {
					if _, err := w.ReadAt(page, r.Int64N(size/PageSize)*PageSize); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*k), "ns/page")
		})
	}
}

// seqReadFixture returns a committed file of size random bytes, open for
// reading, on an FS whose cache holds it all (it has been read once).
func seqReadFixture(b *testing.B, size int64) *readFixture {
	return fixture("seq-read", func() *readFixture {
		f, _, v := benchFS(b, &Options{CacheBytes: 2 << 30})
		writeSeq(b, v, "big", size, nil)
		if err := f.Commit(); err != nil {
			b.Fatal(err)
		}
		fl, err := v.Open("big")
		if err != nil {
			b.Fatal(err)
		}
		buf := make([]byte, benchChunk)
		for off := int64(0); off < size; off += benchChunk {
			if _, err := fl.ReadAt(buf, off); err != nil {
				b.Fatal(err)
			}
		}
		return &readFixture{f: f, file: fl}
	})
}
