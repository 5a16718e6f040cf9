package fusefs

import (
	"context"
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
// removed file finds nothing: ESTALE (one removed while open is found until
// it is closed). Such a node has no place in go-fuse's tree until the
// kernel reconnects it (LookupParent); it needs none, for it holds the
// engine's handle on its file, as every node does.
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

// LookupNode finds the live volume's inode numbered id, for a handle the
// kernel has no inode for any more (cowfs.Volume.FindInode).
func (n *node) LookupNode(ctx context.Context, id uint64, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	ec := as(ctx, 0)
	defer ec.end()
	if !n.isLiveRoot() || id >= control.FirstIno {
		return nil, syscall.ESTALE
	}
	n.m.stats.handleLookups.Add(1)
	x, fi, err := n.vol.FindInode(ec, id)
	if err != nil {
		return nil, errno(err)
	}
	if fi.Name() == control.DirName && n.hidden(ctx, x) {
		x.Release()
		return nil, syscall.ESTALE
	}
	return n.m.detached(ctx, x, fi.Stat(), out), 0
}

// hidden reports whether x is the volume's own entry named .cowfs at its
// root, which the control directory hides.
func (n *node) hidden(ctx context.Context, x *cowfs.Inode) bool {
	ec := as(ctx, 0)
	defer ec.end()
	p, name, err := x.Parent(ec)
	if err != nil {
		return false
	}
	defer p.Release()
	return name == control.DirName && p.Ino() == n.h.Ino()
}

// detached returns a node for the live volume's node x, which st
// describes, outside go-fuse's tree; it takes over the handle x.
func (m *mount) detached(ctx context.Context, x *cowfs.Inode, st *cowfs.Stat, out *fuse.EntryOut) *fs.Inode {
	ch := m.newNode(ctx, m.vol, x, nil)
	ch.fill(&out.Attr, st)
	return m.root.NewInode(ctx, ch, ch.stableAttr(st))
}

// LookupParent returns the directory holding a node LookupNode found, and
// its name there, for the kernel to reconnect it.
func (n *node) LookupParent(ctx context.Context, out *fuse.EntryOut) (*fs.Inode, string, syscall.Errno) {
	ec := as(ctx, 0)
	defer ec.end()
	if n.snap != nil {
		return nil, "", syscall.ESTALE
	}
	p, name, err := n.h.Parent(ec)
	if err != nil {
		return nil, "", syscall.ESTALE
	}
	fi, err := p.Stat(ec)
	if err != nil {
		p.Release()
		return nil, "", syscall.ESTALE
	}
	if st := fi.Stat(); st.Ino != n.m.root.StableAttr().Ino {
		return n.m.detached(ctx, p, st, out), name, 0
	}
	p.Release()
	n.m.root.fill(&out.Attr, mustStat(n.m.root))
	return &n.m.root.Inode, name, 0
}

// mustStat describes the live root (which always exists), or returns an
// empty record if the volume fails.
func mustStat(n *node) *cowfs.Stat {
	if st, e := n.stat(context.Background()); e == 0 {
		return st
	}
	return &cowfs.Stat{Ino: 1, Mode: syscall.S_IFDIR}
}
