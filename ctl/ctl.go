// Package ctl is the command language of a mount's control file, and its
// executor. A frontend (FUSE, 9P) serves a file, .cowfs/ctl at the root of a
// mount; a client opens it, writes one command line per write(2), then reads
// the reply of that command, from its start, on the same open file. The
// frontend passes each written line to Server.Exec and keeps what it returns:
// the reply text on success; on failure, the write fails with the error's
// errno (cowfs.Errno) and reading the file returns the error's text.
// Package ctl/ctlclient is a client of it for Go programs.
//
// # Command lines
//
// A line is split into fields at blanks (space, tab, carriage return,
// newline), as Plan 9's tokenize does: a single quote starts a quoted run in
// which blanks are part of the field and two single quotes stand for one; the
// run ends at the next lone quote. Quoted and unquoted runs touching each
// other make one field. For example, this line has the four fields [clone],
// [my file], [it's] and [] (empty):
//
//	clone 'my file' 'it''s' ''
//
// Quote builds a field from any string. Since a newline is a blank, the
// trailing newline of a line written with echo is ignored.
//
// Paths are relative to the volume root and slash-separated; a leading slash
// is allowed ("a/b" and "/a/b" are the same file) and the empty path or "."
// is the root. ".." never leaves the root. Numbers are decimal digits only,
// at most 2^63-1.
//
// # Commands
//
//	clone SRC DST
//		Make DST an O(1) copy of the file, symlink or whole directory tree
//		at SRC (Volume.Clone). DST must not exist. Reply: empty.
//	copyrange SRC SOFF DST DOFF N
//		Share N bytes at offset SOFF of file SRC into file DST at offset
//		DOFF (cowfs.CopyRange); DST must exist. It copies less than N only
//		when SRC ends first. Reply: the number of bytes copied, in decimal.
//	insert PATH OFF N
//		Insert N zero bytes (a hole) at offset OFF of file PATH, moving
//		what follows up: fallocate's insert range, at any byte offsets
//		(the Linux FUSE client refuses that mode, so a mount offers it
//		here). Reply: empty.
//	collapse PATH OFF N
//		Remove the N bytes at offset OFF of file PATH, moving what follows
//		down: fallocate's collapse range, at any byte offsets. Reply: empty.
//	snapshot-file PATH
//		Take a private snapshot of file PATH in O(1) (File.ReadDeferred of
//		the whole file) and serve it as a read-only file. Reply: its path
//		from the mount root (as .cowfs/files/N), then a newline. Mapping it
//		with mmap(MAP_PRIVATE) is a deferred read: pages fill on first
//		touch, later writes to PATH never show. Removing it releases the
//		snapshot.
//	snapshot create NAME
//		Snapshot the volume (Volume.Snapshot). Reply: empty.
//	snapshot delete NAME
//		Delete a snapshot of the volume. Reply: empty.
//	snapshot list
//		Reply: a JSON array, sorted by name, of objects
//		{"name": NAME, "created": TIME}, TIME in RFC 3339 (UTC, with
//		nanoseconds). A snapshot has no snapshots: served by a snapshot,
//		the list is empty.
//	du PATH
//		Reply: a JSON object {"path": PATH, "logical": N, "shared": N,
//		"exclusive": N} (Volume.Usage: the sizes of the regular files; the
//		stored data PATH references that something outside it also
//		references; the stored data removing PATH would free, each blob
//		counted once). PATH is the path as given, cleaned.
//	stats
//		Reply: a JSON object {"volume": NAME, "cache": {"nodes": C,
//		"data": C}, "store": {"blobs": N, "bytes": N}, "zombies": N} where
//		each C is {"hits", "misses", "evictions", "bytes", "entries"}
//		(FS.CacheStats), store is what the store holds, zombies the blobs
//		waiting for deletion (FS.Zombies); plus "frontend": {...}, the
//		frontend's own counters, if it has any.
//	sync
//		Commit every change made so far (FS.Commit). Reply: empty.
//	help
//		Reply: a plain-text list of the commands.
//
// Every non-empty reply ends with a newline; JSON replies are indented.
//
// # Errors
//
// Exec returns a *cowfs.Error. An unknown command, a wrong number of
// arguments, a bad number or an unterminated quote is EINVAL; clone,
// copyrange, insert, collapse, snapshot create and snapshot delete served by
// a read-only snapshot are EROFS; everything else is the error of the Go API call (ENOENT
// for a missing file, EEXIST for an existing clone destination, ...). A
// command refused with EINVAL or EROFS has changed nothing.
package ctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cowfs/cowfs"
)

