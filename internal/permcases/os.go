package permcases

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cowfs/cowfs/acl"
	"golang.org/x/sys/unix"
)

// childEnv, when set (to the umask, in octal), makes MaybeChild the
// process that does a batch of operations.
const childEnv = "COWFS_PERMCASES_CHILD"

// MaybeChild does a batch of operations and exits when the process was
// started by RunOS as one (it then runs as the cases' user); otherwise it
// returns at once. A test package that calls RunOS calls it first thing:
//
//	func TestMain(m *testing.M) { permcases.MaybeChild(); os.Exit(m.Run()) }
func MaybeChild() {
	v, ok := os.LookupEnv(childEnv)
	if !ok {
		return
	}
	mask, err := strconv.ParseUint(v, 8, 32)
	if err != nil {
		fmt.Fprintf(os.Stderr, "permcases child: umask %q: %v\n", v, err)
		os.Exit(2)
	}
	syscall.Umask(int(mask))
	var ops []Op
	if err := json.NewDecoder(os.Stdin).Decode(&ops); err != nil {
		fmt.Fprintf(os.Stderr, "permcases child: %v\n", err)
		os.Exit(2)
	}
	errnos := make([]syscall.Errno, len(ops))
	for i, op := range ops {
		errnos[i] = doOS(op)
	}
	if err := json.NewEncoder(os.Stdout).Encode(errnos); err != nil {
		os.Exit(2)
	}
	os.Exit(0)
}

// errnoOf is err's errno: 0 for nil, EIO for an error that carries none.
func errnoOf(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	return syscall.EIO
}

// fixedTime is what UtimesSet sets.
var fixedTime = time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)

// doOS does op with system calls, as this process's user.
func doOS(op Op) syscall.Errno {
	p := op.Path
	switch op.Kind {
	case Open:
		fd, err := unix.Open(p, op.Flags|unix.O_CLOEXEC|unix.O_NONBLOCK, op.Mode)
		if err != nil {
			return errnoOf(err)
		}
		return errnoOf(unix.Close(fd))
	case Mkdir:
		return errnoOf(unix.Mkdir(p, op.Mode))
	case Mkfifo:
		return errnoOf(unix.Mknod(p, unix.S_IFIFO|op.Mode, 0))
	case MkSymlink:
		return errnoOf(unix.Symlink(op.Target, p))
	case Link:
		return errnoOf(unix.Link(p, op.Path2))
	case Unlink:
		return errnoOf(unix.Unlink(p))
	case Rmdir:
		return errnoOf(unix.Rmdir(p))
	case Rename:
		return errnoOf(unix.Rename(p, op.Path2))
	case Chmod:
		return errnoOf(unix.Chmod(p, op.Mode))
	case Chown:
		return errnoOf(unix.Lchown(p, op.UID, op.GID))
	case Truncate:
		return errnoOf(unix.Truncate(p, 0))
	case Write:
		fd, err := unix.Open(p, unix.O_WRONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err != nil {
			return errnoOf(err)
		}
		_, err = unix.Pwrite(fd, []byte("w"), 0)
		if cerr := unix.Close(fd); err == nil {
			err = cerr
		}
		return errnoOf(err)
	case UtimesNow:
		return errnoOf(unix.UtimesNanoAt(unix.AT_FDCWD, p, nil, 0))
	case UtimesSet:
		ts := unix.NsecToTimespec(fixedTime.UnixNano())
		return errnoOf(unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{ts, ts}, 0))
	case SetXattr:
		return errnoOf(unix.Lsetxattr(p, op.Name, op.Value, 0))
	case RemoveXattr:
		return errnoOf(unix.Lremovexattr(p, op.Name))
	case GetXattr:
		_, err := unix.Lgetxattr(p, op.Name, make([]byte, 1024))
		return errnoOf(err)
	case SetACL:
		return errnoOf(unix.Setxattr(p, acl.AccessXattr, op.Value, 0))
	case Lstat:
		var st unix.Stat_t
		return errnoOf(unix.Lstat(p, &st))
	case Readdir:
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return errnoOf(err)
		}
		_, err = unix.Getdents(fd, make([]byte, 4096))
		if cerr := unix.Close(fd); err == nil {
			err = cerr
		}
		return errnoOf(err)
	case Access:
		return errnoOf(unix.Faccessat(unix.AT_FDCWD, p, op.Mode, 0))
	}
	return syscall.ENOSYS
}

// setupOS makes n at p with system calls, as root.
func setupOS(p string, n Node) error {
	var err error
	switch n.Kind {
	case File:
		err = os.WriteFile(p, []byte(n.Content), 0o600)
	case Dir:
		err = unix.Mkdir(p, 0o700)
	case Symlink:
		err = unix.Symlink(n.Target, p)
	case Fifo:
		err = unix.Mknod(p, unix.S_IFIFO|0o600, 0)
	}
	if err != nil {
		return err
	}
	for k, v := range n.Xattrs {
		if err := unix.Lsetxattr(p, k, []byte(v), 0); err != nil {
			return fmt.Errorf("setxattr %s: %w", k, err)
		}
	}
	if err := unix.Lchown(p, int(n.UID), int(n.GID)); err != nil {
		return err
	}
	if n.Kind == Symlink {
		return nil
	}
	if err := unix.Chmod(p, n.Mode); err != nil {
		return err
	}
	if n.ACL != nil {
		if err := unix.Setxattr(p, acl.AccessXattr, n.ACL, 0); err != nil {
			return fmt.Errorf("set the access ACL: %w", err)
		}
	}
	if n.Default != nil {
		if err := unix.Setxattr(p, acl.DefaultXattr, n.Default, 0); err != nil {
			return fmt.Errorf("set the default ACL: %w", err)
		}
	}
	return nil
}

