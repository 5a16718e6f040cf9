// Package dirtree keeps directories as ordered B-trees of entries.
//
// A directory is a btree.Ref[Entry] ordered by entry name. An entry carries
// everything stat reports plus the content of what it names: the rope of a
// regular file, the tree of a subdirectory, a symlink's target. Because a
// directory holds its children's trees, cloning a directory is copying one
// entry (seed 001: the volume is one tree).
//
// The same entry type also fills the volume's side tables (hard-link inodes,
// orphans, inode scopes); there the name is a binary key.
package dirtree

import (
	"encoding/binary"
	"fmt"
	"io/fs"
	"math"
	"sort"

	"github.com/cowfs/cowfs/internal/btree"
	"github.com/cowfs/cowfs/internal/rope"
	"github.com/cowfs/cowfs/store"
)

// NodeKind is the blob kind tag of directory nodes.
const NodeKind = 2

// Limits on entries.
const (
	MaxName      = 255       // bytes in a name
	MaxTarget    = 4095      // bytes in a symlink target
	MaxXattrName = 255       // bytes in an xattr name
	MaxXattrs    = 64 << 10  // total bytes of one entry's xattr names and values
	MaxNlink     = 1<<31 - 1 // links to one inode
)

// File types, as in the S_IFMT bits of a POSIX mode.
const (
	TypeMask = 0o170000
	TypeFifo = 0o010000
	TypeChar = 0o020000
	TypeDir  = 0o040000
	TypeBlk  = 0o060000
	TypeReg  = 0o100000
	TypeLink = 0o120000
	TypeSock = 0o140000
)

// Xattr is one extended attribute.
type Xattr struct {
	Name  string
	Value []byte
}

// Entry is one name in a directory and the inode it names.
type Entry struct {
	Name string
	Mode uint32 // type (Type*) and permission bits, as in st_mode
	UID  uint32
	GID  uint32
	// Nlink counts the names of a hard-linked inode (kept in the volume's link
	// table); 0 elsewhere, where the count follows from the entry's kind.
	Nlink uint32
	// Local is the inode number within the entry's scope (see package cowfs).
	Local uint64
	// Scope, if not 0, starts a new inode-number scope at this entry.
	Scope uint64
	// Link, if not 0, makes this entry a name of a hard-linked inode kept in
	// the volume's link table under that key; the entry's other fields are
	// then unused but for Name.
	Link uint64
	// Links counts the hard-link names in this entry's subtree (1 for a link
	// name itself), so a directory clone finds them without a full walk.
	Links uint64
	// Subdirs counts the directories directly inside a directory (st_nlink-2).
	Subdirs uint32
	// Times in nanoseconds since the Unix epoch.
	Atime, Mtime, Ctime, Btime int64
	Rdev                       uint64 // device number of a device node
	Target                     string // symlink target
	Xattrs                     []Xattr
	Data                       rope.Rope        // regular file content
	Dir                        btree.Ref[Entry] // directory content
}

// Type returns the entry's file type bits.
func (e *Entry) Type() uint32 { return e.Mode & TypeMask }

// IsDir reports whether the entry is a directory.
func (e *Entry) IsDir() bool { return e.Type() == TypeDir }

// Size is st_size: bytes of a file, the target length of a symlink, the
// number of entries of a directory.
func (e *Entry) Size() int64 {
	switch e.Type() {
	case TypeReg:
		return e.Data.Len
	case TypeLink:
		return int64(len(e.Target))
	case TypeDir:
		return e.Dir.Count
	}
	return 0
}

// FileMode converts the POSIX mode to an io/fs mode.
func (e *Entry) FileMode() fs.FileMode {
	m := fs.FileMode(e.Mode & 0o777)
	if e.Mode&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if e.Mode&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if e.Mode&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	switch e.Type() {
	case TypeDir:
		m |= fs.ModeDir
	case TypeLink:
		m |= fs.ModeSymlink
	case TypeFifo:
		m |= fs.ModeNamedPipe
	case TypeSock:
		m |= fs.ModeSocket
	case TypeChar:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case TypeBlk:
		m |= fs.ModeDevice
	}
	return m
}

// Xattr returns the value of the named attribute.
func (e *Entry) Xattr(name string) ([]byte, bool) {
	i := sort.Search(len(e.Xattrs), func(i int) bool { return e.Xattrs[i].Name >= name })
	if i < len(e.Xattrs) && e.Xattrs[i].Name == name {
		return e.Xattrs[i].Value, true
	}
	return nil, false
}

