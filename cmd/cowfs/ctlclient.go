package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/cowfs/cowfs/ctl"
)

// The control file of a mount, relative to its root (see package ctl).
const (
	controlDir  = ".cowfs"
	controlFile = ".cowfs/ctl"
)

// mountPath is a path inside a cowfs mount.
type mountPath struct {
	arg  string // the path as given
	root string // the mount's root: the directory holding .cowfs/ctl
	rel  string // the path relative to root, slash-separated ("." for root)
}

// locate finds the cowfs mount holding path p. It makes p absolute and
// resolves the symlinks of its directories; with follow it also resolves a
// final symlink, and p must exist. Without follow p need not exist, but its
// directory must. The mount is the nearest directory D, p itself or an
// ancestor, on the same device as p, where D/.cowfs/ctl exists (lookup finds
// .cowfs even though the mount root does not list it).
func locate(p string, follow bool) (mountPath, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return mountPath{}, err
	}
	resolved := abs
	switch {
	case follow:
		resolved, err = filepath.EvalSymlinks(abs)
	case abs != "/":
		var dir string
		dir, err = filepath.EvalSymlinks(filepath.Dir(abs))
		resolved = filepath.Join(dir, filepath.Base(abs))
	}
	if err != nil {
		return mountPath{}, err
	}
	// The device of p, or of its directory if p does not exist yet. The
	// walk starts at p only if it is a directory: a symlink to a mount
	// root is not that root.
	start := filepath.Dir(resolved)
	fi, err := os.Lstat(resolved)
	switch {
	case err == nil && fi.IsDir():
		start = resolved
	case errors.Is(err, os.ErrNotExist) && !follow:
		fi, err = os.Stat(start)
	}
	if err != nil {
		return mountPath{}, err
	}
	root, ok := findMount(start, deviceOf(fi))
	if !ok {
		return mountPath{}, fmt.Errorf("%s is not inside a cowfs mount", abs)
	}
	rel, err := filepath.Rel(root, resolved)
	if err != nil {
		return mountPath{}, err
	}
	return mountPath{arg: p, root: root, rel: filepath.ToSlash(rel)}, nil
}

// findMount walks up from dir to the nearest directory on device dev that
// holds .cowfs/ctl.
func findMount(dir string, dev uint64) (string, bool) {
	for d := dir; ; d = filepath.Dir(d) {
		ctlInfo, err := os.Stat(filepath.Join(d, controlFile))
		if err == nil && ctlInfo.Mode().IsRegular() {
			if fi, err := os.Stat(d); err == nil && deviceOf(fi) == dev {
				return d, true
			}
		}
		if d == filepath.Dir(d) {
			return "", false
		}
	}
}

// deviceOf returns the st_dev of a file.
func deviceOf(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev)
	}
	return 0
}

// volumePath is the path of p in the volume, refusing the control
// directory: what it shows (the snapshots) is no path of the volume.
func (p mountPath) volumePath() (string, error) {
	if p.rel == controlDir || strings.HasPrefix(p.rel, controlDir+"/") {
		return "", fmt.Errorf("%s is in the control directory of the cowfs mount at %s, not in its volume", p.arg, p.root)
	}
	return p.rel, nil
}

// ctlError is a command the control file refused.
type ctlError struct {
	errno syscall.Errno // what write(2) failed with
	text  string        // the error text read back, if any
}

func (e *ctlError) Error() string {
	if e.text == "" {
		return e.errno.Error()
	}
	return e.text
}

func (e *ctlError) Unwrap() error { return e.errno }

// ctlExec runs one command of package ctl through the control file of the
// mount at root and returns its reply. The command line is args, each
// quoted.
func ctlExec(root string, args ...string) (string, error) {
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = ctl.Quote(a)
	}
	f, err := os.OpenFile(filepath.Join(root, controlFile), os.O_RDWR, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	_, werr := f.Write([]byte(strings.Join(quoted, " ") + "\n"))
	// The reply is read from its start: a stream (as the FUSE frontend
	// serves it) has no offset, so the Seek fails there and does no harm.
	f.Seek(0, io.SeekStart)
	reply, rerr := io.ReadAll(f)
	if werr != nil {
		var errno syscall.Errno
		if !errors.As(werr, &errno) {
			return "", werr
		}
		text := strings.TrimPrefix(strings.TrimSpace(string(reply)), "cowfs: ")
		return "", &ctlError{errno: errno, text: text}
	}
	if rerr != nil {
		return "", fmt.Errorf("read reply: %w", rerr)
	}
	return string(reply), nil
}

// humanSize formats a byte count with a binary unit: "512 B", "1.5 KiB".
func humanSize(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v, unit := float64(n)/1024, "KiB"
	for _, u := range []string{"MiB", "GiB", "TiB", "PiB", "EiB"} {
		if v < 1024 {
			break
		}
		v, unit = v/1024, u
	}
	return fmt.Sprintf("%.1f %s", v, unit)
}
