package cowfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"strings"
	"syscall"

	"github.com/cowfs/cowfs/internal/btree"
	"github.com/cowfs/cowfs/internal/dirtree"
	"github.com/cowfs/cowfs/internal/rope"
	"github.com/cowfs/cowfs/store"
)

// Node is one directory, file, symlink or other object of a volume as a Go
// value: the whole volume is one lazily loaded data structure, and a Node
// is a place in it. Start at Volume.Root and descend with Children or Lookup; a
// directory's tree nodes are loaded only when they are iterated or searched,
// a file's rope nodes only when its Extents or bytes are read.
//
// A Node is a snapshot: it and every Node reached from it show the tree as
// it was when the Node was obtained, whatever happens to the volume
// afterwards, because the trees it refers to are immutable. Loading them
// needs their blobs still stored, though: once later changes are committed,
// nodes and data that nothing references any more are released, and a Node
// that needs one fails with ESTALE (never with other bytes). For a view that
// stays readable however the volume changes, walk a snapshot
// (Volume.Snapshot, Volume.OpenSnapshot).
//
// Nodes are safe for concurrent use. They take no lock on the volume except
// to resolve inode numbers in cloned subtrees.
type Node struct {
	v      *Volume
	path   string        // from the volume root; "." for the root
	name   string        // "." for the root
	ent    dirtree.Entry // a link name's entry is replaced by its inode's
	prefix uint64        // inode-number scope prefix
	linkID uint64        // hard-linked inode: its key in the link table
	links  dirtree.Dir   // the volume's link table when the root was taken
}

// Root returns the volume's root directory as it is now, including changes
// not yet committed (they are written into the volume's in-memory tree
// first, as a commit would, but not committed).
func (v *Volume) Root() (*Node, error) {
	v.f.mu.Lock()
	defer v.f.mu.Unlock()
	const op = "root"
	if err := v.f.check(op); err != nil {
		return nil, err
	}
	if v.closed {
		return nil, errorf(op, "", syscall.EBADF, errors.New("volume closed"))
	}
	if err := v.prepareLocked(); err != nil {
		return nil, wrapIO(op, "", err)
	}
	return &Node{v: v, path: ".", name: ".", ent: v.root.ent, prefix: v.root.prefix, links: v.meta.links}, nil
}

// Name returns the node's name in its directory ("." for the root).
func (n *Node) Name() string { return n.name }

// Path returns the node's path from the volume root, as it was reached
// ("." for the root).
func (n *Node) Path() string { return n.path }

// IsDir reports whether the node is a directory.
func (n *Node) IsDir() bool { return n.ent.IsDir() }

// Info describes the node, as Volume.Lstat would have when the node was
// obtained.
func (n *Node) Info() *FileInfo {
	x := &inode{v: n.v, ent: n.ent, prefix: n.prefix, linkID: n.linkID}
	return x.info(n.name)
}

// Children iterates over a directory's entries in name order, loading the
// directory's tree nodes as the iteration reaches them: stopping early loads
// no more. Each iteration starts again from the first entry. An error ends
// the iteration (a node that is not a directory yields ENOTDIR).
func (n *Node) Children() iter.Seq2[*Node, error] {
	return func(yield func(*Node, error) bool) {
		const op = "children"
		if !n.IsDir() {
			yield(nil, errorf(op, n.path, syscall.ENOTDIR, nil))
			return
		}
		var it *btree.Iter[dirtree.Entry]
		n.read(func() { it = n.v.f.bgDirs.Seek(n.ent.Dir, 0) })
		for {
			var e dirtree.Entry
			var ok bool
			n.read(func() { e, _, ok = it.Next() })
			if !ok {
				break
			}
			k, err := n.child(op, e)
			if !yield(k, err) || err != nil {
				return
			}
		}
		if err := it.Err(); err != nil {
			yield(nil, n.fail(op, n.path, err))
		}
	}
}

// Lookup returns the directory's entry called name, loading only the tree
// nodes on the way to it. name is one path element; "." and ".." are not
// entries.
func (n *Node) Lookup(name string) (*Node, error) {
	const op = "lookup"
	p := n.join(name)
	switch {
	case !n.IsDir():
		return nil, errorf(op, n.path, syscall.ENOTDIR, nil)
	case name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00"):
		return nil, errorf(op, p, syscall.EINVAL, errors.New("not a name of a directory entry"))
	case len(name) > dirtree.MaxName:
		return nil, errorf(op, p, syscall.ENAMETOOLONG, nil)
	}
	var e dirtree.Entry
	var ok bool
	var err error
	n.read(func() { e, ok, err = dirtree.Lookup(n.v.f.bgDirs, n.ent.Dir, name) })
	if err != nil {
		return nil, n.fail(op, p, err)
	}
	if !ok {
		return nil, errorf(op, p, syscall.ENOENT, nil)
	}
	return n.child(op, e)
}

// ExtentKind says what an Extent holds.
type ExtentKind uint8

// Extent kinds.
const (
	// ExtentData bytes are a range of a stored data blob.
	ExtentData ExtentKind = iota + 1
	// ExtentHole bytes are zeros, stored as nothing.
	ExtentHole
	// ExtentInline bytes are kept inside the file's tree node itself.
	ExtentInline
)

