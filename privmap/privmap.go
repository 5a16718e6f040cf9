// Package privmap maps a file with mmap(MAP_PRIVATE), read-write, and
// writes back only the pages that became private: those the process wrote
// into, which the kernel copied away from the file, found through
// /proc/self/pagemap. Every other page is written back by copy_file_range,
// which a cowfs mount turns into a clone.
//
// Mapping a snapshot that `cowfs snapshot-file` serves (under .cowfs/files
// of a mount) gives a deferred read (cowfs.File.ReadDeferred) through the
// kernel: the mapping returns at once whatever the file's size, pages are
// read from the mount on first touch, later writes to the original file
// never show, and a write-back to the original writes only what changed. The mount must be
// served by another process: a Go process must never fault on memory that
// it serves itself.
package privmap

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Mapping is a private, writable mapping of a whole file.
type Mapping struct {
	f    *os.File
	data []byte
	size int64
}

// Map maps the file at path privately: writes to the mapping never reach
// the file.
func Map(path string) (*Mapping, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	m := &Mapping{f: f, size: fi.Size()}
	if m.size > 0 {
		m.data, err = unix.Mmap(int(f.Fd()), 0, int(m.size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("mmap %s: %w", path, err)
		}
	}
	return m, nil
}

// Bytes returns the mapped bytes. Writing into them makes pages private.
func (m *Mapping) Bytes() []byte { return m.data }

// Pagemap entry bits (Documentation/admin-guide/mm/pagemap.rst).
const (
	pagePresent = 1 << 63
	pageSwapped = 1 << 62
	pageFile    = 1 << 61 // file page or shared anonymous page
)

// PrivatePages returns the indexes (in pages of os.Getpagesize() bytes) of
// the pages that became private: present or swapped, and not the file's.
func (m *Mapping) PrivatePages() ([]int64, error) {
	if len(m.data) == 0 {
		return nil, nil
	}
	ps := int64(os.Getpagesize())
	pages := (m.size + ps - 1) / ps
	pm, err := os.Open("/proc/self/pagemap")
	if err != nil {
		return nil, err
	}
	defer pm.Close()
	addr := int64(uintptr(unsafePointer(m.data)))
	buf := make([]byte, 8*pages)
	if _, err := pm.ReadAt(buf, addr/ps*8); err != nil {
		return nil, fmt.Errorf("read /proc/self/pagemap: %w", err)
	}
	var private []int64
	for i := range pages {
		e := binary.LittleEndian.Uint64(buf[8*i:])
		if e&(pagePresent|pageSwapped) != 0 && e&pageFile == 0 {
			private = append(private, i)
		}
	}
	return private, nil
}

// WriteBack writes the mapping into dst at off, as one write of all its
// bytes would: first the file it maps, by copy_file_range (a clone on a
// cowfs mount), then only the private pages, by pwrite. It returns how many
// bytes it wrote with pwrite.
func (m *Mapping) WriteBack(dst *os.File, off int64) (int64, error) {
	private, err := m.PrivatePages()
	if err != nil {
		return 0, err
	}
	soff, doff := int64(0), off
	for soff < m.size {
		n, err := unix.CopyFileRange(int(m.f.Fd()), &soff, int(dst.Fd()), &doff, int(m.size-soff), 0)
		if err != nil {
			return 0, fmt.Errorf("copy_file_range: %w", err)
		}
		if n == 0 {
			return 0, errors.New("copy_file_range: the mapped file ended early")
		}
	}
	ps := int64(os.Getpagesize())
	var written int64
	for i := 0; i < len(private); {
		j := i + 1
		for j < len(private) && private[j] == private[j-1]+1 {
			j++
		}
		start, end := private[i]*ps, min((private[j-1]+1)*ps, m.size)
		n, err := dst.WriteAt(m.data[start:end], off+start)
		written += int64(n)
		if err != nil {
			return written, err
		}
		i = j
	}
	return written, nil
}

// Close unmaps the file and closes it.
func (m *Mapping) Close() error {
	var err error
	if m.data != nil {
		err = unix.Munmap(m.data)
		m.data = nil
	}
	if cerr := m.f.Close(); err == nil {
		err = cerr
	}
	return err
}
