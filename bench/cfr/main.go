//go:build linux

// Command cfr is a helper of bench/fuse.sh: it times copy_file_range(2) of
// a whole file that has many extents against one that has few, on any
// mounted file system (a cowfs FUSE mount, go-fuse's loopback, ...).
//
// Usage:
//
//	cfr run  [-pieces N] [-piece BYTES] [-seed S] [-drop-caches] DIR
//	cfr fill [-seed S] FILE BYTES
//
// run creates, in DIR (which must exist):
//
//   - src: N*piece+2*piece bytes of random data, written sequentially;
//   - frag: N*piece bytes, made by N copy_file_range calls of one piece
//     each, from src at unaligned offsets (piece number * piece + 7) in
//     shuffled order, into destination slots also visited in shuffled order;
//     no slot is followed by the source piece that follows its own, so no
//     two neighbouring pieces can merge into one extent: on cowfs the file
//     has at least N extents;
//   - one: N*piece bytes of other random data, written by a single write(2)
//     call (on cowfs, content-defined chunking still cuts it into chunks of
//     about 64 KiB, so "one" has about N*piece/64KiB extents: far fewer
//     than frag, but not literally one);
//
// verifies frag and one, then times copy_file_range of the whole of frag
// into a new file frag.copy, and of one into one.copy (looping while the
// kernel returns short counts), fsyncs each copy (timed apart), verifies both
// copies byte for byte, and prints one JSON object on stdout.
//
// fill writes BYTES bytes of seeded random data to FILE in 1 MiB writes and
// fsyncs it.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = run(os.Args[2:])
	case "fill":
		err = fill(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "cfr %s: FAILED: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: cfr run [-pieces N] [-piece BYTES] [-seed S] [-drop-caches] DIR")
	fmt.Fprintln(os.Stderr, "       cfr fill [-seed S] FILE BYTES")
	os.Exit(2)
}

// randBytes returns n bytes of random data from a seeded ChaCha8.
func randBytes(n int64, seed uint64) []byte {
	var key [32]byte
	for i := range 8 {
		key[i] = byte(seed >> (8 * i))
	}
	b := make([]byte, n)
	rand.NewChaCha8(key).Read(b)
	return b
}

