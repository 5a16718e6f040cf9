package cowfs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"syscall"

	"github.com/cowfs/cowfs/internal/btree"
	"github.com/cowfs/cowfs/store"
)

// Error is the error every cowfs operation returns. It carries the errno a
// frontend (FUSE, 9P) answers with, and wraps the io/fs error that matches it
// (fs.ErrNotExist for ENOENT, fs.ErrExist for EEXIST and ENOTEMPTY,
// fs.ErrPermission for EACCES, EPERM and EROFS, fs.ErrInvalid for EINVAL,
// errors.ErrUnsupported for EOPNOTSUPP) as well as its cause, if any.
type Error struct {
	Op    string        // the operation: "open", "rename", ...
	Path  string        // the path it was applied to, if any
	Errno syscall.Errno // what a frontend reports
	Err   error         // the underlying cause, or nil
}

func (e *Error) Error() string {
	s := "cowfs: " + e.Op
	if e.Path != "" {
		s += " " + e.Path
	}
	s += ": " + e.Errno.Error()
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the matching io/fs error and the cause.
func (e *Error) Unwrap() []error {
	errs := []error{e.Errno}
	switch e.Errno {
	case syscall.EINVAL:
		errs = append(errs, fs.ErrInvalid)
	case syscall.EROFS:
		errs = append(errs, fs.ErrPermission)
	case syscall.ENOTEMPTY:
		errs = append(errs, fs.ErrExist)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// Errno returns the errno a frontend should report for err: the Errno of a
// cowfs Error, EIO for anything else, 0 for nil.
func Errno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Errno
	}
	var n syscall.Errno
	if errors.As(err, &n) {
		return n
	}
	return syscall.EIO
}

// errorf builds an Error; cause may be nil.
func errorf(op, path string, errno syscall.Errno, cause error) *Error {
	return &Error{Op: op, Path: path, Errno: errno, Err: cause}
}

// wrapIO turns a failure of the store or of decoding into an Error: EINTR
// when the operation's context was cancelled or its deadline passed, ENOSPC
// when the store's disk is full, EIO for corruption and other I/O failures,
// keeping an existing cowfs Error as it is.
func wrapIO(op, path string, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	errno := syscall.EIO
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		errno = syscall.EINTR // the operation was interrupted (a FUSE interrupt, a flushed 9P request)
	case errors.Is(err, store.ErrClosed):
		errno = syscall.EBADF
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		errno = syscall.ENOSPC // the store's disk is full: not an I/O error
	case errors.Is(err, syscall.EROFS):
		errno = syscall.EROFS
	}
	return errorf(op, path, errno, err)
}

// ErrCorrupt is wrapped by every error that reports corrupt metadata: a
// volume node, directory or file node, side table or stored ACL that does
// not parse, or stored trees that contradict each other (a hard link name
// without its inode, a blob released below zero, an attribute's blob of
// another size than its entry says). An operation that meets one fails
// with an *Error of Errno EIO that wraps it; test with
// errors.Is(err, ErrCorrupt). A blob whose stored bytes do not match its
// ID is reported by the store instead, as store.ErrCorrupt.
var ErrCorrupt = btree.ErrCorrupt

// corrupt reports a violated on-store invariant (ErrCorrupt).
func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}
