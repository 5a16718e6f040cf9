package cowfs

// Benchmarks of the engine on the durable local store, each with
// its baseline on a plain file in the same kind of directory, in one run:
//
//	go test -run XXX -bench Local -benchtime 1x .
//
// -short shrinks them (64 MiB instead of 1 GiB, 10^4 instead of 10^6 files
// and extents).

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cowfs/cowfs/store/local"
)

// localFS opens an FS on a new local store in a temporary directory.
func localFS(b *testing.B, dir string) (*FS, *Volume) {
	b.Helper()
	st, err := local.Open(dir, nil)
	if err != nil {
		b.Fatal(err)
	}
	f, err := Open(st, nil)
	if err != nil {
		b.Fatal(err)
	}
	v, err := f.Volume("bench")
	if err != nil {
		if v, err = f.CreateVolume("bench"); err != nil {
			b.Fatal(err)
		}
	}
	return f, v
}

// BenchmarkLocalSeqWrite writes benchSize() random bytes in 1 MiB writes and
// syncs, through cowfs on the local store and to a plain file.
func BenchmarkLocalSeqWrite(b *testing.B) {
	data := make([]byte, benchSize())
	fillRandom(data)
	b.Run("cowfs", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			f, v := localFS(b, b.TempDir())
			b.StartTimer()
			writeSeq(b, v, "f", int64(len(data)), data)
			if err := f.Commit(); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			f.Close()
			b.StartTimer()
		}
	})
	b.Run("plain", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for i := 0; i < b.N; i++ {
			fh, err := os.Create(filepath.Join(b.TempDir(), "f"))
			if err != nil {
				b.Fatal(err)
			}
			for off := 0; off < len(data); off += benchChunk {
				if _, err := fh.Write(data[off:min(off+benchChunk, len(data))]); err != nil {
					b.Fatal(err)
				}
			}
			if err := fh.Sync(); err != nil {
				b.Fatal(err)
			}
			fh.Close()
		}
	})
}

// BenchmarkLocalSeqRead reads a committed file of benchSize() bytes in 1 MiB
// reads through a freshly opened FS (the OS page cache may hold the store's
// files, as it holds the plain file).
func BenchmarkLocalSeqRead(b *testing.B) {
	data := make([]byte, benchSize())
	fillRandom(data)
	buf := make([]byte, benchChunk)
	b.Run("cowfs", func(b *testing.B) {
		dir := b.TempDir()
		f, v := localFS(b, dir)
		writeSeq(b, v, "f", int64(len(data)), data)
		f.Close()
		b.SetBytes(int64(len(data)))
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			f, v := localFS(b, dir)
			fh, err := v.Open("f")
			if err != nil {
				b.Fatal(err)
			}
			for off := int64(0); ; off += benchChunk {
				n, err := fh.ReadAt(buf, off)
				if i == 0 && !bytes.Equal(buf[:n], data[off:off+int64(n)]) {
					b.Fatalf("read back wrong bytes at %d", off)
				}
				if err == io.EOF {
					break
				} else if err != nil {
					b.Fatal(err)
				}
			}
			fh.Close()
			f.Close()
		}
	})
	b.Run("plain", func(b *testing.B) {
		p := filepath.Join(b.TempDir(), "f")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(data)))
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			fh, err := os.Open(p)
			if err != nil {
				b.Fatal(err)
			}
			for off := int64(0); ; off += benchChunk {
				if _, err := fh.ReadAt(buf, off); err == io.EOF {
					break
				} else if err != nil {
					b.Fatal(err)
				}
			}
			fh.Close()
		}
	})
}

// BenchmarkLocalFsync4KiB writes 4 KiB and syncs, per iteration.
func BenchmarkLocalFsync4KiB(b *testing.B) {
	block := make([]byte, 4096)
	fillRandom(block)
	b.Run("cowfs", func(b *testing.B) {
		f, v := localFS(b, b.TempDir())
		defer f.Close()
		fh, err := v.Create("f")
		if err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			block[0] = byte(i)
			if _, err := fh.WriteAt(block, int64(i%256)*4096); err != nil {
				b.Fatal(err)
			}
			if err := fh.Sync(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("plain", func(b *testing.B) {
		fh, err := os.Create(filepath.Join(b.TempDir(), "f"))
		if err != nil {
			b.Fatal(err)
		}
		defer fh.Close()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			block[0] = byte(i)
			if _, err := fh.WriteAt(block, int64(i%256)*4096); err != nil {
				b.Fatal(err)
			}
			if err := fh.Sync(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkLocalOpenManyFiles times opening a store whose volume holds 10^6
// files (10^4 with -short) and reading one of them: the tree loads on demand,
// so it must not depend on the file count.
func BenchmarkLocalOpenManyFiles(b *testing.B) {
	files := 1_000_000
	if testing.Short() {
		files = 10_000
	}
	dir := b.TempDir()
	f, v := localFS(b, dir)
	start := time.Now()
	for d := 0; d < files/1000; d++ {
		sub := fmt.Sprintf("d%04d", d)
		if err := v.Mkdir(sub, 0o755); err != nil {
			b.Fatal(err)
		}
		for i := 0; i < 1000; i++ {
			fh, err := v.OpenFile(fmt.Sprintf("%s/f%04d", sub, i), os.O_CREATE|os.O_WRONLY, 0o644)
			if err != nil {
				b.Fatal(err)
			}
			fh.Close()
		}
		if d%100 == 99 {
			if err := f.Commit(); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := v.WriteFile("d0000/f0007", []byte("found"), 0o644); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	b.Logf("created %d files in %v", files, time.Since(start).Round(time.Millisecond))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f, v := localFS(b, dir)
		got, err := v.ReadFile("d0000/f0007")
		if err != nil || string(got) != "found" {
			b.Fatalf("read after open: %q, %v", got, err)
		}
		b.StopTimer()
		f.Close()
		b.StartTimer()
	}
}

// BenchmarkLocalCommitAfterClone times Clone plus Commit of a file of 10^6
// extents (10^4 with -short) on the local store: a clone writes one pointer.
func BenchmarkLocalCommitAfterClone(b *testing.B) {
	n := benchMaxExtents()
	f, v := localFS(b, b.TempDir())
	defer f.Close()
	writeSeq(b, v, "src", 4<<20, nil)
	src, _ := v.Open("src")
	dst, _ := v.Create("dst")
	for j := 0; j < n; j++ {
		// Alternate two far-apart source pieces so neighbours never merge.
		soff := int64(j%2) * (2 << 20)
		if _, err := CopyRange(src, soff+int64(j%7)*benchPiece, dst, int64(j)*benchPiece, benchPiece); err != nil {
			b.Fatal(err)
		}
	}
	src.Close()
	dst.Close()
	if err := f.Commit(); err != nil {
		b.Fatal(err)
	}
	fi, _ := v.Stat("dst")
	b.ReportMetric(float64(fi.Stat().Extents), "extents")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := v.Clone("dst", fmt.Sprintf("clone%d", i)); err != nil {
			b.Fatal(err)
		}
		if err := f.Commit(); err != nil {
			b.Fatal(err)
		}
	}
}