// SetXattr sets (value != nil) or removes (value == nil) an attribute,
// copying the list so entries sharing it are unaffected. It reports whether
// the attribute existed before.
func (e *Entry) SetXattr(name string, value []byte) bool {
	i := sort.Search(len(e.Xattrs), func(i int) bool { return e.Xattrs[i].Name >= name })
	existed := i < len(e.Xattrs) && e.Xattrs[i].Name == name
	out := make([]Xattr, 0, len(e.Xattrs)+1)
	out = append(out, e.Xattrs[:i]...)
	if value != nil {
		out = append(out, Xattr{name, append([]byte{}, value...)})
	}
	if existed {
		i++
	}
	out = append(out, e.Xattrs[i:]...)
	if len(out) == 0 {
		out = nil
	}
	e.Xattrs = out
	return existed
}

// XattrBytes is the total size of the entry's xattr names and values.
func (e *Entry) XattrBytes() int {
	n := 0
	for _, x := range e.Xattrs {
		n += len(x.Name) + len(x.Value)
	}
	return n
}

// Tree is a directory tree type; see New.
type Tree = btree.Tree[Entry]

// Dir is a directory's content.
type Dir = btree.Ref[Entry]

// New returns the directory tree whose nodes load through load.
func New(load func(id store.ID) (*btree.Node[Entry], error)) *Tree {
	return &Tree{Ops: ops{}, Kind: NodeKind, Load: load}
}

type ops struct{}

func (ops) Size(Entry) int64                      { return 1 }
func (ops) Key(e Entry) string                    { return e.Name }
func (ops) Split(e Entry, _ int64) (Entry, Entry) { return e, e } // never called: sizes are 1
func (ops) Merge(a, _ Entry) (Entry, bool)        { return a, false }
func (ops) Marked(Entry) bool                     { return false }

func (ops) Children(e Entry, fn func(btree.Child) error) error {
	var c btree.Child
	var err error
	switch {
	case !e.Data.Empty():
		c, err = btree.RefChild(e.Data)
	case !e.Dir.Empty():
		c, err = btree.RefChild(e.Dir)
	default:
		return nil
	}
	if err != nil {
		return err
	}
	return fn(c)
}

// Lookup returns the entry named name.
func Lookup(t *Tree, d Dir, name string) (Entry, bool, error) {
	_, e, ok, err := t.Find(d, name)
	return e, ok, err
}

// Put returns d with e inserted, replacing any entry of the same name.
func Put(t *Tree, d Dir, e Entry) (Dir, error) {
	pos, _, found, err := t.Find(d, e.Name)
	if err != nil {
		return d, err
	}
	end := pos
	if found {
		end++
	}
	return t.Replace(d, pos, end, t.FromItems([]Entry{e}))
}

// Delete returns d without the entry named name (d itself if there is none).
func Delete(t *Tree, d Dir, name string) (Dir, error) {
	pos, _, found, err := t.Find(d, name)
	if err != nil || !found {
		return d, err
	}
	return t.Replace(d, pos, pos+1, Dir{})
}

// Entry encoding: a flags byte saying which optional fields follow, then the
// fields in the order below. Integers are unsigned varints; times are
// zig-zag varints.
const (
	hasData = 1 << iota
	hasDir
	hasTarget
	hasXattrs
	hasLink
	hasScope
	hasRdev
)

func (ops) AppendItem(b []byte, e Entry) ([]byte, error) {
	var flags byte
	if !e.Data.Empty() {
		flags |= hasData
	}
	if !e.Dir.Empty() {
		flags |= hasDir
	}
	if e.Target != "" {
		flags |= hasTarget
	}
	if len(e.Xattrs) > 0 {
		flags |= hasXattrs
	}
	if e.Link != 0 {
		flags |= hasLink
	}
	if e.Scope != 0 {
		flags |= hasScope
	}
	if e.Rdev != 0 {
		flags |= hasRdev
	}
	b = append(b, flags)
	b = appendString(b, e.Name)
	for _, v := range []uint64{uint64(e.Mode), uint64(e.UID), uint64(e.GID), uint64(e.Nlink), e.Local, e.Links, uint64(e.Subdirs)} {
		b = binary.AppendUvarint(b, v)
	}
	for _, t := range []int64{e.Atime, e.Mtime, e.Ctime, e.Btime} {
		b = binary.AppendVarint(b, t)
	}
	var err error
	if flags&hasData != 0 {
		if b, err = btree.AppendRoot(b, e.Data); err != nil {
			return nil, err
		}
	}
	if flags&hasDir != 0 {
		if b, err = btree.AppendRoot(b, e.Dir); err != nil {
			return nil, err
		}
	}
	if flags&hasTarget != 0 {
		b = appendString(b, e.Target)
	}
	if flags&hasXattrs != 0 {
		b = binary.AppendUvarint(b, uint64(len(e.Xattrs)))
		for _, x := range e.Xattrs {
			b = appendString(b, x.Name)
			b = appendString(b, string(x.Value))
		}
	}
	if flags&hasLink != 0 {
		b = binary.AppendUvarint(b, e.Link)
	}
	if flags&hasScope != 0 {
		b = binary.AppendUvarint(b, e.Scope)
	}
	if flags&hasRdev != 0 {
		b = binary.AppendUvarint(b, e.Rdev)
	}
	return b, nil
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// decoder reads an entry; the first error sticks.
type decoder struct {
	p   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: entry: %s", btree.ErrCorrupt, what)
	}
}

