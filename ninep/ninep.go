// Package ninep serves the volumes of a cowfs FS over 9P2000, with the
// server side of 9fans.net/go/plan9/srv9p (a port of Plan 9's lib9p).
//
// The attach name selects the volume ("" is "main"); "VOLUME@SNAPSHOT"
// attaches to a snapshot, read-only. Every volume's root has the hidden
// directory .cowfs (found by walking to it, absent from listings) holding
// the control file ctl of package ctl: write a command, read its reply.
//
// This is the first step of the 9P server: 9P2000 only (9P2000.L, the
// dialect of Linux's v9fs and of diod's tools, is to come), users are
// names without permission checks, and fids address files by path, as the
// FUSE frontend does.
package ninep

import (
	"context"
	"errors"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"9fans.net/go/plan9"
	"9fans.net/go/plan9/srv9p"

	"github.com/cowfs/cowfs"
	"github.com/cowfs/cowfs/ctl"
)

// Server serves the volumes of FS.
type Server struct {
	FS *cowfs.FS
}

// fidState is what a fid stands for: a path of a volume, the control
// directory, or the control file.
type fidState struct {
	vol  *cowfs.Volume
	path string // in vol; for control nodes, the volume root's
	kind nodeKind

	mu    sync.Mutex
	file  *cowfs.File       // open regular file
	list  []*cowfs.FileInfo // open directory's entries
	reply []byte            // control file: the last reply
	ctl   *ctl.Server
}

type nodeKind uint8

const (
	volNode nodeKind = iota
	controlDir
	controlFile
)

const controlName = ".cowfs"

// Qid paths of the control nodes, outside cowfs inode numbers in practice.
const (
	controlDirPath  = 1<<63 - 1
	controlFilePath = 1<<63 - 2
)

// Serve runs one 9P conversation over rwc until it ends.
func (s *Server) Serve(rwc io.ReadWriteCloser) {
	srv := &srv9p.Server{
		Attach: s.attach,
		Walk:   s.walk,
		Open:   s.open,
		Create: s.create,
		Remove: s.remove,
		Read:   s.read,
		Write:  s.write,
		Stat:   s.stat,
		Wstat:  s.wstat,
		Clunk:  s.clunk,
	}
	srv.Serve(rwc, rwc)
}

func state(fid *srv9p.Fid) *fidState {
	st, _ := fid.Aux().(*fidState)
	return st
}

// errorOf turns a cowfs error into the error string a 9P client sees.
func errorOf(err error) error {
	if err == nil {
		return nil
	}
	if e := cowfs.Errno(err); e != 0 {
		return errno(e)
	}
	return err
}

// errno is the error a 9P client sees for e: its text.
func errno(e syscall.Errno) error { return errors.New(e.Error()) }

func (s *Server) attach(ctx context.Context, fid, afid *srv9p.Fid, user, aname string) (plan9.Qid, error) {
	vol, err := s.volume(aname)
	if err != nil {
		return plan9.Qid{}, err
	}
	st := &fidState{vol: vol, path: "."}
	q, err := st.qid()
	if err != nil {
		return plan9.Qid{}, err
	}
	fid.SetAux(st)
	return q, nil
}

// volume returns the volume an attach name selects.
func (s *Server) volume(aname string) (*cowfs.Volume, error) {
	name, snap, isSnap := strings.Cut(aname, "@")
	if name == "" {
		name = "main"
	}
	v, err := s.FS.Volume(name)
	if err != nil {
		return nil, errorOf(err)
	}
	if isSnap {
		if v, err = v.OpenSnapshot(snap); err != nil {
			return nil, errorOf(err)
		}
	}
	return v, nil
}

// qid describes the node st stands for.
func (st *fidState) qid() (plan9.Qid, error) {
	switch st.kind {
	case controlDir:
		return plan9.Qid{Path: controlDirPath, Type: plan9.QTDIR}, nil
	case controlFile:
		return plan9.Qid{Path: controlFilePath}, nil
	}
	fi, err := st.vol.Lstat(st.path)
	if err != nil {
		return plan9.Qid{}, errorOf(err)
	}
	return qidOf(fi), nil
}

func qidOf(fi *cowfs.FileInfo) plan9.Qid {
	sys := fi.Stat()
	q := plan9.Qid{Path: sys.Ino, Vers: uint32(sys.Mtime.UnixNano())}
	if fi.IsDir() {
		q.Type = plan9.QTDIR
	}
	return q
}