// Server executes control commands against one volume. Its fields are set
// before the first Exec and not changed afterwards; Exec is safe for
// concurrent use.
type Server struct {
	FS  *cowfs.FS
	Vol *cowfs.Volume // the volume served: writable, or a read-only snapshot

	// Changed, if set, is called after a command changed the file or
	// directory at path: created it (clone) or changed its content
	// (copyrange). path is volume-relative, slash-separated and cleaned
	// ("." for the root), so a frontend can invalidate what the kernel
	// caches of that name and of that file.
	Changed func(path string)
	// SnapshotsChanged, if set, is called after a snapshot was created or
	// deleted.
	SnapshotsChanged func()
	// Stats, if set, returns the frontend's own counters, which the stats
	// reply holds under "frontend".
	Stats func() map[string]any
	// ServeView, if set, serves a deferred read of a whole file as a
	// read-only file of the frontend and returns its path from the mount
	// root (st describes the file it was taken of: its owner and mode
	// carry over); the frontend releases the view when that file is removed.
	// Without it, snapshot-file fails with ENOTSUP.
	ServeView func(v *cowfs.View, st *cowfs.Stat) (string, error)
}

// command is one command of the language.
type command struct {
	name  string
	nargs int // arguments after the name (and after the action for snapshot)
	usage string
	run   func(s *Server, args []string) (string, error)
}

// commands lists the commands in the order help shows them.
var commands = []command{
	{"clone", 2, "clone SRC DST", (*Server).clone},
	{"copyrange", 5, "copyrange SRC SOFF DST DOFF N", (*Server).copyRange},
	{"insert", 3, "insert PATH OFF N", (*Server).insert},
	{"collapse", 3, "collapse PATH OFF N", (*Server).collapse},
	{"snapshot-file", 1, "snapshot-file PATH", (*Server).snapshotFile},
	{"snapshot create", 1, "snapshot create NAME", (*Server).snapshotCreate},
	{"snapshot delete", 1, "snapshot delete NAME", (*Server).snapshotDelete},
	{"snapshot list", 0, "snapshot list", (*Server).snapshotList},
	{"du", 1, "du PATH", (*Server).du},
	{"stats", 0, "stats", (*Server).stats},
	{"sync", 0, "sync", (*Server).sync},
	{"help", 0, "help", nil}, // run is help (it reads this table)
}

// Exec runs one command line and returns its reply text, which may be empty.
// Its errors are *cowfs.Error (see the package documentation).
func (s *Server) Exec(line string) (string, error) {
	args, err := Tokenize(line)
	if err != nil {
		return "", err
	}
	if len(args) == 0 {
		return "", invalid("ctl", "empty command line")
	}
	name, args := args[0], args[1:]
	if name == "snapshot" {
		if len(args) == 0 {
			return "", invalid(name, "want snapshot create|delete|list")
		}
		name, args = name+" "+args[0], args[1:]
	}
	for _, c := range commands {
		if c.name != name {
			continue
		}
		if len(args) != c.nargs {
			return "", invalid(name, fmt.Sprintf("want %d %s, got %d (usage: %s)",
				c.nargs, plural(c.nargs, "argument", "arguments"), len(args), c.usage))
		}
		if c.run == nil {
			return help(), nil
		}
		return c.run(s, args)
	}
	return "", invalid(name, "unknown command (try help)")
}

// clone is "clone SRC DST".
func (s *Server) clone(args []string) (string, error) {
	src, dst := volPath(args[0]), volPath(args[1])
	if err := s.writable("clone", dst); err != nil {
		return "", err
	}
	if err := s.Vol.Clone(src, dst); err != nil {
		return "", err
	}
	s.changed(dst)
	return "", nil
}

