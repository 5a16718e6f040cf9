package local

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

const lockName = "LOCK"

// lockDir takes the exclusive lock of the store in dir and writes this
// process's pid into the lock file. The lock lasts until the returned file is
// closed, or the process dies.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, lockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("local: lock store: %w", err)
	}
	if err := flock(f); err != nil {
		_ = f.Close()
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("local: lock store %s: %w", dir, err)
		}
		return nil, inUse(dir, path)
	}
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
