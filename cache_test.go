package cowfs

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/cowfs/cowfs/store"
	"github.com/cowfs/cowfs/store/local"
	"github.com/cowfs/cowfs/store/mem"
)

// TestCacheSharedByClonesAndCopies reads a 1 GiB file, 9 clones of it and
// a copy made with plain Read and Write: the data cache holds the bytes
// once (at most 1.05 GiB), and each blob is fetched from the store once.
// Under the race detector or -short the file is 128 MiB.
func TestCacheSharedByClonesAndCopies(t *testing.T) {
	size := int64(1 << 30)
	if raceDetector || testing.Short() {
		size = 128 << 20
	}
	st := mem.New()
	f, err := Open(st, &Options{CacheBytes: 4 * size})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v, err := f.CreateVolume("v")
	if err != nil {
		t.Fatal(err)
	}
	// The original, written in 1 MiB writes of seeded random bytes.
	w, err := v.Create("orig")
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(7, 7))
	chunk := make([]byte, 1<<20)
	for off := int64(0); off < size; off += int64(len(chunk)) {
		for i := 0; i < len(chunk); i += 8 {
			v := r.Uint64()
			for j := range 8 {
				chunk[i+j] = byte(v >> (8 * j))
			}
		}
		if _, err := w.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	names := []string{"orig"}
	for i := range 9 {
		name := fmt.Sprintf("clone%d", i)
		if err := v.Clone("orig", name); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	// The copy, through Read and Write.
	src, err := v.Open("orig")
	if err != nil {
		t.Fatal(err)
	}
	dst, err := v.Create("copy")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := io.CopyBuffer(onlyWriter{dst}, onlyReader{src}, make([]byte, 1<<20)); err != nil || n != size {
		t.Fatalf("copy: %d bytes, %v", n, err)
	}
	src.Close()
	dst.Close()
	names = append(names, "copy")
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	// Read every file in full, comparing it with the original.
	orig, err := v.Open("orig")
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	want, got := make([]byte, 1<<20), make([]byte, 1<<20)
	for _, name := range names {
		g, err := v.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		for off := int64(0); off < size; off += int64(len(got)) {
			if _, err := orig.ReadAt(want, off); err != nil && !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
			if _, err := g.ReadAt(got, off); err != nil && !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s differs from orig in the MiB at %d", name, off)
			}
		}
		g.Close()
	}
	_, data := f.CacheStats()
	u, err := st.Usage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	blobs := u.Blobs
	t.Logf("data cache after reading 11 files of %d MiB: %d MiB in %d entries; %d misses, %d hits; store: %d blobs",
		size>>20, data.Bytes>>20, data.Entries, data.Misses, data.Hits, blobs)
	if data.Bytes > size+size/20 {
		t.Errorf("the data cache holds %d bytes for %d bytes of distinct data (more than 1.05x)", data.Bytes, size)
	}
	if data.Bytes < size-size/20 {
		t.Errorf("the data cache holds only %d bytes of %d: it should have kept them all", data.Bytes, size)
	}
	if data.Misses > blobs {
		t.Errorf("%d cache misses for %d stored blobs: a blob was fetched more than once", data.Misses, blobs)
	}
}

// onlyReader and onlyWriter hide every method but Read and Write, so
// io.CopyBuffer copies through them and nothing else.
type onlyReader struct{ io.Reader }
type onlyWriter struct{ io.Writer }

// TestCacheBoundsMemory writes and then reads far more data than the cache
// holds on the local store: the cache stays within its bound and so does
// the heap.
func TestCacheBoundsMemory(t *testing.T) {
	size := int64(256 << 20)
	if raceDetector || testing.Short() {
		size = 64 << 20
	}
	const cacheBytes = 16 << 20
	dir := t.TempDir()
	st, err := local.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Open(st, &Options{CacheBytes: cacheBytes, FlushBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	v, err := f.CreateVolume("v")
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	r := rand.New(rand.NewPCG(3, 3))
	for i := range 4 {
		w, err := v.Create(fmt.Sprint("f", i))
		if err != nil {
			t.Fatal(err)
		}
		for off := int64(0); off < size/4; off += int64(len(chunk)) {
			for j := 0; j < len(chunk); j += 8 {
				binary.LittleEndian.PutUint64(chunk[j:], r.Uint64())
			}
			if _, err := w.Write(chunk); err != nil {
				t.Fatal(err)
			}
		}
		w.Close()
		if err := f.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	t.Logf("heap in use after writing %d MiB: %d MiB", size>>20, ms.HeapInuse>>20)
	// Written data must not stay in memory once committed (a held-back
	// chunk tail once kept its whole flush buffer alive).
	if ms.HeapInuse > 32<<20 {
		t.Errorf("heap in use after writing and committing %d MiB: %d MiB", size>>20, ms.HeapInuse>>20)
	}
	maxHeap := uint64(0)
	for round := range 2 {
		for i := range 4 {
			g, err := v.Open(fmt.Sprint("f", i))
			if err != nil {
				t.Fatal(err)
			}
			for off := int64(0); ; off += int64(len(chunk)) {
				if _, err := g.ReadAt(chunk, off); err != nil {
					break
				}
				if off%(16<<20) == 0 {
					runtime.GC()
					runtime.ReadMemStats(&ms)
					maxHeap = max(maxHeap, ms.HeapInuse)
				}
			}
			g.Close()
		}
		_, data := f.CacheStats()
		if data.Bytes > cacheBytes {
			t.Fatalf("round %d: the data cache holds %d bytes, bound %d", round, data.Bytes, cacheBytes)
		}
		if data.Evictions == 0 {
			t.Fatalf("round %d: reading %d bytes through a %d-byte cache evicted nothing", round, size, cacheBytes)
		}
	}
	t.Logf("read 2 x %d MiB through a %d MiB cache: peak heap in use %d MiB", size>>20, cacheBytes>>20, maxHeap>>20)
	if maxHeap > 3*cacheBytes+(16<<20) {
		t.Errorf("peak heap in use %d MiB with a %d MiB cache", maxHeap>>20, cacheBytes>>20)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestCacheStatsCounts: FS.CacheStats counts each lookup of the data cache
// as a hit or a miss, holds what it keeps in Entries and Bytes, and counts
// what its bound makes it drop in Evictions.
func TestCacheStatsCounts(t *testing.T) {
	const blob = 1000
	f, err := Open(mem.New(), &Options{CacheBytes: 4000}) // data cache: 3000 bytes
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ids := make([]store.ID, 8)
	for i := range ids {
		if ids[i], err = f.st.Put(context.Background(), bytes.Repeat([]byte{byte(i)}, blob)); err != nil {
			t.Fatal(err)
		}
	}
	read := func(id store.ID) {
		t.Helper()
		if b, err := f.Blob(id); err != nil || len(b) != blob {
			t.Fatalf("Blob: %d bytes, %v", len(b), err)
		}
	}
	read(ids[0])
	read(ids[0])
	if _, data := f.CacheStats(); data != (CacheStats{Hits: 1, Misses: 1, Entries: 1, Bytes: blob}) {
		t.Fatalf("after a miss and a hit: %+v", data)
	}
	for _, id := range ids[1:] {
		read(id)
	}
	_, data := f.CacheStats()
	if data.Misses != 8 || data.Hits != 1 {
		t.Errorf("8 blobs read, one twice: %d misses, %d hits", data.Misses, data.Hits)
	}
	if data.Entries > 3 || data.Entries+data.Evictions != 8 || data.Bytes != data.Entries*blob {
		t.Errorf("8 blobs of %d bytes through a 3000-byte cache: %+v", blob, data)
	}
}
