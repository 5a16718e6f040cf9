// Package dirtree keeps directories as ordered B-trees of entries.
//
// A directory is a btree.Ref[Entry] ordered by entry name. An entry carries
// everything stat reports plus the content of what it names: the rope of a
// regular file, the tree of a subdirectory, a symlink's target. Because a
// directory holds its children's trees, cloning a directory is copying one
// entry (the whole volume is one tree of such entries).
//
// The same entry type also fills the volume's side tables (hard-link inodes,
// orphans, inode scopes); there the name is a binary key.
//
// # Entry encoding
//
// An entry starts with a flags byte saying which optional fields follow.
// Format 1 (every entry written before wide times and large attributes)
// keeps the four times as zig-zag varints of nanoseconds since 1970, which
// reach from 1677 to 2262, and every extended attribute inline, at most
// 64 KiB of names and values in all. Format 2 is format 1 plus the flag
// hasExt and, right after the flags byte, a uvarint of extension flags:
// extTimes keeps each time as a zig-zag varint of seconds since 1970 and a
// uvarint of nanoseconds (0 to 999,999,999) and extXattrs gives each
// attribute either its value inline or the ID of a raw blob holding it
// (see Xattr). Nothing else differs, so an entry format 1 can express is
// written in format 1, byte for byte as before: old stores read as they
// are, and a node changes bytes only where an entry needs the new fields.
package dirtree

import (
	"encoding/binary"
	"fmt"
	"io/fs"
	"math"
	"sort"

	"github.com/cowfs/cowfs/acl"
	"github.com/cowfs/cowfs/internal/btree"
	"github.com/cowfs/cowfs/internal/rope"
	"github.com/cowfs/cowfs/store"
)

