// Package ctlclient is the client side of a cowfs mount's control file
// (package ctl): it finds the mount that holds a path, sends commands to
// the control file .cowfs/ctl at the mount's root, and reads and parses
// their replies. It goes through the file system only, so any program that
// may open the control file can use it; cmd/cowfs's clone, snapshot,
// snapshot-file, du and stats do.
//
// A command runs in one open of the control file: Exec writes the command
// line (its fields quoted with ctl.Quote), then reads the reply. A refused
// command fails the write with its errno; Exec then returns an *Error that
// holds the errno and the error text read back.
package ctlclient

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/cowfs/cowfs/ctl"
	"github.com/cowfs/cowfs/internal/control"
)

// Mount is a cowfs mount, by its root: the directory that holds
// .cowfs/ctl.
type Mount struct {
	Root string
}

// Path is a path inside a cowfs mount, as Locate found it.
type Path struct {
	Arg   string // the path as given
	Mount Mount  // the mount holding it
	Rel   string // the path from the mount's root, slash-separated ("." for the root)
}

// Locate finds the cowfs mount holding path p. It makes p absolute and
// resolves the symlinks of its directories; with follow it also resolves a
// final symlink, and p must exist. Without follow p need not exist, but its
// directory must. The mount is the nearest directory D, p itself or an
// ancestor, on the same device as p, where D/.cowfs/ctl is a regular file
// (lookup finds .cowfs even though the mount root does not list it).
func Locate(p string, follow bool) (Path, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return Path{}, err
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
		return Path{}, err
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
		return Path{}, err
	}
	root, ok := findMount(start, deviceOf(fi))
	if !ok {
		return Path{}, fmt.Errorf("%s is not inside a cowfs mount", abs)
	}
	rel, err := filepath.Rel(root, resolved)
	if err != nil {
		return Path{}, err
	}
	return Path{Arg: p, Mount: Mount{Root: root}, Rel: filepath.ToSlash(rel)}, nil
}

// findMount walks up from dir to the nearest directory on device dev that
// holds .cowfs/ctl.
func findMount(dir string, dev uint64) (string, bool) {
	for d := dir; ; d = filepath.Dir(d) {
		ctlInfo, err := os.Stat(filepath.Join(d, control.CtlPath))
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

// VolumePath is the path of p in the mounted volume (Rel), the path
// commands take; a path in the control directory fails: what it shows
// (snapshots, served files) is no path of the volume.
func (p Path) VolumePath() (string, error) {
	if p.Rel == control.DirName || strings.HasPrefix(p.Rel, control.DirName+"/") {
		return "", fmt.Errorf("%s is in the control directory of the cowfs mount at %s, not in its volume", p.Arg, p.Mount.Root)
	}
	return p.Rel, nil
}

// Error is a command the control file refused.
type Error struct {
	Errno syscall.Errno // what the write of the command failed with
	Text  string        // the error text read back, without "cowfs: "; may be empty
}

// Error is the text read back, or else the errno's.
func (e *Error) Error() string {
	if e.Text == "" {
		return e.Errno.Error()
	}
	return e.Text
}

// Unwrap returns the errno, for errors.Is.
func (e *Error) Unwrap() error { return e.Errno }

// Exec runs one command through the mount's control file and returns its
// reply (empty, or text ending in a newline). The command line is args,
// each quoted (ctl.Quote), so any string is one argument. A refused
// command is an *Error; failing to open the control file or to read the
// reply is another error.
func (m Mount) Exec(args ...string) (string, error) {
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = ctl.Quote(a)
	}
	f, err := os.OpenFile(filepath.Join(m.Root, control.CtlPath), os.O_RDWR, 0)
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
		return "", &Error{Errno: errno, Text: text}
	}
	if rerr != nil {
		return "", fmt.Errorf("read reply: %w", rerr)
	}
	return string(reply), nil
}

// Clone makes dst an O(1) copy of the file, symlink or directory tree src
// (command clone); both are volume paths (Path.VolumePath).
func (m Mount) Clone(src, dst string) error {
	_, err := m.Exec("clone", src, dst)
	return err
}

// SnapshotFile takes a private snapshot of the file at volume path p
// (command snapshot-file) and returns the path of the read-only file that
// serves it, under the mount's root.
func (m Mount) SnapshotFile(p string) (string, error) {
	reply, err := m.Exec("snapshot-file", p)
	if err != nil {
		return "", err
	}
	return filepath.Join(m.Root, strings.TrimSpace(reply)), nil
}

// CreateSnapshot snapshots the mounted volume as name (command snapshot
// create).
func (m Mount) CreateSnapshot(name string) error {
	_, err := m.Exec("snapshot", "create", name)
	return err
}

// DeleteSnapshot deletes the mounted volume's snapshot name (command
// snapshot delete).
func (m Mount) DeleteSnapshot(name string) error {
	_, err := m.Exec("snapshot", "delete", name)
	return err
}

// Snapshots lists the mounted volume's snapshots, by name (command
// snapshot list).
func (m Mount) Snapshots() ([]ctl.SnapshotReply, error) {
	var list []ctl.SnapshotReply
	return list, m.execJSON(&list, "snapshot", "list")
}

// Usage reports the usage of the file or tree at volume path p (command
// du); its Path is p as the mount cleaned it.
func (m Mount) Usage(p string) (ctl.UsageReply, error) {
	var u ctl.UsageReply
	return u, m.execJSON(&u, "du", p)
}

// Stats returns the mount's counters (command stats). The numbers in
// Frontend are json.Number, so they print as the integers they are.
func (m Mount) Stats() (ctl.StatsReply, error) {
	var st ctl.StatsReply
	return st, m.execJSON(&st, "stats")
}

// execJSON runs a command whose reply is JSON and decodes it into v.
func (m Mount) execJSON(v any, args ...string) error {
	reply, err := m.Exec(args...)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(reply)))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("bad reply %q: %w", reply, err)
	}
	return nil
}
