// Package sparsemodel is a naive model of a sparse file's layout for tests:
// which byte ranges hold data and which are holes, and what SEEK_DATA and
// SEEK_HOLE must answer when a file system reports them in whole blocks.
// Sizes and offsets may reach 2^62; only the data ranges are kept.
package sparsemodel

import (
	"fmt"
	"slices"
	"sort"
)

// File is a file's size and its data ranges: sorted, disjoint, not
// adjacent, within the size.
type File struct {
	Size int64
	Data []Range
}

// Range is the byte range [Start, End).
type Range struct{ Start, End int64 }

func (r Range) String() string { return fmt.Sprintf("[%d,%d)", r.Start, r.End) }

// normalize sorts the ranges, merges overlapping and adjacent ones, and
// drops what lies past the size.
func (f *File) normalize() {
	slices.SortFunc(f.Data, func(a, b Range) int {
		switch {
		case a.Start < b.Start:
			return -1
		case a.Start > b.Start:
			return 1
		}
		return 0
	})
	var out []Range
	for _, r := range f.Data {
		r.End = min(r.End, f.Size)
		if r.Start >= r.End {
			continue
		}
		if n := len(out); n > 0 && r.Start <= out[n-1].End {
			out[n-1].End = max(out[n-1].End, r.End)
			continue
		}
		out = append(out, r)
	}
	f.Data = out
}

// cut makes [off, end) a hole.
func (f *File) cut(off, end int64) {
	var out []Range
	for _, r := range f.Data {
		if r.End <= off || r.Start >= end {
			out = append(out, r)
			continue
		}
		if r.Start < off {
			out = append(out, Range{r.Start, off})
		}
		if r.End > end {
			out = append(out, Range{end, r.End})
		}
	}
	f.Data = out
}

// Write records n bytes of data written at off.
func (f *File) Write(off, n int64) {
	f.Size = max(f.Size, off+n)
	f.Data = append(f.Data, Range{off, off + n})
	f.normalize()
}

// Truncate sets the size; growing adds a hole.
func (f *File) Truncate(size int64) {
	f.Size = size
	f.normalize()
}

// Hole makes [off, off+n) a hole within the size (punch hole, zero range
// with keep-size); with grow, the size grows to off+n as a zero range
// without keep-size does.
func (f *File) Hole(off, n int64, grow bool) {
	if grow {
		f.Size = max(f.Size, off+n)
	}
	f.cut(off, min(off+n, f.Size))
	f.normalize()
}

// CopyRange records copy_file_range of n bytes of src at soff to f at doff:
// short at src's end, and what it copies keeps src's layout. It returns
// the count copied.
func (f *File) CopyRange(src *File, soff, doff, n int64) int64 {
	n = min(n, max(src.Size-soff, 0))
	if n <= 0 {
		return 0
	}
	var moved []Range
	for _, r := range src.Data {
		s, e := max(r.Start, soff), min(r.End, soff+n)
		if s < e {
			moved = append(moved, Range{s - soff + doff, e - soff + doff})
		}
	}
	f.Size = max(f.Size, doff+n)
	f.cut(doff, doff+n)
	f.Data = append(f.Data, moved...)
	f.normalize()
	return n
}

// SeekData is lseek(SEEK_DATA) with data reported in blocks of unit bytes
// (a block is data if any byte of it is): the first offset >= off in a
// data block, off itself if its block holds data; ok is false for ENXIO.
func (f *File) SeekData(off, unit int64) (pos int64, ok bool) {
	if off < 0 || off >= f.Size {
		return 0, false
	}
	first := off / unit * unit
	i := sort.Search(len(f.Data), func(i int) bool { return f.Data[i].End > first })
	if i == len(f.Data) {
		return 0, false
	}
	return max(off, max(f.Data[i].Start, first)/unit*unit), true
}

// SeekHole is lseek(SEEK_HOLE) with holes reported in whole blocks of unit
// bytes (the last block ends at the size, and the size counts as a hole):
// ok is false for ENXIO.
func (f *File) SeekHole(off, unit int64) (pos int64, ok bool) {
	if off < 0 || off >= f.Size {
		return 0, false
	}
	u := off / unit * unit
	for _, r := range f.Data {
		if r.End <= u {
			continue
		}
		if r.Start >= u+unit {
			break // block u holds no data
		}
		u = (r.End + unit - 1) / unit * unit // past the blocks r touches
	}
	return max(off, min(u, f.Size)), true
}

// Probes returns offsets worth asking about: 0, the size and around it,
// both edges of every data range and of the blocks they fall in, and the
// middle of every hole.
func (f *File) Probes(unit int64) []int64 {
	seen := map[int64]bool{}
	var out []int64
	add := func(offs ...int64) {
		for _, o := range offs {
			if o >= 0 && !seen[o] {
				seen[o] = true
				out = append(out, o)
			}
		}
	}
	add(0, 1, f.Size-1, f.Size, f.Size+1, f.Size+unit)
	prev := int64(0)
	for _, r := range f.Data {
		for _, o := range []int64{r.Start, r.End} {
			b := o / unit * unit
			add(o-1, o, o+1, b-1, b, b+unit-1, b+unit)
		}
		add(prev + (r.Start-prev)/2)
		prev = r.End
	}
	add(prev + (f.Size-prev)/2)
	slices.Sort(out)
	return out
}
