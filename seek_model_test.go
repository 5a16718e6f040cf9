package cowfs

import (
	"errors"
	"io"
	"os"
	"syscall"
	"testing"

	"github.com/cowfs/cowfs/internal/sparsemodel"
	"github.com/cowfs/cowfs/store/mem"
	"pgregory.net/rapid"
)

// drawSeekOffset draws an offset for a sparse-layout step: small, next to a
// block boundary, next to an offset the model finds interesting, or
// anywhere up to 2^40.
func drawSeekOffset(t *rapid.T, m *sparsemodel.File, label string) int64 {
	switch rapid.IntRange(0, 3).Draw(t, label+" kind") {
	case 0:
		return rapid.Int64Range(0, 3*BlockSize).Draw(t, label)
	case 1:
		return rapid.Int64Range(0, 1<<28).Draw(t, label+" block")*BlockSize + rapid.Int64Range(-1, 1).Draw(t, label+" delta") + 1
	case 2:
		p := m.Probes(BlockSize)
		return max(0, rapid.SampledFrom(p).Draw(t, label+" probe")+rapid.Int64Range(-2, 2).Draw(t, label+" delta"))
	}
	return rapid.Int64Range(0, 1<<40).Draw(t, label)
}

// drawSeekLength draws the length of a hole, a truncation step or a copy:
// from 1 byte to 2^40.
func drawSeekLength(t *rapid.T, label string) int64 {
	if rapid.Bool().Draw(t, label+" big") {
		return rapid.Int64Range(1, 1<<40).Draw(t, label)
	}
	return rapid.Int64Range(1, 3*BlockSize).Draw(t, label)
}

// TestSeekModel: random sparse layouts (writes, truncations, punched holes,
// zero ranges, range clones between two files, holes of 1 byte to 2^40
// bytes) checked against a naive model after every step: SEEK_DATA and
// SEEK_HOLE in whole blocks at every interesting offset (inside holes, at
// both edges of every range and block, at and past the end), the size and
// st_blocks; and the invariant checker.
func TestSeekModel(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		f, err := Open(mem.New(), nil)
		if err != nil {
			rt.Fatal(err)
		}
		defer f.Close()
		v, err := f.CreateVolume("v")
		if err != nil {
			rt.Fatal(err)
		}
		names := []string{"a", "b"}
		files := map[string]*File{}
		models := map[string]*sparsemodel.File{}
		for _, n := range names {
			fl, err := v.OpenFile(n, os.O_RDWR|os.O_CREATE, 0o644)
			if err != nil {
				rt.Fatal(err)
			}
			defer fl.Close()
			files[n], models[n] = fl, &sparsemodel.File{}
		}
		for range rapid.IntRange(1, 25).Draw(rt, "steps") {
			name := rapid.SampledFrom(names).Draw(rt, "file")
			fl, m := files[name], models[name]
			switch rapid.IntRange(0, 5).Draw(rt, "op") {
			case 0:
				off := drawSeekOffset(rt, m, "write off")
				n := rapid.Int64Range(1, 3*BlockSize).Draw(rt, "write len")
				if _, err := fl.WriteAt(randBytes(uint64(n), int(n)), off); err != nil {
					rt.Fatal(err)
				}
				m.Write(off, n)
			case 1:
				size := max(0, m.Size+rapid.Int64Range(-1, 1).Draw(rt, "sign")*drawSeekLength(rt, "by"))
				if err := fl.Truncate(size); err != nil {
					rt.Fatal(err)
				}
				m.Truncate(size)
			case 2:
				off, n := drawSeekOffset(rt, m, "punch off"), drawSeekLength(rt, "punch len")
				if err := fl.Fallocate(FallocPunchHole|FallocKeepSize, off, n); err != nil {
					rt.Fatal(err)
				}
				m.Hole(off, n, false)
			case 3:
				off, n := drawSeekOffset(rt, m, "zero off"), drawSeekLength(rt, "zero len")
				keep := rapid.Bool().Draw(rt, "keep size")
				mode := uint32(FallocZeroRange)
				if keep {
					mode |= FallocKeepSize
				}
				// A zero range allocates what it covers without data, so a
				// huge one can find too little free space: then nothing changes.
				if err := fl.Fallocate(mode, off, n); errors.Is(err, syscall.ENOSPC) {
					break
				} else if err != nil {
					rt.Fatal(err)
				}
				m.Hole(off, n, !keep)
			case 4:
				src := names[0]
				if name == src {
					src = names[1]
				}
				soff := drawSeekOffset(rt, models[src], "copy from")
				doff := drawSeekOffset(rt, m, "copy to")
				n := drawSeekLength(rt, "copy len")
				k, err := CopyRange(files[src], soff, fl, doff, n)
				if err != nil {
					rt.Fatal(err)
				}
				if want := m.CopyRange(models[src], soff, doff, n); k != want {
					rt.Fatalf("CopyRange copied %d, model %d", k, want)
				}
			case 5:
				if err := f.Commit(); err != nil {
					rt.Fatal(err)
				}
			}
			for _, n := range names {
				checkSeeks(rt, files[n], models[n])
			}
			rep, err := f.Check(t.Context())
			if err != nil {
				rt.Fatal(err)
			}
			if err := rep.Err(); err != nil {
				rt.Fatal(err)
			}
		}
	})
}

// checkSeeks compares f's size, st_blocks, SEEK_DATA and SEEK_HOLE with m.
func checkSeeks(t *rapid.T, f *File, m *sparsemodel.File) {
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != m.Size || fi.Stat().Blocks != SizeBlocks(m.Size) {
		t.Fatalf("%s: size %d blocks %d, model size %d (data %v)", f.Name(), fi.Size(), fi.Stat().Blocks, m.Size, m.Data)
	}
	for _, off := range m.Probes(BlockSize) {
		for _, whence := range []int{SeekData, SeekHole} {
			want, ok := m.SeekData(off, BlockSize)
			if whence == SeekHole {
				want, ok = m.SeekHole(off, BlockSize)
			}
			got, err := f.Seek(off, whence)
			if !ok {
				if !errors.Is(err, syscall.ENXIO) {
					t.Fatalf("%s: seek %d whence %d: %d, %v; want ENXIO (size %d, data %v)", f.Name(), off, whence, got, err, m.Size, m.Data)
				}
				continue
			}
			if err != nil || got != want {
				t.Fatalf("%s: seek %d whence %d: %d, %v; want %d (size %d, data %v)", f.Name(), off, whence, got, err, want, m.Size, m.Data)
			}
		}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
}
