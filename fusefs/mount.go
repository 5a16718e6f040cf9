// Package fusefs serves a cowfs volume as a Linux file system through FUSE
// (github.com/hanwen/go-fuse/v2).
//
// The kernel addresses files by node, and so does the mount: each node the
// kernel knows holds cowfs's handle on that node (*cowfs.Inode), which
// follows it through renames, and every operation on an open file goes
// through that file's *cowfs.File, so a file removed while open stays
// readable and writable until it is closed.
//
// Each request runs as its caller (cowfs.Cred, unchecked): permissions are
// checked by the kernel (the mount uses default_permissions and POSIX
// ACLs) against the owner, mode and ACLs cowfs stores; cowfs makes a new
// file, directory, symlink or device the caller's in one step, with the
// group and set-group-ID bit of a set-group-ID directory, and applies the
// umask the kernel sends where no default ACL decides.
//
// Clones reach the file system two ways: copy_file_range(2), which coreutils
// cp uses and which becomes cowfs.CopyRange (FICLONE never reaches a FUSE
// server), and the control file .cowfs/ctl at the mount root (see package
// ctl), which also drives snapshots. The hidden directory .cowfs is the
// control namespace both frontends serve (package internal/control: ctl,
// snapshots/NAME/ read-only, files/N).
package fusefs

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cowfs/cowfs"
	"github.com/cowfs/cowfs/ctl"
	"github.com/cowfs/cowfs/internal/control"
	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// Options tune a mount. The zero value is usable.
type Options struct {
	// Dev mounts without nodev, so that device nodes in the mount can be
	// opened (the mount stays nosuid). Only root may: fusermount3 ignores
	// dev for other users, so Mount refuses it instead.
	Dev bool
	// Debug logs every FUSE request and reply, through Logger at Info.
	Debug bool
	// Logger receives what an operator must act on: a panic recovered in
	// a handler, at Error with its stack (the request fails with EIO).
	// go-fuse's own messages go to it at Debug (at Info with Debug set).
	// nil discards.
	Logger *slog.Logger

	// panicOnStatfs makes statfs panic, for the test of the panic handler.
	panicOnStatfs bool
}

// Server is a mounted volume.
type Server struct {
	srv *fuse.Server
	m   *mount
}

// Stats are counters of the requests a mount served.
type Stats struct {
	Reads, ReadBytes             int64 // read(2) requests and bytes
	Writes, WriteBytes           int64 // write(2) requests and bytes
	CopyRanges, CopyRangeBytes   int64 // copy_file_range(2) requests and bytes shared
	Fsyncs                       int64 // fsync(2) requests (each commits)
	CtlCommands, CtlCommandFails int64 // control-file commands run and failed
	HandleLookups                int64 // files found by inode number for handles the kernel had forgotten
}

// mount is the state every node of one mount shares.
type mount struct {
	fsys *cowfs.FS
	vol  *cowfs.Volume
	opt  Options
	root *node
	raw  *rawFS
	ctl  *ctl.Server
	ns   *control.Namespace // .cowfs: its snapshots, views and numbers

	stats struct {
		reads, readBytes, writes, writeBytes atomic.Int64
		copies, copyBytes, fsyncs            atomic.Int64
		ctl, ctlFails                        atomic.Int64
		handleLookups                        atomic.Int64
	}
}

// Cache lifetimes the kernel may trust. Everything that changes a file goes
// through the kernel, except control commands, which invalidate what they
// change (mount.changed).
var (
	entryTimeout = time.Second
	attrTimeout  = time.Second
)