func (s *Server) walk(ctx context.Context, fid, newfid *srv9p.Fid, names []string) ([]plan9.Qid, error) {
	return srv9p.Walk(fid, newfid, names,
		func(old, new *srv9p.Fid) error {
			o := state(old)
			new.SetAux(&fidState{vol: o.vol, path: o.path, kind: o.kind})
			return nil
		},
		func(f *srv9p.Fid, elem string) (plan9.Qid, error) {
			st := state(f)
			switch {
			case st.kind == controlFile:
				return plan9.Qid{}, errors.New("not a directory")
			case st.kind == controlDir && elem == "..":
				st.kind = volNode
			case st.kind == controlDir && elem == "ctl":
				st.kind = controlFile
			case st.kind == controlDir:
				return plan9.Qid{}, errno(syscall.ENOENT)
			case elem == "..":
				st.path = path.Dir(st.path)
			case st.path == "." && elem == controlName:
				st.kind = controlDir
			default:
				fi, err := st.vol.Lstat(path.Join(st.path, elem))
				if err != nil {
					return plan9.Qid{}, errorOf(err)
				}
				st.path = path.Join(st.path, elem)
				return qidOf(fi), nil
			}
			return st.qid()
		})
}

// openFlags maps a 9P open mode to os flags.
func openFlags(mode uint8) int {
	var fl int
	switch mode & 3 {
	case plan9.OREAD:
		fl = os.O_RDONLY
	case plan9.OWRITE:
		fl = os.O_WRONLY
	default:
		fl = os.O_RDWR
	}
	if mode&plan9.OTRUNC != 0 {
		fl |= os.O_TRUNC
	}
	return fl
}

func (s *Server) open(ctx context.Context, fid *srv9p.Fid, mode uint8) error {
	st := state(fid)
	st.mu.Lock()
	defer st.mu.Unlock()
	switch st.kind {
	case controlDir:
		return nil
	case controlFile:
		if st.vol.ReadOnly() && mode&3 != plan9.OREAD {
			return errno(syscall.EROFS)
		}
		st.ctl = &ctl.Server{FS: s.FS, Vol: st.vol}
		return nil
	}
	if fid.Qid().Type&plan9.QTDIR != 0 {
		list, err := st.vol.ReadDir(st.path)
		if err != nil {
			return errorOf(err)
		}
		if st.path == "." {
			list = withoutControl(list)
		}
		st.list = list
		return nil
	}
	f, err := st.vol.OpenFile(st.path, openFlags(mode), 0)
	if err != nil {
		return errorOf(err)
	}
	st.file = f
	return nil
}

func (s *Server) create(ctx context.Context, fid *srv9p.Fid, name string, perm plan9.Perm, mode uint8) (plan9.Qid, error) {
	st := state(fid)
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.kind != volNode {
		return plan9.Qid{}, errno(syscall.EPERM)
	}
	if name == "." || name == ".." || strings.Contains(name, "/") || (st.path == "." && name == controlName) {
		return plan9.Qid{}, errno(syscall.EINVAL)
	}
	p := path.Join(st.path, name)
	if perm&plan9.DMDIR != 0 {
		if err := st.vol.Mkdir(p, uint32(perm&0o777)); err != nil {
			return plan9.Qid{}, errorOf(err)
		}
		list, err := st.vol.ReadDir(p)
		if err != nil {
			return plan9.Qid{}, errorOf(err)
		}
		st.path, st.list = p, list
	} else {
		f, err := st.vol.OpenFile(p, openFlags(mode)|os.O_CREATE|os.O_EXCL, uint32(perm&0o777))
		if err != nil {
			return plan9.Qid{}, errorOf(err)
		}
		st.path, st.file = p, f
	}
	fi, err := st.vol.Lstat(p)
	if err != nil {
		return plan9.Qid{}, errorOf(err)
	}
	return qidOf(fi), nil
}

func (s *Server) remove(ctx context.Context, fid *srv9p.Fid) error {
	st := state(fid)
	if st.kind != volNode || st.path == "." {
		return errno(syscall.EPERM)
	}
	return errorOf(st.vol.Remove(st.path))
}

func (s *Server) read(ctx context.Context, fid *srv9p.Fid, data []byte, off int64) (int, error) {
	st := state(fid)
	st.mu.Lock()
	defer st.mu.Unlock()
	switch {
	case st.kind == controlDir:
		return fid.ReadDir(data, off, func(i int, d *plan9.Dir) bool {
			if i > 0 {
				return false
			}
			*d = controlFileDir()
			return true
		})
	case st.kind == controlFile:
		n := copy(data, st.reply)
		st.reply = st.reply[n:]
		return n, nil
	case st.list != nil || fid.Qid().Type&plan9.QTDIR != 0:
		list := st.list
		return fid.ReadDir(data, off, func(i int, d *plan9.Dir) bool {
			if i >= len(list) {
				return false
			}
			*d = dirOf(list[i])
			return true
		})
	}
	n, err := st.file.ReadAt(data, off)
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return n, errorOf(err)
}