func fill(args []string) error {
	fs := flag.NewFlagSet("fill", flag.ExitOnError)
	seed := fs.Uint64("seed", 1, "random seed")
	fs.Parse(args)
	if fs.NArg() != 2 {
		usage()
	}
	size, err := strconv.ParseInt(fs.Arg(1), 10, 64)
	if err != nil || size < 0 {
		return fmt.Errorf("bad size %q", fs.Arg(1))
	}
	f, err := os.Create(fs.Arg(0))
	if err != nil {
		return err
	}
	var key [32]byte
	for i := range 8 {
		key[i] = byte(*seed >> (8 * i))
	}
	src := rand.NewChaCha8(key)
	buf := make([]byte, 1<<20)
	for left := size; left > 0; {
		n := min(left, int64(len(buf)))
		src.Read(buf[:n])
		if _, err := f.Write(buf[:n]); err != nil {
			f.Close()
			return err
		}
		left -= n
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

type copyResult struct {
	Seconds      float64 `json:"seconds"`       // the copy_file_range calls
	Calls        int     `json:"calls"`         // how many calls the copy took
	FsyncSeconds float64 `json:"fsync_seconds"` // fsync of the copy, after
	Bytes        int64   `json:"bytes"`
}

type runResult struct {
	Pieces          int               `json:"pieces"`
	PieceBytes      int64             `json:"piece_bytes"`
	FileBytes       int64             `json:"file_bytes"`
	WriteSrcSeconds float64           `json:"write_src_seconds"`
	BuildFragSecs   float64           `json:"build_frag_seconds"` // N piece copies + fsync
	BuildFragOps    float64           `json:"build_frag_ops_per_s"`
	WriteOneSeconds float64           `json:"write_one_seconds"` // one write(2) + fsync
	CopyFrag        copyResult        `json:"copy_frag"`
	CopyOne         copyResult        `json:"copy_one"`
	RatioFragOne    float64           `json:"ratio_frag_over_one"` // CopyFrag.Seconds / CopyOne.Seconds
	Xattrs          map[string]string `json:"xattrs,omitempty"`    // of frag and one, if the file system has any
}

func run(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	pieces := fs.Int("pieces", 65536, "number of pieces of the fragmented file")
	piece := fs.Int64("piece", 4096, "bytes per piece")
	seed := fs.Uint64("seed", 1, "random seed")
	drop := fs.Bool("drop-caches", false, "sync and drop the kernel caches before each timed copy (root only)")
	fs.Parse(args)
	if fs.NArg() != 1 || *pieces < 2 || *piece < 1 {
		usage()
	}
	dir := fs.Arg(0)
	n := int64(*pieces)
	size := n * *piece
	res := runResult{Pieces: *pieces, PieceBytes: *piece, FileBytes: size}
	srcPath := filepath.Join(dir, "src")
	fragPath := filepath.Join(dir, "frag")
	onePath := filepath.Join(dir, "one")

	// The source: two pieces longer than the fragmented file, so that every
	// piece fits at offset +7.
	const skew = 7
	srcData := randBytes(size+2**piece, *seed)
	t := time.Now()
	if err := writeFile(srcPath, srcData, 1<<20); err != nil {
		return err
	}
	res.WriteSrcSeconds = time.Since(t).Seconds()

	// Slot j of frag gets source piece perm[j]; slots are filled in the
	// order of another permutation.
	rng := rand.New(rand.NewPCG(*seed, 2))
	perm := rng.Perm(*pieces)
	for again := true; again; {
		again = false
		for j := 1; j < len(perm); j++ {
			if perm[j] == perm[j-1]+1 {
				k := rng.IntN(len(perm))
				perm[j], perm[k] = perm[k], perm[j]
				again = true
			}
		}
	}
	order := rng.Perm(*pieces)
	want := make([]byte, size)
	for j, p := range perm {
		off := int64(p)**piece + skew
		copy(want[int64(j)**piece:], srcData[off:off+*piece])
	}

	src, err := os.Open(srcPath)
	if err != nil {
		return err
	}
	defer src.Close()
	frag, err := os.OpenFile(fragPath, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	t = time.Now()
	for _, j := range order {
		soff := int64(perm[j])**piece + skew
		doff := int64(j) * *piece
		if err := copyRange(src, soff, frag, doff, *piece, nil); err != nil {
			frag.Close()
			return fmt.Errorf("building frag: %w", err)
		}
	}
	if err := frag.Sync(); err != nil {
		frag.Close()
		return err
	}
	res.BuildFragSecs = time.Since(t).Seconds()
	res.BuildFragOps = float64(n) / res.BuildFragSecs
	if err := frag.Close(); err != nil {
		return err
	}
	srcData = nil
	if err := verify(fragPath, want); err != nil {
		return err
	}

	oneData := randBytes(size, *seed+1000)
	t = time.Now()
	if err := writeFile(onePath, oneData, len(oneData)); err != nil {
		return err
	}
	res.WriteOneSeconds = time.Since(t).Seconds()
	if err := verify(onePath, oneData); err != nil {
		return err
	}

	if res.CopyFrag, err = timeCopy(fragPath, fragPath+".copy", *drop); err != nil {
		return err
	}
	if err := verify(fragPath+".copy", want); err != nil {
		return err
	}
	if res.CopyOne, err = timeCopy(onePath, onePath+".copy", *drop); err != nil {
		return err
	}
	if err := verify(onePath+".copy", oneData); err != nil {
		return err
	}
	res.RatioFragOne = res.CopyFrag.Seconds / res.CopyOne.Seconds
	res.Xattrs = xattrs(fragPath, onePath)

	out, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	fmt.Println(string(out))
	return nil
}

// writeFile creates path and writes data in write(2) calls of at most
// chunk bytes, then fsyncs.
func writeFile(path string, data []byte, chunk int) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	for len(data) > 0 {
		n := min(chunk, len(data))
		w, err := f.Write(data[:n])
		if err != nil {
			f.Close()
			return err
		}
		data = data[w:]
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// copyRange copies n bytes with copy_file_range(2), looping over short
// counts; it counts the calls in *calls if calls is not nil.
func copyRange(src *os.File, soff int64, dst *os.File, doff int64, n int64, calls *int) error {
	for n > 0 {
		w, err := unix.CopyFileRange(int(src.Fd()), &soff, int(dst.Fd()), &doff, int(min(n, 1<<30)), 0)
		if calls != nil {
			*calls++
		}
		if err != nil {
			return fmt.Errorf("copy_file_range(%s@%d -> %s@%d, %d): %w", src.Name(), soff, dst.Name(), doff, n, err)
		}
		if w == 0 {
			return fmt.Errorf("copy_file_range(%s@%d -> %s@%d, %d): copied 0 bytes", src.Name(), soff, dst.Name(), doff, n)
		}
		n -= int64(w)
	}
	return nil
}

func timeCopy(srcPath, dstPath string, drop bool) (copyResult, error) {
	var r copyResult
	src, err := os.Open(srcPath)
	if err != nil {
		return r, err
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return r, err
	}
	dst, err := os.OpenFile(dstPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return r, err
	}
	defer dst.Close()
	if drop {
		if err := dropCaches(); err != nil {
			return r, err
		}
	}
	r.Bytes = fi.Size()
	t := time.Now()
	if err := copyRange(src, 0, dst, 0, fi.Size(), &r.Calls); err != nil {
		return r, err
	}
	r.Seconds = time.Since(t).Seconds()
	t = time.Now()
	if err := dst.Sync(); err != nil {
		return r, err
	}
	r.FsyncSeconds = time.Since(t).Seconds()
	return r, dst.Close()
}

func dropCaches() error {
	unix.Sync()
	return os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0)
}

// verify reads path and compares it with want.
func verify(path string, want []byte) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	var off int64
	for {
		n, err := io.ReadFull(f, buf)
		if n > 0 {
			if off+int64(n) > int64(len(want)) {
				return fmt.Errorf("%s: longer than %d bytes", path, len(want))
			}
			if !bytes.Equal(buf[:n], want[off:off+int64(n)]) {
				i := 0
				for buf[i] == want[off+int64(i)] {
					i++
				}
				return fmt.Errorf("%s: wrong byte at offset %d", path, off+int64(i))
			}
			off += int64(n)
		}
		if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return err
		}
	}
	if off != int64(len(want)) {
		return fmt.Errorf("%s: %d bytes, want %d", path, off, len(want))
	}
	return nil
}

// xattrs returns the extended attributes of the files, if the file system
// has any (a mount may expose e.g. an extent count there); "file:name" ->
// value.
func xattrs(paths ...string) map[string]string {
	m := map[string]string{}
	for _, p := range paths {
		buf := make([]byte, 64<<10)
		n, err := unix.Listxattr(p, buf)
		if err != nil || n == 0 {
			continue
		}
		for _, name := range bytes.Split(bytes.TrimRight(buf[:n], "\x00"), []byte{0}) {
			val := make([]byte, 4096)
			vn, err := unix.Getxattr(p, string(name), val)
			if err != nil {
				continue
			}
			m[filepath.Base(p)+":"+string(name)] = string(val[:vn])
		}
	}
	if len(m) == 0 {
		return nil
	}
	return m
}