// Mount mounts vol of fsys at mountpoint and returns once the kernel serves
// it. As root it mounts directly and lets every user in (permissions are
// still checked); otherwise it uses fusermount3.
func Mount(fsys *cowfs.FS, vol *cowfs.Volume, mountpoint string, opt *Options) (*Server, error) {
	// The control file is the server's user's: the kernel checks its
	// mode against the caller, and its commands run with this process's
	// rights.
	m := &mount{fsys: fsys, vol: vol, ns: control.New(vol, control.NewNumbers(), uint32(os.Geteuid()), uint32(os.Getegid()))}
	if opt != nil {
		m.opt = *opt
	}
	m.root = &node{m: m, vol: vol, h: vol.RootInode()}
	m.ctl = &ctl.Server{FS: fsys, Vol: vol, Changed: m.changed, SnapshotsChanged: m.snapshotsChanged, Stats: m.frontendStats, ServeView: m.ns.ServeView}
	root := os.Geteuid() == 0
	rootSt := mustStat(m.root)
	if rootSt.Ino != 1 {
		return nil, fmt.Errorf("mount %s: the volume's root has inode number %d, not 1", mountpoint, rootSt.Ino)
	}
	rootAttr := fs.StableAttr{Ino: 1, Gen: generation(rootSt)}
	options := []string{"default_permissions"}
	if m.opt.Dev {
		if !root {
			return nil, fmt.Errorf("mount %s: device nodes (dev) need root: fusermount3 mounts nodev for other users", mountpoint)
		}
		options = append(options, "dev") // go-fuse clears MS_NODEV for it
	}
	level := slog.LevelDebug
	if m.opt.Debug {
		level = slog.LevelInfo
	}
	goFuseLog := log.New(logWriter{m.logger(), level}, "", 0)
	flags, opts := atimeMountFlags(fsys.Atime())
	if root {
		opts = nil // flags, not options, for a direct mount
	}
	fopt := &fs.Options{
		MountOptions: fuse.MountOptions{
			FsName:      "cowfs",
			Name:        "cowfs",
			DirectMount: root,
			// The kernel's own atime rule (shown in /proc/mounts) is
			// the one cowfs follows (cowfs.Options.Atime).
			DirectMountFlags: flags,
			AllowOther:       root,
			Options:          append(options, opts...),
			MaxWrite:         1 << 20,
			// No splice: cowfs answers reads from memory, which go-fuse
			// cannot splice, so each attempt only cost system calls (two
			// per 1 MiB read) and, for a full 1 MiB read (whose reply
			// outgrows a 1 MiB pipe), a log line; throughput was the same
			// (docs/design.md, "The FUSE mount").
			DisableSplice: true,
			MaxReadAhead:  1 << 20,
			// No automatic invalidation of cached pages when a file's
			// attributes change: every change goes through the kernel,
			// and control commands invalidate what they change. The
			// automatic one can drop a page while a write of it is on
			// its way to the server and let a reader fetch the old
			// content, which then stays cached (TestConcurrentAppendReaders).
			ExplicitDataCacheControl: true,
			// POSIX ACLs: the kernel enforces them and hands cowfs every
			// ACL change, the umask of each create (DONT_MASK: cowfs
			// applies it only where no default ACL decides the mode) and
			// whether an ACL change must clear the set-group-ID bit
			// (SETXATTR_EXT).
			EnableAcl: true,
			// File handles that outlive the kernel's inodes: export.go.
			// Set-ID bits cleared by cowfs, which knows the file's
			// current mode, where the kernel asks (HANDLE_KILLPRIV_V2):
			// without it, the kernel clears set-group-ID only with group
			// execute, where Linux also clears it for a caller outside
			// the file's group (asKill).
			ExtraCapabilities: fuse.CAP_DONT_MASK | fuse.CAP_SETXATTR_EXT | fuse.CAP_EXPORT_SUPPORT | fuse.CAP_HANDLE_KILLPRIV_V2,
			Debug:             m.opt.Debug,
			Logger:            goFuseLog,
			PanicHandler: func(v any) fuse.Status {
				m.logger().Error("panic in a FUSE handler; the request fails with EIO",
					"volume", vol.Name(), "mountpoint", mountpoint, "panic", v, "stack", string(debug.Stack()))
				return fuse.EIO
			},
		},
		EntryTimeout:    &entryTimeout,
		AttrTimeout:     &attrTimeout,
		NullPermissions: true,
		// Node IDs are inode numbers, so file handles outlive a remount.
		ExternalNodeID: true,
		RootStableAttr: &rootAttr,
		Logger:         goFuseLog,
	}
	m.raw = newRawFS(fs.NewNodeFS(m.root, fopt))
	srv, err := fuse.NewServer(m.raw, mountpoint, &fopt.MountOptions)
	if err != nil {
		return nil, fmt.Errorf("mount %s: %w", mountpoint, err)
	}
	go srv.Serve()
	if err := srv.WaitMount(); err != nil {
		// As fs.Mount: the serve loop ends by itself when the mount fails.
		return nil, fmt.Errorf("mount %s: %w", mountpoint, err)
	}
	setReadahead(mountpoint)
	return &Server{srv: srv, m: m}, nil
}

