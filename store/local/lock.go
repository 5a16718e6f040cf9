package local

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

const lockName = "LOCK"

// lockDir takes the exclusive lock of the store in dir and writes this
// process's pid into the lock file. The lock lasts until the returned file is
// closed, or the process dies.
//
// A child this process forks holds a copy of the lock's descriptor until it
// execs (close-on-exec acts only then), so right after Close the lock can
// still look held, by this very pid. When no store of this process holds dir,
// such a lock is that brief window, and lockDir waits it out (up to a second).
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, lockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("local: lock store: %w", err)
	}
	for wait := time.Millisecond; ; wait *= 2 {
		err := flock(f)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			_ = f.Close()
			return nil, fmt.Errorf("local: lock store %s: %w", dir, err)
		}
		if wait > time.Second || !heldByForkedChild(dir, path) {
			_ = f.Close()
			return nil, inUse(dir, path)
		}
		time.Sleep(wait)
	}
	holdDir(dir, true)
	pid := []byte(strconv.Itoa(os.Getpid()) + "\n")
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt(pid, 0) // the pid is for messages only
	}
	return f, nil
}

// flock takes an exclusive, non-blocking flock on f.
func flock(f *os.File) error {
	conn, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	err = conn.Control(func(fd uintptr) {
		for {
			ferr = unix.Flock(int(fd), unix.LOCK_EX|unix.LOCK_NB)
			if ferr != unix.EINTR {
				return
			}
		}
	})
	if err != nil {
		return err
	}
	return ferr
}

// openDirs are the store directories this process holds open.
var openDirs = struct {
	sync.Mutex
	m map[string]bool
}{m: map[string]bool{}}

// holdDir records that this process holds dir (held false: no longer).
func holdDir(dir string, held bool) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	openDirs.Lock()
	defer openDirs.Unlock()
	if held {
		openDirs.m[abs] = true
	} else {
		delete(openDirs.m, abs)
	}
}

// heldByForkedChild reports whether the lock on dir names this process but
// no store of this process holds dir: a forked child's copy of a closed lock.
func heldByForkedChild(dir, path string) bool {
	b, _ := os.ReadFile(path)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid != os.Getpid() {
		return false
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	openDirs.Lock()
	defer openDirs.Unlock()
	return !openDirs.m[abs]
}

// inUse describes who holds the lock at path, as well as it can tell.
func inUse(dir, path string) error {
	b, _ := os.ReadFile(path)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	switch {
	case err != nil || pid <= 0:
		return fmt.Errorf("local: store %s is in use by another process: %w", dir, ErrInUse)
	case pid == os.Getpid():
		return fmt.Errorf("local: store %s is already open in this process (pid %d): %w", dir, pid, ErrInUse)
	default:
		return fmt.Errorf("local: store %s is in use by another process (pid %d): %w", dir, pid, ErrInUse)
	}
}