// Limits on entries. The extended attribute limits are Linux's
// (XATTR_NAME_MAX, XATTR_SIZE_MAX, XATTR_LIST_MAX).
const (
	MaxName       = 255       // bytes in a name
	MaxTarget     = 4095      // bytes in a symlink target
	MaxXattrName  = 255       // bytes in an xattr name
	MaxXattrValue = 64 << 10  // bytes in an xattr value
	MaxXattrList  = 64 << 10  // bytes in the list of an entry's xattr names, each with a NUL
	MaxNlink      = 1<<31 - 1 // links to one inode

	// XattrInlineMax is the longest value kept inline in the entry (the
	// POSIX ACLs excepted, which stay inline whatever their size: every
	// stat and permission check reads them); a longer one is a raw blob of
	// its own, so a directory node stays small whatever its files'
	// attributes hold.
	XattrInlineMax = 128
	// XattrInlineBudget bounds an entry's inline names and values (ACLs
	// excepted): a value that would take them past it is kept in a blob
	// however short it is.
	XattrInlineBudget = 64 << 10

	// maxXattrs1 bounds an entry's names and values in format 1.
	maxXattrs1 = 64 << 10
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

// Xattr is one extended attribute: its value is inline (Value, Blob zero)
// or kept in the raw blob Blob, which the entry references like file data
// (Children reports it; the engine loads it when asked for the value).
type Xattr struct {
	Name  string
	Value []byte   // the value, if inline
	Blob  store.ID // the blob holding the value, if not inline
	Size  int      // bytes of the value, inline or not
}

// Inline returns an inline attribute (copying value).
func Inline(name string, value []byte) Xattr {
	return Xattr{Name: name, Value: append([]byte{}, value...), Size: len(value)}
}

// AlwaysInline reports whether attribute name keeps its value inline
// whatever its size: the POSIX ACLs, which the engine reads on every stat
// and permission check.
func AlwaysInline(name string) bool { return name == acl.AccessXattr || name == acl.DefaultXattr }

// Time is a file time: seconds since 1970-01-01T00:00:00Z (negative before
// it) and nanoseconds past that second.
type Time struct {
	Sec  int64
	Nsec uint32 // 0 to 999,999,999
}

// Compare returns -1, 0 or +1 as t is before, equal to or after u.
func (t Time) Compare(u Time) int {
	switch {
	case t.Sec < u.Sec || t.Sec == u.Sec && t.Nsec < u.Nsec:
		return -1
	case t == u:
		return 0
	}
	return 1
}

// TimeOfNano returns the time ns nanoseconds after 1970-01-01T00:00:00Z.
func TimeOfNano(ns int64) Time {
	sec, nsec := ns/1e9, ns%1e9
	if nsec < 0 {
		sec, nsec = sec-1, nsec+1e9
	}
	return Time{Sec: sec, Nsec: uint32(nsec)}
}

// Nano returns t in nanoseconds since 1970-01-01T00:00:00Z, and whether
// that fits in an int64 (from 1677-09-21 to 2262-04-11).
func (t Time) Nano() (int64, bool) {
	const g = 1_000_000_000
	const lo, hi = math.MinInt64 / g, math.MaxInt64 / g // -9223372036, 9223372036
	ns := int64(t.Nsec)
	switch {
	case t.Sec >= lo && t.Sec < hi, t.Sec == hi && ns <= math.MaxInt64%g:
		return t.Sec*g + ns, true
	case t.Sec == lo-1 && ns >= g+math.MinInt64%g:
		return lo*g - (g - ns), true
	}
	return 0, false
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
	Subdirs                    uint32
	Atime, Mtime, Ctime, Btime Time
	Rdev                       uint64 // device number of a device node
	Target                     string // symlink target
	// Xattrs are the extended attributes, sorted by name.
	Xattrs []Xattr
	Data   rope.Rope        // regular file content
	Dir    btree.Ref[Entry] // directory content
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

// Xattr returns the named attribute.
func (e *Entry) Xattr(name string) (Xattr, bool) {
	i := sort.Search(len(e.Xattrs), func(i int) bool { return e.Xattrs[i].Name >= name })
	if i < len(e.Xattrs) && e.Xattrs[i].Name == name {
		return e.Xattrs[i], true
	}
	return Xattr{}, false
}

// SetXattr sets an attribute to an inline copy of value (value != nil) or
// removes it (value == nil). It reports whether the attribute existed.
func (e *Entry) SetXattr(name string, value []byte) bool {
	if value == nil {
		return e.PutXattr(Xattr{Name: name}, true)
	}
	return e.PutXattr(Inline(name, value), false)
}

// PutXattr sets attribute x (or removes the attribute x.Name), copying the
// list so entries sharing it are unaffected. It reports whether the
// attribute existed before.
func (e *Entry) PutXattr(x Xattr, remove bool) bool {
	i := sort.Search(len(e.Xattrs), func(i int) bool { return e.Xattrs[i].Name >= x.Name })
	existed := i < len(e.Xattrs) && e.Xattrs[i].Name == x.Name
	out := make([]Xattr, 0, len(e.Xattrs)+1)
	out = append(out, e.Xattrs[:i]...)
	if !remove {
		out = append(out, x)
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

// XattrListSize is the size of the list of the entry's attribute names as
// listxattr(2) returns it: each name and a NUL.
func (e *Entry) XattrListSize() int {
	n := 0
	for _, x := range e.Xattrs {
		n += len(x.Name) + 1
	}
	return n
}

// KeepInline reports whether a value of n bytes for attribute name stays
// inline in e, whose attribute of that name (if any) it replaces: an ACL
// or an empty value always does; another value if it is at most
// XattrInlineMax bytes and the entry's inline names and values (ACLs
// aside) stay within XattrInlineBudget.
func (e *Entry) KeepInline(name string, n int) bool {
	if AlwaysInline(name) || n == 0 {
		return true
	}
	if n > XattrInlineMax {
		return false
	}
	used := len(name) + n
	for _, x := range e.Xattrs {
		if x.Name == name || AlwaysInline(x.Name) {
			continue
		}
		used += len(x.Name)
		if x.Blob.IsZero() {
			used += len(x.Value)
		}
	}
	return used <= XattrInlineBudget
}

// Tree is a directory tree type; see New.
type Tree = btree.Tree[Entry]

// Dir is a directory's content.
type Dir = btree.Ref[Entry]

// New returns the directory tree whose nodes load through load.
func New(load func(id store.ID) (*btree.Node[Entry], error)) *Tree {
	return &Tree{Ops: ops{}, Kind: btree.KindDir, Load: load}
}

type ops struct{}

func (ops) Size(Entry) int64                      { return 1 }
func (ops) Key(e Entry) string                    { return e.Name }
func (ops) Split(e Entry, _ int64) (Entry, Entry) { return e, e } // never called: sizes are 1
func (ops) Merge(a, _ Entry) (Entry, bool)        { return a, false }
func (ops) Marked(Entry) bool                     { return false }

// Children reports the entry's content tree (a file's rope or a
// directory's tree) and the blobs of its out-of-line attribute values.
func (ops) Children(e Entry, fn func(btree.Child) error) error {
	var c btree.Child
	var err error
	switch {
	case !e.Data.Empty():
		c, err = btree.RefChild(e.Data)
	case !e.Dir.Empty():
		c, err = btree.RefChild(e.Dir)
	}
	if err != nil {
		return err
	}
	if !c.ID.IsZero() {
		if err := fn(c); err != nil {
			return err
		}
	}
	for _, x := range e.Xattrs {
		if !x.Blob.IsZero() {
			if err := fn(btree.Child{ID: x.Blob, Raw: true}); err != nil {
				return err
			}
		}
	}
	return nil
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

// Entry encoding (see the package documentation): a flags byte saying which
// optional fields follow, with hasExt a uvarint of extension flags, then the
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
	hasExt // format 2: extension flags follow
)

// Extension flags (format 2).
const (
	extTimes  = 1 << iota // times as seconds and nanoseconds
	extXattrs             // attributes inline or in blobs
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
	times := [4]Time{e.Atime, e.Mtime, e.Ctime, e.Btime}
	var nanos [4]int64
	var ext uint64
	for i, t := range times {
		var ok bool
		if nanos[i], ok = t.Nano(); !ok {
			ext |= extTimes
		}
	}
	if !xattrsFormat1(e.Xattrs) {
		ext |= extXattrs
	}
	if ext != 0 {
		flags |= hasExt
	}
	b = append(b, flags)
	if ext != 0 {
		b = binary.AppendUvarint(b, ext)
	}
	b = appendString(b, e.Name)
	for _, v := range []uint64{uint64(e.Mode), uint64(e.UID), uint64(e.GID), uint64(e.Nlink), e.Local, e.Links, uint64(e.Subdirs)} {
		b = binary.AppendUvarint(b, v)
	}
	for i, t := range times {
		if ext&extTimes != 0 {
			b = binary.AppendVarint(b, t.Sec)
			b = binary.AppendUvarint(b, uint64(t.Nsec))
		} else {
			b = binary.AppendVarint(b, nanos[i])
		}
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
			switch {
			case ext&extXattrs == 0:
				b = appendString(b, string(x.Value))
			case x.Blob.IsZero():
				b = binary.AppendUvarint(b, uint64(len(x.Value))<<1)
				b = append(b, x.Value...)
			default:
				b = binary.AppendUvarint(b, uint64(x.Size)<<1|1)
				b = append(b, x.Blob[:]...)
			}
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

// xattrsFormat1 reports whether format 1 can hold xs: all inline, at most
// maxXattrs1 bytes of names and values.
func xattrsFormat1(xs []Xattr) bool {
	n := 0
	for _, x := range xs {
		if !x.Blob.IsZero() {
			return false
		}
		n += len(x.Name) + len(x.Value)
	}
	return n <= maxXattrs1
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
	var ext uint64
	if flags&hasExt != 0 {
		ext = d.uvarint(extTimes|extXattrs, "extension flags")
		if ext == 0 {
			d.fail("extension flags")
		}
	}
	var e Entry
	e.Name = d.str(MaxName+16, "name") // side-table keys may be a little longer than names
	e.Mode = uint32(d.uvarint(math.MaxUint32, "mode"))
	e.UID = uint32(d.uvarint(math.MaxUint32, "uid"))
	e.GID = uint32(d.uvarint(math.MaxUint32, "gid"))
	e.Nlink = uint32(d.uvarint(MaxNlink, "nlink"))
	e.Local = d.uvarint(math.MaxUint64, "inode")
	e.Links = d.uvarint(math.MaxUint64, "links")
	e.Subdirs = uint32(d.uvarint(math.MaxUint32, "subdirs"))
	for _, t := range []*Time{&e.Atime, &e.Mtime, &e.Ctime, &e.Btime} {
		if ext&extTimes != 0 {
			t.Sec = d.varint("time")
			t.Nsec = uint32(d.uvarint(1e9-1, "nanoseconds"))
		} else {
			*t = TimeOfNano(d.varint("time"))
		}
	}
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
		d.xattrs(&e, ext&extXattrs != 0)
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
	if d.err != nil {
		return Entry{}, 0, d.err
	}
	return e, len(src) - len(d.p), nil
}

// xattrs reads the attribute list of e, in format 2 if wide. Names are
// 1 to MaxXattrName bytes, strictly increasing; format 1 holds at most
// maxXattrs1 bytes of names and values, format 2 values of at most
// MaxXattrValue bytes, inline or in a blob (never an ACL), and names of at
// most MaxXattrList bytes in all.
func (d *decoder) xattrs(e *Entry, wide bool) {
	n := d.uvarint(MaxXattrList, "xattr count")
	names, total := 0, 0
	for i := uint64(0); i < n && d.err == nil; i++ {
		x := Xattr{Name: d.str(MaxXattrName, "xattr name")}
		if !wide {
			x.Value = []byte(d.str(maxXattrs1, "xattr value"))
			x.Size = len(x.Value)
			total += len(x.Name) + x.Size
		} else {
			k := d.uvarint(MaxXattrValue<<1|1, "xattr value")
			x.Size = int(k >> 1)
			switch {
			case d.err != nil:
			case k&1 == 0 && x.Size <= len(d.p):
				x.Value = append([]byte{}, d.p[:x.Size]...)
				d.p = d.p[x.Size:]
			case k&1 == 1 && store.IDSize <= len(d.p) && !AlwaysInline(x.Name):
				copy(x.Blob[:], d.p)
				d.p = d.p[store.IDSize:]
				if x.Blob.IsZero() {
					d.fail("xattr blob")
				}
			default:
				d.fail("xattr value")
			}
		}
		names += len(x.Name)
		if x.Name == "" || (!wide && total > maxXattrs1) || names > MaxXattrList || (i > 0 && x.Name <= e.Xattrs[i-1].Name) {
			d.fail("xattrs")
		}
		e.Xattrs = append(e.Xattrs, x)
	}
}