// atimeMountFlags returns the mount flags of a direct mount (root) and the
// option of a mount through fusermount3 that make the kernel's atime rule
// mode's: relatime (the kernel's default), noatime or strictatime (which
// fusermount3 3.14 does not know: such a mount fails unless made as root).
// The kernel updates its cached access times by that rule and takes
// cowfs's after every read that reaches cowfs.
func atimeMountFlags(mode cowfs.AtimeMode) (uintptr, []string) {
	flags := uintptr(syscall.MS_NOSUID | syscall.MS_NODEV)
	switch mode {
	case cowfs.Noatime:
		return flags | syscall.MS_NOATIME, []string{"noatime"}
	case cowfs.Strictatime:
		return flags | syscall.MS_STRICTATIME, []string{"strictatime"}
	}
	return flags | syscall.MS_RELATIME, nil
}

// logger returns the mount's logger; nil Options.Logger discards.
func (m *mount) logger() *slog.Logger {
	if m.opt.Logger == nil {
		return discardLogger
	}
	return m.opt.Logger
}

// discardLogger drops every record.
var discardLogger = slog.New(slog.DiscardHandler)

// logWriter makes each line go-fuse prints (through a log.Logger) a
// record of l at level, tagged component=go-fuse.
type logWriter struct {
	l     *slog.Logger
	level slog.Level
}

func (w logWriter) Write(p []byte) (int, error) {
	if w.l.Enabled(context.Background(), w.level) {
		w.l.Log(context.Background(), w.level, strings.TrimSuffix(string(p), "\n"), "component", "go-fuse")
	}
	return len(p), nil
}

// readaheadKiB is the kernel's read-ahead window for the mount. The FUSE
// client starts at 128 KiB, which leaves sequential reads waiting on one
// small request after another; 1 MiB doubled them here (bench/fuse.sh).
const readaheadKiB = 1024

// setReadahead widens the kernel's read-ahead for the mount at mnt, when
// this process may (root may write /sys/class/bdi); it is only a speed-up,
// so a failure is ignored.
func setReadahead(mnt string) {
	var st syscall.Stat_t
	if err := syscall.Stat(mnt, &st); err != nil {
		return
	}
	bdi := fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", unix.Major(st.Dev), unix.Minor(st.Dev))
	os.WriteFile(bdi, []byte(fmt.Sprint(readaheadKiB)), 0)
}

// Unmount asks the kernel to unmount; it fails (EBUSY) while files are open
// or a process has its working directory in the mount.
func (s *Server) Unmount() error { return s.srv.Unmount() }

// Wait returns when the file system is unmounted.
func (s *Server) Wait() { s.srv.Wait() }

// Stats returns the mount's request counters.
func (s *Server) Stats() Stats { return s.m.statsNow() }

func (m *mount) statsNow() Stats {
	st := &m.stats
	return Stats{
		Reads: st.reads.Load(), ReadBytes: st.readBytes.Load(),
		Writes: st.writes.Load(), WriteBytes: st.writeBytes.Load(),
		CopyRanges: st.copies.Load(), CopyRangeBytes: st.copyBytes.Load(),
		Fsyncs:      st.fsyncs.Load(),
		CtlCommands: st.ctl.Load(), CtlCommandFails: st.ctlFails.Load(),
		HandleLookups: st.handleLookups.Load(),
	}
}

// frontendStats is the mount's part of the control file's stats reply.
func (m *mount) frontendStats() map[string]any {
	s := m.statsNow()
	return map[string]any{
		"fuse": map[string]int64{
			"reads": s.Reads, "read_bytes": s.ReadBytes,
			"writes": s.Writes, "write_bytes": s.WriteBytes,
			"copy_ranges": s.CopyRanges, "copy_range_bytes": s.CopyRangeBytes,
			"fsyncs": s.Fsyncs, "ctl_commands": s.CtlCommands, "ctl_failures": s.CtlCommandFails,
			"handle_lookups": s.HandleLookups,
		},
	}
}

// errno maps a cowfs error to the errno the kernel gets.
func errno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	return cowfs.Errno(err)
}