// lstatOS describes p, as root.
func lstatOS(p string) (Stat, error) {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); errors.Is(err, unix.ENOENT) {
		return Stat{}, nil
	} else if err != nil {
		return Stat{}, err
	}
	return NewStat(st.Mode, st.Uid, st.Gid, st.Size, func(name string) (string, error) { return getACL(p, name) })
}

func getACL(p, name string) (string, error) {
	buf := make([]byte, 64<<10)
	n, err := unix.Lgetxattr(p, name, buf)
	if errors.Is(err, unix.ENODATA) || errors.Is(err, unix.EOPNOTSUPP) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("getxattr %s %s: %w", p, name, err)
	}
	return string(buf[:n]), nil
}

// osWorkers is how many goroutines set up and lstat the cases on the
// operating system (a mount answers several requests at once).
const osWorkers = 8

// osRunner does the cases under a directory with system calls; setup and
// lstat run in this process (root), operations in child processes.
type osRunner struct{ dir string }

func (r osRunner) abs(p string) string { return filepath.Join(r.dir, p) }

func (r osRunner) Setup(n Node) error {
	n.Path = r.abs(n.Path)
	return setupOS(n.Path, n)
}

func (r osRunner) Lstat(p string) (Stat, error) { return lstatOS(r.abs(p)) }

// RunOS runs cases in dir with system calls, each in a directory of its
// own (dir/gN/cM): the setup as root in this process, the operations in one
// child process per user (this test binary again, as the user: see
// MaybeChild). dir and the directories above it must let every user search
// them (RunOS opens up those it made below the temporary directory); the
// test process must be root.
func RunOS(t testing.TB, dir string, cases []Case) []Outcome {
	t.Helper()
	openUp(t, dir)
	exe := childBinary(t)
	r := osRunner{dir: dir}
	start := time.Now()
	setupAll(t, r, cases, osWorkers)
	setupTime := time.Since(start)
	errnos := make([]syscall.Errno, len(cases))
	byUser := map[string][]int{}
	var order []string
	for i, c := range cases {
		k := c.User.String()
		if _, ok := byUser[k]; !ok {
			order = append(order, k)
		}
		byUser[k] = append(byUser[k], i)
	}
	var wg sync.WaitGroup
	for _, k := range order {
		idx := byUser[k]
		u := cases[idx[0]].User
		ops := make([]Op, len(idx))
		for j, i := range idx {
			ops[j] = prefixed(caseDir(i), cases[i].Op)
			ops[j].Path = r.abs(ops[j].Path)
			if ops[j].Path2 != "" {
				ops[j].Path2 = r.abs(ops[j].Path2)
			}
		}
		wg.Go(func() {
			if got := runChild(t, exe, u, ops); got != nil {
				for j, i := range idx {
					errnos[i] = got[j]
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	opsTime := time.Since(start) - setupTime
	out := outcomes(t, r, cases, errnos, osWorkers)
	t.Logf("%d cases in %s: setup %v, operations %v, lstat %v", len(cases), dir, setupTime.Round(time.Millisecond),
		opsTime.Round(time.Millisecond), (time.Since(start) - setupTime - opsTime).Round(time.Millisecond))
	return out
}

// runChild does ops as u in a child process and returns their errnos;
// it fails t (without stopping it: it runs on a goroutine of its own) and
// returns nil when the child did not answer for every operation.
func runChild(t testing.TB, exe string, u User, ops []Op) []syscall.Errno {
	t.Helper()
	in, err := json.Marshal(ops)
	if err != nil {
		t.Error(err)
		return nil
	}
	cmd := exec.Command(exe)
	// The child's directory is never in the directory tested, which may
	// be a mount this process serves.
	cmd.Dir = "/"
	// GORACE: a child built with -race would wait a second at exit.
	cmd.Env = []string{childEnv + "=" + strconv.FormatUint(uint64(u.Umask), 8), "PATH=/usr/bin:/bin", "GORACE=atexit_sleep_ms=0"}
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	groups := u.Groups
	if groups == nil {
		groups = []uint32{}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: u.UID, Gid: u.GID, Groups: groups}}
	out, err := cmd.Output()
	if err != nil {
		t.Errorf("operations as %v: %v\n%s", u, err, stderr.Bytes())
		return nil
	}
	var errnos []syscall.Errno
	if err := json.Unmarshal(out, &errnos); err != nil || len(errnos) != len(ops) {
		t.Errorf("operations as %v: %d answers for %d operations (%v): %q", u, len(errnos), len(ops), err, out)
		return nil
	}
	return errnos
}

// childBinary returns a copy of this test binary that every user may run
// (the go tool builds it in a directory only its user may enter).
func childBinary(t testing.TB) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	d := t.TempDir()
	openUp(t, d)
	exe := filepath.Join(d, "permcases-child")
	src, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(exe, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return exe
}

// openUp lets every user search dir and the directories above it up to
// the temporary directory (a test's temporary directories are 0700).
func openUp(t testing.TB, dir string) {
	t.Helper()
	top := filepath.Clean(os.TempDir())
	for d := filepath.Clean(dir); strings.HasPrefix(d, top+"/"); d = filepath.Dir(d) {
		var st unix.Stat_t
		if err := unix.Stat(d, &st); err != nil {
			t.Fatal(err)
		}
		if st.Mode&0o011 != 0o011 {
			if err := unix.Chmod(d, st.Mode&0o7777|0o011); err != nil {
				t.Fatal(err)
			}
		}
	}
}
