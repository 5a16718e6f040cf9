package fusefs

import (
	"context"
	"errors"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// controlDir is the hidden directory .cowfs at the mount root: the control
// file ctl and the directory of snapshots.
type controlDir struct {
	fs.Inode
	m *mount
}

var (
	_ fs.InodeEmbedder = (*controlDir)(nil)
	_ fs.NodeLookuper  = (*controlDir)(nil)
	_ fs.NodeReaddirer = (*controlDir)(nil)
	_ fs.NodeGetattrer = (*controlDir)(nil)
)

// inode returns the control directory's node, made on first use.
func (d *controlDir) inode(ctx context.Context, root *fs.Inode, out *fuse.EntryOut) *fs.Inode {
	d.m.dirAttr(&out.Attr, controlDirIno)
	if ch := root.GetChild(controlName); ch != nil {
		return ch
	}
	return root.NewPersistentInode(ctx, d, fs.StableAttr{Mode: syscall.S_IFDIR, Ino: controlDirIno})
}

// dirAttr describes a directory of the control surface: read-only, owned by
// the server, made when the mount was.
func (m *mount) dirAttr(a *fuse.Attr, ino uint64) {
	a.Ino = ino
	a.Mode = syscall.S_IFDIR | 0o555
	a.Nlink = 2
	m.controlTimes(a)
}

// controlTimes stamps a control node with the time of the mount.
func (m *mount) controlTimes(a *fuse.Attr) {
	sec, nsec := splitTime(m.started)
	a.Atime, a.Mtime, a.Ctime = sec, sec, sec
	a.Atimensec, a.Mtimensec, a.Ctimensec = nsec, nsec, nsec
}

func (d *controlDir) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	d.m.dirAttr(&out.Attr, controlDirIno)
	return 0
}

func (d *controlDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	switch name {
	case "ctl":
		d.m.ctlAttr(&out.Attr)
		return d.NewPersistentInode(ctx, &ctlFile{m: d.m}, fs.StableAttr{Mode: syscall.S_IFREG, Ino: ctlFileIno}), 0
	case "files":
		d.m.dirAttr(&out.Attr, filesDirIno)
		return d.NewPersistentInode(ctx, &filesDir{m: d.m}, fs.StableAttr{Mode: syscall.S_IFDIR, Ino: filesDirIno}), 0
	case "snapshots":
		d.m.dirAttr(&out.Attr, snapshotsDirIno)
		return d.NewPersistentInode(ctx, &snapshotsDir{m: d.m}, fs.StableAttr{Mode: syscall.S_IFDIR, Ino: snapshotsDirIno}), 0
	}
	return nil, syscall.ENOENT
}

func (d *controlDir) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	return fs.NewListDirStream(append(dots(&d.Inode),
		fuse.DirEntry{Name: "ctl", Ino: ctlFileIno, Mode: syscall.S_IFREG},
		fuse.DirEntry{Name: "files", Ino: filesDirIno, Mode: syscall.S_IFDIR},
		fuse.DirEntry{Name: "snapshots", Ino: snapshotsDirIno, Mode: syscall.S_IFDIR},
	)), 0
}

// snapshotsDir lists the volume's snapshots, each a read-only directory.
type snapshotsDir struct {
	fs.Inode
	m *mount
}

var (
	_ fs.InodeEmbedder = (*snapshotsDir)(nil)
	_ fs.NodeLookuper  = (*snapshotsDir)(nil)
	_ fs.NodeReaddirer = (*snapshotsDir)(nil)
	_ fs.NodeGetattrer = (*snapshotsDir)(nil)
)

func (d *snapshotsDir) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	d.m.dirAttr(&out.Attr, snapshotsDirIno)
	return 0
}

func (d *snapshotsDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	s, err := d.m.openSnapshot(name)
	if err != nil {
		return nil, errno(err)
	}
	fi, err := s.vol.Lstat(".")
	if err != nil {
		return nil, errno(err)
	}
	root := &node{m: d.m, vol: s.vol, snap: s.id}
	st := fi.Stat()
	root.fill(&out.Attr, st)
	return d.NewInode(ctx, root, fs.StableAttr{Mode: syscall.S_IFDIR, Ino: out.Attr.Ino}), 0
}

func (d *snapshotsDir) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	list, err := d.m.vol.Snapshots()
	if err != nil {
		return nil, errno(err)
	}
	ents := dots(&d.Inode)
	for _, s := range list {
		ents = append(ents, fuse.DirEntry{Name: s.Name, Mode: syscall.S_IFDIR})
	}
	return fs.NewListDirStream(ents), 0
}