// copyRange is "copyrange SRC SOFF DST DOFF N".
func (s *Server) copyRange(args []string) (string, error) {
	const op = "copyrange"
	src, dst := volPath(args[0]), volPath(args[2])
	var nums [3]int64
	for i, a := range []string{args[1], args[3], args[4]} {
		n, err := parseNumber(op, a)
		if err != nil {
			return "", err
		}
		nums[i] = n
	}
	if err := s.writable(op, dst); err != nil {
		return "", err
	}
	sf, err := s.Vol.Open(src)
	if err != nil {
		return "", err
	}
	defer sf.Close()
	df, err := s.Vol.OpenFile(dst, os.O_WRONLY, 0)
	if err != nil {
		return "", err
	}
	n, err := cowfs.CopyRange(sf, nums[0], df, nums[1], nums[2])
	if cerr := df.Close(); err == nil {
		err = cerr
	}
	if err == nil || n > 0 {
		s.changed(dst)
	}
	if err != nil {
		return "", err
	}
	return strconv.FormatInt(n, 10) + "\n", nil
}

// insert is "insert PATH OFF N".
func (s *Server) insert(args []string) (string, error) {
	return s.fallocate("insert", cowfs.FallocInsertRange, args)
}

// collapse is "collapse PATH OFF N".
func (s *Server) collapse(args []string) (string, error) {
	return s.fallocate("collapse", cowfs.FallocCollapseRange, args)
}

// fallocate runs File.Fallocate with mode on the file and range in args.
func (s *Server) fallocate(op string, mode uint32, args []string) (string, error) {
	p := volPath(args[0])
	off, err := parseNumber(op, args[1])
	if err != nil {
		return "", err
	}
	n, err := parseNumber(op, args[2])
	if err != nil {
		return "", err
	}
	if err := s.writable(op, p); err != nil {
		return "", err
	}
	f, err := s.Vol.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return "", err
	}
	err = f.Fallocate(mode, off, n)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", err
	}
	s.changed(p)
	return "", nil
}

// snapshotFile is "snapshot-file PATH".
func (s *Server) snapshotFile(args []string) (string, error) {
	const op = "snapshot-file"
	p := volPath(args[0])
	if s.ServeView == nil {
		return "", &cowfs.Error{Op: op, Path: p, Errno: syscall.ENOTSUP, Err: errors.New("this server cannot serve file snapshots")}
	}
	f, err := s.Vol.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	v, err := f.ReadDeferred(0, 1<<62)
	if err != nil {
		return "", err
	}
	served, err := s.ServeView(v, fi.Stat())
	if err != nil {
		v.Release()
		return "", err
	}
	return served + "\n", nil
}

// snapshotCreate is "snapshot create NAME".
func (s *Server) snapshotCreate(args []string) (string, error) {
	if err := s.writable("snapshot", args[0]); err != nil {
		return "", err
	}
	if err := s.Vol.Snapshot(args[0]); err != nil {
		return "", err
	}
	s.snapshotsChanged()
	return "", nil
}

// snapshotDelete is "snapshot delete NAME".
func (s *Server) snapshotDelete(args []string) (string, error) {
	if err := s.writable("delete snapshot", args[0]); err != nil {
		return "", err
	}
	if err := s.Vol.DeleteSnapshot(args[0]); err != nil {
		return "", err
	}
	s.snapshotsChanged()
	return "", nil
}

// SnapshotReply is one element of the reply of "snapshot list".
type SnapshotReply struct {
	Name    string `json:"name"`
	Created string `json:"created"` // RFC 3339, UTC
}

// snapshotList is "snapshot list".
func (s *Server) snapshotList([]string) (string, error) {
	snaps, err := s.Vol.Snapshots()
	if err != nil {
		return "", err
	}
	out := []SnapshotReply{}
	for _, sn := range snaps {
		out = append(out, SnapshotReply{Name: sn.Name, Created: sn.Created.UTC().Format(time.RFC3339Nano)})
	}
	return reply(out)
}

// UsageReply is the reply of "du".
type UsageReply struct {
	Path      string `json:"path"`
	Logical   int64  `json:"logical"`
	Shared    int64  `json:"shared"`
	Exclusive int64  `json:"exclusive"`
}

