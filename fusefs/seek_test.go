package fusefs

import (
	"errors"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/cowfs/cowfs"
	"github.com/cowfs/cowfs/internal/sparsemodel"
	"golang.org/x/sys/unix"
	"pgregory.net/rapid"
)

// TestSeekModelMount: random sparse layouts made through the kernel
// (pwrite, ftruncate, fallocate punch-hole and zero-range, copy_file_range
// between two files; holes of 1 byte to 2^40 bytes) checked after every
// step against a naive model: lseek SEEK_DATA and SEEK_HOLE in whole 4 KiB
// blocks at offsets inside holes, at both edges of ranges and blocks, at
// and past the end; st_size, st_blocks and st_blksize.
func TestSeekModelMount(t *testing.T) {
	m := mountMem(t)
	run := 0
	rapid.Check(t, func(rt *rapid.T) {
		run++
		fds := map[string]int{}
		models := map[string]*sparsemodel.File{}
		names := []string{"a", "b"}
		for _, n := range names {
			fd, err := unix.Open(filepath.Join(m.dir, n+"-"+strconv.Itoa(run)), unix.O_RDWR|unix.O_CREAT|unix.O_TRUNC, 0o644)
			if err != nil {
				rt.Fatal(err)
			}
			defer unix.Close(fd)
			fds[n], models[n] = fd, &sparsemodel.File{}
		}
		offset := func(md *sparsemodel.File, label string) int64 {
			switch rapid.IntRange(0, 3).Draw(rt, label+" kind") {
			case 0:
				return rapid.Int64Range(0, 3*cowfs.BlockSize).Draw(rt, label)
			case 1:
				return rapid.Int64Range(0, 1<<28).Draw(rt, label+" block")*cowfs.BlockSize + rapid.Int64Range(-1, 1).Draw(rt, label+" delta") + 1
			case 2:
				return max(0, rapid.SampledFrom(md.Probes(cowfs.BlockSize)).Draw(rt, label+" probe")+rapid.Int64Range(-2, 2).Draw(rt, label+" delta"))
			}
			return rapid.Int64Range(0, 1<<40).Draw(rt, label)
		}
		length := func(label string) int64 {
			if rapid.Bool().Draw(rt, label+" big") {
				return rapid.Int64Range(1, 1<<40).Draw(rt, label)
			}
			return rapid.Int64Range(1, 3*cowfs.BlockSize).Draw(rt, label)
		}
		for range rapid.IntRange(1, 12).Draw(rt, "steps") {
			name := rapid.SampledFrom(names).Draw(rt, "file")
			fd, md := fds[name], models[name]
			var err error
			switch rapid.IntRange(0, 4).Draw(rt, "op") {
			case 0:
				off := offset(md, "write off")
				n := rapid.Int64Range(1, 3*cowfs.BlockSize).Draw(rt, "write len")
				_, err = unix.Pwrite(fd, toolRandBytes(int(n)), off)
				md.Write(off, n)
			case 1:
				size := max(0, md.Size+rapid.Int64Range(-1, 1).Draw(rt, "sign")*length("by"))
				err = unix.Ftruncate(fd, size)
				md.Truncate(size)
			case 2:
				off, n := offset(md, "punch off"), length("punch len")
				err = unix.Fallocate(fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n)
				md.Hole(off, n, false)
			case 3:
				off, n := offset(md, "zero off"), length("zero len")
				keep := rapid.Bool().Draw(rt, "keep size")
				mode := uint32(unix.FALLOC_FL_ZERO_RANGE)
				if keep {
					mode |= unix.FALLOC_FL_KEEP_SIZE
				}
				// A zero range allocates what it covers without data, so a
				// huge one can find too little free space: then nothing changes.
				if err = unix.Fallocate(fd, mode, off, n); errors.Is(err, unix.ENOSPC) {
					err = nil
					break
				}
				md.Hole(off, n, !keep)
			case 4:
				src := names[0]
				if name == src {
					src = names[1]
				}
				soff, doff, n := offset(models[src], "copy from"), offset(md, "copy to"), length("copy len")
				want := md.CopyRange(models[src], soff, doff, n)
				var done int64
				for done < want {
					so, do := soff+done, doff+done
					k, cerr := unix.CopyFileRange(fds[src], &so, fd, &do, int(want-done), 0)
					if cerr != nil || k == 0 {
						err = cerr
						if err == nil {
							rt.Fatalf("copy_file_range copied %d of %d", done, want)
						}
						break
					}
					done += int64(k)
				}
			}
			if err != nil {
				rt.Fatal(err)
			}
			for _, n := range names {
				checkSeeksMount(rt, fds[n], models[n])
			}
		}
	})
}

// checkSeeksMount compares an open file of the mount with its model.
func checkSeeksMount(t *rapid.T, fd int, md *sparsemodel.File) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatal(err)
	}
	if st.Size != md.Size || st.Blocks != cowfs.SizeBlocks(md.Size) || st.Blksize != cowfs.BlockSize {
		t.Fatalf("size %d blocks %d blksize %d; model size %d (data %v)", st.Size, st.Blocks, st.Blksize, md.Size, md.Data)
	}
	for _, off := range md.Probes(cowfs.BlockSize) {
		for _, whence := range []int{unix.SEEK_DATA, unix.SEEK_HOLE} {
			want, ok := md.SeekData(off, cowfs.BlockSize)
			if whence == unix.SEEK_HOLE {
				want, ok = md.SeekHole(off, cowfs.BlockSize)
			}
			got, err := unix.Seek(fd, off, whence)
			if !ok {
				if !errors.Is(err, unix.ENXIO) {
					t.Fatalf("lseek %d whence %d: %d, %v; want ENXIO (size %d, data %v)", off, whence, got, err, md.Size, md.Data)
				}
				continue
			}
			if err != nil || got != want {
				t.Fatalf("lseek %d whence %d: %d, %v; want %d (size %d, data %v)", off, whence, got, err, want, md.Size, md.Data)
			}
		}
	}
}
