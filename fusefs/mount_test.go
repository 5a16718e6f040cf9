package fusefs

import (
	"context"
	"log/slog"
	"os"
	"sort"
	"testing"

	"github.com/cowfs/cowfs"
	"github.com/cowfs/cowfs/internal/fusetest"
	"github.com/cowfs/cowfs/store/mem"
	"github.com/hanwen/go-fuse/v2/posixtest"
)

// testMount is a volume of an in-memory store mounted in a temporary
// directory.
type testMount struct {
	dir  string
	fsys *cowfs.FS
	vol  *cowfs.Volume
	srv  *Server

	unmounted bool
}

// mountMem mounts a fresh in-memory volume; the test's cleanup unmounts it
// and checks every invariant of the store. COWFS_FUSE_DEBUG=1 logs every
// request on stderr.
func mountMem(t testing.TB) *testMount {
	t.Helper()
	opt := &Options{}
	if os.Getenv("COWFS_FUSE_DEBUG") != "" {
		opt.Debug, opt.Logger = true, slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return mountMemWith(t, nil, opt)
}

// mountMemWith is mountMem with the FS's and the mount's options.
func mountMemWith(t testing.TB, fopt *cowfs.Options, opt *Options) *testMount {
	t.Helper()
	fusetest.Require(t)
	fsys, err := cowfs.Open(mem.New(), fopt)
	if err != nil {
		t.Fatal(err)
	}
	vol, err := fsys.CreateVolume("main")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	srv, err := Mount(fsys, vol, dir, opt)
	if err != nil {
		t.Fatal(err)
	}
	m := &testMount{dir: dir, fsys: fsys, vol: vol, srv: srv}
	t.Cleanup(func() {
		if err := m.unmount(); err != nil {
			t.Errorf("unmount: %v", err)
			return
		}
		rep, err := fsys.Check(context.Background())
		if err != nil {
			t.Errorf("check: %v", err)
		} else if err := rep.Err(); err != nil {
			t.Errorf("check after unmount: %v", err)
		}
		if err := fsys.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return m
}

// unmount unmounts m and waits until the server is done; a second call
// does nothing.
func (m *testMount) unmount() error {
	if m.unmounted {
		return nil
	}
	if err := m.srv.Unmount(); err != nil {
		return err
	}
	m.srv.Wait()
	m.unmounted = true
	return nil
}

// unsupported lists posixtest cases cowfs does not pass, with the reason.
var unsupported = map[string]string{
	"Tmpfile": "O_TMPFILE is not supported (EOPNOTSUPP): a file without a name has no path in the Go API",
	"FcntlFlockLocksFile": "it expects two descriptors of one process to conflict (open file description locks, " +
		"which go-fuse's loopback gets from the host); POSIX record locks of one process never conflict, " +
		"and that is what the kernel's own locking gives a cowfs mount",
}

// TestPosix runs go-fuse's POSIX conformance suite against a cowfs mount.
func TestPosix(t *testing.T) {
	names := make([]string, 0, len(posixtest.All))
	for name := range posixtest.All {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if why, ok := unsupported[name]; ok {
			t.Logf("not run: %s: %s", name, why)
			continue
		}
		t.Run(name, func(t *testing.T) {
			m := mountMem(t)
			posixtest.All[name](t, m.dir)
		})
	}
}

// remountable is a volume of an in-memory store that a test mounts in one
// directory, unmounts (committing) and mounts again; the test's cleanup
// unmounts it if it is mounted and closes the store.
type remountable struct {
	t    *testing.T
	fsys *cowfs.FS
	vol  *cowfs.Volume
	dir  string
	srv  *Server // nil while unmounted
}

func newRemountable(t *testing.T) *remountable {
	t.Helper()
	fusetest.Require(t)
	fsys, err := cowfs.Open(mem.New(), nil)
	if err != nil {
		t.Fatal(err)
	}
	vol, err := fsys.CreateVolume("main")
	if err != nil {
		t.Fatal(err)
	}
	r := &remountable{t: t, fsys: fsys, vol: vol, dir: t.TempDir()}
	t.Cleanup(func() {
		if r.srv != nil {
			r.unmount()
		}
		fsys.Close()
	})
	r.mount()
	return r
}

// mount mounts the volume.
func (r *remountable) mount() {
	r.t.Helper()
	srv, err := Mount(r.fsys, r.vol, r.dir, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	r.srv = srv
}

// unmount unmounts the volume and commits.
func (r *remountable) unmount() {
	r.t.Helper()
	if err := r.srv.Unmount(); err != nil {
		r.t.Fatal(err)
	}
	r.srv.Wait()
	r.srv = nil
	if err := r.fsys.Commit(); err != nil {
		r.t.Fatal(err)
	}
}
