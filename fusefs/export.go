package fusefs

import (
	"context"
	"path"
	"syscall"

	"github.com/cowfs/cowfs"
	"github.com/cowfs/cowfs/internal/control"
	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// File handles (name_to_handle_at, open_by_handle_at, an NFS re-export).
//
// The kernel's handle of a FUSE file is its node ID and generation. The
// mount uses the volume's own inode numbers as node IDs (go-fuse's
// ExternalNodeID), which are stable across renames and remounts and never
// handed out twice in a volume, and a generation taken from the file's
// birth time, so a number that came back (a volume replaced by an older
// clone of itself) is told apart. When the kernel asks for a node ID it
// has forgotten (it dropped the inode, or the mount is new), the mount
// looks for the inode number in the volume (LookupNode); a handle of a
// removed file finds nothing: ESTALE. Such a node has no place in
// go-fuse's tree until the kernel reconnects it (LookupParent), so it
// keeps the path it was found at and checks it before each use.
//
// Files of .cowfs/ get numbers of their own for one mount only
// (package internal/control): their handles do not outlive it.

var (
	_ fs.NodeLookupNoder    = (*node)(nil)
	_ fs.NodeLookupParenter = (*node)(nil)
)

// generation is the FUSE generation of a file: its birth time folded to 32
// bits (go-fuse's Gen is 64 bits, the kernel keeps 32).
func generation(st *cowfs.Stat) uint64 {
	h := uint64(st.Btime.Unix())*1_000_000_007 ^ uint64(st.Btime.Nanosecond())
	return (h ^ h>>32) & 0xffffffff
}

// stableAttr is the identity of the node for st.
func (n *node) stableAttr(st *cowfs.Stat) fs.StableAttr {
	return fs.StableAttr{Mode: st.Mode & syscall.S_IFMT, Ino: n.ino(st.Ino), Gen: generation(st)}
}

// gonePath names nothing: what a detached node's path becomes once its file
// cannot be found (".cowfs" is never an entry of the volume the mount
// shows).
const gonePath = control.DirName + "/gone"

// LookupNode finds the live volume's inode numbered id, for a handle the
// kernel has no inode for any more.
func (n *node) LookupNode(ctx context.Context, id uint64, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if !n.isLiveRoot() || id >= control.FirstIno {
		return nil, syscall.ESTALE
	}
	n.m.stats.handleLookups.Add(1)
	p, st, e := findIno(n.vol, id)
	if e != 0 {
		return nil, e
	}
	return n.m.detached(ctx, p, st, out), 0
}

// detached returns a node for the file st found at p, outside go-fuse's tree.
func (m *mount) detached(ctx context.Context, p string, st *cowfs.Stat, out *fuse.EntryOut) *fs.Inode {
	ch := &node{m: m, vol: m.vol, top: &m.root.Inode, found: p}
	ch.fill(&out.Attr, st)
	return m.root.NewInode(ctx, ch, ch.stableAttr(st))
}

// LookupParent returns the directory holding a node LookupNode found, and
// its name there, for the kernel to reconnect it.
func (n *node) LookupParent(ctx context.Context, out *fuse.EntryOut) (*fs.Inode, string, syscall.Errno) {
	p, e := n.livePath()
	if e != 0 || p == "." || n.snap != nil {
		return nil, "", syscall.ESTALE
	}
	dir, name := path.Split(p)
	if dir == "" {
		n.m.root.fill(&out.Attr, mustStat(n.m.root))
		return &n.m.root.Inode, name, 0
	}
	dir = path.Clean(dir)
	fi, err := n.vol.Lstat(dir)
	if err != nil {
		return nil, "", syscall.ESTALE
	}
	return n.m.detached(ctx, dir, fi.Stat(), out), name, 0
}

// mustStat describes the live root (which always exists), or returns an
// empty record if the volume fails.
func mustStat(n *node) *cowfs.Stat {
	if st, e := n.stat(nil); e == 0 {
		return st
	}
	return &cowfs.Stat{Ino: 1, Mode: syscall.S_IFDIR}
}

// livePath returns the path of a detached node's file: where it was found,
// if it is still there, else where it is now; ESTALE once it is gone.
func (n *node) livePath() (string, syscall.Errno) {
	n.mu.Lock()
	p := n.found
	n.mu.Unlock()
	ino := n.StableAttr().Ino
	if fi, err := n.vol.Lstat(p); err == nil && fi.Stat().Ino == ino {
		return p, 0
	}
	p, _, e := findIno(n.vol, ino)
	if e != 0 {
		return "", e
	}
	n.mu.Lock()
	n.found = p
	n.mu.Unlock()
	return p, 0
}

// findIno returns the path and description of the live volume's inode ino,
// walking the volume breadth first (O(entries); only handles the kernel has
// forgotten come here), or ESTALE.
func findIno(v *cowfs.Volume, ino uint64) (string, *cowfs.Stat, syscall.Errno) {
	root, err := v.Root()
	if err != nil {
		return "", nil, errno(err)
	}
	if st := root.Info().Stat(); st.Ino == ino {
		return ".", st, 0
	}
	queue := []*cowfs.Node{root}
	for len(queue) > 0 {
		dir := queue[0]
		queue = queue[1:]
		for k, err := range dir.Children() {
			if err != nil {
				return "", nil, errno(err)
			}
			if control.Reserved(dir.Path() == ".", k.Name()) {
				continue
			}
			if st := k.Info().Stat(); st.Ino == ino {
				return k.Path(), st, 0
			}
			if k.IsDir() {
				queue = append(queue, k)
			}
		}
	}
	return "", nil, syscall.ESTALE
}