// du is "du PATH".
func (s *Server) du(args []string) (string, error) {
	u, err := s.Vol.Usage(volPath(args[0]))
	if err != nil {
		return "", err
	}
	return reply(UsageReply{Path: cleanPath(args[0]), Logical: u.Logical, Shared: u.Shared, Exclusive: u.Exclusive})
}

// CacheCounters is one cache's counters in the reply of "stats".
type CacheCounters struct {
	Hits      int64 `json:"hits"`
	Misses    int64 `json:"misses"`
	Evictions int64 `json:"evictions"`
	Bytes     int64 `json:"bytes"`
	Entries   int64 `json:"entries"`
}

// StatsReply is the reply of "stats".
type StatsReply struct {
	Volume string `json:"volume"`
	Cache  struct {
		Nodes CacheCounters `json:"nodes"`
		Data  CacheCounters `json:"data"`
	} `json:"cache"`
	Store struct {
		Blobs int64 `json:"blobs"`
		Bytes int64 `json:"bytes"`
	} `json:"store"`
	Zombies  int64          `json:"zombies"`
	Frontend map[string]any `json:"frontend,omitempty"`
}

// stats is "stats".
func (s *Server) stats([]string) (string, error) {
	var r StatsReply
	r.Volume = s.Vol.Name()
	nodes, data := s.FS.CacheStats()
	r.Cache.Nodes = CacheCounters{nodes.Hits, nodes.Misses, nodes.Evictions, nodes.Bytes, nodes.Entries}
	r.Cache.Data = CacheCounters{data.Hits, data.Misses, data.Evictions, data.Bytes, data.Entries}
	u, err := s.FS.Store().Usage(context.Background())
	if err != nil {
		return "", &cowfs.Error{Op: "stats", Errno: cowfs.Errno(err), Err: err}
	}
	r.Store.Blobs, r.Store.Bytes = u.Blobs, u.Bytes
	r.Zombies = s.FS.Zombies()
	if s.Stats != nil {
		r.Frontend = s.Stats()
	}
	return reply(r)
}

// sync is "sync".
func (s *Server) sync([]string) (string, error) {
	return "", s.FS.Commit()
}

// help is the reply of "help".
func help() string {
	var b strings.Builder
	b.WriteString("commands (paths relative to the volume root; quote fields with '...'):\n")
	for _, c := range commands {
		b.WriteString("\t" + c.usage + "\n")
	}
	return b.String()
}

// writable fails with EROFS when the server serves a snapshot.
func (s *Server) writable(op, p string) error {
	if s.Vol.ReadOnly() {
		return &cowfs.Error{Op: op, Path: p, Errno: syscall.EROFS, Err: errors.New("snapshots are read-only")}
	}
	return nil
}

// changed reports a changed path to the frontend.
func (s *Server) changed(p string) {
	if s.Changed != nil {
		s.Changed(cleanPath(p))
	}
}

// snapshotsChanged reports a changed snapshot list to the frontend.
func (s *Server) snapshotsChanged() {
	if s.SnapshotsChanged != nil {
		s.SnapshotsChanged()
	}
}

// reply encodes v as an indented JSON reply.
func reply(v any) (string, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return "", &cowfs.Error{Op: "ctl", Errno: syscall.EIO, Err: err}
	}
	return string(b) + "\n", nil
}

// volPath is a path argument as the Volume API takes it: the root for "".
func volPath(p string) string {
	if p == "" {
		return "."
	}
	return p
}

// cleanPath is p cleaned, without a leading slash: "." for the root. Like
// the Volume's resolution, ".." at the root stays there.
func cleanPath(p string) string {
	c := strings.TrimPrefix(path.Clean("/"+p), "/")
	if c == "" {
		return "."
	}
	return c
}

// parseNumber parses a decimal, non-negative int64.
func parseNumber(op, s string) (int64, error) {
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return 0, invalid(op, fmt.Sprintf("%q is not a decimal number", s))
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, invalid(op, fmt.Sprintf("%q is too large", s))
	}
	return n, nil
}

// invalid is an EINVAL error of op.
func invalid(op, msg string) error {
	return &cowfs.Error{Op: op, Errno: syscall.EINVAL, Err: errors.New(msg)}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