func withoutControl(list []*cowfs.FileInfo) []*cowfs.FileInfo {
	for i, fi := range list {
		if fi.Name() == controlName {
			return append(append([]*cowfs.FileInfo(nil), list[:i]...), list[i+1:]...)
		}
	}
	return list
}

func (s *Server) write(ctx context.Context, fid *srv9p.Fid, data []byte, off int64) (int, error) {
	st := state(fid)
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.kind == controlFile {
		reply, err := st.ctl.Exec(strings.TrimRight(string(data), "\n"))
		if err != nil {
			st.reply = []byte(err.Error() + "\n")
			return 0, errorOf(err)
		}
		st.reply = []byte(reply)
		return len(data), nil
	}
	n, err := st.file.WriteAt(data, off)
	return n, errorOf(err)
}

// dirOf describes a file as a 9P directory entry.
func dirOf(fi *cowfs.FileInfo) plan9.Dir {
	sys := fi.Stat()
	d := plan9.Dir{
		Qid:    qidOf(fi),
		Mode:   plan9.Perm(sys.Mode & 0o777),
		Atime:  uint32(sys.Atime.Unix()),
		Mtime:  uint32(sys.Mtime.Unix()),
		Length: uint64(sys.Size),
		Name:   fi.Name(),
		Uid:    strconv.FormatUint(uint64(sys.UID), 10),
		Gid:    strconv.FormatUint(uint64(sys.GID), 10),
		Muid:   strconv.FormatUint(uint64(sys.UID), 10),
	}
	if fi.IsDir() {
		d.Mode |= plan9.DMDIR
		d.Length = 0
	}
	switch sys.Mode & syscall.S_IFMT {
	case syscall.S_IFLNK:
		d.Mode |= plan9.DMSYMLINK
	case syscall.S_IFIFO:
		d.Mode |= plan9.DMNAMEDPIPE
	case syscall.S_IFSOCK:
		d.Mode |= plan9.DMSOCKET
	case syscall.S_IFCHR, syscall.S_IFBLK:
		d.Mode |= plan9.DMDEVICE
	}
	return d
}

func controlFileDir() plan9.Dir {
	return plan9.Dir{Qid: plan9.Qid{Path: controlFilePath}, Mode: 0o600, Name: "ctl", Uid: "0", Gid: "0", Muid: "0"}
}

func (s *Server) stat(ctx context.Context, fid *srv9p.Fid) (*plan9.Dir, error) {
	st := state(fid)
	switch st.kind {
	case controlDir:
		return &plan9.Dir{Qid: plan9.Qid{Path: controlDirPath, Type: plan9.QTDIR}, Mode: plan9.DMDIR | 0o555, Name: controlName, Uid: "0", Gid: "0", Muid: "0"}, nil
	case controlFile:
		d := controlFileDir()
		return &d, nil
	}
	var fi *cowfs.FileInfo
	var err error
	st.mu.Lock()
	if st.file != nil {
		fi, err = st.file.Stat()
	} else {
		fi, err = st.vol.Lstat(st.path)
	}
	st.mu.Unlock()
	if err != nil {
		return nil, errorOf(err)
	}
	d := dirOf(fi)
	if st.path == "." {
		d.Name = "/"
	}
	return &d, nil
}

// wstat changes what a Twstat asks: the name (a rename within the
// directory), the permission bits, the length and the modification time.
// Fields left at their "don't touch" values are kept.
func (s *Server) wstat(ctx context.Context, fid *srv9p.Fid, d *plan9.Dir) error {
	st := state(fid)
	if st.kind != volNode {
		return errno(syscall.EPERM)
	}
	v := st.vol
	if d.Mode != ^plan9.Perm(0) {
		if err := v.Chmod(st.path, uint32(d.Mode&0o777)); err != nil {
			return errorOf(err)
		}
	}
	if d.Length != ^uint64(0) {
		if d.Length > 1<<62 {
			return errno(syscall.EFBIG)
		}
		if err := v.Truncate(st.path, int64(d.Length)); err != nil {
			return errorOf(err)
		}
	}
	if d.Mtime != ^uint32(0) {
		if err := v.Chtimes(st.path, time.Time{}, time.Unix(int64(d.Mtime), 0)); err != nil {
			return errorOf(err)
		}
	}
	if d.Name != "" && d.Name != path.Base(st.path) {
		if st.path == "." || strings.Contains(d.Name, "/") || d.Name == "." || d.Name == ".." {
			return errno(syscall.EINVAL)
		}
		to := path.Join(path.Dir(st.path), d.Name)
		if err := v.Rename(st.path, to, cowfs.RenameNoReplace); err != nil {
			return errorOf(err)
		}
		st.path = to
	}
	return nil
}

func (s *Server) clunk(fid *srv9p.Fid) {
	st := state(fid)
	if st == nil {
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.file != nil {
		st.file.Close()
		st.file = nil
	}
}