// ctlFile is the control file: each write(2) runs one command (package
// ctl); then reading the same open file returns that command's reply, or
// its error text if the write failed, up to an end of file. The file is a
// stream (no offsets, so pread fails with ESPIPE), like a pipe to the server.
type ctlFile struct {
	fs.Inode
	m *mount
}

var (
	_ fs.InodeEmbedder = (*ctlFile)(nil)
	_ fs.NodeOpener    = (*ctlFile)(nil)
	_ fs.NodeGetattrer = (*ctlFile)(nil)
	_ fs.NodeSetattrer = (*ctlFile)(nil)
)

// ctlAttr describes the control file: only the server's owner (root, for a
// mount made by root) may use it, because its commands run with the
// server's rights.
func (m *mount) ctlAttr(a *fuse.Attr) {
	m.controlTimes(a)
	a.Ino = ctlFileIno
	a.Mode = syscall.S_IFREG | 0o600
	a.Nlink = 1
	a.Uid, a.Gid = uint32(syscall.Geteuid()), uint32(syscall.Getegid())
}

func (c *ctlFile) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	c.m.ctlAttr(&out.Attr)
	return 0
}

// Setattr accepts (and ignores) the truncation a shell's "> ctl" asks for.
func (c *ctlFile) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if in.Valid&^(fuse.FATTR_SIZE|fuse.FATTR_FH|fuse.FATTR_LOCKOWNER) != 0 {
		return syscall.EPERM
	}
	c.m.ctlAttr(&out.Attr)
	return 0
}

func (c *ctlFile) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	return &ctlHandle{m: c.m}, fuse.FOPEN_DIRECT_IO | fuse.FOPEN_STREAM, 0
}

// How long a control command that finds files still open retries: 1 s.
const (
	busyRetries = 20
	busyWait    = 50 * time.Millisecond
)

// ctlHandle is one open of the control file.
type ctlHandle struct {
	m     *mount
	mu    sync.Mutex
	reply []byte // what reads return, from the front
}

var (
	_ fs.FileWriter = (*ctlHandle)(nil)
	_ fs.FileReader = (*ctlHandle)(nil)
)

// Write runs the command line in data; the write fails with the command's
// errno.
func (h *ctlHandle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.m.stats.ctl.Add(1)
	line := strings.TrimRight(string(data), "\n")
	reply, err := h.m.ctl.Exec(line)
	// The kernel releases a file after close(2) has returned, so a file of
	// a snapshot closed just before "snapshot delete" may still count as
	// open: give such releases a moment to arrive.
	for try := 0; errors.Is(err, syscall.EBUSY) && try < busyRetries; try++ {
		time.Sleep(busyWait)
		reply, err = h.m.ctl.Exec(line)
	}
	if err != nil {
		h.m.stats.ctlFails.Add(1)
		h.reply = []byte(err.Error() + "\n")
		return 0, errno(err)
	}
	h.reply = []byte(reply)
	return uint32(len(data)), 0
}

// Read returns what is left of the last command's reply.
func (h *ctlHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	h.mu.Lock()
	defer h.mu.Unlock()
	k := copy(dest, h.reply)
	h.reply = h.reply[k:]
	return fuse.ReadResultData(dest[:k]), 0
}

// changed drops what the kernel caches of the volume path p after a
// control command changed it: its directory entry and its pages.
func (m *mount) changed(p string) {
	parts := strings.Split(strings.Trim(p, "/"), "/")
	dir := &m.root.Inode
	for i, name := range parts {
		if name == "" || name == "." {
			continue
		}
		ch := dir.GetChild(name)
		if i == len(parts)-1 {
			dir.NotifyEntry(name)
			if ch != nil {
				ch.NotifyContent(0, 0)
			}
			return
		}
		if ch == nil {
			return // nothing below is cached
		}
		dir = ch
	}
}

// snapshotsChanged runs after a snapshot was created or deleted: the mount
// forgets the snapshots that are gone (a new one of the same name gets new
// inode numbers) and drops the kernel's entries for them.
func (m *mount) snapshotsChanged() {
	list, err := m.vol.Snapshots()
	if err != nil {
		return
	}
	live := map[string]bool{}
	for _, s := range list {
		live[s.Name] = true
	}
	m.mu.Lock()
	var gone []string
	for name := range m.snaps {
		if !live[name] {
			gone = append(gone, name)
			delete(m.snaps, name)
		}
	}
	m.mu.Unlock()
	ctlDir := m.root.GetChild(controlName)
	if ctlDir == nil {
		return
	}
	if d := ctlDir.GetChild("snapshots"); d != nil {
		for _, name := range gone {
			d.NotifyEntry(name)
		}
	}
}
