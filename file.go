package cowfs

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/cowfs/cowfs/internal/dirtree"
	"github.com/cowfs/cowfs/internal/rope"
)

// File is an open file or directory of a volume. Its methods follow os.File.
type File struct {
	v      *Volume
	x      *inode
	name   string
	flag   int
	offMu  sync.Mutex // held by Read, Write and Seek around their use of off
	off    int64      // for Read, Write and Seek
	dirPos int64      // for ReadDir
	cred   Cred       // who opened it: the changes made through it are theirs
	closed bool
	ra     readAhead // sequential reads (readahead.go)
}

// OpenFile opens p with os-style flags (os.O_RDONLY, O_WRONLY, O_RDWR,
// O_CREATE, O_EXCL, O_TRUNC, O_APPEND); perm and opts apply to a new file
// (see Mkdir).
func (v *Volume) OpenFile(p string, flag int, perm uint32, opts ...CreateOption) (*File, error) {
	v.f.mu.Lock()
	defer v.f.mu.Unlock()
	const op = "open"
	if err := v.openable(op, p, flag); err != nil {
		return nil, err
	}
	r, err := v.resolve(op, p, flag&os.O_EXCL == 0)
	if err != nil {
		return nil, err
	}
	f, _, err := v.openAt(optsCred(opts), op, p, r, flag, perm)
	return f, err
}

// openable fails on a snapshot for flags that would change the file.
func (v *Volume) openable(op, p string, flag int) error {
	if flag&(os.O_WRONLY|os.O_RDWR|os.O_CREATE|os.O_TRUNC) != 0 {
		return v.writable(op, p)
	}
	return nil
}

// openAt opens r.x, or with O_CREATE makes it as r.name of r.dir if it
// does not exist (made reports that), for c: c needs read and write
// permission as flag asks (write for O_TRUNC too) on an existing file.
func (v *Volume) openAt(c Cred, op, p string, r resolved, flag int, perm uint32) (f *File, made bool, err error) {
	write := flag&(os.O_WRONLY|os.O_RDWR) != 0
	x := r.x
	switch {
	case x == nil && flag&os.O_CREATE != 0:
		if x, err = v.create(op, p, r, dirtree.Entry{Mode: dirtree.TypeReg | perm&0o7777}, c); err != nil {
			return nil, false, err
		}
		made = true
	case x == nil:
		return nil, false, errorf(op, p, syscall.ENOENT, nil)
	case flag&os.O_CREATE != 0 && flag&os.O_EXCL != 0:
		return nil, false, errorf(op, p, syscall.EEXIST, nil)
	case x.isDir() && (write || flag&os.O_CREATE != 0):
		// POSIX: O_CREAT on an existing directory fails like a write.
		return nil, false, errorf(op, p, syscall.EISDIR, nil)
	case x.ent.Type() == dirtree.TypeLink:
		return nil, false, errorf(op, p, syscall.ELOOP, nil)
	}
	if !made {
		var want uint32
		if flag&os.O_WRONLY == 0 {
			want |= MayRead
		}
		if write || flag&os.O_TRUNC != 0 {
			want |= MayWrite
		}
		if err := c.may(op, p, &x.ent, want); err != nil {
			return nil, false, err
		}
	}
	if flag&os.O_TRUNC != 0 && x.ent.Type() == dirtree.TypeReg && write && !made {
		if err := x.truncate(0); err != nil {
			return nil, false, wrapIO(op, p, err)
		}
		c.killPriv(&x.ent)
		x.stamp(true)
	}
	x.opens++
	v.opens++
	return &File{v: v, x: x, name: p, flag: flag, cred: c}, made, nil
}

// Open opens p for reading.
func (v *Volume) Open(p string) (*File, error) { return v.OpenFile(p, os.O_RDONLY, 0) }

// Create creates or truncates p for reading and writing.
func (v *Volume) Create(p string) (*File, error) {
	return v.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
}