// String returns "data", "hole" or "inline".
func (k ExtentKind) String() string {
	switch k {
	case ExtentData:
		return "data"
	case ExtentHole:
		return "hole"
	case ExtentInline:
		return "inline"
	}
	return fmt.Sprintf("ExtentKind(%d)", uint8(k))
}

// Extent is one run of a regular file's bytes as they are stored.
type Extent struct {
	Offset     int64 // where the run starts in the file
	Length     int64 // its length in bytes
	Kind       ExtentKind
	Blob       store.ID // ExtentData: the data blob holding the bytes
	BlobOffset int64    // ExtentData: where in Blob the run starts
}

// Extents iterates over a regular file's extents in file order, loading the
// file's rope nodes as the iteration reaches them. Adjacent extents may be of
// the same kind. A directory yields EISDIR; other non-regular files have no
// extents.
func (n *Node) Extents() iter.Seq2[Extent, error] {
	return func(yield func(Extent, error) bool) {
		const op = "extents"
		if n.IsDir() {
			yield(Extent{}, errorf(op, n.path, syscall.EISDIR, nil))
			return
		}
		if n.ent.Type() != dirtree.TypeReg {
			return
		}
		var it *btree.Iter[rope.Extent]
		n.read(func() { it = n.v.f.bgRopes.Seek(n.ent.Data, 0) })
		for {
			var e rope.Extent
			var start int64
			var ok bool
			n.read(func() { e, start, ok = it.Next() })
			if !ok {
				break
			}
			x := Extent{Offset: start, Length: e.N}
			switch e.Kind {
			case rope.Data:
				x.Kind, x.Blob, x.BlobOffset = ExtentData, e.Blob, e.Off
			case rope.Hole:
				x.Kind = ExtentHole
			default: // Inline; Pending never reaches a synced tree, but is in memory too
				x.Kind = ExtentInline
			}
			if !yield(x, nil) {
				return
			}
		}
		if err := it.Err(); err != nil {
			yield(Extent{}, n.fail(op, n.path, err))
		}
	}
}

// ReadAt reads a regular file's bytes at off, as io.ReaderAt: io.EOF when
// fewer than len(p) remain.
func (n *Node) ReadAt(p []byte, off int64) (int, error) {
	const op = "read"
	switch {
	case n.IsDir():
		return 0, errorf(op, n.path, syscall.EISDIR, nil)
	case n.ent.Type() != dirtree.TypeReg:
		return 0, errorf(op, n.path, syscall.EINVAL, errors.New("not a regular file"))
	case off < 0:
		return 0, errorf(op, n.path, syscall.EINVAL, errors.New("negative offset"))
	}
	var k int
	var err error
	n.read(func() {
		k, err = rope.ReadAt(n.v.f.bgRopes, n.ent.Data, blobSource{n.v.f, context.Background()}, p, off)
	})
	if err != nil {
		return k, n.fail(op, n.path, err)
	}
	if k < len(p) {
		return k, io.EOF
	}
	return k, nil
}

// read runs fn, which reads stored trees, so that no commit deletes blobs
// meanwhile. fn must not take the FS lock.
func (n *Node) read(fn func()) {
	n.v.f.readMu.RLock()
	defer n.v.f.readMu.RUnlock()
	fn()
}

func (n *Node) join(name string) string {
	if n.path == "." {
		return name
	}
	return n.path + "/" + name
}

// child makes the Node of entry e of directory n.
func (n *Node) child(op string, e dirtree.Entry) (*Node, error) {
	p := n.join(e.Name)
	k := &Node{v: n.v, path: p, name: e.Name, ent: e, prefix: n.prefix, links: n.links}
	if e.Link != 0 {
		var le dirtree.Entry
		var ok bool
		var err error
		n.read(func() { le, ok, err = dirtree.Lookup(n.v.f.bgDirs, n.links, linkKey(e.Link)) })
		if err != nil {
			return nil, n.fail(op, p, err)
		}
		if !ok {
			return nil, wrapIO(op, p, corrupt("link %d has a name but no inode", e.Link))
		}
		k.ent, k.linkID = le, e.Link
		return k, nil
	}
	if e.Scope != 0 {
		// Prefixes are allocated on first use and never change after: the
		// volume's current table answers for any earlier state too.
		v := n.v
		v.f.mu.Lock()
		prefix, err := v.scopePrefix(n.prefix, e.Scope)
		v.f.mu.Unlock()
		if err != nil {
			return nil, n.fail(op, p, err)
		}
		k.prefix = prefix
	}
	return k, nil
}

// fail turns an error of loading into an Error: ESTALE when something the
// node refers to has been released since.
func (n *Node) fail(op, p string, err error) error {
	var e *Error
	if !errors.As(err, &e) && errors.Is(err, store.ErrNotFound) {
		return errorf(op, p, syscall.ESTALE, fmt.Errorf("released by a commit since the node was taken (walk a snapshot for a stable view): %w", err))
	}
	return wrapIO(op, p, err)
}
