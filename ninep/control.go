package ninep

import (
	"context"
	"syscall"

	"github.com/cowfs/cowfs"
	"github.com/cowfs/cowfs/ctl"
	"github.com/cowfs/cowfs/internal/control"
)

// The control namespace .cowfs at each attached volume's root (package
// internal/control holds what it is and its rules), as fids and qids.

// space is the control namespace of a volume the server serves, and the
// control server its ctl file runs commands on.
type space struct {
	ns  *control.Namespace
	ctl *ctl.Server
}

// space returns the control namespace of vol, made on first use; a volume
// made again under its name gets a new one. The control file is root's:
// the server lets the attach user root run commands, which run with the
// server's rights.
func (s *Server) space(vol *cowfs.Volume) *space {
	s.spacesMu.Lock()
	defer s.spacesMu.Unlock()
	if sp, ok := s.spaces[vol.Name()]; ok && sp.ns.Volume() == vol {
		return sp
	}
	ns := control.New(vol, s.nums, 0, 0)
	sp := &space{ns: ns, ctl: &ctl.Server{FS: s.FS, Vol: vol, ServeView: ns.ServeView,
		SnapshotsChanged: func() { ns.Forget() }}}
	s.spaces[vol.Name()] = sp
	return sp
}

// stepControl walks f, a node of .cowfs, one name down (or up for "..").
func (f *fid) stepControl(ctx context.Context, name string) error {
	switch {
	case f.kind == viewNode || f.ctlNode == control.Ctl:
		return syscall.ENOTDIR
	case name == ".":
	case name == "..":
		if up := f.ctlNode.Parent(); up != 0 {
			f.ctlNode = up
			return nil
		}
		root := f.base.RootInode()
		f.setNode(f.base, root)
		f.rootIno = root.Ino()
	case f.ctlNode == control.Root:
		n, ok := control.Lookup(name)
		if !ok {
			return syscall.ENOENT
		}
		f.ctlNode = n
	case f.ctlNode == control.Snapshots:
		s, err := f.sp.ns.Snapshot(name)
		if err != nil {
			return err
		}
		root := s.Volume().RootInode()
		f.setNode(s.Volume(), root)
		f.snap, f.rootIno = s, root.Ino()
	case f.ctlNode == control.Files:
		sv, ok := f.sp.ns.View(name)
		if !ok {
			return syscall.ENOENT
		}
		f.kind, f.ctlNode, f.view = viewNode, 0, sv
	}
	return nil
}

// listControl reads the entries of f, a directory of .cowfs.
func (f *fid) listControl() ([]dirEntry, error) {
	var ents []dirEntry
	switch f.ctlNode {
	case control.Root:
		for _, n := range control.Entries {
			st, err := f.sp.ns.Stat(n)
			if err != nil {
				return nil, err
			}
			ents = append(ents, dirEntry{n.Name(), st})
		}
	case control.Snapshots:
		snaps, err := f.sp.ns.Snapshots()
		if err != nil {
			return nil, err
		}
		for _, s := range snaps {
			if st, err := s.Root(); err == nil {
				ents = append(ents, dirEntry{s.Name(), st})
			}
		}
	case control.Files:
		for _, sv := range f.sp.ns.Views() {
			ents = append(ents, dirEntry{sv.Name(), sv.Stat()})
		}
	}
	return ents, nil
}

// unlinkControl removes entry name of f, a directory of .cowfs
// (Tunlinkat): only a served view can be removed, which releases it.
func (f *fid) unlinkControl(ctx context.Context, name string) error {
	w := f.walker()
	defer w.clunk(ctx)
	if _, err := w.step(ctx, name); err != nil {
		return err
	}
	if err := mayChange(ctx, f); err != nil {
		return err
	}
	if w.kind == viewNode {
		return f.sp.ns.RemoveView(w.view.Name())
	}
	return control.ErrReadOnly
}

// remove removes the file f stands for (Tremove). Of the control
// namespace, only a served view can be removed; a snapshot is deleted
// through ctl; the attached root cannot be removed.
func (f *fid) remove(ctx context.Context) error {
	snapRoot := f.kind == volNode && f.snap != nil && f.atRoot()
	switch {
	case f.servedRoot():
		return perr(syscall.EPERM, "cannot remove the attached root")
	case f.kind == volNode && !snapRoot:
		return f.unlinkSelf(ctx)
	}
	dir := f.walker() // the directory holding f
	defer dir.clunk(ctx)
	switch {
	case f.kind == viewNode:
		dir.kind, dir.ctlNode, dir.view = controlNode, control.Files, nil
	case f.ctlNode == control.Ctl:
		dir.ctlNode = control.Root
	default: // a directory of .cowfs, or a snapshot's root
		if _, err := dir.step(ctx, ".."); err != nil {
			return err
		}
	}
	if err := mayChange(ctx, dir); err != nil {
		return err
	}
	switch {
	case f.kind == viewNode:
		return f.sp.ns.RemoveView(f.view.Name())
	case f.ctlNode == control.Root:
		return control.ErrRemove
	}
	return control.ErrReadOnly
}

// mayChange fails with EACCES unless the user may make and remove entries
// in the directories dirs (write and search permission), as the kernel
// checks before it asks a file system to: a request the namespace refuses
// anyway is refused for permission first, as through the mount. The engine
// decides (Inode.Access, Cred.Permits).
func mayChange(ctx context.Context, dirs ...*fid) error {
	for _, d := range dirs {
		if err := d.may(ctx, cowfs.MayWrite|cowfs.MayExec); err != nil {
			return err
		}
	}
	return nil
}

// setattrControl answers Tsetattr of a node of .cowfs: the control file
// takes a size and ignores it (a shell's "> ctl" truncates); a served view
// is read-only; nothing else changes.
func (f *fid) setattrControl(valid uint32) error {
	switch {
	case f.kind == viewNode:
		return control.ErrReadOnly
	case f.ctlNode == control.Ctl && valid&^setattrSize == 0:
		return nil
	}
	return control.ErrAttr
}
