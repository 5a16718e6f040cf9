package cowfs

import (
	"io/fs"
	"path"
	"time"

	"github.com/cowfs/cowfs/acl"
	"github.com/cowfs/cowfs/internal/dirtree"
)

// Stat is everything stat(2) reports about a file, plus its birth time.
type Stat struct {
	Ino     uint64
	Mode    uint32 // type and permission bits, as st_mode
	Nlink   uint32
	UID     uint32
	GID     uint32
	Rdev    uint64
	Size    int64
	Blocks  int64 // 512-byte units: see SizeBlocks
	Atime   time.Time
	Mtime   time.Time
	Ctime   time.Time
	Btime   time.Time
	Target  string // symlink target
	Extents int64  // number of extents of a regular file
	// ACL is the access ACL when the mode cannot express it (named
	// entries, a mask), nil otherwise; the mode's group bits are its mask.
	ACL acl.ACL
}

// FileInfo describes a file; it implements fs.FileInfo and its Sys returns
// *Stat.
type FileInfo struct {
	name string
	mode fs.FileMode
	st   Stat
}

func (fi *FileInfo) Name() string       { return fi.name }
func (fi *FileInfo) Size() int64        { return fi.st.Size }
func (fi *FileInfo) Mode() fs.FileMode  { return fi.mode }
func (fi *FileInfo) ModTime() time.Time { return fi.st.Mtime }
func (fi *FileInfo) IsDir() bool        { return fi.mode.IsDir() }
func (fi *FileInfo) Sys() any           { return &fi.st }

// Stat returns the full stat record.
func (fi *FileInfo) Stat() *Stat { return &fi.st }

// SizeBlocks is what cowfs reports as st_blocks for a regular file of size
// bytes: its size in whole blocks (BlockSize), in 512-byte units, holes
// included. Blocks are shared and deduplicated, so what a file alone holds
// is not a property of the file (Volume.Usage tells); and coreutils cp
// clones a file (copy_file_range) only when st_blocks does not make it
// look sparse, copying the data of a sparse-looking one instead.
func SizeBlocks(size int64) int64 {
	return (size + BlockSize - 1) / BlockSize * (BlockSize / 512)
}

func baseName(p string) string {
	b := path.Base("/" + p)
	if b == "/" {
		return "."
	}
	return b
}

// info builds a FileInfo of x under the given name.
func (x *inode) info(name string) *FileInfo {
	e := &x.ent
	st := Stat{
		Ino: x.ino(), Mode: e.Mode, Nlink: 1, UID: e.UID, GID: e.GID, Rdev: e.Rdev,
		Size: e.Size(), Target: e.Target,
		Atime: toTime(e.Atime), Mtime: toTime(e.Mtime),
		Ctime: toTime(e.Ctime), Btime: toTime(e.Btime),
		ACL: accessACL(e),
	}
	if e.IsDir() {
		st.Size = 4096 // as most Linux file systems report; Count is in Extents
		st.Extents = e.Dir.Count
	}
	switch {
	case x.removed || x.orphan != 0:
		st.Nlink = 0
	case e.IsDir():
		st.Nlink = 2 + e.Subdirs
	case x.linkID != 0:
		st.Nlink = e.Nlink
	}
	if e.Type() == dirtree.TypeReg {
		st.Blocks = SizeBlocks(st.Size)
		st.Extents = e.Data.Count
	}
	if name == "/" || name == "" {
		name = "."
	}
	return &FileInfo{name: name, mode: e.FileMode(), st: st}
}