func (d *decoder) uvarint(max uint64, what string) uint64 {
	v, k := binary.Uvarint(d.p)
	if k <= 0 || v > max {
		d.fail(what)
		return 0
	}
	d.p = d.p[k:]
	return v
}

func (d *decoder) varint(what string) int64 {
	v, k := binary.Varint(d.p)
	if k <= 0 {
		d.fail(what)
		return 0
	}
	d.p = d.p[k:]
	return v
}

func (d *decoder) str(max int, what string) string {
	n := d.uvarint(uint64(max), what)
	if d.err != nil || n > uint64(len(d.p)) {
		d.fail(what)
		return ""
	}
	s := string(d.p[:n])
	d.p = d.p[n:]
	return s
}

func decodeRoot[I any](d *decoder, what string) btree.Ref[I] {
	if d.err != nil {
		return btree.Ref[I]{}
	}
	r, k, err := btree.DecodeRoot[I](d.p)
	if err != nil || r.Empty() {
		d.fail(what)
		return btree.Ref[I]{}
	}
	d.p = d.p[k:]
	return r
}

func (ops) DecodeItem(src []byte) (Entry, int, error) {
	d := &decoder{p: src}
	if len(src) == 0 {
		d.fail("truncated")
		return Entry{}, 0, d.err
	}
	flags := src[0]
	d.p = src[1:]
	var e Entry
	e.Name = d.str(MaxName+16, "name") // side-table keys may be a little longer than names
	e.Mode = uint32(d.uvarint(math.MaxUint32, "mode"))
	e.UID = uint32(d.uvarint(math.MaxUint32, "uid"))
	e.GID = uint32(d.uvarint(math.MaxUint32, "gid"))
	e.Nlink = uint32(d.uvarint(MaxNlink, "nlink"))
	e.Local = d.uvarint(math.MaxUint64, "inode")
	e.Links = d.uvarint(math.MaxUint64, "links")
	e.Subdirs = uint32(d.uvarint(math.MaxUint32, "subdirs"))
	e.Atime = d.varint("atime")
	e.Mtime = d.varint("mtime")
	e.Ctime = d.varint("ctime")
	e.Btime = d.varint("btime")
	if flags&hasData != 0 {
		e.Data = decodeRoot[rope.Extent](d, "file root")
	}
	if flags&hasDir != 0 {
		e.Dir = decodeRoot[Entry](d, "directory root")
	}
	if flags&hasTarget != 0 {
		e.Target = d.str(MaxTarget, "symlink target")
	}
	if flags&hasXattrs != 0 {
		n := d.uvarint(MaxXattrs, "xattr count")
		total := 0
		for i := uint64(0); i < n && d.err == nil; i++ {
			x := Xattr{Name: d.str(MaxXattrName, "xattr name")}
			x.Value = []byte(d.str(MaxXattrs, "xattr value"))
			total += len(x.Name) + len(x.Value)
			if total > MaxXattrs || (i > 0 && x.Name <= e.Xattrs[i-1].Name) {
				d.fail("xattrs")
			}
			e.Xattrs = append(e.Xattrs, x)
		}
	}
	if flags&hasLink != 0 {
		e.Link = d.uvarint(math.MaxUint64, "link")
	}
	if flags&hasScope != 0 {
		e.Scope = d.uvarint(math.MaxUint64, "scope")
	}
	if flags&hasRdev != 0 {
		e.Rdev = d.uvarint(math.MaxUint64, "rdev")
	}
	if flags >= hasRdev<<1 {
		d.fail("unknown flags")
	}
	if d.err != nil {
		return Entry{}, 0, d.err
	}
	return e, len(src) - len(d.p), nil
}