// WriteFile writes data to p, creating or truncating it.
func (v *Volume) WriteFile(p string, data []byte, perm uint32) error {
	f, err := v.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// ReadFile returns the whole content of p.
func (v *Volume) ReadFile(p string) ([]byte, error) {
	f, err := v.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// Name returns the path the file was opened with.
func (f *File) Name() string { return f.name }

func (f *File) use(op string, write bool) error {
	if f.closed {
		return errorf(op, f.name, syscall.EBADF, os.ErrClosed)
	}
	if f.v.closed {
		return errorf(op, f.name, syscall.EBADF, errors.New("volume closed"))
	}
	if write && f.flag&(os.O_WRONLY|os.O_RDWR) == 0 {
		return errorf(op, f.name, syscall.EBADF, errors.New("not open for writing"))
	}
	if !write && f.flag&os.O_WRONLY != 0 {
		return errorf(op, f.name, syscall.EBADF, errors.New("not open for reading"))
	}
	return nil
}

// readContent returns the file's rope, buffered writes included, for a
// reader: the rope is immutable and is read without the FS lock (through
// f.v.f.ropesFor(ctx)). On success it returns with f.v.f.readMu held
// shared; the caller releases it when done. A read (op "read") updates the
// access time (inode.accessed).
func (f *File) readContent(ctx context.Context, op string) (rope.Rope, error) {
	if err := f.v.f.lockFor(ctx, op, f.name); err != nil {
		return rope.Rope{}, err
	}
	defer f.v.f.unlockOp()
	r, err := f.contentLocked(op)
	if err == nil {
		if op == "read" {
			f.x.accessed()
		}
		f.v.f.readMu.RLock()
	}
	return r, err
}

func (f *File) contentLocked(op string) (rope.Rope, error) {
	// Seeking needs no read access: lseek(2) works on a write-only file.
	if err := f.use(op, op == "seek" && f.flag&os.O_WRONLY != 0); err != nil {
		return rope.Rope{}, err
	}
	if f.x.isDir() {
		return rope.Rope{}, errorf(op, f.name, syscall.EISDIR, nil)
	}
	if err := f.x.flushBuf(); err != nil {
		return rope.Rope{}, wrapIO(op, f.name, err)
	}
	return f.x.ent.Data, nil
}

// ReadAt reads len(p) bytes at off; io.EOF when fewer remain. Unless p is
// empty, it updates the access time as Options.Atime says (also at end of
// file, as Linux does).
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	return f.ReadAtContext(context.Background(), p, off)
}

// ReadAtContext is ReadAt running with ctx: when ctx is done while the read
// waits for the FS lock or for the store, it returns an error of Errno
// EINTR (and what it read before, if anything).
func (f *File) ReadAtContext(ctx context.Context, p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errorf("read", f.name, syscall.EINVAL, errors.New("negative offset"))
	}
	if len(p) == 0 {
		_, err := f.readContent(ctx, "check")
		if err == nil {
			f.v.f.readMu.RUnlock()
		}
		return 0, err
	}
	r, err := f.readContent(ctx, "read")
	if err != nil {
		return 0, err
	}
	t := f.v.f.ropesFor(ctx)
	n, err := rope.ReadAt(t, r, blobSource{f.v.f, ctx}, p, off)
	if err == nil {
		f.readAhead(t, r, off, int64(n))
	}
	f.v.f.readMu.RUnlock()
	if err != nil {
		return n, wrapIO("read", f.name, err)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Read reads from the file offset.
func (f *File) Read(p []byte) (int, error) {
	f.offMu.Lock()
	defer f.offMu.Unlock()
	n, err := f.ReadAt(p, f.off)
	f.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

// WriteAt writes p at off. Like pwrite(2), it leaves the file offset alone.
func (f *File) WriteAt(p []byte, off int64) (int, error) {
	return f.WriteAtContext(context.Background(), p, off)
}

// WriteAtContext is WriteAt running with ctx: when ctx is done while the
// write waits for the FS lock or for the store, it returns an error of
// Errno EINTR, having written nothing (the file's content is as before the
// call; see docs/design.md, "Contexts").
func (f *File) WriteAtContext(ctx context.Context, p []byte, off int64) (int, error) {
	if f.flag&os.O_APPEND != 0 {
		return 0, errorf("write", f.name, syscall.EINVAL, errors.New("WriteAt on a file opened with O_APPEND"))
	}
	return f.write(ctx, p, off, false)
}

// Write writes at the file offset (at the end with O_APPEND) and moves the
// offset past what it wrote.
func (f *File) Write(p []byte) (int, error) {
	return f.WriteContext(context.Background(), p)
}

// WriteContext is Write running with ctx, as WriteAtContext is WriteAt.
func (f *File) WriteContext(ctx context.Context, p []byte) (int, error) {
	f.offMu.Lock()
	defer f.offMu.Unlock()
	return f.write(ctx, p, 0, true)
}

// write writes p at off or, for Write (seq), at the file offset (the end of
// file with O_APPEND), and then moves the file offset.
func (f *File) write(ctx context.Context, p []byte, off int64, seq bool) (int, error) {
	v := f.v
	if err := v.f.lockFor(ctx, "write", f.name); err != nil {
		return 0, err
	}
	defer v.f.unlockOp()
	if err := f.use("write", true); err != nil {
		return 0, err
	}
	x := f.x
	if x.ent.Type() != dirtree.TypeReg {
		return 0, errorf("write", f.name, syscall.EINVAL, errors.New("not a regular file"))
	}
	if x.pending+int64(len(x.wbuf)) >= v.f.opt.FlushBytes {
		// Cut what is pending, with the lock released meanwhile.
		if err := x.flushOutside(ctx); err != nil {
			return 0, wrapIO("write", f.name, err)
		}
		if err := f.use("write", true); err != nil {
			return 0, err
		}
	}
	if seq {
		off = f.off
	}
	if seq && f.flag&os.O_APPEND != 0 {
		if err := x.flushBuf(); err != nil {
			return 0, wrapIO("write", f.name, err)
		}
		off = x.ent.Data.Len
	}
	if off < 0 || off > rope.MaxSize || int64(len(p)) > rope.MaxSize-off {
		return 0, errorf("write", f.name, syscall.EFBIG, nil)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if err := x.bufferWrite(p, off); err != nil {
		return 0, wrapIO("write", f.name, err)
	}
	if seq {
		f.off = off + int64(len(p))
	}
	c := f.cred
	if k := CredFrom(ctx); k.KillSetID {
		c = k // the writer, not the opener, as the kernel asks
	}
	c.killPriv(&x.ent)
	x.stamp(true)
	return len(p), nil
}

// Truncate changes the file's size.
func (f *File) Truncate(size int64) error {
	f.v.f.mu.Lock()
	defer f.v.f.mu.Unlock()
	if err := f.use("truncate", true); err != nil {
		return err
	}
	if err := f.x.truncate(size); err != nil {
		return wrapIO("truncate", f.name, err)
	}
	f.cred.killPriv(&f.x.ent)
	f.x.stamp(true)
	return nil
}

// Chmod changes the permission bits, as fchmod(2): it works on a file
// that was removed while open.
func (f *File) Chmod(mode uint32) error { return f.setattr("chmod", SetAttr{Mode: &mode}) }

// Chown changes the owner and group, as fchown(2); -1 leaves one unchanged.
func (f *File) Chown(uid, gid int) error { return f.setattr("chown", chownAttr(uid, gid)) }

// Chtimes sets the access and modification times, as futimens(2); a zero
// time leaves one unchanged (see Volume.Chtimes).
func (f *File) Chtimes(atime, mtime time.Time) error {
	return f.setattr("chtimes", SetAttr{Atime: omitZero(atime), Mtime: omitZero(mtime)})
}

// SetTimes sets the access and modification times, as futimens(2): a nil
// time is left unchanged, every other one is set (see Volume.SetTimes).
func (f *File) SetTimes(atime, mtime *time.Time) error {
	return f.setattr("utimes", SetAttr{Atime: atime, Mtime: mtime})
}

// Setattr changes the open file's attributes for the caller ctx carries
// (see Inode.Setattr); a size needs no write permission when the file is
// open for writing, as ftruncate(2).
func (f *File) Setattr(ctx context.Context, a SetAttr) error {
	return f.setattrAs(ctx, CredFrom(ctx), "setattr", a)
}

// setattr applies a to the open file's inode as the one who opened it.
func (f *File) setattr(op string, a SetAttr) error {
	return f.setattrAs(context.Background(), f.cred, op, a)
}

// setattrAs applies a to the open file's inode for c, waiting for the FS
// lock with ctx.
func (f *File) setattrAs(ctx context.Context, c Cred, op string, a SetAttr) error {
	if err := f.v.f.lockFor(ctx, op, f.name); err != nil {
		return err
	}
	defer f.v.f.unlockOp()
	if f.closed {
		return errorf(op, f.name, syscall.EBADF, os.ErrClosed)
	}
	if err := f.v.writable(op, f.name); err != nil {
		return err
	}
	return f.v.setattrAt(c, op, f.name, f.x, a, f.flag&(os.O_WRONLY|os.O_RDWR) != 0)
}

// Seek whence values beyond io.SeekEnd, as in lseek(2).
const (
	SeekData = 3 // next offset in a block that holds data
	SeekHole = 4 // next offset in a block that is all hole (the end of file counts as one)
)

// BlockSize is the unit in which files report data and holes: SeekData and
// SeekHole answer in whole blocks of BlockSize bytes (a block is a hole only
// if all of it is; the last block ends at the end of file), as ext4, XFS
// and tmpfs do with 4 KiB blocks, and frontends report it as st_blksize.
const BlockSize = 4096

// Seek sets the file offset; whence may also be SeekData or SeekHole.
func (f *File) Seek(off int64, whence int) (int64, error) {
	return f.SeekContext(context.Background(), off, whence)
}

// SeekContext is Seek running with ctx: when ctx is done while it waits for
// the FS lock or for the store, it returns an error of Errno EINTR and
// leaves the file offset alone.
func (f *File) SeekContext(ctx context.Context, off int64, whence int) (int64, error) {
	f.offMu.Lock()
	defer f.offMu.Unlock()
	r, err := f.readContent(ctx, "seek")
	if err != nil {
		return 0, err
	}
	defer f.v.f.readMu.RUnlock()
	var pos int64
	switch whence {
	case io.SeekStart:
		pos = off
	case io.SeekCurrent:
		pos = f.off + off
	case io.SeekEnd:
		pos = r.Len + off
	case SeekData, SeekHole:
		if off < 0 || off >= r.Len {
			return 0, errorf("seek", f.name, syscall.ENXIO, nil)
		}
		if whence == SeekData {
			pos, err = rope.SeekData(f.v.f.ropesFor(ctx), r, off, BlockSize)
			if err == nil && pos < 0 {
				return 0, errorf("seek", f.name, syscall.ENXIO, nil)
			}
		} else {
			pos, err = rope.SeekHole(f.v.f.ropesFor(ctx), r, off, BlockSize)
		}
		if err != nil {
			return 0, wrapIO("seek", f.name, err)
		}
	default:
		return 0, errorf("seek", f.name, syscall.EINVAL, nil)
	}
	if pos < 0 {
		return 0, errorf("seek", f.name, syscall.EINVAL, nil)
	}
	f.off = pos
	return pos, nil
}

// Stat describes the file.
func (f *File) Stat() (*FileInfo, error) {
	f.v.f.mu.Lock()
	defer f.v.f.mu.Unlock()
	if f.closed {
		return nil, errorf("stat", f.name, syscall.EBADF, os.ErrClosed)
	}
	if err := f.x.flushBuf(); err != nil {
		return nil, wrapIO("stat", f.name, err)
	}
	return f.x.info(baseName(f.name)), nil
}

// Sync commits everything written so far (FS-wide: see FS.Commit).
func (f *File) Sync() error { return f.SyncContext(context.Background()) }

// SyncContext is Sync running with ctx: when ctx is done while it waits for
// the FS lock or for the store, it returns an error of Errno EINTR and
// commits nothing; every change stays for a later commit (see
// FS.CommitContext).
func (f *File) SyncContext(ctx context.Context) error {
	if err := f.v.f.lockFor(ctx, "sync", f.name); err != nil {
		return err
	}
	defer f.v.f.unlockOp()
	if f.closed {
		return errorf("sync", f.name, syscall.EBADF, os.ErrClosed)
	}
	if f.v.readOnly {
		return nil
	}
	return f.v.f.commitAllLocked()
}

// Close releases the file. Data stays buffered until the next commit.
func (f *File) Close() error {
	f.v.f.mu.Lock()
	defer f.v.f.mu.Unlock()
	if f.closed {
		return errorf("close", f.name, syscall.EBADF, os.ErrClosed)
	}
	f.closed = true
	err := f.x.flushBuf()
	f.v.closeInode(f.x)
	return wrapIO("close", f.name, err)
}

// ReadDir reads up to n directory entries (all remaining if n <= 0), like
// fs.ReadDirFile, and updates the directory's access time as
// Options.Atime says.
func (f *File) ReadDir(n int) ([]fs.DirEntry, error) {
	f.v.f.mu.Lock()
	defer f.v.f.mu.Unlock()
	if f.closed {
		return nil, errorf("readdir", f.name, syscall.EBADF, os.ErrClosed)
	}
	if !f.x.isDir() {
		return nil, errorf("readdir", f.name, syscall.ENOTDIR, nil)
	}
	limit := n
	if n <= 0 {
		limit = -1
	}
	infos, err := f.x.list(f.dirPos, limit)
	if err != nil {
		return nil, wrapIO("readdir", f.name, err)
	}
	f.x.accessed()
	f.dirPos += int64(len(infos))
	out := make([]fs.DirEntry, len(infos))
	for i, fi := range infos {
		out[i] = fs.FileInfoToDirEntry(fi)
	}
	if n > 0 && len(out) == 0 {
		return nil, io.EOF
	}
	return out, nil
}
