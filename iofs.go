package cowfs

import (
	"errors"
	"io"
	"io/fs"
	"syscall"
)

// FS returns a read-only io/fs view of the volume. It implements fs.FS,
// fs.StatFS, fs.ReadDirFS, fs.ReadFileFS and fs.ReadLinkFS; the files it
// opens implement fs.ReadDirFile, io.ReaderAt and io.Seeker, and their Stat
// returns a *FileInfo.
//
// Names follow io/fs rules: they are unrooted slash-separated paths that
// fs.ValidPath accepts ("." is the root); symlinks are followed, except by
// ReadLink and Lstat. Every error is a *fs.PathError whose Err matches the
// io/fs sentinel (errors.Is(err, fs.ErrNotExist) and so on) and unwraps to
// the cowfs *Error with the errno.
//
// The view is live: on a writable volume it shows changes as they are made.
// For a view that does not change, use the FS of a snapshot.
func (v *Volume) FS() fs.FS { return volumeFS{v} }

// volumeFS is the io/fs view of a volume.
type volumeFS struct{ v *Volume }

var (
	_ fs.FS          = volumeFS{}
	_ fs.StatFS      = volumeFS{}
	_ fs.ReadDirFS   = volumeFS{}
	_ fs.ReadFileFS  = volumeFS{}
	_ fs.ReadLinkFS  = volumeFS{}
	_ fs.ReadDirFile = (*ioFile)(nil)
	_ io.ReaderAt    = (*ioFile)(nil)
	_ io.Seeker      = (*ioFile)(nil)
)

// Open opens the named file or directory for reading.
func (fsys volumeFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, invalidPath("open", name)
	}
	f, err := fsys.v.Open(name)
	if err != nil {
		return nil, pathError("open", name, err)
	}
	return &ioFile{f: f, name: name}, nil
}

// Stat describes the named file, following symlinks.
func (fsys volumeFS) Stat(name string) (fs.FileInfo, error) {
	if !fs.ValidPath(name) {
		return nil, invalidPath("stat", name)
	}
	fi, err := fsys.v.Stat(name)
	if err != nil {
		return nil, pathError("stat", name, err)
	}
	return fi, nil
}

// Lstat describes the named file without following a final symlink.
func (fsys volumeFS) Lstat(name string) (fs.FileInfo, error) {
	if !fs.ValidPath(name) {
		return nil, invalidPath("lstat", name)
	}
	fi, err := fsys.v.Lstat(name)
	if err != nil {
		return nil, pathError("lstat", name, err)
	}
	return fi, nil
}

// ReadLink returns a symlink's target as stored.
func (fsys volumeFS) ReadLink(name string) (string, error) {
	if !fs.ValidPath(name) {
		return "", invalidPath("readlink", name)
	}
	target, err := fsys.v.Readlink(name)
	if err != nil {
		return "", pathError("readlink", name, err)
	}
	return target, nil
}

// ReadDir lists the named directory, sorted by name.
func (fsys volumeFS) ReadDir(name string) ([]fs.DirEntry, error) {
	if !fs.ValidPath(name) {
		return nil, invalidPath("readdir", name)
	}
	infos, err := fsys.v.ReadDir(name)
	if err != nil {
		return nil, pathError("readdir", name, err)
	}
	out := make([]fs.DirEntry, len(infos))
	for i, fi := range infos {
		out[i] = fs.FileInfoToDirEntry(fi)
	}
	return out, nil
}

// ReadFile returns the named file's content.
func (fsys volumeFS) ReadFile(name string) ([]byte, error) {
	if !fs.ValidPath(name) {
		return nil, invalidPath("readfile", name)
	}
	b, err := fsys.v.ReadFile(name)
	if err != nil {
		return nil, pathError("readfile", name, err)
	}
	return b, nil
}

// ioFile is a file opened through the io/fs view.
type ioFile struct {
	f    *File
	name string
}

func (f *ioFile) Stat() (fs.FileInfo, error) {
	fi, err := f.f.Stat()
	if err != nil {
		return nil, pathError("stat", f.name, err)
	}
	return fi, nil
}

func (f *ioFile) Read(p []byte) (int, error) {
	n, err := f.f.Read(p)
	return n, pathError("read", f.name, err)
}

func (f *ioFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.f.ReadAt(p, off)
	return n, pathError("read", f.name, err)
}

// Seek sets the offset of a file. On a directory, Seek(0, io.SeekStart)
// restarts ReadDir, as on Unix; other seeks of a directory fail.
func (f *ioFile) Seek(off int64, whence int) (int64, error) {
	if isDir, err := f.rewindDir(off, whence); isDir {
		return 0, pathError("seek", f.name, err)
	}
	pos, err := f.f.Seek(off, whence)
	return pos, pathError("seek", f.name, err)
}

// rewindDir handles Seek of a directory; isDir reports whether f is an open
// directory.
func (f *ioFile) rewindDir(off int64, whence int) (isDir bool, err error) {
	fl := f.f
	fl.v.f.mu.Lock()
	defer fl.v.f.mu.Unlock()
	if fl.closed || !fl.x.isDir() {
		return false, nil
	}
	if off != 0 || whence != io.SeekStart {
		return true, errorf("seek", fl.name, syscall.EINVAL, errors.New("a directory can only be rewound"))
	}
	fl.dirPos = 0
	return true, nil
}

func (f *ioFile) ReadDir(n int) ([]fs.DirEntry, error) {
	list, err := f.f.ReadDir(n)
	return list, pathError("readdir", f.name, err)
}

func (f *ioFile) Close() error {
	return pathError("close", f.name, f.f.Close())
}

// invalidPath is the error for a name fs.ValidPath rejects.
func invalidPath(op, name string) error {
	return &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
}

// pathError turns a cowfs *Error into a *fs.PathError about name. Other
// errors (nil, io.EOF) are returned as they are.
func pathError(op, name string, err error) error {
	var e *Error
	if !errors.As(err, &e) {
		return err
	}
	return &fs.PathError{Op: op, Path: name, Err: ioError{e}}
}

// ioError is the Err of a *fs.PathError: the errno's text and the cause,
// matching everything the cowfs Error matches.
type ioError struct{ e *Error }

func (x ioError) Error() string {
	s := x.e.Errno.Error()
	if x.e.Err != nil {
		s += ": " + x.e.Err.Error()
	}
	return s
}

func (x ioError) Unwrap() error { return x.e }
